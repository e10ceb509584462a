//! Why the runtime could not be asked.

use std::path::PathBuf;

/// A CRI failure; the message names the socket.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be reached (runtime absent or restarting).
    #[error("CRI socket {socket}: cannot connect: {reason}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The transport's reason.
        reason: String,
    },
    /// A call failed (status code and message from the runtime).
    #[error("CRI socket {socket}: {method}: {reason}")]
    Call {
        /// The socket.
        socket: PathBuf,
        /// The gRPC method.
        method: &'static str,
        /// The status.
        reason: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the CRI client: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Result of a CRI call.
pub type Result<T> = std::result::Result<T, Error>;
