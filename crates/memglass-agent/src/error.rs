//! The agent library's errors.

use std::path::PathBuf;

/// What can fail in the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The history database could not be opened or written.
    #[error("history database {path}: {source}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Creating the database's directory failed.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A corrupt database could not be renamed out of the way.
    #[error("cannot move the corrupt history database {path} aside to {to}: {source}")]
    MoveAside {
        /// The database file.
        path: PathBuf,
        /// Where it was to go.
        to: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The listening socket could not be bound or served.
    #[error("cannot serve on {addr}: {source}")]
    Serve {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A TLS certificate or key could not be read or does not fit.
    #[error("TLS {path}: {reason}")]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is invalid.
    #[error("{0}")]
    Config(String),
}

/// Result with the agent's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
