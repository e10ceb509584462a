//! The agent's history: one SQLite file in WAL mode (it survives `kill -9`: a committed
//! collection is on disk, an interrupted one is rolled back on the next open).
//!
//! Tables (documented for people reading the file with `sqlite3`):
//! - `series`: one row per cgroup path ever seen, with its identity frozen at capture time
//!   (kind, pod UID, namespace, pod, container), first and last seen.
//! - `head`: the newest collections, one row per cgroup and collection, keyed by time first
//!   so that a collection appends to the end of the table (a few pages of the log, not one
//!   page per cgroup). The figures the dashboard charts, in KiB (rounded).
//! - `blocks`: everything older, sealed from the head every [`SEAL_COLLECTIONS`]
//!   collections: per series and resolution (`res` 0: every collection, 1: one-minute
//!   averages), runs of up to a few hundred samples in one compressed blob (block.rs:
//!   columns of differences, DEFLATE). About a byte per cgroup and collection instead of
//!   the ~60 of a row (docs/benchmarks.md). One-minute averages are made when a minute is
//!   complete; until it is sealed a complete minute is averaged on read. Derived figures
//!   (working sets) are recomputed on read from the stored parts, as the analyse stage does.
//! - `node_samples`: the node breakdown, one row per collection and per minute.
//! - `oom_events`: one row per OOM kill, its JSON, and the flight recorder: the victim's
//!   samples of the minutes before the kill.
//!
//! The raw `memory.stat` maps are not stored: 12 figures per cgroup per collection.
//!
//! Faults (docs/reliability.md): a file that is not a database or fails `PRAGMA
//! quick_check` at open is moved aside and replaced ([`Writer::open_or_replace`]); a
//! failed write (a full disk) is rolled back whole and the next collection tries again;
//! `--db-max-size` prunes the oldest samples first ([`Writer::with_max_bytes`]). A history
//! of the earlier row-per-sample format (a `samples` table) is converted at open.

pub mod block;
mod read;
mod recover;
mod seal;
mod size;
mod write;

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};

pub use read::{HistoryPoint, NodePoint, Resolution};
pub use recover::MovedAside;
pub use seal::SEAL_COLLECTIONS;
pub use size::MIN_MAX_BYTES;
pub use write::Writer;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    pod_uid TEXT, namespace TEXT, pod TEXT, container TEXT,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS head (
    t INTEGER NOT NULL,
    series INTEGER NOT NULL,
    usage INTEGER, lim INTEGER, anon INTEGER, active_anon INTEGER, inactive_anon INTEGER,
    file INTEGER, active_file INTEGER, inactive_file INTEGER, shmem INTEGER,
    file_dirty INTEGER, kernel INTEGER, oom_kill INTEGER,
    PRIMARY KEY (t, series)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    series INTEGER NOT NULL,
    res INTEGER NOT NULL,
    t0 INTEGER NOT NULL,
    t1 INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (series, res, t0)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS node_samples (
    res INTEGER NOT NULL,
    t INTEGER NOT NULL,
    mem_total INTEGER, mem_free INTEGER, mem_available INTEGER, application INTEGER,
    kernel INTEGER, alloc_page INTEGER, memory_available INTEGER,
    PRIMARY KEY (res, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS oom_events (
    id INTEGER PRIMARY KEY,
    t INTEGER NOT NULL,
    cgroup TEXT,
    event TEXT NOT NULL,
    flight TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS oom_events_t ON oom_events (t);
";

/// A connection to the history database.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    path: std::path::PathBuf,
}

impl Store {
    /// Open (creating if needed) the database at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let wrap = |source| Error::Store {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        // Only takes effect in a fresh file (before the first table): freed pages can then
        // be given back to the filesystem when `--db-max-size` prunes (store/size.rs).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(wrap)?;
        // WAL: readers never block the writer, and a crash loses at most the collection
        // being written. NORMAL sync is safe in WAL mode (no corruption, only the last
        // commits may be lost on power failure).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(wrap)?;
        // 1 MiB of page cache per connection, not SQLite's 2: the blocks are small, and the
        // agent's memory budget is 24 MiB in all (its writer and reader connections).
        conn.pragma_update(None, "cache_size", -1024)
            .map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open an existing database read-only, as it is (no schema, no pragma written; closing
    /// it never checkpoints the log): for tools and tests that inspect a file.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| Error::Store {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Store {
            path: self.path.clone(),
            source,
        }
    }

    /// A value of the `meta` table (e.g. where the kernel-log reader resumes).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.wrap())
    }

    /// Set a value of the `meta` table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = ?2",
                [key, value],
            )
            .map(|_| ())
            .map_err(self.wrap())
    }

    /// Bytes on disk: the database and its write-ahead log.
    pub fn size_on_disk(&self) -> u64 {
        let wal = {
            let mut p = self.path.clone().into_os_string();
            p.push("-wal");
            std::path::PathBuf::from(p)
        };
        [self.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}
