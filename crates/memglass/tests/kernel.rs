//! Real-kernel tests (PRODUCT.md §5 tiers 2 and 3): real cgroups, real workloads, and
//! memglass's figures compared with what the workload did. The same binary runs on the
//! host (cgroup v1 here) and inside the v2 guests of `ci/v2/run`.
//!
//! Every test makes its own cgroup under `/memglass-test-<pid>-<n>` and its own scratch
//! files; guards remove them even when an assertion fails.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use memglass_testkit::{
    args, assert_close, memglass_bin, RemoveOnDrop, Scratch, TestCgroup, Workload, MIB,
};
use serde_json::Value;

/// Page cache per file, exact charges, the page census and dying cgroups (issue 6).
#[path = "kernel/pagecache.rs"]
mod pagecache;

/// The kubepods tree with real memory and the --pods/--node files naming it.
mod cluster_support;

/// kubelet's eviction order and request/limit verdicts on a real kubepods tree.
#[path = "kernel/eviction.rs"]
mod eviction;

/// `memglass diagnose`: one scenario per finding, on real cgroups (issue 14).
#[path = "kernel/diagnose.rs"]
mod diagnose;

/// `memglass reclaim`: cold page cache out, anon and swap untouched (v2); refused on v1.
#[path = "kernel/reclaim.rs"]
mod reclaim;

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
    let _remove = RemoveOnDrop(path.clone().into());
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

// ---- OOM kills explained (issue 5): real kills at three levels, read back from /dev/kmsg.

/// The kernel's name for the limit file of this hierarchy.
fn limit_file(cg: &TestCgroup) -> &'static str {
    if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    }
}

/// Run the workload in `dir` past its limit; its PID (it is OOM-killed before it is ready).
fn oom_kill_in(dir: &std::path::Path, anon: &str) -> u32 {
    let child = Command::new(memglass_testkit::workload_bin())
        .arg("--cgroup")
        .arg(dir)
        .args(["--anon", anon])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "pid {pid} should have been OOM-killed"
    );
    pid
}

/// Seconds since boot now, to tell this test's kills from older ones in the same cgroup
/// names (they carry the test process's PID, and PIDs wrap).
fn uptime_now() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// `memglass oom --json` (reading /dev/kmsg): the events of cgroups under `prefix` since
/// `since_uptime` only, since the kernel log is shared with every other test and process.
fn oom_events_under(prefix: &str, since_uptime: f64) -> Vec<Value> {
    let output = Command::new(memglass_bin())
        .args(["--no-cri", "oom", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "memglass oom failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Value = serde_json::from_slice(&output.stdout).unwrap();
    let ours = |memcg: &Value| {
        prefix.is_empty()
            || memcg
                .as_str()
                .is_some_and(|p| p == prefix || p.starts_with(&format!("{prefix}/")))
    };
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ours(&e["task_memcg"]) || ours(&e["oom_memcg"]))
        .filter(|e| e["uptime_seconds"].as_f64().unwrap() >= since_uptime - 0.05)
        .cloned()
        .collect()
}

/// OOM-kill a workload in `dir` and return its PID and its event, which must be the only
/// one under `prefix` since the kill began. The kernel prints a report's header (cgroups,
/// counters, stats, summary) only for 10 reports per 5 s machine-wide; when other kills
/// used that up, only the kill line is logged: wait out the window and kill again.
fn oom_kill_event(prefix: &str, dir: &std::path::Path) -> (u32, Value) {
    for _attempt in 0..5 {
        let start = uptime_now();
        let pid = oom_kill_in(dir, "96M");
        let events = oom_events_under(prefix, start);
        let all = oom_events_under("", start);
        let victim: Vec<&Value> = all.iter().filter(|e| e["pid"] == pid).collect();
        assert_eq!(victim.len(), 1, "pid {pid}: {all:#?}");
        if victim[0]["task_memcg"].is_null() {
            assert!(victim[0]["explanation"]
                .as_str()
                .unwrap()
                .contains("rate-limits"));
            std::thread::sleep(std::time::Duration::from_secs(6));
            continue;
        }
        assert_eq!(events.len(), 1, "{events:#?}");
        return (pid, events[0].clone());
    }
    panic!("every report's header was rate-limited: too many OOM kills on this machine");
}

/// What every one of our kill events says, whatever the scope.
#[track_caller]
fn assert_our_kill(event: &Value, pid: u32, limit: u64) {
    assert_eq!(event["pid"], pid, "{event}");
    assert_eq!(event["comm"], "memglass-worklo", "{event}");
    assert_eq!(event["constraint"], "CONSTRAINT_MEMCG", "{event}");
    assert_eq!(event["limit_hit"]["counter"], "memory", "{event}");
    assert_eq!(event["limit_hit"]["limit"], limit, "{event}");
    assert_eq!(event["dominant"], "anon", "{event}");
    assert!(event["anon_rss"].as_u64().unwrap() > limit / 2, "{event}");
    assert!(
        event["namespace"].is_null() && event["pod"].is_null(),
        "{event}"
    );
    let explanation = event["explanation"].as_str().unwrap();
    assert!(
        explanation.contains(&format!("(pid {pid}")),
        "{explanation}"
    );
    // /dev/kmsg times are boot time + the printk clock: the kill was just now.
    let time = humantime::parse_rfc3339(event["time"].as_str().unwrap()).unwrap();
    let age = std::time::SystemTime::now()
        .duration_since(time)
        .unwrap_or_default();
    assert!(age.as_secs() < 300, "kill at {time:?}, {age:?} ago");
}

/// A container over its own limit: scope container, attributed to its pod and container.
#[test]
fn oom_container_limit_is_a_container_kill() {
    let cg = TestCgroup::new();
    let driver = if cg.is_v2() {
        Driver::Systemd
    } else {
        Driver::Cgroupfs
    };
    let uid = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
    let id = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee01";
    let (dir, path) = cg.child(&format!("{}/{}", driver.pod(uid), driver.container(id)));
    cg.write(&dir, limit_file(&cg), &(32 * MIB).to_string());
    let (pid, event) = oom_kill_event(&cg.path, &dir);
    let event = &event;
    assert_our_kill(event, pid, 32 * MIB);
    assert_eq!(event["scope"], "container");
    assert_eq!(event["oom_memcg"], path);
    assert_eq!(event["task_memcg"], path);
    assert_eq!(event["pod_uid"], uid);
    assert_eq!(event["container_id"], id);
    assert_eq!(event["qos_class"], "Burstable");
    assert!(event["explanation"]
        .as_str()
        .unwrap()
        .starts_with("The container's own limit was hit (memory 32.0 MiB of 32.0 MiB)"));
}

/// A pod over its limit, its container unlimited: scope pod, the victim's container named.
#[test]
fn oom_pod_limit_is_a_pod_kill() {
    let cg = TestCgroup::new();
    let driver = if cg.is_v2() {
        Driver::Cgroupfs
    } else {
        Driver::Systemd
    };
    let uid = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e60";
    let id = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee02";
    let (pod_dir, pod_path) = cg.child(&driver.pod(uid));
    let (dir, path) = cg.child(&format!("{}/{}", driver.pod(uid), driver.container(id)));
    cg.write(&pod_dir, limit_file(&cg), &(32 * MIB).to_string());
    let (pid, event) = oom_kill_event(&cg.path, &dir);
    let event = &event;
    assert_our_kill(event, pid, 32 * MIB);
    assert_eq!(event["scope"], "pod");
    assert_eq!(event["oom_memcg"], pod_path);
    assert_eq!(event["task_memcg"], path);
    assert_eq!(event["pod_uid"], uid);
    assert_eq!(event["container_id"], id);
    // The table shows the kill with the counters: the container's own counter has it.
    let output = Command::new(memglass_bin())
        .args(["--no-cri", "oom"])
        .output()
        .unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("The pod's limit was hit"), "{table}");
    let counter = table
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{path}: oom_kill")))
        .unwrap_or_else(|| panic!("no counter line for {path}:\n{table}"));
    assert!(
        counter.contains("oom_kill 1 (") && counter.contains("in the log 1"),
        "{counter}"
    );
}

/// The pods' parent over its limit (node allocatable): scope kubepods.
#[test]
fn oom_kubepods_limit_is_node_allocatable() {
    let cg = TestCgroup::new();
    let uid = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e61";
    let id = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee03";
    let (kubepods_dir, kubepods_path) = cg.child("kubepods");
    let (dir, path) = cg.child(&format!("kubepods/besteffort/pod{uid}/{id}"));
    cg.write(&kubepods_dir, limit_file(&cg), &(32 * MIB).to_string());
    let (pid, event) = oom_kill_event(&cg.path, &dir);
    let event = &event;
    assert_our_kill(event, pid, 32 * MIB);
    assert_eq!(event["scope"], "kubepods");
    assert_eq!(event["oom_memcg"], kubepods_path);
    assert_eq!(event["task_memcg"], path);
    assert_eq!(
        (&event["pod_uid"], &event["container_id"]),
        (&uid.into(), &id.into())
    );
    assert_eq!(event["qos_class"], "BestEffort");
    assert!(event["explanation"]
        .as_str()
        .unwrap()
        .starts_with("Node allocatable (kubepods) limit was hit"));
}

/// `--follow --json` prints a kill as it happens, as one JSON line.
#[test]
fn oom_follow_streams_a_kill() {
    use std::io::BufRead;
    let cg = TestCgroup::new();
    let (dir, path) = cg.child("follow");
    cg.write(&dir, limit_file(&cg), &(32 * MIB).to_string());
    let mut follower = Command::new(memglass_bin())
        .args(["--no-cri", "oom", "--follow", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill(); // the follower we started, by its handle
            let _ = self.0.wait();
        }
    }
    let stdout = follower.stdout.take().unwrap();
    let _stop = Stop(follower);
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    // The follower starts at the end of the log: let it get there first.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (pid, event) = 'attempts: {
        for _attempt in 0..5 {
            let pid = oom_kill_in(&dir, "96M");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let line = received
                    .recv_timeout(left)
                    .unwrap_or_else(|_| panic!("no event for pid {pid} within 60 s"));
                let event: Value = serde_json::from_str(&line).unwrap();
                if event["pid"] != pid {
                    continue; // another kill on this machine
                }
                if event["task_memcg"] == path {
                    break 'attempts (pid, event);
                }
                // Header rate-limited (see oom_kill_event): wait out the window, kill again.
                assert!(event["task_memcg"].is_null(), "{event}");
                std::thread::sleep(std::time::Duration::from_secs(6));
                break;
            }
        }
        panic!("every report's header was rate-limited: too many OOM kills on this machine");
    };
    assert_our_kill(&event, pid, 32 * MIB);
    assert_eq!(event["scope"], "cgroup");
}
