//! Real-kernel tests (PRODUCT.md §5 tiers 2 and 3): real cgroups, real workloads, and
//! memglass's figures compared with what the workload did. The same binary runs on the
//! host (cgroup v1 here) and inside the v2 guests of `ci/v2/run`.
//!
//! Every test makes its own cgroup under `/memglass-test-<pid>-<n>` and its own scratch
//! files; guards remove them even when an assertion fails.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use memglass_testkit::{memglass_bin, Scratch, TestCgroup, Workload};
use serde_json::Value;

/// Page cache per file, exact charges, the page census and dying cgroups (issue 6).
#[path = "kernel/pagecache.rs"]
mod pagecache;

const MIB: u64 = 1 << 20;

/// Run `memglass snapshot --json` and return the parsed document.
fn snapshot() -> Value {
    let output = Command::new(memglass_bin())
        .args(["snapshot", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "memglass snapshot failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The cgroup object whose `path` is `path`.
fn cgroup<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("{path} missing from snapshot"))
}

fn figure(cgroup: &Value, key: &str) -> u64 {
    cgroup["memory"][key].as_u64().unwrap_or_else(|| {
        panic!(
            "memory.{key} is {} for {}",
            cgroup["memory"][key], cgroup["path"]
        )
    })
}

/// Within 2% or 2 MiB of what the workload did, whichever is looser.
#[track_caller]
fn assert_close(actual: u64, expected: u64, what: &str) {
    let tolerance = (expected / 50).max(2 * MIB);
    assert!(
        actual.abs_diff(expected) <= tolerance,
        "{what}: memglass says {actual} bytes ({:.1} MiB), the workload made {expected} ({:.1} MiB)",
        actual as f64 / MIB as f64,
        expected as f64 / MIB as f64
    );
}

fn args(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(flag, value)| [flag.to_string(), value.clone()])
        .collect()
}

#[test]
fn anonymous_memory() {
    let cg = TestCgroup::new();
    let _workload = Workload::start(&cg.dir, &args(&[("--anon", "64M".into())]));
    let doc = snapshot();
    let c = cgroup(&doc, &cg.path);
    assert_eq!(c["cgroup_version"], if cg.is_v2() { 2 } else { 1 });
    assert_close(figure(c, "anon"), 64 * MIB, "anon");
    assert_close(
        figure(c, "active_anon") + figure(c, "inactive_anon"),
        64 * MIB,
        "anon LRUs",
    );
    assert!(figure(c, "file") < 2 * MIB, "no page cache expected");
    // Both working sets, each exactly by its formula.
    let m = &c["memory"];
    assert_eq!(
        figure(c, "working_set"),
        figure(c, "inactive_anon") + figure(c, "active_anon") + figure(c, "active_file")
    );
    assert_eq!(
        figure(c, "working_set_kubelet"),
        figure(c, "usage").saturating_sub(figure(c, "inactive_file"))
    );
    assert_close(figure(c, "working_set"), 64 * MIB, "working_set");
    assert!(m["limit"].is_null(), "no limit was set");
    assert!(c["events"]["oom_kill"].as_u64() == Some(0));
    // memglass's usage is the kernel's own counter.
    let file = if cg.is_v2() {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    };
    let kernel: u64 = std::fs::read_to_string(cg.dir.join(file))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_close(figure(c, "usage"), kernel, "usage vs the kernel file");
}

#[test]
fn page_cache_from_reading_a_file() {
    let cg = TestCgroup::new();
    let scratch = Scratch::new();
    let _workload = Workload::start(
        &cg.dir,
        &args(&[("--read-file", format!("{}:48M", scratch.file("a")))]),
    );
    let doc = snapshot();
    let c = cgroup(&doc, &cg.path);
    assert_close(figure(c, "file"), 48 * MIB, "file");
    assert_close(
        figure(c, "active_file") + figure(c, "inactive_file"),
        48 * MIB,
        "file LRUs",
    );
    assert!(figure(c, "shmem") < MIB, "a disk file is not shmem");
    assert!(
        figure(c, "file_dirty") < 2 * MIB,
        "the file was synced before it was read"
    );
    assert!(figure(c, "anon") < 8 * MIB);
}

#[test]
fn dirty_pages_from_writing_without_sync() {
    let cg = TestCgroup::new();
    let scratch = Scratch::new();
    let _workload = Workload::start(
        &cg.dir,
        &args(&[("--dirty", format!("{}:24M", scratch.file("b")))]),
    );
    let doc = snapshot();
    let c = cgroup(&doc, &cg.path);
    assert_close(figure(c, "file"), 24 * MIB, "file");
    // Writeback may have started; together they are the unsynced data.
    assert_close(
        figure(c, "file_dirty") + figure(c, "file_writeback"),
        24 * MIB,
        "dirty + writeback",
    );
}

#[test]
fn tmpfs_is_shmem() {
    let cg = TestCgroup::new();
    let path = format!("/dev/shm/{}", cg.path.trim_start_matches('/'));
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _remove = Remove(path.clone());
    let _workload = Workload::start(&cg.dir, &args(&[("--tmpfs", format!("{path}:32M"))]));
    let doc = snapshot();
    let c = cgroup(&doc, &cg.path);
    assert_close(figure(c, "shmem"), 32 * MIB, "shmem");
    assert_close(figure(c, "file"), 32 * MIB, "file (includes shmem)");
    // shmem lives on the anon LRUs: it is in the seeds' working set even when inactive.
    assert_close(
        figure(c, "active_anon") + figure(c, "inactive_anon"),
        32 * MIB,
        "anon LRUs",
    );
}

#[test]
fn mapped_file() {
    let cg = TestCgroup::new();
    let scratch = Scratch::new();
    let _workload = Workload::start(
        &cg.dir,
        &args(&[("--map-file", format!("{}:16M", scratch.file("d")))]),
    );
    let doc = snapshot();
    let c = cgroup(&doc, &cg.path);
    assert_close(figure(c, "file_mapped"), 16 * MIB, "file_mapped");
    assert_close(figure(c, "file"), 16 * MIB, "file");
}

#[test]
fn limits_are_bytes_and_unlimited_is_null() {
    let cg = TestCgroup::new();
    let (limited, limited_path) = cg.child("limited");
    let (_free, free_path) = cg.child("free");
    let file = if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    cg.write(&limited, file, &(256 * MIB).to_string());
    let doc = snapshot();
    assert_eq!(cgroup(&doc, &limited_path)["memory"]["limit"], 256 * MIB);
    assert!(cgroup(&doc, &free_path)["memory"]["limit"].is_null());
}

#[test]
fn oom_kill_is_counted() {
    let cg = TestCgroup::new();
    let file = if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    cg.write(&cg.dir, file, &(32 * MIB).to_string());
    // The workload allocates past its limit and is killed before it is ready.
    let status = Command::new(memglass_testkit::workload_bin())
        .arg("--cgroup")
        .arg(&cg.dir)
        .args(["--anon", "96M"])
        .output()
        .unwrap()
        .status;
    assert!(
        !status.success(),
        "the workload should have been OOM-killed"
    );
    let doc = snapshot();
    let c = cgroup(&doc, &cg.path);
    assert!(
        c["events"]["oom_kill"].as_u64().unwrap() >= 1,
        "events: {}",
        c["events"]
    );
    if cg.is_v2() {
        assert!(c["events"]["oom"].as_u64().unwrap() >= 1);
    } else {
        assert!(c["events"]["oom"].is_null(), "v1 has no oom counter");
        assert!(c["events"]["failcnt"].as_u64().unwrap() >= 1);
    }
}

/// kubelet's two cgroup drivers lay the same pod out differently.
#[derive(Clone, Copy)]
enum Driver {
    /// kubepods/burstable/pod<uid>/<id>
    Cgroupfs,
    /// kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
    Systemd,
}

impl Driver {
    fn pod(self, uid: &str) -> String {
        match self {
            Driver::Cgroupfs => format!("kubepods/burstable/pod{uid}"),
            Driver::Systemd => format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
                uid.replace('-', "_")
            ),
        }
    }

    fn container(self, id: &str) -> String {
        match self {
            Driver::Cgroupfs => id.to_string(),
            Driver::Systemd => format!("cri-containerd-{id}.scope"),
        }
    }
}

/// A kubepods tree of `driver`'s layout: identity on every level, the pod includes its
/// containers, and an OOM kill in one container is counted there and in the pod.
fn pod_includes_its_containers(driver: Driver) {
    let cg = TestCgroup::new();
    let uid = "0f8a3c51-5d0e-4c3a-9b7e-2a1d6f4e8c90";
    let ids = [
        "3b9d1e2f4a5c6b7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d",
        "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ];
    let pod_rel = driver.pod(uid);
    let (_pod_dir, pod_path) = cg.child(&pod_rel);
    let (c1_dir, c1_path) = cg.child(&format!("{pod_rel}/{}", driver.container(ids[0])));
    let (c2_dir, c2_path) = cg.child(&format!("{pod_rel}/{}", driver.container(ids[1])));
    let (oom_dir, oom_path) = cg.child(&format!("{pod_rel}/{}", driver.container(ids[2])));
    let _w1 = Workload::start(&c1_dir, &args(&[("--anon", "24M".into())]));
    let _w2 = Workload::start(&c2_dir, &args(&[("--anon", "40M".into())]));
    let limit_file = if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    cg.write(&oom_dir, limit_file, &(16 * MIB).to_string());
    let killed = Command::new(memglass_testkit::workload_bin())
        .arg("--cgroup")
        .arg(&oom_dir)
        .args(["--anon", "64M"])
        .output()
        .unwrap();
    assert!(
        !killed.status.success(),
        "the third container should be OOM-killed"
    );
    let doc = snapshot();
    let pod = cgroup(&doc, &pod_path);
    let (c1, c2, oom) = (
        cgroup(&doc, &c1_path),
        cgroup(&doc, &c2_path),
        cgroup(&doc, &oom_path),
    );
    assert_eq!(pod["kind"], "pod");
    assert_eq!(pod["qos_class"], "Burstable");
    assert_eq!(pod["pod_uid"], uid);
    for (container, id) in [(c1, ids[0]), (c2, ids[1]), (oom, ids[2])] {
        assert_eq!(container["kind"], "container");
        assert_eq!(container["pod_uid"], uid);
        assert_eq!(container["container_id"], id);
        assert_eq!(container["qos_class"], "Burstable");
    }
    let kubepods = pod_path[..pod_path.find("/kubepods").unwrap()].to_string()
        + if matches!(driver, Driver::Systemd) {
            "/kubepods.slice"
        } else {
            "/kubepods"
        };
    assert_eq!(cgroup(&doc, &kubepods)["kind"], "kubepods");
    assert_eq!(
        cgroup(&doc, pod_path.rsplit_once('/').unwrap().0)["kind"],
        "qos"
    );
    assert_close(figure(c1, "anon"), 24 * MIB, "container 1 anon");
    assert_close(figure(c2, "anon"), 40 * MIB, "container 2 anon");
    assert_close(
        figure(pod, "anon"),
        figure(c1, "anon") + figure(c2, "anon") + figure(oom, "anon"),
        "pod anon = Σ containers",
    );
    assert!(figure(pod, "usage") >= figure(c1, "usage") + figure(c2, "usage"));
    assert!(figure(pod, "working_set") >= figure(c1, "working_set") + figure(c2, "working_set"));
    assert_eq!(oom["memory"]["limit"], 16 * MIB);
    assert_eq!(oom["events"]["oom_kill"], 1, "events: {}", oom["events"]);
    assert_eq!(
        pod["events"]["oom_kill"], 1,
        "the pod counts its container's kill"
    );
    assert_eq!(c1["events"]["oom_kill"], 0);
    if cg.is_v2() {
        assert!(oom["events"]["oom"].as_u64().unwrap() >= 1);
        assert!(oom["events"]["max"].as_u64().unwrap() >= 1);
        assert_eq!(
            pod["events_local"]["oom_kill"], 0,
            "memory.events.local: the kill was not the pod's"
        );
    }
}

#[test]
fn pod_includes_its_containers_cgroupfs_driver() {
    pod_includes_its_containers(Driver::Cgroupfs);
}

#[test]
fn pod_includes_its_containers_systemd_driver() {
    pod_includes_its_containers(Driver::Systemd);
}

/// Cgroups created and removed while snapshots run: never a failure or a panic.
#[test]
fn churn_is_not_an_error() {
    let cg = TestCgroup::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let dir = cg.dir.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let child = dir.join(format!("churn-{}", n % 16));
                let _ = std::fs::create_dir(&child);
                let _ = std::fs::remove_dir(&child);
                n += 1;
            }
            n
        })
    };
    for _ in 0..20 {
        let doc = snapshot();
        assert!(doc["cgroups"].as_array().unwrap().len() > 1);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(churn.join().unwrap() > 0);
}

#[test]
fn human_view_lists_the_cgroup() {
    let cg = TestCgroup::new();
    let _workload = Workload::start(&cg.dir, &args(&[("--anon", "8M".into())]));
    let output = Command::new(memglass_bin())
        .args(["snapshot", "--top", "100000"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("alloc_page"), "{text}");
    assert!(text.contains("memory_available"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with(&cg.path))
        .unwrap_or_else(|| panic!("{} not listed:\n{text}", cg.path));
    assert!(line.contains("MiB"), "{line}");
}
