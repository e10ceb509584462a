//! One module per command.

pub mod agent;
pub mod cache;
pub mod capture;
pub mod cluster;
pub mod diagnose;
pub mod eviction;
pub mod oom;
pub mod pages;
pub mod reclaim;
pub mod requests;
pub mod snapshot;
pub mod top;
