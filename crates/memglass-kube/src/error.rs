//! The crate's one error type. Every message is one line and names the object and field
//! (`item 3 (kube-system/etcd-0): metadata.uid missing`); the caller adds the file name.

use std::time::Duration;

use crate::quantity::QuantityError;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading pods and nodes from JSON or from the API server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not JSON at all.
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// JSON of another kind than expected (a Node given as pods, a Deployment list, …).
    #[error("{object}: expected {expected}, found {found}")]
    WrongKind {
        /// Which document or item.
        object: String,
        /// What was expected.
        expected: &'static str,
        /// What was found (`kind Node`, `a JSON array`).
        found: String,
    },
    /// A field every real object has is missing or empty.
    #[error("{object}: {field} missing")]
    Missing {
        /// Which object (`item 3 (kube-system/coredns-x)`, `node`).
        object: String,
        /// The field path (`metadata.uid`).
        field: &'static str,
    },
    /// An object that does not match the Kubernetes schema (a wrong type somewhere).
    #[error("{object}: not a valid {kind}: {source}")]
    Schema {
        /// Which object.
        object: String,
        /// The kind it was read as (`Pod`, `Node`).
        kind: &'static str,
        /// serde's description, with the offending field.
        #[source]
        source: serde_json::Error,
    },
    /// A resource quantity that is not a valid Kubernetes quantity.
    #[error("{object}: {field}: {source}")]
    Quantity {
        /// Which object.
        object: String,
        /// The field path (`spec.containers[0].resources.limits.memory`).
        field: String,
        /// The string and the reason.
        #[source]
        source: QuantityError,
    },
    /// A sum of quantities beyond 2^64-1 bytes. No longer produced: memory figures saturate at
    /// `u64::MAX` instead, so that one absurd quantity never rejects a whole pod list (kept so
    /// that callers matching on it still build).
    #[error("{object}: {what} is more than 2^64-1 bytes")]
    TooLarge {
        /// Which object.
        object: String,
        /// Which figure.
        what: String,
    },
    /// No node name was given, `NODE_NAME` is unset and the hostname is unreadable.
    #[error("no node name: pass one or set NODE_NAME (hostname unreadable: {0})")]
    NoNodeName(String),
    /// Neither a kubeconfig nor an in-cluster service account gave a usable client.
    #[error("Kubernetes client configuration: {0}")]
    Config(String),
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {what}: {detail}")]
    Api {
        /// The request (`list pods on node n1`).
        what: String,
        /// The error and its causes on one line (`… client error (Connect): invalid peer
        /// certificate: UnknownIssuer`).
        detail: String,
        /// kube-rs' error (HTTP status and the server's message for API errors).
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer in time.
    #[error("Kubernetes API: no answer within {0:?}")]
    Timeout(Duration),
    /// The small async runtime for the client could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    /// An API error for the request `what`, its causes spelled out.
    pub(crate) fn api(what: String, source: kube::Error) -> Error {
        Error::Api {
            what,
            detail: causes(&source),
            source,
        }
    }
}

/// An error and its sources on one line, each cause once (hyper and rustls often repeat the
/// inner message in the outer one).
pub(crate) fn causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = cause.source();
    }
    line.replace('\n', " ")
}
