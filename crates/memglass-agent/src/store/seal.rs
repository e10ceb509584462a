//! Sealing: the head's collections into blocks, the minutes they complete into one-minute
//! averages; cutting blocks at a time (retention, the size limit); and converting a
//! history of the earlier row-per-sample format (a `samples` table).

use rusqlite::{params, OptionalExtension};

use super::block::{self, minute_of, Sample, FIGURES};
use super::write::wrap;
use super::{Store, Writer};
use crate::error::Result;

/// The head is sealed into blocks after this many collections (5 minutes at 10 s): it
/// stays a few MiB at 1,500 cgroups, and reads seek once per collection in it.
pub const SEAL_COLLECTIONS: u64 = 30;

/// Samples per block at most, raw (an hour at 10 s) and one-minute averages (6 hours).
/// The newest block of a series grows at each seal until full: longer blocks compress
/// better, shorter ones cost less to rewrite and let retention cut closer.
const BLOCK_SAMPLES: [usize; 2] = [360, 360];

impl Writer {
    /// Move every collection of the head into the blocks, and average the minutes that are
    /// complete: one transaction, so a kill leaves either the head or the blocks.
    pub(super) fn seal(&mut self) -> Result<()> {
        if self.head.0 == 0 {
            return Ok(());
        }
        let store = &self.store;
        let complete_before = store.newest_collection()?.map(minute_of);
        let tx = store.conn.unchecked_transaction().map_err(wrap(store))?;
        let ids = store
            .conn
            .prepare_cached("SELECT DISTINCT series FROM head")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(wrap(store))?;
        for id in ids {
            let new = store.head_samples(id, i64::MIN, i64::MAX)?;
            let Some(last) = new.last().map(|s| s.t) else {
                continue;
            };
            let written = store.append(id, 0, new)?;
            if let Some(before) = complete_before {
                store.close_minutes(id, before, &written)?;
            }
            tx.execute(
                "UPDATE series SET last_seen = max(last_seen, ?2) WHERE id = ?1",
                params![id, last],
            )
            .map_err(wrap(store))?;
        }
        tx.execute("DELETE FROM head", []).map_err(wrap(store))?;
        tx.commit().map_err(wrap(store))?;
        self.head = (0, None);
        Ok(())
    }

    /// Delete the samples of resolution `res` before `before`, of every series, inside the
    /// caller's transaction: whole blocks where they end before it, the rest cut. Minutes
    /// still to be averaged are averaged first. Returns the samples deleted.
    pub(super) fn trim(
        &self,
        tx: &rusqlite::Transaction<'_>,
        res: i64,
        before: i64,
    ) -> Result<u64> {
        let store = &self.store;
        let complete_before = store.newest_collection()?.map(minute_of);
        let mut deleted = 0u64;
        let mut blocks = tx
            .prepare_cached(
                "SELECT t0, t1, n, data FROM blocks WHERE series = ?1 AND res = ?2 AND t0 < ?3",
            )
            .map_err(wrap(store))?;
        for id in self.series_ids()? {
            if res == 0 {
                if let Some(minute) = complete_before {
                    store.close_minutes(id, minute, &[])?;
                }
            }
            let old = blocks
                .query_map(params![id, res, before], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                    ))
                })
                .map_err(wrap(store))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(wrap(store))?;
            for (t0, t1, n, data) in old {
                store.delete_block(id, res, t0)?;
                if t1 < before {
                    deleted += u64::try_from(n).unwrap_or(0);
                    continue;
                }
                // A block that does not decode goes whole.
                let samples = block::decode(&data).unwrap_or_default();
                let kept: Vec<Sample> = samples.iter().filter(|s| s.t >= before).copied().collect();
                deleted += (samples.len() - kept.len()) as u64;
                store.insert_blocks(id, res, &kept)?;
            }
        }
        if res == 0 {
            deleted += tx
                .execute("DELETE FROM head WHERE t < ?1", [before])
                .map_err(wrap(store))? as u64;
        }
        Ok(deleted)
    }

    /// The oldest sample of resolution `res`, in the blocks or the head.
    pub(super) fn oldest_sample(&self, res: i64) -> Result<Option<i64>> {
        let store = &self.store;
        let blocks: Option<i64> = store
            .conn
            .query_row("SELECT min(t0) FROM blocks WHERE res = ?1", [res], |r| {
                r.get(0)
            })
            .map_err(wrap(store))?;
        let head: Option<i64> = if res == 0 {
            store
                .conn
                .query_row("SELECT min(t) FROM head", [], |r| r.get(0))
                .map_err(wrap(store))?
        } else {
            None
        };
        Ok(blocks.into_iter().chain(head).min())
    }
}

impl Store {
    /// Add `samples` (oldest first) to the blocks of series `id` at resolution `res`: into
    /// its newest block while that has room, then new blocks. Returns what it wrote (the
    /// newest block's samples with the new ones).
    fn append(&self, id: i64, res: i64, samples: Vec<Sample>) -> Result<Vec<Sample>> {
        let cap = BLOCK_SAMPLES[usize::from(res != 0)];
        let open: Option<(i64, i64, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT t0, n, data FROM blocks WHERE series = ?1 AND res = ?2 ORDER BY t0 DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![id, res], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(self.wrap())?;
        let mut merged = samples;
        let has_room = |n: &i64| usize::try_from(*n).is_ok_and(|n| n < cap);
        if let Some((t0, _, data)) = open.filter(|(_, n, _)| has_room(n)) {
            // A newest block that does not decode is left as it is; the samples start anew.
            if let Ok(mut old) = block::decode(&data) {
                self.delete_block(id, res, t0)?;
                let first_new = merged.first().map_or(i64::MAX, |s| s.t);
                if old.last().is_some_and(|s| s.t >= first_new) {
                    // The clock went back: keep time order, the newer write winning.
                    old.retain(|s| !merged.iter().any(|m| m.t == s.t));
                    old.extend(merged);
                    old.sort_by_key(|s| s.t);
                } else {
                    old.extend(merged);
                }
                merged = old;
            }
        }
        self.insert_blocks(id, res, &merged)?;
        Ok(merged)
    }

    /// Store `samples` (oldest first) as blocks of at most the resolution's size.
    fn insert_blocks(&self, id: i64, res: i64, samples: &[Sample]) -> Result<()> {
        let cap = BLOCK_SAMPLES[usize::from(res != 0)];
        let mut insert = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO blocks VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .map_err(self.wrap())?;
        for chunk in samples.chunks(cap) {
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            insert
                .execute(params![
                    id,
                    res,
                    first.t,
                    last.t,
                    chunk.len() as i64,
                    block::encode(chunk)
                ])
                .map_err(self.wrap())?;
        }
        Ok(())
    }

    fn delete_block(&self, id: i64, res: i64, t0: i64) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM blocks WHERE series = ?1 AND res = ?2 AND t0 = ?3")
            .and_then(|mut s| s.execute(params![id, res, t0]))
            .map(|_| ())
            .map_err(self.wrap())
    }

    /// Average into blocks the minutes of series `id` before `complete_before` that have
    /// raw samples and no average yet. `recent`: the newest raw samples, when the caller has
    /// them (they spare reading the blocks again if they reach back far enough).
    fn close_minutes(&self, id: i64, complete_before: i64, recent: &[Sample]) -> Result<()> {
        let pending_from = self
            .last_block_end(id, 1)?
            .map_or(i64::MIN, |t| t.saturating_add(60));
        if pending_from >= complete_before {
            return Ok(());
        }
        let raw = if recent.first().is_some_and(|s| s.t <= pending_from) {
            recent
                .iter()
                .filter(|s| s.t >= pending_from && s.t < complete_before)
                .copied()
                .collect()
        } else {
            self.block_samples(id, 0, pending_from, complete_before - 1)?
        };
        let minutes = block::minute_averages(&raw);
        if !minutes.is_empty() {
            self.append(id, 1, minutes)?;
        }
        Ok(())
    }
}

/// Convert a history of the row-per-sample format (memglass before the blocks: a
/// `samples` table) into blocks, in one transaction, and drop the old table.
pub(super) fn convert_rows(store: &Store) -> Result<()> {
    let old: bool = store
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'samples'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(store.wrap())?;
    if !old {
        return Ok(());
    }
    let tx = store.conn.unchecked_transaction().map_err(store.wrap())?;
    let ids = store
        .conn
        .prepare("SELECT DISTINCT series FROM samples")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(store.wrap())?;
    {
        let mut rows = store
            .conn
            .prepare(
                "SELECT t, usage, lim, anon, active_anon, inactive_anon, file, active_file,
                   inactive_file, shmem, file_dirty, kernel, oom_kill
                 FROM samples WHERE series = ?1 AND res = ?2 ORDER BY t",
            )
            .map_err(store.wrap())?;
        for id in ids {
            for res in [0, 1] {
                let samples = rows
                    .query_map(params![id, res], |r| {
                        let mut v = [None; FIGURES];
                        for (i, slot) in v.iter_mut().enumerate() {
                            *slot = r
                                .get::<_, Option<i64>>(i + 1)?
                                .map(|x| u64::try_from(x).unwrap_or(0));
                        }
                        Ok(Sample { t: r.get(0)?, v })
                    })
                    .map_err(store.wrap())?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(store.wrap())?;
                store.insert_blocks(id, res, &samples)?;
            }
        }
    }
    tx.execute("DROP TABLE samples", []).map_err(store.wrap())?;
    tx.commit().map_err(store.wrap())?;
    Ok(())
}
