//! ANALYSE stage of memglass: pure functions from kernel samples to the figures people
//! read. No I/O, no clock, no logging: everything here is testable with hand-built
//! samples.
//!
//! - [`node`]: the node breakdown (application / kernel / free), `alloc_page`, and
//!   kubelet's `memory_available` eviction signal.
//! - [`cgroup`]: per-cgroup figures, including both working sets side by side.
//! - [`reconcile`]: Σ top-level cgroups + memory outside them + free = MemTotal, with the
//!   residual shown.
//! - [`snapshot()`]: all of it for one [`memglass_kernel::HostSample`].
//! - [`eviction`]: kubelet's memory eviction signals and who it would evict next.
//! - [`sizing`]: requests and limits against allocatable and the measured peaks.
//! - [`node_pods`]: the pods of this node (pod cgroups joined with the directory).
//! - [`diagnose`]: all of the above turned into findings with evidence and remedies.
#![deny(missing_docs)]

pub mod cgroup;
pub mod diagnose;
pub mod eviction;
pub mod filecache;
pub mod node;
pub mod node_pods;
pub mod oom;
pub mod pages;
pub mod reconcile;
pub mod sizing;
mod snapshot;

pub use cgroup::{CgroupReport, MemoryReport, WorkloadFacts};
pub use node::NodeReport;
pub use reconcile::Reconciliation;
pub use snapshot::{snapshot, PodGroup, Snapshot};
