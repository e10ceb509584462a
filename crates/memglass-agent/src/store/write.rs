//! The write path: one transaction per collection into the head, the node's one-minute
//! averages, retention.

use std::collections::HashMap;
use std::path::Path;

use memglass_analyse::Snapshot;
use rusqlite::params;

use super::Store;
use crate::config::Retention;
use crate::error::Result;
use crate::oom::OomEvent;

/// Identity columns of a series, to notice when names become known.
type Names = (Option<String>, Option<String>, Option<String>);

/// The collector's connection: caches series ids so a collection is one INSERT per cgroup.
#[derive(Debug)]
pub struct Writer {
    pub(super) store: Store,
    /// Series id and names of the cgroups of the last collection, with the number of the
    /// write that last saw each: only those are kept, so cgroup churn (pods come and go)
    /// does not grow the agent's memory. A cgroup that comes back is looked up again.
    pub(super) series: HashMap<String, (i64, Names, u64)>,
    /// Collections written (numbers the writes for the cache above).
    writes: u64,
    /// Node samples before this minute (Unix seconds) are already averaged into `res` 1.
    downsampled_to: Option<i64>,
    /// Collections in the head, and the time of the newest (sealed into blocks every
    /// [`super::SEAL_COLLECTIONS`]).
    pub(super) head: (u64, Option<i64>),
    /// When retention last ran.
    pruned_at: i64,
    /// `--db-max-size`: the database and its write-ahead log stay under this (store/size.rs).
    pub(super) max_bytes: Option<u64>,
    /// Rows pruned to stay under `max_bytes` since this writer opened.
    pub(super) pruned_for_size: u64,
}

impl Writer {
    /// Open the database for writing.
    pub fn open(path: &Path) -> Result<Writer> {
        let store = Store::open(path)?;
        super::seal::convert_rows(&store)?;
        let downsampled_to: Option<i64> = store
            .conn
            .query_row(
                "SELECT max(t) + 60 FROM node_samples WHERE res = 1",
                [],
                |r| r.get(0),
            )
            .map_err(store.wrap())?;
        let head = store.head_collections()?;
        Ok(Writer {
            store,
            series: HashMap::new(),
            writes: 0,
            downsampled_to,
            head,
            pruned_at: 0,
            max_bytes: None,
            pruned_for_size: 0,
        })
    }

    /// The id of every series in the database (retention and the size limit go series by
    /// series, each a range of the primary key).
    pub(super) fn series_ids(&self) -> Result<Vec<i64>> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached("SELECT id FROM series")
            .map_err(self.store.wrap())?;
        let ids = stmt
            .query_map([], |r| r.get(0))
            .map_err(self.store.wrap())?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(self.store.wrap())?;
        Ok(ids)
    }

    /// The underlying connection (for reads the collector needs, e.g. the flight recorder).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Store one collection taken at `t` (Unix seconds) in the head, sealing the head into
    /// blocks when it is full; returns the cgroups written.
    pub fn write(&mut self, t: i64, snapshot: &Snapshot) -> Result<usize> {
        self.writes += 1;
        let this_write = self.writes;
        let tx = self
            .store
            .conn
            .unchecked_transaction()
            .map_err(|source| crate::Error::Store {
                path: self.store.path.clone(),
                source,
            })?;
        let mut rows = 0;
        // Series ids given inside this transaction: cached only once it commits. A write
        // that fails (a full disk) is rolled back whole, and SQLite then gives the same
        // ids to other paths, so caching them early would mix two cgroups' histories.
        let mut added: Vec<(String, (i64, Names))> = Vec::new();
        {
            let mut new_series = tx
                .prepare_cached(
                    "INSERT INTO series (path, kind, pod_uid, namespace, pod, container, first_seen, last_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                     ON CONFLICT (path) DO UPDATE SET kind = ?2, pod_uid = ?3, namespace = ?4,
                       pod = ?5, container = ?6, last_seen = ?7
                     RETURNING id",
                )
                .map_err(wrap(&self.store))?;
            let mut sample = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO head VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(wrap(&self.store))?;
            for cgroup in &snapshot.cgroups {
                let names: Names = (
                    cgroup.namespace.clone(),
                    cgroup.pod.clone(),
                    cgroup.container.clone(),
                );
                let id = match self.series.get_mut(&cgroup.path) {
                    Some((id, known, seen)) if *known == names => {
                        *seen = this_write;
                        *id
                    }
                    _ => {
                        let id: i64 = new_series
                            .query_row(
                                params![
                                    cgroup.path,
                                    cgroup.kind.as_str(),
                                    cgroup.pod_uid,
                                    names.0,
                                    names.1,
                                    names.2,
                                    t
                                ],
                                |r| r.get(0),
                            )
                            .map_err(wrap(&self.store))?;
                        added.push((cgroup.path.clone(), (id, names)));
                        id
                    }
                };
                let m = &cgroup.memory;
                sample
                    .execute(params![
                        id,
                        t,
                        kib(m.usage),
                        kib(m.limit),
                        kib(m.anon),
                        kib(m.active_anon),
                        kib(m.inactive_anon),
                        kib(m.file),
                        kib(m.active_file),
                        kib(m.inactive_file),
                        kib(m.shmem),
                        kib(m.file_dirty),
                        kib(m.kernel),
                        to_i64(cgroup.events.oom_kill)
                    ])
                    .map_err(wrap(&self.store))?;
                rows += 1;
            }
            let n = &snapshot.node;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO node_samples VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    t,
                    kib(Some(n.mem_total)),
                    kib(Some(n.mem_free)),
                    kib(n.mem_available),
                    kib(Some(n.application)),
                    kib(Some(n.kernel)),
                    kib(Some(n.alloc_page)),
                    kib(n.memory_available)
                ])
            })
            .map_err(wrap(&self.store))?;
            // last_seen of series whose names did not change is refreshed when the head is
            // sealed (and read from the head until then): no page of `series` per write.
        }
        tx.commit().map_err(wrap(&self.store))?;
        self.series.extend(
            added
                .into_iter()
                .map(|(path, (id, names))| (path, (id, names, this_write))),
        );
        self.series.retain(|_, (_, _, seen)| *seen == this_write);
        let newest = self.head.1.map_or(t, |n| n.max(t));
        self.head = (self.head.0 + 1, Some(newest));
        self.downsample(t)?;
        if self.head.0 >= super::SEAL_COLLECTIONS {
            self.seal()?;
        }
        Ok(rows)
    }

    /// Average every completed minute of node samples into `res` 1 (idempotent).
    fn downsample(&mut self, t: i64) -> Result<()> {
        let minute = t.div_euclid(60) * 60;
        let from = match self.downsampled_to {
            Some(from) if from >= minute => return Ok(()),
            Some(from) => from,
            None => minute - 60,
        };
        let tx = self
            .store
            .conn
            .unchecked_transaction()
            .map_err(wrap(&self.store))?;
        tx.execute(
            "INSERT OR REPLACE INTO node_samples
             SELECT 1, (t / 60) * 60, CAST(avg(mem_total) AS INTEGER), CAST(avg(mem_free) AS INTEGER), CAST(avg(mem_available) AS INTEGER),
               CAST(avg(application) AS INTEGER), CAST(avg(kernel) AS INTEGER), CAST(avg(alloc_page) AS INTEGER), CAST(avg(memory_available) AS INTEGER)
             FROM node_samples WHERE res = 0 AND t >= ?1 AND t < ?2 GROUP BY t / 60",
            [from, minute],
        )
        .map_err(wrap(&self.store))?;
        tx.commit().map_err(wrap(&self.store))?;
        self.downsampled_to = Some(minute);
        Ok(())
    }

    /// Drop history older than `retention` (at most every ten minutes). Blocks go series by
    /// series, each a range of the primary key; a block that straddles the line is cut.
    pub fn prune(&mut self, now: i64, retention: &Retention) -> Result<()> {
        if now - self.pruned_at < 600 {
            return Ok(());
        }
        self.pruned_at = now;
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let raw_before = now.saturating_sub(secs(retention.raw));
        let minute_before = now.saturating_sub(secs(retention.minute));
        let oom_before = now.saturating_sub(secs(retention.oom));
        // Minutes are averaged before their samples go.
        self.seal()?;
        let tx = self
            .store
            .conn
            .unchecked_transaction()
            .map_err(wrap(&self.store))?;
        self.trim(&tx, 0, raw_before)?;
        self.trim(&tx, 1, minute_before)?;
        tx.execute(
            "DELETE FROM node_samples WHERE (res = 0 AND t < ?1) OR (res = 1 AND t < ?2)",
            [raw_before, minute_before],
        )
        .map_err(wrap(&self.store))?;
        tx.execute("DELETE FROM oom_events WHERE t < ?1", [oom_before])
            .map_err(wrap(&self.store))?;
        tx.execute(
            "DELETE FROM series WHERE last_seen < ?1
               AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocks.series = series.id)
               AND NOT EXISTS (SELECT 1 FROM head WHERE head.series = series.id)",
            [minute_before],
        )
        .map_err(wrap(&self.store))?;
        tx.commit().map_err(wrap(&self.store))?;
        let _ = self
            .store
            .conn
            .execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
        Ok(())
    }

    /// Record an OOM event with its flight recorder; returns its id.
    pub fn insert_oom(&mut self, event: &OomEvent) -> Result<i64> {
        let json = serde_json::to_string(event).unwrap_or_default();
        let flight = serde_json::to_string(&event.flight).unwrap_or_default();
        self.store
            .conn
            .execute(
                "INSERT INTO oom_events (t, cgroup, event, flight) VALUES (?1, ?2, ?3, ?4)",
                params![event.time, event.cgroup, json, flight],
            )
            .map_err(wrap(&self.store))?;
        Ok(self.store.conn.last_insert_rowid())
    }
}

pub(super) fn wrap(store: &Store) -> impl Fn(rusqlite::Error) -> crate::Error + '_ {
    store.wrap()
}

/// Counts are u64; SQLite integers are i64 (no counter comes near 2^63).
fn to_i64(value: Option<u64>) -> Option<i64> {
    value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// Sizes are stored in KiB (rounded): SQLite's variable-length integers then take one or
/// two bytes less per figure, and a chart loses nothing.
fn kib(value: Option<u64>) -> Option<i64> {
    to_i64(value.map(|v| v.saturating_add(512) / 1024))
}
