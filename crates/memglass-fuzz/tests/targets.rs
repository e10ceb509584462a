//! The fuzz harness itself: every target has seeds and survives a few hundred inputs, and
//! every input the fuzzer ever saved (`regressions/<target>/`) still runs without a panic.
//! The real short run is a step of ci/test; the long one is ci/fuzz.
#![allow(clippy::expect_used)] // tests: a failed expect is a failed test

use std::sync::Arc;
use std::time::Duration;

use memglass_fuzz::run::{self, Options};
use memglass_fuzz::seeds::Fixtures;
use memglass_fuzz::targets;

#[test]
fn every_target_has_seeds_and_runs() {
    let fixtures = Fixtures::of_repository();
    let options = Options {
        inputs: 200,
        seed: 1,
        hang_after: Duration::from_secs(30),
        out: std::env::temp_dir().join("memglass-fuzz-test"),
    };
    for target in targets::ALL {
        let seeds = (target.seeds)(&fixtures);
        assert!(!seeds.is_empty(), "{}: no seeds", target.name);
        let outcome = run::run(target, Arc::new(seeds), &options);
        assert_eq!(
            outcome.inputs, 200,
            "{}: {:?}",
            target.name, outcome.failures
        );
        assert_eq!(
            outcome.panics + outcome.hangs,
            0,
            "{}: {:?}",
            target.name,
            outcome.failures
        );
    }
}

#[test]
fn saved_failures_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    for target_dir in std::fs::read_dir(&dir).expect("regressions/").flatten() {
        if !target_dir.path().is_dir() {
            continue;
        }
        let name = target_dir.file_name().to_string_lossy().into_owned();
        let target = targets::by_name(&name).unwrap_or_else(|| panic!("no target {name}"));
        for file in std::fs::read_dir(target_dir.path())
            .expect("a target's inputs")
            .flatten()
        {
            let input = std::fs::read(file.path()).expect("a saved input");
            if let Err(panic) = run::replay(target, &input) {
                panic!("{}: {panic}", file.path().display());
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0);
}
