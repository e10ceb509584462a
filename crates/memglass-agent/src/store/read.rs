//! The read path: history of one cgroup or the node, OOM events.

use rusqlite::{params, OptionalExtension, Row};

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

fn history_point(row: &Row<'_>) -> rusqlite::Result<HistoryPoint> {
    let mut p = HistoryPoint {
        t: row.get(0)?,
        usage: u(row, 1)?,
        limit: u(row, 2)?,
        anon: u(row, 3)?,
        active_anon: u(row, 4)?,
        inactive_anon: u(row, 5)?,
        file: u(row, 6)?,
        active_file: u(row, 7)?,
        inactive_file: u(row, 8)?,
        shmem: u(row, 9)?,
        file_dirty: u(row, 10)?,
        kernel: u(row, 11)?,
        oom_kill: count(row, 12)?,
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
    Ok(p)
}

const HISTORY_COLUMNS: &str = "t, usage, lim, anon, active_anon, inactive_anon, file, active_file, inactive_file, shmem, file_dirty, kernel, oom_kill";

impl Store {
    /// Samples of the cgroup at `path` with `from <= t <= to`, oldest first.
    pub fn history(
        &self,
        path: &str,
        from: i64,
        to: i64,
        resolution: Resolution,
    ) -> Result<Vec<HistoryPoint>> {
        let sql = format!(
            "SELECT {HISTORY_COLUMNS} FROM samples
             WHERE series = (SELECT id FROM series WHERE path = ?1) AND res = ?2 AND t >= ?3 AND t <= ?4
             ORDER BY t"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.wrap())?;
        let rows = stmt
            .query_map(params![path, resolution.code(), from, to], history_point)
            .map_err(self.wrap())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.wrap())
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
        self.conn
            .query_row(
                "SELECT kind, first_seen, last_seen FROM series WHERE path = ?1",
                [path],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.wrap())
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
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT series.path, samples.t, samples.usage, samples.inactive_file
                 FROM samples JOIN series ON series.id = samples.series
                 WHERE samples.res = 0 AND samples.t >= ?1 AND samples.t <= ?2
                 ORDER BY series.path, samples.t",
            )
            .map_err(self.wrap())?;
        let rows = stmt
            .query_map(params![from, to], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    u(r, 2)?,
                    u(r, 3)?,
                ))
            })
            .map_err(self.wrap())?;
        let mut out: Vec<memglass_analyse::diagnose::History> = Vec::new();
        for row in rows {
            let (path, t, usage, inactive_file) = row.map_err(self.wrap())?;
            let Some(usage) = usage.filter(|_| paths.contains(path.as_str())) else {
                continue;
            };
            let ws = memglass_analyse::node::working_set_kubelet(usage, inactive_file.unwrap_or(0));
            match out.last_mut() {
                Some(last) if last.cgroup == path => last.points.push((t, ws)),
                _ => out.push(memglass_analyse::diagnose::History {
                    cgroup: path,
                    points: vec![(t, ws)],
                }),
            }
        }
        Ok(out)
    }
}
