//! Partial results are data: what could not be read, and why.

use std::path::PathBuf;

use crate::error::Error;

/// Why part of a sample is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// No privilege to read it.
    PermissionDenied,
    /// The kernel does not offer it.
    Unsupported,
    /// It could not be parsed.
    Malformed,
    /// Another I/O error.
    Io,
    /// It vanished mid-read (counted, not shown).
    Vanished,
}

/// Something the collector could not read; shown to the user, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    /// Which source it belongs to ("cgroup", "meminfo", "vmstat").
    pub source: &'static str,
    /// The file concerned.
    pub path: PathBuf,
    /// The kind of failure.
    pub kind: GapKind,
    /// The error, in one line.
    pub message: String,
}

impl Gap {
    /// A gap in `source` from a reader's error.
    pub fn from_error(source: &'static str, error: &Error) -> Gap {
        let kind = match error {
            Error::Vanished { .. } => GapKind::Vanished,
            Error::PermissionDenied { .. } => GapKind::PermissionDenied,
            Error::Unsupported { .. } => GapKind::Unsupported,
            Error::Malformed { .. } => GapKind::Malformed,
            Error::Io { .. } => GapKind::Io,
        };
        Gap {
            source,
            path: error.path().to_path_buf(),
            kind,
            message: error.to_string(),
        }
    }
}
