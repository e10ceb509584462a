//! Fixture tier: the real binary on trees recorded from real kernels (fixtures/hosts/*).
//!
//! Each host directory replays through `--proc-root`/`--cgroup-root`; its
//! `expected/snapshot.json` and `expected/snapshot.txt` are the outputs, reviewed when
//! regenerated with `MEMGLASS_BLESS=1 cargo test -p memglass --test fixtures`. Adding a
//! host directory adds coverage; one without `expected/` fails.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const MIB: u64 = 1 << 20;

fn hosts() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/hosts");
    let mut hosts: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("MANIFEST.toml").exists())
        .collect();
    hosts.sort();
    assert!(
        !hosts.is_empty(),
        "no recorded hosts under {}",
        root.display()
    );
    hosts
}

/// The recorded memory hierarchy root: v1 under sys/fs/cgroup/memory, v2 at sys/fs/cgroup.
fn cgroup_root(host: &Path) -> PathBuf {
    let v1 = host.join("sys/fs/cgroup/memory");
    if v1.join("memory.stat").exists() {
        v1
    } else {
        host.join("sys/fs/cgroup")
    }
}

fn memglass(host: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_memglass"))
        .arg("--proc-root")
        .arg(host.join("proc"))
        .arg("--cgroup-root")
        .arg(cgroup_root(host))
        .args(args)
        .output()
        .unwrap()
}

/// The snapshot of a recorded host, without what differs per run or per checkout
/// (the time, and directory inode numbers of the fixture files themselves).
fn recorded_snapshot(host: &Path) -> Value {
    let output = memglass(host, &["snapshot", "--json"]);
    assert!(
        output.status.success(),
        "{}: {}",
        host.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    doc.as_object_mut().unwrap().remove("taken_at");
    for cgroup in doc["cgroups"].as_array_mut().unwrap() {
        cgroup.as_object_mut().unwrap().remove("inode");
    }
    doc
}

fn check_golden(path: &Path, actual: &str) {
    if std::env::var_os("MEMGLASS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "{} missing: run with MEMGLASS_BLESS=1 and review",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(n, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", n + 1))
            .collect();
        panic!(
            "{} differs ({} vs {} lines):\n{}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn outputs_match_expected() {
    for host in hosts() {
        let json = serde_json::to_string_pretty(&recorded_snapshot(&host)).unwrap() + "\n";
        check_golden(&host.join("expected/snapshot.json"), &json);
        let output = memglass(&host, &["snapshot", "--top", "50"]);
        assert!(output.status.success());
        check_golden(
            &host.join("expected/snapshot.txt"),
            &String::from_utf8(output.stdout).unwrap(),
        );
    }
}

#[test]
fn every_host_satisfies_the_contract() {
    for host in hosts() {
        let doc = recorded_snapshot(&host);
        for key in [
            "mem_total",
            "mem_free",
            "mem_available",
            "buffers",
            "active_anon",
            "inactive_anon",
            "active_file",
            "inactive_file",
            "shmem",
            "slab_reclaimable",
            "slab_unreclaimable",
            "kernel_stack",
            "pagetables",
            "vmalloc",
            "percpu",
            "hugetlb",
            "alloc_page",
            "memory_available",
        ] {
            assert!(
                doc["node"][key].is_u64(),
                "{}: node.{key} = {}",
                host.display(),
                doc["node"][key]
            );
        }
        let node = &doc["node"];
        let parts = ["application", "kernel", "mem_free"].map(|k| node[k].as_u64().unwrap());
        assert!(parts.iter().sum::<u64>() <= node["mem_total"].as_u64().unwrap());
        for cgroup in doc["cgroups"].as_array().unwrap() {
            let path = cgroup["path"].as_str().unwrap();
            assert!(path.starts_with('/'));
            for key in ["cgroup_version", "kind"] {
                assert!(!cgroup[key].is_null(), "{path}: {key}");
            }
            for key in [
                "pod_uid",
                "container_id",
                "namespace",
                "pod",
                "container",
                "qos_class",
            ] {
                assert!(cgroup.get(key).is_some(), "{path}: {key} absent");
            }
            for key in [
                "usage",
                "limit",
                "anon",
                "active_anon",
                "inactive_anon",
                "file",
                "active_file",
                "inactive_file",
                "shmem",
                "file_mapped",
                "file_dirty",
                "file_writeback",
                "kernel",
                "swap",
                "unevictable",
                "working_set",
                "working_set_kubelet",
            ] {
                assert!(
                    cgroup["memory"].get(key).is_some(),
                    "{path}: memory.{key} absent"
                );
            }
            assert!(
                cgroup["events"].get("oom").is_some() && cgroup["events"].get("oom_kill").is_some()
            );
        }
    }
}

fn by_kind<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .collect()
}

fn mem(cgroup: &Value, key: &str) -> u64 {
    cgroup["memory"][key].as_u64().unwrap()
}

/// fixtures/record-host.sh on the build machine (cgroup v1): what the workloads did.
#[test]
fn v1_host_recording() {
    let doc = recorded_snapshot(
        &hosts()
            .into_iter()
            .find(|h| h.ends_with("v1-hybrid-6.18"))
            .unwrap(),
    );
    assert_eq!(doc["cgroup_version"], 1);
    let pod = by_kind(&doc, "pod")[0];
    assert_eq!(pod["pod_uid"], "6a1d3c2e-9b4f-4e7a-8c5d-0f2b1a3e4d5c");
    assert_eq!(pod["qos_class"], "Burstable");
    assert_eq!(pod["memory"]["limit"], 256 * MIB);
    let containers = by_kind(&doc, "container");
    assert_eq!(containers.len(), 2);
    let app = containers
        .iter()
        .find(|c| c["container_id"].as_str().unwrap().starts_with("4c2a"))
        .unwrap();
    let oom = containers
        .iter()
        .find(|c| c["container_id"].as_str().unwrap().starts_with("e5f7"))
        .unwrap();
    assert!(mem(app, "anon").abs_diff(24 * MIB) < 2 * MIB);
    assert!(mem(app, "shmem").abs_diff(8 * MIB) < MIB);
    assert!(
        mem(app, "file").abs_diff(28 * MIB) < 2 * MIB,
        "16M read + 4M dirty + 8M tmpfs"
    );
    assert!(mem(app, "file_dirty") + mem(app, "file_writeback") <= 4 * MIB + MIB);
    assert_eq!(oom["memory"]["limit"], 16 * MIB);
    assert_eq!(oom["events"]["oom_kill"], 1);
    assert!(oom["events"]["failcnt"].as_u64().unwrap() > 0);
    // v1 counts the kill only where it happened; memglass sums it up the tree like v2.
    assert_eq!(
        pod["events"]["oom_kill"], 1,
        "a pod counts its containers' kills"
    );
    assert_eq!(
        pod["events_local"]["oom_kill"], 0,
        "the kernel's own v1 counter is local"
    );
    assert_eq!(
        doc["cgroups"][0]["events"]["oom_kill"], 1,
        "the root sees the kill too"
    );
    assert!(mem(pod, "usage") >= mem(app, "usage"));
    let root = &doc["cgroups"][0];
    assert_eq!(root["kind"], "root");
    assert_eq!(root["memory"]["usage_source"], "memory.usage_in_bytes");
}

/// ci/v2/run --capture in Debian kernels (cgroup v2, systemd driver).
#[test]
fn v2_guest_recordings() {
    let v2: Vec<PathBuf> = hosts()
        .into_iter()
        .filter(|h| h.to_string_lossy().contains("/v2-"))
        .collect();
    assert!(!v2.is_empty());
    for host in v2 {
        let doc = recorded_snapshot(&host);
        assert_eq!(doc["cgroup_version"], 2, "{}", host.display());
        let root = &doc["cgroups"][0];
        assert_eq!(root["memory"]["usage_source"], "memory.stat:anon+file");
        assert_eq!(
            mem(root, "usage"),
            root["stat"]["anon"].as_u64().unwrap() + root["stat"]["file"].as_u64().unwrap()
        );
        assert!(doc["node"]["memory_available"].as_u64().unwrap() > 0);
        let pod = by_kind(&doc, "pod")[0];
        assert_eq!(pod["pod_uid"], "8d3c7f0e-5b1a-4f29-9c6e-2a7b4d1e0f93");
        assert_eq!(pod["qos_class"], "Burstable");
        assert_eq!(pod["memory"]["limit"], 256 * MIB);
        assert_eq!(by_kind(&doc, "kubepods").len(), 1);
        let oom = by_kind(&doc, "container")
            .into_iter()
            .find(|c| c["memory"]["limit"] == 32 * MIB)
            .unwrap();
        assert!(oom["events"]["oom_kill"].as_u64().unwrap() >= 1);
        assert!(oom["events"]["oom"].as_u64().unwrap() >= 1);
        assert!(
            pod["events"]["oom_kill"].as_u64().unwrap() >= 1,
            "v2 events are hierarchical"
        );
    }
}

#[test]
fn bad_roots_fail_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_memglass"))
        .args([
            "--cgroup-root",
            "/nonexistent/memglass",
            "snapshot",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/memglass"), "{stderr}");
    assert!(output.stdout.is_empty());
    // A directory that is not a memory hierarchy.
    let output = Command::new(env!("CARGO_BIN_EXE_memglass"))
        .args(["--cgroup-root", env!("CARGO_MANIFEST_DIR")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("not the root of a memory cgroup hierarchy"));
    let usage = Command::new(env!("CARGO_BIN_EXE_memglass"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

/// An unreadable cgroup file: that cgroup becomes a gap, reported once on stderr; the
/// rest of the snapshot is intact and the exit code is 0. Runs memglass as `nobody`
/// (root reads anything), so it needs root to drop privileges.
#[test]
fn permission_denied_is_one_clear_warning() {
    let host = hosts()
        .into_iter()
        .find(|h| h.ends_with("v1-hybrid-6.18"))
        .unwrap();
    let copy = std::env::temp_dir().join(format!("memglass-perm-{}", std::process::id()));
    let _remove = memglass_testkit::RemoveOnDrop(copy.clone());
    let status = Command::new("cp")
        .arg("-a")
        .arg(&host)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&copy)
        .status();
    // Both containers of the pod unreadable: one warning, saying how many more.
    let mut containers = Vec::new();
    let mut pending = vec![cgroup_root(&copy)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
        {
            if entry.file_name().len() == 64 {
                containers.push(entry.path());
            }
            pending.push(entry.path());
        }
    }
    assert_eq!(containers.len(), 2);
    for dir in &containers {
        std::fs::set_permissions(
            dir.join("memory.stat"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
    }
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_memglass"))
        .arg("--proc-root")
        .arg(copy.join("proc"))
        .arg("--cgroup-root")
        .arg(cgroup_root(&copy))
        .args(["snapshot", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one warning expected:\n{stderr}");
    assert!(
        stderr.contains("permission denied") && stderr.contains("and 1 more"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let gaps = doc["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert!(gaps.iter().all(|g| g["kind"] == "permission_denied"));
    assert!(
        by_kind(&doc, "container").is_empty(),
        "the unreadable cgroups are left out, not zeroed"
    );
    assert_eq!(by_kind(&doc, "pod").len(), 1, "the rest is intact");
}

/// The runtime is absent (or restarting): one warning, and path identity still names
/// every pod UID and container id.
#[test]
fn absent_runtime_is_a_warning_not_a_failure() {
    let host = hosts()
        .into_iter()
        .find(|h| h.ends_with("v1-hybrid-6.18"))
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_memglass"))
        .arg("--proc-root")
        .arg(host.join("proc"))
        .arg("--cgroup-root")
        .arg(cgroup_root(&host))
        .args([
            "--cri-socket",
            "unix:///nonexistent/containerd.sock",
            "snapshot",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/containerd.sock") && stderr.contains("names unavailable"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let containers = by_kind(&doc, "container");
    assert_eq!(containers.len(), 2);
    assert!(containers
        .iter()
        .all(|c| c["container_id"].is_string() && c["pod_uid"].is_string()));
    assert!(containers
        .iter()
        .all(|c| c["container"].is_null() && c["workload"].is_null()));
}
