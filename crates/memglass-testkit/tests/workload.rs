//! The workload helper refuses bad input clearly (and this target makes `cargo test`
//! build the `memglass-workload` binary the real-kernel tests run).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

#[test]
fn rejects_unknown_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_memglass-workload"))
        .args(["--bogus", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown argument --bogus"));
}

#[test]
fn rejects_bad_sizes() {
    let output = Command::new(env!("CARGO_BIN_EXE_memglass-workload"))
        .args(["--anon", "12Q"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad size unit"));
}
