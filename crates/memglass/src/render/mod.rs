//! Sinks: how analysed figures are shown. Only this module formats numbers for people.

pub mod cache;
pub mod cluster;
pub mod diagnose;
pub mod eviction;
pub mod human;
pub mod json;
pub mod oom;
pub mod pages;
pub mod reclaim;
pub mod requests;
