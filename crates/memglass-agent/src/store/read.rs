//! The read path: history of one cgroup or the node, OOM events.

use rusqlite::{params, OptionalExtension, Row};

use super::block::{self, minute_of, Sample, FIGURES};
use super::Store;
use crate::error::Result;
use crate::oom::OomEvent;

/// Which stored resolution a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// One point per collection.
    Raw,
    /// One-minute averages (limits and oom_kill: maxima).
    Minute,
}

impl Resolution {
    fn code(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::Minute => 1,
        }
    }
}

/// One stored sample of a cgroup, with both working sets recomputed from its parts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryPoint {
    /// Unix seconds.
    pub t: i64,
    /// Charged memory.
    pub usage: Option<u64>,
    /// Hard limit (null = unlimited).
    pub limit: Option<u64>,
    /// Anonymous memory.
    pub anon: Option<u64>,
    /// Active anonymous.
    pub active_anon: Option<u64>,
    /// Inactive anonymous.
    pub inactive_anon: Option<u64>,
    /// Page cache (tmpfs included).
    pub file: Option<u64>,
    /// Active page cache.
    pub active_file: Option<u64>,
    /// Inactive page cache.
    pub inactive_file: Option<u64>,
    /// tmpfs / shared memory.
    pub shmem: Option<u64>,
    /// Dirty page cache.
    pub file_dirty: Option<u64>,
    /// Kernel memory.
    pub kernel: Option<u64>,
    /// OOM kills so far (hierarchical counter).
    pub oom_kill: Option<u64>,
    /// inactive_anon + active_anon + active_file.
    pub working_set: Option<u64>,
    /// usage − inactive_file, floored at 0.
    pub working_set_kubelet: Option<u64>,
}

/// One stored sample of the node.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodePoint {
    /// Unix seconds.
    pub t: i64,
    /// MemTotal.
    pub mem_total: Option<u64>,
    /// MemFree.
    pub mem_free: Option<u64>,
    /// MemAvailable.
    pub mem_available: Option<u64>,
    /// Application memory.
    pub application: Option<u64>,
    /// Kernel memory (named + alloc_page).
    pub kernel: Option<u64>,
    /// alloc_page.
    pub alloc_page: Option<u64>,
    /// kubelet's memory_available signal.
    pub memory_available: Option<u64>,
}

/// A size column (stored in KiB), in bytes.
fn u(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<u64>> {
    Ok(count(row, index)?.map(|kib| kib.saturating_mul(1024)))
}

/// A count column.
fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<u64>> {
    Ok(row
        .get::<_, Option<i64>>(index)?
        .map(|v| u64::try_from(v).unwrap_or(0)))
}

impl From<Sample> for HistoryPoint {
    fn from(s: Sample) -> HistoryPoint {
        let bytes = |i: usize| s.v[i].map(|kib| kib.saturating_mul(1024));
        let mut p = HistoryPoint {
            t: s.t,
            usage: bytes(0),
            limit: bytes(1),
            anon: bytes(2),
            active_anon: bytes(3),
            inactive_anon: bytes(4),
            file: bytes(5),
            active_file: bytes(6),
            inactive_file: bytes(7),
            shmem: bytes(8),
            file_dirty: bytes(9),
            kernel: bytes(10),
            oom_kill: s.v[11],
            working_set: None,
            working_set_kubelet: None,
        };
        p.working_set = match (p.inactive_anon, p.active_anon, p.active_file) {
            (Some(a), Some(b), Some(c)) => Some(a.saturating_add(b).saturating_add(c)),
            _ => None,
        };
        p.working_set_kubelet = p.usage.map(|usage| {
            memglass_analyse::node::working_set_kubelet(usage, p.inactive_file.unwrap_or(0))
        });
        p
    }
}

/// A head row's figures (columns 1..=12 after `t`).
fn head_sample(row: &Row<'_>) -> rusqlite::Result<Sample> {
    let mut v = [None; FIGURES];
    for (i, slot) in v.iter_mut().enumerate() {
        *slot = row
            .get::<_, Option<i64>>(i + 1)?
            .map(|x| u64::try_from(x).unwrap_or(0));
    }
    Ok(Sample { t: row.get(0)?, v })
}

/// Sort by time; of two samples at the same second the later written (last) wins.
fn sorted(mut samples: Vec<Sample>) -> Vec<Sample> {
    samples.sort_by_key(|s| s.t);
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for s in samples {
        match out.last_mut() {
            Some(last) if last.t == s.t => *last = s,
            _ => out.push(s),
        }
    }
    out
}

impl Store {
    /// Samples of the cgroup at `path` with `from <= t <= to`, oldest first.
    pub fn history(
        &self,
        path: &str,
        from: i64,
        to: i64,
        resolution: Resolution,
    ) -> Result<Vec<HistoryPoint>> {
        // One read transaction: a seal committing between reading the blocks and reading
        // the head would otherwise hide (or double) the collections it moved.
        let _snapshot = self.conn.unchecked_transaction().map_err(self.wrap())?;
        let Some(id) = self.series_id(path)? else {
            return Ok(Vec::new());
        };
        let samples = match resolution {
            Resolution::Raw => self.raw_samples(id, from, to)?,
            Resolution::Minute => self.minute_samples(id, from, to)?,
        };
        Ok(samples.into_iter().map(HistoryPoint::from).collect())
    }

    fn series_id(&self, path: &str) -> Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT id FROM series WHERE path = ?1")
            .and_then(|mut s| s.query_row([path], |r| r.get(0)).optional())
            .map_err(self.wrap())
    }

    /// Time of the newest collection (of the node, written with every collection).
    pub(super) fn newest_collection(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT max(t) FROM node_samples WHERE res = 0", [], |r| {
                r.get(0)
            })
            .map_err(self.wrap())
    }

    /// Collections in the head and the newest of them.
    pub(super) fn head_collections(&self) -> Result<(u64, Option<i64>)> {
        self.conn
            .query_row(
                "SELECT count(*), max(t) FROM node_samples
                 WHERE res = 0 AND t >= (SELECT min(t) FROM head)",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)),
            )
            .map(|(n, newest)| (u64::try_from(n).unwrap_or(0), newest))
            .map_err(self.wrap())
    }

    /// The head's samples of series `id` with `from <= t <= to`: one seek per collection
    /// (the head is keyed by time, then series).
    pub(super) fn head_samples(&self, id: i64, from: i64, to: i64) -> Result<Vec<Sample>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT h.t, h.usage, h.lim, h.anon, h.active_anon, h.inactive_anon, h.file,
                   h.active_file, h.inactive_file, h.shmem, h.file_dirty, h.kernel, h.oom_kill
                 FROM node_samples n JOIN head h ON h.t = n.t AND h.series = ?1
                 WHERE n.res = 0 AND n.t >= max(?2, (SELECT min(t) FROM head)) AND n.t <= ?3
                 ORDER BY n.t",
            )
            .map_err(self.wrap())?;
        let rows = stmt
            .query_map(params![id, from, to], head_sample)
            .map_err(self.wrap())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.wrap())
    }

    /// Samples of the blocks of series `id` at resolution `res` with `from <= t <= to`. A
    /// block that does not decode is skipped (its stretch of history is missing, no figure
    /// is wrong).
    pub(super) fn block_samples(
        &self,
        id: i64,
        res: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<Sample>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT data FROM blocks WHERE series = ?1 AND res = ?2 AND t0 <= ?4 AND t1 >= ?3
                 ORDER BY t0",
            )
            .map_err(self.wrap())?;
        let blobs = stmt
            .query_map(params![id, res, from, to], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.wrap())?;
        let mut out = Vec::new();
        for blob in blobs {
            let blob = blob.map_err(self.wrap())?;
            if let Ok(samples) = block::decode(&blob) {
                out.extend(samples.into_iter().filter(|s| s.t >= from && s.t <= to));
            }
        }
        Ok(out)
    }

    /// Every collection's samples of series `id` with `from <= t <= to`, oldest first.
    pub(super) fn raw_samples(&self, id: i64, from: i64, to: i64) -> Result<Vec<Sample>> {
        let mut samples = self.block_samples(id, 0, from, to)?;
        samples.extend(self.head_samples(id, from, to)?);
        Ok(sorted(samples))
    }

    /// End of the newest block of series `id` at resolution `res`.
    pub(super) fn last_block_end(&self, id: i64, res: i64) -> Result<Option<i64>> {
        self.conn
            .prepare_cached(
                "SELECT t1 FROM blocks WHERE series = ?1 AND res = ?2 ORDER BY t0 DESC LIMIT 1",
            )
            .and_then(|mut s| s.query_row(params![id, res], |r| r.get(0)).optional())
            .map_err(self.wrap())
    }

    /// One-minute averages of series `id` with `from <= t <= to`: the stored ones, then
    /// the minutes complete since (the newest collection is past them) averaged now from
    /// the samples, as sealing will store them.
    pub(super) fn minute_samples(&self, id: i64, from: i64, to: i64) -> Result<Vec<Sample>> {
        let mut samples = self.block_samples(id, 1, from, to)?;
        let pending_from = self
            .last_block_end(id, 1)?
            .map_or(i64::MIN, |t| t.saturating_add(60));
        let complete_before = self.newest_collection()?.map_or(i64::MIN, minute_of);
        let first = pending_from.max(minute_of(from));
        let last = complete_before.saturating_sub(1).min(to.saturating_add(59));
        if first <= last {
            let raw = self.raw_samples(id, first, last)?;
            samples.extend(
                block::minute_averages(&raw)
                    .into_iter()
                    .filter(|m| m.t >= from && m.t <= to),
            );
        }
        Ok(sorted(samples))
    }

    /// Node samples with `from <= t <= to`, oldest first.
    pub fn node_history(
        &self,
        from: i64,
        to: i64,
        resolution: Resolution,
    ) -> Result<Vec<NodePoint>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t, mem_total, mem_free, mem_available, application, kernel, alloc_page, memory_available
                 FROM node_samples WHERE res = ?1 AND t >= ?2 AND t <= ?3 ORDER BY t",
            )
            .map_err(self.wrap())?;
        let rows = stmt
            .query_map(params![resolution.code(), from, to], |r| {
                Ok(NodePoint {
                    t: r.get(0)?,
                    mem_total: u(r, 1)?,
                    mem_free: u(r, 2)?,
                    mem_available: u(r, 3)?,
                    application: u(r, 4)?,
                    kernel: u(r, 5)?,
                    alloc_page: u(r, 6)?,
                    memory_available: u(r, 7)?,
                })
            })
            .map_err(self.wrap())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.wrap())
    }

    /// Whether the history knows `path`, and its identity: (kind, first_seen, last_seen).
    pub fn series(&self, path: &str) -> Result<Option<(String, i64, i64)>> {
        let _snapshot = self.conn.unchecked_transaction().map_err(self.wrap())?;
        let found: Option<(i64, String, i64, i64)> = self
            .conn
            .query_row(
                "SELECT id, kind, first_seen, last_seen FROM series WHERE path = ?1",
                [path],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.wrap())?;
        let Some((id, kind, first_seen, last_seen)) = found else {
            return Ok(None);
        };
        // Seen since the head was last sealed?
        let in_head = self
            .head_samples(id, last_seen, i64::MAX)?
            .last()
            .map_or(last_seen, |s| s.t);
        Ok(Some((kind, first_seen, last_seen.max(in_head))))
    }

    /// OOM events with `from <= t <= to`, newest first, without their flight recorders.
    pub fn oom_events(&self, from: i64, to: i64, limit: u32) -> Result<Vec<OomEvent>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, event FROM oom_events WHERE t >= ?1 AND t <= ?2 ORDER BY t DESC, id DESC LIMIT ?3",
            )
            .map_err(self.wrap())?;
        let rows = stmt
            .query_map(params![from, to, limit], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.wrap())?;
        let mut events = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(self.wrap())?;
            // An event written by a newer memglass that this one cannot read is skipped.
            if let Ok(mut event) = serde_json::from_str::<OomEvent>(&json) {
                event.id = Some(id);
                event.flight.clear();
                events.push(event);
            }
        }
        Ok(events)
    }

    /// One OOM event with its flight recorder.
    pub fn oom_event(&self, id: i64) -> Result<Option<OomEvent>> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT event, flight FROM oom_events WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.wrap())?;
        Ok(row.and_then(|(event, flight)| {
            let mut event: OomEvent = serde_json::from_str(&event).ok()?;
            event.id = Some(id);
            event.flight = serde_json::from_str(&flight).unwrap_or_default();
            Some(event)
        }))
    }
}

impl Store {
    /// kubelet's working set (usage − inactive_file) of every cgroup in `paths` with raw
    /// samples in `from <= t <= to`, oldest first: one query for all of them (the leak
    /// findings read an hour of every limited pod and container).
    pub fn working_sets(
        &self,
        paths: &std::collections::HashSet<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<memglass_analyse::diagnose::History>> {
        let _snapshot = self.conn.unchecked_transaction().map_err(self.wrap())?;
        let mut out = Vec::new();
        for (id, path) in self.all_series()? {
            if !paths.contains(path.as_str()) {
                continue;
            }
            let points: Vec<(i64, u64)> = self
                .raw_samples(id, from, to)?
                .into_iter()
                .filter_map(|s| {
                    let usage = s.v[0]?.saturating_mul(1024);
                    let inactive_file = s.v[7].unwrap_or(0).saturating_mul(1024);
                    Some((
                        s.t,
                        memglass_analyse::node::working_set_kubelet(usage, inactive_file),
                    ))
                })
                .collect();
            if !points.is_empty() {
                out.push(memglass_analyse::diagnose::History {
                    cgroup: path,
                    points,
                });
            }
        }
        Ok(out)
    }

    /// Every series: (id, path), by path.
    fn all_series(&self) -> Result<Vec<(i64, String)>> {
        self.conn
            .prepare_cached("SELECT id, path FROM series ORDER BY path")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(self.wrap())
    }

    /// Every stored sample as (cgroup path, resolution 0 or 1, time), the minutes complete
    /// but not yet sealed included: what a reader can get back (tests: nothing committed
    /// is lost across `kill -9`).
    pub fn sample_keys(&self) -> Result<std::collections::HashSet<(String, i64, i64)>> {
        let _snapshot = self.conn.unchecked_transaction().map_err(self.wrap())?;
        let mut keys = std::collections::HashSet::new();
        for (id, path) in self.all_series()? {
            for s in self.raw_samples(id, i64::MIN, i64::MAX)? {
                keys.insert((path.clone(), 0, s.t));
            }
            for s in self.minute_samples(id, i64::MIN, i64::MAX)? {
                keys.insert((path.clone(), 1, s.t));
            }
        }
        Ok(keys)
    }
}
