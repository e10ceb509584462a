//! Sinks: how analysed figures are shown. Only this module formats numbers for people.

pub mod human;
pub mod json;
