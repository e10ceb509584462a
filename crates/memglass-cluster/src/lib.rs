//! CLUSTER tier: the whole cluster at a glance, as a client of the Prometheus HTTP API
//! (Prometheus, VictoriaMetrics, Thanos, Mimir: anything that answers `/api/v1/query`),
//! never an aggregator of its own. The agents on every node export the figures
//! (docs/metrics.md); the store scrapes them; this crate asks the store.
//!
//! - [`prom`] is the source: instant queries over HTTP(S) into typed [`Series`], with the
//!   store's own error (`errorType`, `error`) when it refuses a query.
//! - [`top`], [`oom`] and [`eviction`] each hold their PromQL (pure text builders) and a
//!   pure function that turns the answers into rows, testable on recorded answers.
//! - Node names ([`NodeNames`]): the series' `node` label when the scrape config sets one,
//!   else `memglass_node_info`'s `node` joined on `instance` (done here rather than with
//!   `* on(instance) group_left(node)`, so an agent without the info series, or two info
//!   series of one instance across an agent restart, still count), else the instance.
//!
//! The scheduler's arithmetic for `memglass cluster pending` lives with the Kubernetes
//! objects it reads, in `memglass-kube` (`schedule`).
#![deny(missing_docs)]

pub mod eviction;
pub mod oom;
pub mod prom;
mod series;
pub mod top;

pub use prom::{Error, Options, Prometheus};
pub use series::{escape, NodeNames, Series};
