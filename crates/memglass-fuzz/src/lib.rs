//! Fuzzing of every memglass parser of outside input (PRODUCT.md §7: parsers are fuzzed).
//!
//! A test tool, not a pipeline stage: it may import every library crate. One [`Target`] per
//! parser ([`targets::ALL`]): kernel files (memory.stat, memory.events, memory.pressure,
//! single-value cgroup files, meminfo, vmstat, mountinfo), the kernel log (`/dev/kmsg`
//! records, saved logs, OOM report lines), cgroup paths, Kubernetes quantities, pod and node
//! JSON, CRI replies and the agent's API query strings. Each is fed inputs mutated from the
//! repository's recorded fixtures ([`seeds`], [`mutate`]) and run by [`run::run`]: a panic is
//! caught and its input saved, an input running past the hang budget is saved and reported.
//!
//! `ci/fuzz` runs a million inputs per target (release build, overflow checks on);
//! `ci/test` runs a short pass. Both print [`table`].
#![deny(missing_docs)]

pub mod mutate;
pub mod run;
pub mod seeds;
pub mod targets;

use std::fmt::Write as _;

/// A structure-aware mutation: a seed in, an input out.
pub type CustomMutation = fn(&mut mutate::Rng, &[u8]) -> Vec<u8>;

/// One parser under test.
pub struct Target {
    /// Short name (`--target NAME`).
    pub name: &'static str,
    /// What it feeds, and to which functions.
    pub about: &'static str,
    /// Its seeds, from the fixtures.
    pub seeds: fn(&seeds::Fixtures) -> Vec<Vec<u8>>,
    /// Words of its format, for the mutator.
    pub tokens: &'static [&'static str],
    /// A structure-aware mutation (of a seed), used for half the inputs when present.
    pub mutate: Option<CustomMutation>,
    /// Feed one input to the parser (and to what consumes its output). Must not panic.
    pub run: fn(&[u8]),
}

/// The results as a table: parser, inputs, panics, hangs, max CPU time per input, inputs/s.
pub fn table(rows: &[(&Target, run::Outcome)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>10} {:>7} {:>6} {:>14} {:>10} {:>9}",
        "parser", "inputs", "panics", "hangs", "max ms/input", "inputs/s", "seconds"
    );
    for (target, outcome) in rows {
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:>7} {:>6} {:>14.3} {:>10.0} {:>9.1}",
            target.name,
            outcome.inputs,
            outcome.panics,
            outcome.hangs,
            outcome.max_time.as_secs_f64() * 1000.0,
            outcome.rate(),
            outcome.elapsed.as_secs_f64(),
        );
    }
    out
}
