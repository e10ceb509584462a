//! One module per command.

pub mod cache;
pub mod capture;
pub mod pages;
pub mod snapshot;
