//! `--db-max-size`: the history's files (the database and its write-ahead log) stay under
//! a size. When the database's live pages come near it, the oldest history goes first, in
//! this order, a tenth of what is left of each kind at a time:
//!
//! 1. raw samples, down to the last hour (blocks are cut at the line);
//! 2. one-minute averages, down to the last day;
//! 3. raw samples, down to the last ten minutes;
//! 4. one-minute averages, all but the last;
//! 5. raw samples, all but the last collection;
//! 6. OOM events (with their flight recorders), oldest first: kept longest.
//!
//! Pruned rows leave free pages that the next writes reuse, so the file stops growing. A
//! database created by this version (`auto_vacuum = INCREMENTAL`) also gives free pages
//! back to the filesystem when the file is over the size (a smaller `--db-max-size` than
//! before); an older file keeps its size but does not grow (a `VACUUM` would need as much
//! temporary space again).
//!
//! The write-ahead log is checkpointed (and truncated) at an eighth of the size, between 128
//! KiB and 1 MiB. It grows past that by the transactions that crossed it: a seal of the
//! head rewrites the newest block of every cgroup, so the database's live pages are kept
//! under the size minus that share and two pages per series (or what the log holds now, if
//! more).

use rusqlite::params;

use super::Writer;
use crate::error::Result;

/// What one pruning step deletes: raw or one-minute samples older than the newest sample
/// minus `keep` seconds, or OOM events.
#[derive(Debug, Clone, Copy)]
enum Step {
    Samples { res: i64, keep: i64 },
    OomEvents,
}

const STEPS: [Step; 6] = [
    Step::Samples { res: 0, keep: 3600 },
    Step::Samples {
        res: 1,
        keep: 86_400,
    },
    Step::Samples { res: 0, keep: 600 },
    Step::Samples { res: 1, keep: 0 },
    Step::Samples { res: 0, keep: 0 },
    Step::OomEvents,
];

/// The smallest `--db-max-size`.
pub const MIN_MAX_BYTES: u64 = 1 << 20;

/// The write-ahead log's share of `max_bytes`: checkpointed and truncated at this size (a
/// collection of 1,500 cgroups adds about 100 KiB to it, a seal of the head about 1 MiB).
fn wal_budget(max_bytes: u64) -> u64 {
    (max_bytes / 8).clamp(128 << 10, 1 << 20)
}

impl Writer {
    /// Keep the database and its write-ahead log under `max_bytes` (`None`: no limit; at
    /// least [`MIN_MAX_BYTES`]). Sets how often the log is checkpointed, and prunes at once
    /// if the file is already over it.
    pub fn with_max_bytes(mut self, max_bytes: Option<u64>) -> Result<Writer> {
        self.max_bytes = max_bytes.map(|m| m.max(MIN_MAX_BYTES));
        if let Some(max) = self.max_bytes {
            let budget = wal_budget(max);
            let page_size = self.pragma("page_size")?.max(512);
            let conn = &self.store.conn;
            conn.pragma_update(None, "wal_autocheckpoint", (budget / page_size).max(8))
                .map_err(self.store.wrap())?;
            conn.pragma_update(None, "journal_size_limit", budget)
                .map_err(self.store.wrap())?;
            self.enforce_max_bytes()?;
        }
        Ok(self)
    }

    /// Rows pruned to stay under `--db-max-size` since this writer opened.
    pub fn pruned_rows(&self) -> u64 {
        self.pruned_for_size
    }

    /// An integer pragma of the database.
    fn pragma(&self, name: &str) -> Result<u64> {
        self.store
            .conn
            .pragma_query_value(None, name, |r| r.get::<_, i64>(0))
            .map(|v| u64::try_from(v).unwrap_or(0))
            .map_err(self.store.wrap())
    }

    /// Bytes of the database in use (its pages minus the free ones), and of the whole file.
    fn used_and_file_bytes(&self) -> Result<(u64, u64)> {
        let page_size = self.pragma("page_size")?;
        let pages = self.pragma("page_count")?;
        let free = self.pragma("freelist_count")?;
        Ok((
            pages.saturating_sub(free).saturating_mul(page_size),
            pages.saturating_mul(page_size),
        ))
    }

    /// Prune the oldest history while the database's live pages and the log's share are
    /// over `--db-max-size` (down to 90% of it, so that pruning comes in batches); give
    /// free pages back when the file itself is over. Returns the rows deleted. Cheap when
    /// under the size: three header reads.
    pub fn enforce_max_bytes(&mut self) -> Result<u64> {
        let Some(max) = self.max_bytes else {
            return Ok(0);
        };
        let page_size = self.pragma("page_size")?.max(512);
        let budget = wal_budget(max);
        let one_write = (self.series.len() as u64 + 16) * page_size;
        let reserve = (budget + 2 * one_write).max(self.wal_bytes().min(max / 2));
        let limit = max.saturating_sub(reserve).max(16 * page_size);
        let (mut used, _) = self.used_and_file_bytes()?;
        let mut deleted = 0;
        if used > limit {
            // The head's collections first, so that only blocks (and their minutes,
            // averaged) are cut.
            self.seal()?;
            let target = limit / 10 * 9;
            for step in STEPS {
                while used > target {
                    let n = self.delete_oldest(step)?;
                    if n == 0 {
                        break;
                    }
                    deleted += n;
                    used = self.used_and_file_bytes()?.0;
                }
            }
            // The deletes went through the log: write them back and shorten it.
            self.checkpoint();
        }
        self.pruned_for_size += deleted;
        // A file over the limit (a smaller size than before): give free pages back, a
        // log's share at a time (each moved page goes through the log).
        if self.pragma("auto_vacuum")? == 2 {
            loop {
                let (_, file) = self.used_and_file_bytes()?;
                let free = self.pragma("freelist_count")?;
                let over = file.saturating_sub(limit) / page_size;
                let pages = over.min(free).min(budget / page_size / 2);
                if pages == 0 {
                    break;
                }
                self.store
                    .conn
                    .execute_batch(&format!("PRAGMA incremental_vacuum({pages})"))
                    .map_err(self.store.wrap())?;
                self.checkpoint();
            }
        }
        Ok(deleted)
    }

    /// Bytes of the write-ahead log now.
    fn wal_bytes(&self) -> u64 {
        let mut wal = self.store.path.clone().into_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    /// Write the log back into the database and truncate it (best effort: a reader in the
    /// middle of a query keeps its part for the next checkpoint).
    fn checkpoint(&self) {
        let _ = self
            .store
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }

    /// Delete the oldest tenth (at least a minute) of what `step` may delete, in one
    /// transaction; returns the samples deleted (0: nothing left for this step).
    fn delete_oldest(&self, step: Step) -> Result<u64> {
        let tx = self
            .store
            .conn
            .unchecked_transaction()
            .map_err(self.store.wrap())?;
        let mut deleted = 0;
        match step {
            Step::Samples { res, keep } => {
                let (Some(oldest), Some(newest)) =
                    (self.oldest_sample(res)?, self.store.newest_collection()?)
                else {
                    return Ok(0);
                };
                let floor = newest.saturating_sub(keep);
                if oldest >= floor {
                    return Ok(0);
                }
                let before = (oldest + ((floor - oldest) / 10).max(60)).min(floor);
                deleted += self.trim(&tx, res, before)?;
                deleted += tx
                    .execute(
                        "DELETE FROM node_samples WHERE res = ?1 AND t < ?2",
                        params![res, before],
                    )
                    .map_err(self.store.wrap())? as u64;
            }
            Step::OomEvents => {
                deleted += tx
                    .execute(
                        "DELETE FROM oom_events WHERE id IN (SELECT id FROM oom_events ORDER BY t, id
                           LIMIT max(1, (SELECT count(*) FROM oom_events) / 10))",
                        [],
                    )
                    .map_err(self.store.wrap())? as u64;
            }
        }
        tx.commit().map_err(self.store.wrap())?;
        Ok(deleted)
    }
}
