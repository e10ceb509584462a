//! One module per command.

pub mod agent;
pub mod cache;
pub mod capture;
pub mod oom;
pub mod pages;
pub mod snapshot;
pub mod top;
