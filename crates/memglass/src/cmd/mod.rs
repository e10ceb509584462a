//! One module per command.

pub mod snapshot;
