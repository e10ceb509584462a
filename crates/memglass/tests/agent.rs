//! The real agent (`memglass agent`) against real cgroups and workloads: /metrics values,
//! the JSON API and its errors, token enforcement, and history that survives `kill -9`.
//! Every agent listens on 127.0.0.1 (a port the kernel picks) and is killed by its PID
//! when the test ends, whether it passed or not.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod agent_support;
/// The kubepods tree with real memory and the --pods/--node files naming it.
mod cluster_support;

/// kubelet's eviction view and the request/limit sizing, served by the agent.
#[path = "agent/eviction.rs"]
mod eviction;

/// Findings (`memglass diagnose`'s rules) served by the agent.
#[path = "agent/findings.rs"]
mod findings;

/// Kernel log overruns: every kill counted once, overruns exposed, restarts exact
/// (floods the log only in the ci/v2 guests).
#[path = "agent/kmsg_overrun.rs"]
mod kmsg_overrun;

/// POST /api/v1/reclaim: only with --allow-reclaim and a token; refusals as 4xx.
#[path = "agent/reclaim.rs"]
mod reclaim;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use agent_support::*;
use memglass_testkit::{memglass_bin, Scratch, TestCgroup, Workload};

#[test]
fn metrics_match_a_real_workload() {
    let cg = TestCgroup::new();
    let (dir, pod_path, path, _) = pod_tree(&cg, 1);
    cg.write(
        &dir,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(256 * MIB).to_string(),
    );
    let shm = ShmFile::new("metrics");
    let _workload = Workload::start(
        &dir,
        &args(&[
            ("--anon", "48M".into()),
            ("--tmpfs", format!("{}:16M", shm.0)),
        ]),
    );
    let gone = TestCgroup::new();
    let db = Scratch::new();
    let agent = Agent::start(&db.dir.join("h.db"), &["--node-name", "memglass-node-7"]);
    agent.wait_collections(1);

    let scrape = agent.get("/metrics");
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = parse_metrics(&scrape.body);
    let bytes = |name: &str, extra: &[(&str, &str)]| {
        value(&m, name, &path, extra)
            .unwrap_or_else(|| panic!("{name} {extra:?} missing for {path}")) as u64
    };
    let kind = |t| bytes("memglass_cgroup_memory_bytes", &[("type", t)]);
    assert_close(kind("anon"), 48 * MIB, "anon");
    assert_close(kind("shmem"), 16 * MIB, "shmem");
    assert_close(
        bytes("memglass_cgroup_memory_usage_bytes", &[]),
        64 * MIB,
        "usage",
    );
    assert_eq!(bytes("memglass_cgroup_memory_limit_bytes", &[]), 256 * MIB);
    assert_close(
        bytes("memglass_cgroup_memory_working_set_bytes", &[]),
        64 * MIB,
        "working set",
    );
    assert_eq!(
        bytes("memglass_cgroup_memory_working_set_kubelet_bytes", &[]),
        bytes("memglass_cgroup_memory_usage_bytes", &[]).saturating_sub(kind("inactive_file"))
    );
    assert_eq!(
        bytes(
            "memglass_cgroup_memory_events_total",
            &[("event", "oom_kill")]
        ),
        0
    );
    // The pod counts its container; labels are the four of the contract, empty when unknown.
    assert_close(
        value(&m, "memglass_cgroup_memory_usage_bytes", &pod_path, &[]).unwrap() as u64,
        64 * MIB,
        "pod usage",
    );
    let labels: Vec<_> = m
        .keys()
        .filter(|(n, l)| n == "memglass_cgroup_memory_usage_bytes" && l["cgroup"] == path)
        .map(|(_, l)| l.clone())
        .collect();
    assert_eq!(labels.len(), 1);
    let keys: Vec<&str> = labels[0].keys().map(String::as_str).collect();
    assert_eq!(keys, ["cgroup", "container", "namespace", "pod"]);
    assert_eq!(labels[0]["pod"], "");
    // Node breakdown and the agent's own health.
    let node = |t: &str| {
        m.iter()
            .find(|((n, l), _)| {
                n == "memglass_node_memory_bytes" && l.get("type").map(String::as_str) == Some(t)
            })
            .map(|(_, v)| *v)
    };
    assert!(
        node("mem_total").unwrap() > 0.0
            && node("alloc_page").is_some()
            && node("application").is_some()
    );
    assert!(m
        .keys()
        .any(|(n, _)| n == "memglass_node_memory_available_bytes"));
    assert!(m
        .keys()
        .any(|(n, _)| n == "memglass_agent_collection_duration_seconds"));
    assert!(m.keys().any(|(n, _)| n == "memglass_agent_scrapes_total"));
    // The same figures as `memglass snapshot --json` (one pipeline): the limit exactly.
    let snapshot: serde_json::Value = serde_json::from_slice(
        &Command::new(memglass_bin())
            .args(["--no-cri", "snapshot", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let ours = snapshot["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path.as_str())
        .unwrap();
    assert_eq!(ours["memory"]["limit"].as_u64(), Some(256 * MIB));
    assert_close(
        ours["memory"]["anon"].as_u64().unwrap(),
        kind("anon"),
        "snapshot vs agent anon",
    );

    // Every family exported is documented in docs/metrics.md (the contract; compiled in,
    // so the test also runs where the repository is not, as in the v2 guests).
    let doc = include_str!("../../../docs/metrics.md");
    for line in scrape.body.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            doc.contains(&format!("`{name}")),
            "{name} is not in docs/metrics.md"
        );
    }

    // OpenMetrics when asked.
    let om = agent.get_with(
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
    );
    assert!(om
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(om.body.ends_with("# EOF\n"));
    assert!(om
        .body
        .contains("# TYPE memglass_cgroup_memory_events counter\n"));

    // promtool agrees.
    promtool_passes(&scrape.body);

    // Who this target is, to join any series to its node by instance.
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let info = BTreeMap::from([
        ("node".to_owned(), "memglass-node-7".to_owned()),
        ("kernel".to_owned(), kernel.trim().to_owned()),
        (
            "cgroup_version".to_owned(),
            if cg.is_v2() { "2" } else { "1" }.to_owned(),
        ),
    ]);
    assert_eq!(
        m.get(&("memglass_node_info".to_owned(), info.clone())),
        Some(&1.0),
        "memglass_node_info{info:?}"
    );

    // A cgroup that vanishes loses its label sets at the next collection.
    assert!(value(&m, "memglass_cgroup_memory_usage_bytes", &gone.path, &[]).is_some());
    let gone_path = gone.path.clone();
    drop(gone);
    agent.wait_collections(2);
    let after = parse_metrics(&agent.get("/metrics").body);
    assert!(
        after
            .keys()
            .all(|(_, l)| l.get("cgroup") != Some(&gone_path)),
        "{gone_path} still exported"
    );
}

#[test]
fn json_api_answers_and_refuses_bad_requests() {
    let cg = TestCgroup::new();
    let (dir, pod_path, path, uid) = pod_tree(&cg, 2);
    let _workload = Workload::start(&dir, &args(&[("--anon", "32M".into())]));
    let db = Scratch::new();
    let agent = Agent::start(&db.dir.join("h.db"), &[]);
    agent.wait_collections(2);

    let health = agent.get("/api/v1/health").json();
    assert_eq!(health["status"], "ok");
    assert!(health["last_collection"]["cgroups"].as_u64().unwrap() >= 4);

    let snapshot = agent.get("/api/v1/snapshot").json();
    assert_eq!(snapshot["schema"], "memglass.snapshot/v1");
    let c = snapshot["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path.as_str())
        .unwrap();
    assert_eq!(c["kind"], "container");
    assert_close(
        c["memory"]["anon"].as_u64().unwrap(),
        32 * MIB,
        "snapshot anon",
    );

    let one = agent.get(&format!("/api/v1/cgroup?path={path}&range=5m"));
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_eq!(one["cgroup"]["path"], path.as_str());
    let history = one["history"].as_array().unwrap();
    assert!(history.len() >= 2, "history: {history:?}");
    assert_close(
        history.last().unwrap()["anon"].as_u64().unwrap(),
        32 * MIB,
        "history anon",
    );
    assert!(history.last().unwrap()["working_set_kubelet"]
        .as_u64()
        .is_some());
    assert_eq!(one["range"]["resolution"], "raw");

    let pod = agent.get(&format!("/api/v1/pod?uid={uid}")).json();
    assert_eq!(pod["path"], pod_path.as_str());
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    assert_eq!(pod["containers"][0]["path"], path.as_str());

    let rows = agent.get("/api/v1/workloads").json();
    let row = rows["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == pod_path.as_str())
        .unwrap();
    assert_eq!(row["kind"], "pod");
    assert_eq!(row["containers"], 1);
    assert!(
        agent.get("/api/v1/node?range=10m").json()["history"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    assert_eq!(agent.get("/api/v1/oom").status, 200);

    // Errors are JSON with the right status.
    for (path, status) in [
        ("/api/v1/cgroup", 400),
        ("/api/v1/cgroup?path=relative", 400),
        ("/api/v1/cgroup?path=/a/../b", 400),
        ("/api/v1/cgroup?path=/no-such-cgroup-here", 404),
        (&format!("/api/v1/cgroup?path={path}&range=forever"), 400),
        (&format!("/api/v1/cgroup?path={path}&from=10&to=5"), 400),
        (&format!("/api/v1/cgroup?path={path}&resolution=5s"), 400),
        ("/api/v1/pod", 400),
        ("/api/v1/pod?uid=nope", 404),
        ("/api/v1/oom/x", 400),
        ("/api/v1/oom/999999", 404),
        ("/api/v1/oom?limit=0", 400),
        ("/api/v1/cache", 400),
        ("/api/v1/cache?path=/no-such-cgroup-here", 404),
        ("/api/v1/nothing", 404),
        ("/api/v2/snapshot", 404),
        ("/nothing", 404),
    ] {
        let answer = agent.get(path);
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert_eq!(answer.json()["error"]["status"], status, "{path}");
        assert!(answer.json()["error"]["message"].as_str().unwrap().len() > 5);
    }
    let post = request(agent.addr, "POST", "/api/v1/snapshot", &[]);
    assert_eq!(post.status, 405);
    assert_eq!(post.json()["error"]["status"], 405);
    // A malformed request line gets a 4xx, and the agent keeps serving.
    let bad = request(agent.addr, "GET", "/api/v1/cgroup?path=%zz", &[]);
    assert!((400..500).contains(&bad.status), "{}", bad.status);
    assert_eq!(agent.get("/api/v1/health").status, 200);
}

#[test]
fn a_token_is_required_beyond_loopback_and_checked_when_given() {
    let db = Scratch::new();
    // Refused before binding: exit 2 (usage), one line saying why.
    let out = Command::new(memglass_bin())
        .args(["agent", "--listen", "0.0.0.0:0", "--db"])
        .arg(db.dir.join("x.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--token-file"), "{stderr}");
    // An empty token file is refused too (exit 1, runtime failure).
    std::fs::write(db.dir.join("empty"), "\n").unwrap();
    let out = Command::new(memglass_bin())
        .args(["agent", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(db.dir.join("empty"))
        .arg("--db")
        .arg(db.dir.join("x.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    std::fs::write(db.dir.join("token"), "s3cret-token\n").unwrap();
    let token_file = db.dir.join("token").display().to_string();
    let agent = Agent::start_with_token(&db.dir.join("h.db"), &token_file, "s3cret-token");
    for path in ["/metrics", "/api/v1/health", "/api/v1/snapshot"] {
        let none = agent.get(path);
        assert_eq!(none.status, 401, "{path}");
        assert_eq!(none.json()["error"]["status"], 401);
        assert!(none.header("www-authenticate").is_some());
        let wrong = agent.get_with(path, &[("Authorization", "Bearer s3cret-tokeN")]);
        assert_eq!(wrong.status, 401, "{path}");
        let right = agent.get_with(path, &[("Authorization", "Bearer s3cret-token")]);
        assert_eq!(right.status, 200, "{path}");
    }
    // The dashboard's page holds no data and loads without the token.
    assert_eq!(agent.get("/").status, 200);
    // Nor does /healthz (kubelet's probes cannot send a Secret): only the status word,
    // 503 until the first collection, then 200 "ok".
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let health = agent.get("/healthz");
        if health.status == 200 {
            assert_eq!(health.body, "ok\n");
            break;
        }
        assert_eq!(health.status, 503);
        assert_eq!(health.body, "starting\n");
        assert!(
            std::time::Instant::now() < deadline,
            "no collection in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn history_and_oom_events_survive_kill_9() {
    let cg = TestCgroup::new();
    let (dir, _pod_path, path, _) = pod_tree(&cg, 3);
    // Only the memory limit (not memsw): the kernel OOM-kills instead of failing charges.
    cg.write(
        &dir,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(32 * MIB).to_string(),
    );
    let db = Scratch::new();
    let db_file = db.dir.join("h.db");
    let agent = Agent::start(&db_file, &["--flight-minutes", "2"]);
    let calm = Workload::start(&dir, &args(&[("--anon", "8M".into())]));
    agent.wait_collections(3);
    drop(calm);
    agent.wait_collections(1);
    // Twice the limit in anonymous memory: the kernel kills it.
    memglass_testkit::oom_kill_in(&dir);
    agent.wait_for(|a| {
        a.get("/api/v1/oom").json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cgroup"] == path.as_str())
    });
    let events = agent.get("/api/v1/oom").json();
    let event = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["cgroup"] == path.as_str())
        .unwrap()
        .clone();
    // The kernel log when the agent may read it (root), else the counters.
    let health = agent.get("/api/v1/health").json();
    if health["oom_source"]
        .as_str()
        .unwrap()
        .starts_with("kernel log")
    {
        assert_eq!(event["source"], "kernel_log", "{event}");
        assert!(event["pid"].as_u64().is_some(), "{event}");
        assert!(
            event["comm"].as_str().unwrap().starts_with("memglass-work"),
            "{event}"
        );
        assert_eq!(event["constraint"], "CONSTRAINT_MEMCG", "{event}");
        assert_eq!(event["cause"], "anon", "{event}");
    } else {
        assert_eq!(event["source"], "cgroup_counters", "{event}");
    }
    assert_eq!(event["kills"], 1);
    assert_eq!(event["scope"], "container", "{event}");
    assert_eq!(event["oom_memcg"], path.as_str());
    assert_eq!(event["limit"].as_u64(), Some(32 * MIB));
    // An event is in the history as soon as it is stored, /metrics once its collection is
    // published.
    agent.wait_collections(1);
    let kills = |agent: &Agent| {
        let m = parse_metrics(&agent.get("/metrics").body);
        value(
            &m,
            "memglass_oom_kills_total",
            &path,
            &[("scope", "container")],
        )
    };
    // /metrics is rendered once the collection that stored the event is complete (its
    // findings too), a moment after the event is in the store.
    agent.wait_for(|a| kills(a).is_some());
    assert_eq!(
        kills(&agent),
        Some(1.0),
        "memglass_oom_kills_total of the victim"
    );
    let id = event["id"].as_i64().unwrap();
    let detail = agent.get(&format!("/api/v1/oom/{id}")).json();
    let flight = detail["event"]["flight"].as_array().unwrap();
    assert!(flight.len() >= 3, "flight recorder: {flight:?}");
    assert!(
        flight
            .iter()
            .any(|p| p["anon"].as_u64().unwrap_or(0) >= 6 * MIB),
        "the flight recorder shows the calm workload: {flight:?}"
    );
    let before = agent
        .get(&format!("/api/v1/cgroup?path={path}&range=10m"))
        .json()["history"]
        .as_array()
        .unwrap()
        .len();
    agent.kill9();

    let agent = Agent::start(&db_file, &[]);
    let again = agent.get("/api/v1/oom").json();
    assert!(
        again["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id && e["cgroup"] == path.as_str()),
        "OOM event lost across kill -9: {again}"
    );
    // Resumed after the stored report: the kill is not recorded twice.
    agent.wait_collections(2);
    let ours = agent.get("/api/v1/oom").json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cgroup"] == path.as_str())
        .count();
    assert_eq!(ours, 1, "the kill was recorded again after the restart");
    assert_eq!(
        kills(&agent),
        None,
        "a kill from before the restart counted again"
    );
    let flight_again = agent.get(&format!("/api/v1/oom/{id}")).json()["event"]["flight"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(flight_again, flight.len());
    let history = agent
        .get(&format!("/api/v1/cgroup?path={path}&range=10m"))
        .json()["history"]
        .as_array()
        .unwrap()
        .len();
    assert!(
        history >= before,
        "history shrank across kill -9: {before} → {history}"
    );
}

#[test]
fn file_cache_of_a_cgroup() {
    let cg = TestCgroup::new();
    let (dir, _, path, _) = pod_tree(&cg, 4);
    let scratch = Scratch::new();
    let file = scratch.file("mapped.bin");
    // Mapped, so the kernel's own reclaim leaves it in the cache while we look.
    let _workload = Workload::start(&dir, &args(&[("--map-file", format!("{file}:16M"))]));
    let db = Scratch::new();
    let agent = Agent::start(&db.dir.join("h.db"), &[]);
    agent.wait_collections(1);
    let answer = agent.get(&format!("/api/v1/cache?path={path}&limit=20"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let doc = answer.json();
    assert_eq!(doc["cgroup"], path.as_str());
    let files = doc["files"].as_array().unwrap();
    let ours = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("mapped.bin"))
        })
        .unwrap_or_else(|| panic!("{file} not among {files:?}"));
    assert_close(ours["cached"].as_u64().unwrap(), 16 * MIB, "cached");
    assert_eq!(ours["deleted"], false);
}

/// `memglass_file_cache_bytes`: the largest files of the largest holders, bounded by the
/// flags; on a subtree node so no other cgroup of the machine takes part.
#[test]
fn the_largest_cached_files_are_metrics() {
    let cg = TestCgroup::new();
    let (big, _, big_path, _) = pod_tree(&cg, 8);
    let (small, _, small_path, _) = pod_tree(&cg, 9);
    let scratch = Scratch::new();
    let (mapped, read, dirty) = (
        scratch.file("mapped.bin"),
        scratch.file("read.bin"),
        scratch.file("dirty.bin"),
    );
    // Mapped, so the kernel's own reclaim leaves it in the cache while we look.
    let _big = Workload::start(
        &big,
        &args(&[
            ("--map-file", format!("{mapped}:16M")),
            ("--read-file", format!("{read}:1M")),
            ("--open", read.clone()),
        ]),
    );
    // Larger than the workload's own executable (4.5 MiB), which its holder also maps.
    let _small = Workload::start(
        &small,
        &args(&[
            ("--dirty", format!("{dirty}:8M")),
            ("--open", dirty.clone()),
        ]),
    );
    let db = Scratch::new();
    let agent = Agent::start(
        &db.dir.join("h.db"),
        &[
            "--cgroup-root",
            cg.dir.to_str().unwrap(),
            "--file-cache-every",
            "1",
            "--file-cache-holders",
            "2",
            "--file-cache-files",
            "1",
        ],
    );
    agent.wait_collections(2);
    let m = parse_metrics(&agent.get("/metrics").body);
    let relative = |path: &str| path.strip_prefix(&cg.path).unwrap().to_owned();
    let file = |name: &str, cgroup: &str, path: &str| {
        value(&m, name, &relative(cgroup), &[("file", path)]).map(|v| v as u64)
    };
    assert_close(
        file("memglass_file_cache_bytes", &big_path, &mapped).expect("the mapped file"),
        16 * MIB,
        "cached",
    );
    assert_eq!(
        file("memglass_file_cache_bytes", &big_path, &read),
        None,
        "one file per holder (--file-cache-files 1)"
    );
    let listed: Vec<_> = m
        .iter()
        .filter(|((name, _), _)| name.starts_with("memglass_file_cache"))
        .collect();
    let cached = file("memglass_file_cache_bytes", &small_path, &dirty)
        .unwrap_or_else(|| panic!("the dirty file is not among {listed:?}"));
    assert_close(cached, 8 * MIB, "cached");
    let dirty_bytes = file("memglass_file_cache_dirty_bytes", &small_path, &dirty);
    if memglass_kernel_has_cachestat() {
        let dirty_bytes = dirty_bytes.expect("cachestat tells dirty bytes");
        assert!(dirty_bytes > 0 && dirty_bytes <= cached, "{dirty_bytes}");
    }
    let series = m
        .keys()
        .filter(|(name, _)| name == "memglass_file_cache_bytes")
        .count();
    assert_eq!(series, 2, "two holders, one file each");
}

/// cachestat(2) arrived in Linux 6.5; before, mincore cannot tell dirty pages.
fn memglass_kernel_has_cachestat() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 5)
}

#[test]
fn names_from_a_recorded_pod_list_label_the_metrics() {
    // Pod UIDs and container ids of a real kubeadm 1.28 node's pod list (as tests/kube.rs);
    // compiled in and written out, so the test also runs where the repository is not.
    let files = Scratch::new();
    let pods = files.dir.join("pods.json");
    std::fs::write(
        &pods,
        include_str!("../../../fixtures/kube/kubeadm-1.28-containerd/pods.json"),
    )
    .unwrap();
    let pods = pods.to_str().unwrap();
    let cg = TestCgroup::new();
    let etcd_pod = "kubepods/burstable/pod8e8fff2d-be18-4c30-9237-15081eb36a31";
    let etcd = "bd8e739c800c48d94c001dffece330d6229d4223d417579a8da27eb474f3f0de";
    let (dir, path) = cg.child(&format!("{etcd_pod}/{etcd}"));
    let _workload = Workload::start(&dir, &args(&[("--anon", "20M".into())]));
    let db = Scratch::new();
    let agent = Agent::start(&db.dir.join("h.db"), &["--pods", pods]);
    agent.wait_collections(1);
    let m = parse_metrics(&agent.get("/metrics").body);
    let labels = m
        .keys()
        .find(|(n, l)| n == "memglass_cgroup_memory_usage_bytes" && l["cgroup"] == path)
        .map(|(_, l)| l.clone())
        .unwrap();
    assert_eq!(labels["namespace"], "kube-system");
    assert_eq!(labels["pod"], "etcd-k8s-controller-01");
    assert_eq!(labels["container"], "etcd");
    let pod_path = format!("{}/{etcd_pod}", cg.path);
    let pod = m
        .keys()
        .find(|(n, l)| n == "memglass_cgroup_memory_usage_bytes" && l["cgroup"] == pod_path)
        .map(|(_, l)| l.clone())
        .unwrap();
    assert_eq!(
        (pod["pod"].as_str(), pod["container"].as_str()),
        ("etcd-k8s-controller-01", "")
    );
    let answer = agent.get("/api/v1/pod?namespace=kube-system&name=etcd-k8s-controller-01");
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Two runs of this test may overlap (same UID): either pod tree is a right answer.
    assert!(answer.json()["path"].as_str().unwrap().ends_with(etcd_pod));
}

#[test]
fn oom_kills_from_counters_without_the_kernel_log() {
    let cg = TestCgroup::new();
    let (dir, _, path, uid) = pod_tree(&cg, 5);
    cg.write(
        &dir,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(32 * MIB).to_string(),
    );
    let db = Scratch::new();
    let agent = Agent::start(&db.dir.join("h.db"), &["--no-kernel-log"]);
    assert!(agent.get("/api/v1/health").json()["oom_source"]
        .as_str()
        .unwrap()
        .starts_with("cgroup counters"));
    let calm = Workload::start(&dir, &args(&[("--anon", "8M".into())]));
    agent.wait_collections(2);
    drop(calm);
    memglass_testkit::oom_kill_in(&dir);
    agent.wait_for(|a| {
        a.get("/api/v1/oom").json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cgroup"] == path.as_str())
    });
    let events = agent.get("/api/v1/oom").json();
    let event = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["cgroup"] == path.as_str())
        .unwrap();
    assert_eq!(event["source"], "cgroup_counters", "{event}");
    assert_eq!(event["kills"], 1, "{event}");
    assert_eq!(event["oom_memcg"], path.as_str(), "{event}");
    assert_eq!(event["scope"], "container", "{event}");
    assert_eq!(event["pod_uid"], uid.as_str());
    assert_eq!(event["limit"].as_u64(), Some(32 * MIB));
    assert!(event["pid"].is_null(), "counters do not name the process");
    // The counter by victim, with what dominated from the cgroup's own figures. An event is
    // in the history as soon as it is stored, /metrics once its collection is published.
    agent.wait_collections(1);
    let m = parse_metrics(&agent.get("/metrics").body);
    let cause = event["cause"].as_str().unwrap_or("unknown");
    assert_eq!(
        value(
            &m,
            "memglass_oom_kills_total",
            &path,
            &[("scope", "container"), ("cause", cause)]
        ),
        Some(1.0),
        "{event}"
    );
    let detail = agent.get(&format!("/api/v1/oom/{}", event["id"])).json();
    assert!(!detail["event"]["flight"].as_array().unwrap().is_empty());
}

/// `--cgroup-root` on a live subtree works as a node of its own (what a cluster test's
/// "node" is, and what an agent in a cgroup namespace sees): its paths start at it, the
/// kernel log's paths are mapped into it, and a kill outside it is not its own.
#[test]
fn a_live_subtree_is_a_node_of_its_own() {
    let cg = TestCgroup::new();
    let limit = if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let uid = |n: u32| format!("{n:08x}-5555-4666-8777-{:012x}", std::process::id());
    let container = |node: &str, n: u32| {
        cg.child(&format!(
            "{node}/kubepods/burstable/pod{}/{:064x}",
            uid(n),
            u64::from(n) + 0x5b7
        ))
    };
    let (ours, ours_full) = container("node-a", 1);
    let (theirs, _) = container("node-b", 2);
    for dir in [&ours, &theirs] {
        cg.write(dir, limit, &(32 * MIB).to_string());
    }
    let (root, _) = cg.child("node-a");
    let db = Scratch::new();
    let agent = Agent::start(
        &db.dir.join("h.db"),
        &["--cgroup-root", root.to_str().unwrap()],
    );
    let relative = ours_full
        .strip_prefix(&format!("{}/node-a", cg.path))
        .unwrap();
    let oom = |dir: &Path| {
        memglass_testkit::oom_kill_in(dir);
    };
    let node_kills = |agent: &Agent| {
        let m = parse_metrics(&agent.get("/metrics").body);
        m.iter()
            .find(|((name, _), _)| name == "memglass_node_oom_kills_total")
            .map(|(_, v)| *v)
    };
    agent.wait_collections(2);
    assert_eq!(node_kills(&agent), Some(0.0), "no kill in the subtree yet");

    // A kill in the other "node": not this agent's, from the log nor the counters.
    oom(&theirs);
    agent.wait_collections(3);
    assert_eq!(
        agent.get("/api/v1/oom").json()["events"],
        serde_json::json!([]),
        "a kill outside the subtree was taken for its own"
    );
    assert_eq!(node_kills(&agent), Some(0.0));

    // A kill inside: its paths relative to the subtree, scope and names from them.
    oom(&ours);
    agent.wait_for(|a| {
        !a.get("/api/v1/oom").json()["events"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let events = agent.get("/api/v1/oom").json();
    let event = &events["events"][0];
    assert_eq!(event["cgroup"], relative, "{event}");
    assert_eq!(event["oom_memcg"], relative, "{event}");
    assert_eq!(event["scope"], "container", "{event}");
    assert_eq!(event["pod_uid"], uid(1).as_str(), "{event}");
    assert_eq!(event["kills"], 1, "{event}");
    agent.wait_collections(1);
    assert_eq!(node_kills(&agent), Some(1.0));
    let m = parse_metrics(&agent.get("/metrics").body);
    assert_eq!(
        value(
            &m,
            "memglass_oom_kills_total",
            relative,
            &[("scope", "container")]
        ),
        Some(1.0)
    );
    assert!(
        value(&m, "memglass_cgroup_memory_usage_bytes", "/", &[]).is_some(),
        "the subtree's root is the node's root"
    );
}

/// /metrics is rendered once per collection and sent gzip-compressed to a client that
/// takes it (Prometheus does); a container gets 12 series by default, its full breakdown
/// with `--metrics-families all` (issue 16).
#[test]
fn metrics_keep_the_container_budget_and_go_gzip_on_the_wire() {
    use std::io::{Read, Write};
    let cg = TestCgroup::new();
    let (dir, pod_path, path, _) = pod_tree(&cg, 0xb0d9);
    cg.write(
        &dir,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(256 * MIB).to_string(),
    );
    let _workload = Workload::start(&dir, &args(&[("--anon", "16M".into())]));
    let db = Scratch::new();
    let root = cg.dir.display().to_string();
    let per_cgroup = |agent: &Agent, path: &str| {
        let relative = path.strip_prefix(&cg.path).unwrap();
        parse_metrics(&agent.get("/metrics").body)
            .keys()
            .filter(|(_, labels)| labels.get("cgroup").map(String::as_str) == Some(relative))
            .count()
    };
    let agent = Agent::start(&db.dir.join("a.db"), &["--cgroup-root", &root]);
    let container = per_cgroup(&agent, &path);
    assert!(
        (11..=12).contains(&container),
        "{container} series for a container"
    );
    let pod = per_cgroup(&agent, &pod_path);
    assert!(pod > 12, "a pod keeps its whole breakdown: {pod} series");
    let full = Agent::start(
        &db.dir.join("b.db"),
        &["--cgroup-root", &root, "--metrics-families", "all"],
    );
    let everything = per_cgroup(&full, &path);
    assert!(everything >= 20, "{everything} series with every family");

    // gzip on the wire, in OpenMetrics as Prometheus asks; the same bytes for two scrapes
    // of one collection (rendered once, not per scrape).
    let scrape = || {
        let mut stream = std::net::TcpStream::connect(agent.addr).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\
             Accept-Encoding: gzip\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
        (head, raw[split + 4..].to_vec())
    };
    let collections = || agent.get("/api/v1/health").json()["collections"].as_u64();
    let (head, first, second) = loop {
        let before = collections();
        let (head, first) = scrape();
        let (_, second) = scrape();
        if collections() == before {
            break (head, first, second);
        }
    };
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(!head.contains("transfer-encoding: chunked"), "{head}");
    assert_eq!(first, second, "two scrapes of one collection differ");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&first[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.ends_with("# EOF\n"),
        "{}",
        &text[text.len().saturating_sub(200)..]
    );
    assert!(
        text.contains("memglass_cgroup_memory_usage_bytes{"),
        "no usage series"
    );
    assert!(
        first.len() * 4 < text.len(),
        "gzip: {} bytes for {} of text",
        first.len(),
        text.len()
    );
}
