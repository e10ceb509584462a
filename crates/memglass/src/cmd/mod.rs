//! One module per command.

pub mod capture;
pub mod snapshot;
