//! `memglass top`'s screen: a sink, like `render`, drawn with ratatui.
//!
//! - `app`: the state (snapshot, previous samples, sort, filter, selection, view) and what
//!   each key does; keys that need the kernel come back as an [`app::Action`].
//! - `rows`: the table's rows from a snapshot (pods with their containers, or every
//!   cgroup), sorted and filtered.
//! - `draw` (header, table, help line), `detail` (one cgroup, every figure with its
//!   source) and `files` (its cached files) render the state; `format` writes sizes
//!   compactly.
//!
//! Nothing here reads the kernel: `cmd/top.rs` samples and measures files in threads and
//! hands the results in, so the state can be rendered in tests from any snapshot.

pub mod app;
mod detail;
pub mod draw;
mod files;
mod format;
pub mod rows;

#[cfg(test)]
mod tests;
