//! SINK stage of memglass: the node agent. Everything here presents a report that the
//! earlier stages (sources → identify → analyse) produced; nothing here reads the kernel.
//!
//! - [`collector`]: one thread runs a [`collector::Source`] (the binary's snapshot path) on
//!   an interval, publishes the latest [`Report`] through `arc-swap`, writes samples to the
//!   [`store`], and turns OOM kills into stored events with a flight recorder.
//! - [`metrics`]: Prometheus text and OpenMetrics rendered from the latest report.
//! - [`api`]: the versioned JSON API under `/api/v1` (docs/api.md).
//! - [`findings`]: `memglass diagnose`'s rules on every collection.
//! - [`store`]: SQLite history (WAL): samples with retention and downsampling, OOM events.
//! - [`server`]: the axum router, bearer-token checks, the embedded dashboard, and the
//!   connection handling: limits on time, connections, requests and sizes, and TLS.
//!
//! Request handlers only read the published report and the store: they never touch the
//! kernel, so a scrape costs the same whatever the machine is doing.
#![deny(missing_docs)]

pub mod api;
mod assets;
pub mod collector;
pub mod config;
mod error;
pub mod findings;
pub mod metrics;
pub mod oom;
pub mod server;
pub mod shared;
pub mod store;
#[cfg(test)]
mod tests;

pub use config::{Config, Limits, MetricFamilies, NodeLabels, Retention, TlsFiles};
pub use error::{Error, Result};
pub use shared::{
    Documents, FileCache, Health, KubeHealth, KubeStatus, Reclaim, ReclaimFailure, Report, Shared,
};
