//! Error kinds of the kernel readers, one per decision a caller has to make.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong reading a kernel file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cgroup or process went away while it was being read (ENOENT/ENODEV/ESRCH
    /// after the walk found it). Normal under churn: callers skip it.
    #[error("{path}: vanished while being read")]
    Vanished {
        /// The file or directory that disappeared.
        path: PathBuf,
    },
    /// The caller lacks the privilege to read this file.
    #[error("{path}: permission denied (memglass needs root to read it)")]
    PermissionDenied {
        /// The file that could not be opened.
        path: PathBuf,
    },
    /// The kernel does not offer this (controller off, kernel too old, EOPNOTSUPP).
    #[error("{path}: not supported by this kernel: {reason}")]
    Unsupported {
        /// The file or hierarchy concerned.
        path: PathBuf,
        /// Why it is considered unsupported.
        reason: String,
    },
    /// The file's content is not what this kernel interface should contain.
    #[error("{path}: malformed: {reason}")]
    Malformed {
        /// The file that failed to parse.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// Any other I/O error.
    #[error("{path}: {error}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error (not a `source()`: the message already includes it).
        error: io::Error,
    },
}

/// Result of a kernel reader.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Classify an I/O error on `path` into the kind a caller acts on.
    pub fn from_io(path: &Path, error: io::Error) -> Error {
        let path = path.to_path_buf();
        match error.raw_os_error() {
            Some(libc_enoent) if libc_enoent == rustix::io::Errno::NOENT.raw_os_error() => {
                Error::Vanished { path }
            }
            Some(code)
                if code == rustix::io::Errno::NODEV.raw_os_error()
                    || code == rustix::io::Errno::SRCH.raw_os_error() =>
            {
                Error::Vanished { path }
            }
            Some(code)
                if code == rustix::io::Errno::ACCESS.raw_os_error()
                    || code == rustix::io::Errno::PERM.raw_os_error() =>
            {
                Error::PermissionDenied { path }
            }
            Some(code) if code == rustix::io::Errno::OPNOTSUPP.raw_os_error() => {
                Error::Unsupported {
                    path,
                    reason: "EOPNOTSUPP".into(),
                }
            }
            _ => Error::Io { path, error },
        }
    }

    /// A parse failure in `path`.
    pub fn malformed(path: &Path, reason: impl Into<String>) -> Error {
        Error::Malformed {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// True when the object disappeared mid-read (skip it, it is not a failure).
    pub fn is_vanished(&self) -> bool {
        matches!(self, Error::Vanished { .. })
    }

    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Vanished { path }
            | Error::PermissionDenied { path }
            | Error::Unsupported { path, .. }
            | Error::Malformed { path, .. }
            | Error::Io { path, .. } => path,
        }
    }
}
