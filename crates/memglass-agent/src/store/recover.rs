//! A history file that is not a sound SQLite database is moved aside, not fought with: the
//! agent's job is the machine's memory, and a day of history is worth less than a node
//! agent that starts. The bad file is kept (renamed) for whoever wants to look at it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::Writer;
use crate::error::{Error, Result};

/// A database found unusable at open and renamed, replaced by a fresh one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    /// Where the bad file is now (`<db>.corrupt-<unix seconds>`, its log beside it with
    /// `-wal` appended, so `sqlite3` opens the pair as it was).
    pub to: PathBuf,
    /// What was wrong, in one line (SQLite's error, or quick_check's first finding).
    pub reason: String,
}

impl Writer {
    /// Open the history for the agent. A file that SQLite does not take for a database, or
    /// that fails `PRAGMA quick_check`, is renamed to `<path>.corrupt-<now>` (with its
    /// write-ahead log) and a fresh database is created; the answer says so. Any other
    /// failure (permissions, a full disk) is returned: the file may be fine.
    pub fn open_or_replace(path: &Path, now: i64) -> Result<(Writer, Option<MovedAside>)> {
        let moved = match unsound(path)? {
            Some(reason) => Some(MovedAside {
                to: move_aside(path, now)?,
                reason,
            }),
            None => None,
        };
        Ok((Writer::open(path)?, moved))
    }
}

/// Why the database at `path` is unusable, or `None` when it passes quick_check (or does
/// not exist yet). Read-only, so the file is moved aside exactly as it was found; an error
/// that does not say "corrupt" (a log that a read-only connection may not recover, say) is
/// left to the normal open.
fn unsound(path: &Path) -> Result<Option<String>> {
    if !path.exists() {
        return Ok(None);
    }
    let wrap = |source| Error::Store {
        path: path.to_path_buf(),
        source,
    };
    let check =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).and_then(|conn| {
            let mut stmt = conn.prepare("PRAGMA quick_check")?;
            let lines = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>();
            lines
        });
    match check {
        Ok(lines) if lines.iter().all(|l| l == "ok") => Ok(None),
        Ok(lines) => Ok(Some(match lines.len() {
            1 => format!("quick_check: {}", lines[0]),
            n => format!("quick_check: {} (and {} more)", lines[0], n - 1),
        })),
        Err(source) => Ok(match corrupt_reason(wrap(source)) {
            Ok(Some(reason)) if reason.contains("not a database") => Some(reason),
            Ok(Some(reason)) => Some(format!("quick_check: {reason}")),
            Ok(None) | Err(_) => None,
        }),
    }
}

/// `Some(reason)` when SQLite's error means the file is not a sound database; the error
/// itself otherwise.
fn corrupt_reason(error: Error) -> Result<Option<String>> {
    match &error {
        Error::Store {
            source: rusqlite::Error::SqliteFailure(e, message),
            ..
        } if matches!(e.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Ok(Some(
            message
                .clone()
                .unwrap_or_else(|| e.to_string())
                .replace('\n', " "),
        )),
        _ => Err(error),
    }
}

/// `<path>-wal`, `<path>-shm`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Rename the database (and its log) to `<path>.corrupt-<now>[.<n>]`; the shared-memory
/// index is rebuilt by SQLite, so it is removed.
fn move_aside(path: &Path, now: i64) -> Result<PathBuf> {
    let mut to = sidecar(path, &format!(".corrupt-{now}"));
    let mut n = 1;
    while to.exists() {
        to = sidecar(path, &format!(".corrupt-{now}.{n}"));
        n += 1;
    }
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|source| Error::MoveAside {
            path: from.to_path_buf(),
            to: to.to_path_buf(),
            source,
        })
    };
    rename(path, &to)?;
    let wal = sidecar(path, "-wal");
    if wal.exists() {
        rename(&wal, &sidecar(&to, "-wal"))?;
    }
    let _ = std::fs::remove_file(sidecar(path, "-shm"));
    Ok(to)
}
