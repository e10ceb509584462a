//! Agent benchmark (placeholder).
fn main() {}
