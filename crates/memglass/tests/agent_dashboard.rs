//! Tier 5: the dashboard in Debian's chromium, driven by playwright-core (ci/e2e), against
//! the real agent and real workloads: the node pie, the sortable and filterable pods
//! table, a pod page with real values, an OOM event the test caused, and the Eviction
//! page of an agent on the real kubepods tree of tests/cluster_support (kubelet's order,
//! reasons, signals, verdicts). Screenshots are saved under target/e2e-artifacts/.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod agent_support;
/// The kubepods tree with real memory and the --pods/--node files naming it.
mod cluster_support;

use std::path::Path;
use std::process::{Command, Stdio};

use agent_support::*;
use memglass_testkit::{Scratch, TestCgroup, Workload};

#[test]
fn dashboard_in_chromium() {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ci/e2e");
    if !tool_present("/usr/bin/chromium", "chromium")
        || !tool_present(
            &e2e.join("node_modules/playwright-core")
                .display()
                .to_string(),
            "playwright-core (npm ci in ci/e2e)",
        )
    {
        return;
    }
    let cg = TestCgroup::new();
    let scratch = Scratch::new();
    // Pod A: two containers, anon, a mapped file (page cache that stays) and tmpfs.
    let (a1, pod_a, _, _) = pod_tree(&cg, 21);
    let pod_rel = pod_a
        .strip_prefix(&cg.path)
        .unwrap()
        .trim_start_matches('/');
    let (a2, _) = cg.child(&format!("{pod_rel}/{:064x}", 0xa2_u64));
    // A pod limit, so "% of limit" has something to show.
    let (pod_a_dir, _) = cg.child(pod_rel);
    let limit_file = if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    cg.write(&pod_a_dir, limit_file, &(128 * MIB).to_string());
    let mapped = scratch.file("served-assets.bin");
    let shm = ShmFile::new("dashboard");
    let _a1 = Workload::start(
        &a1,
        &args(&[
            ("--anon", "40M".into()),
            ("--map-file", format!("{mapped}:24M")),
            ("--tmpfs", format!("{}:8M", shm.0)),
        ]),
    );
    let _a2 = Workload::start(&a2, &args(&[("--anon", "16M".into())]));
    // Pod B: less anon, more page cache, so the table has something to sort.
    let (b1, _, _, _) = pod_tree(&cg, 22);
    let _b1 = Workload::start(
        &b1,
        &args(&[
            ("--anon", "8M".into()),
            ("--map-file", format!("{}:48M", scratch.file("b.bin"))),
        ]),
    );
    // Pod C: its container is OOM-killed at a 24 MiB limit.
    let (c1, _, oom_path, _) = pod_tree(&cg, 23);
    cg.write(
        &c1,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(24 * MIB).to_string(),
    );

    let db = Scratch::new();
    let agent = Agent::start(&db.dir.join("h.db"), &[]);
    let calm = Workload::start(&c1, &args(&[("--anon", "12M".into())]));
    agent.wait_collections(3);
    drop(calm);
    memglass_testkit::oom_kill_in(&c1);
    agent.wait_for(|a| {
        a.get("/api/v1/oom").json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cgroup"] == oom_path.as_str())
    });
    agent.wait_collections(2);

    let token_file = db.dir.join("token");
    std::fs::write(&token_file, "dashboard-token\n").unwrap();
    let guarded = Agent::start_with_token(
        &db.dir.join("guarded.db"),
        &token_file.display().to_string(),
        "dashboard-token",
    );

    // The Eviction page: an agent on a kubepods tree whose pods --pods/--node describe;
    // 80% of allocatable is crossed, so one signal is met.
    let cluster = cluster_support::Cluster::new();
    let cluster_args = [
        "--cgroup-root".to_owned(),
        cluster.cg.dir.display().to_string(),
        "--pods".to_owned(),
        cluster.pods_file.display().to_string(),
        "--node".to_owned(),
        cluster.node_file.display().to_string(),
        "--eviction-threshold".to_owned(),
        "80%".to_owned(),
    ];
    let cluster_args: Vec<&str> = cluster_args.iter().map(String::as_str).collect();
    let evicting = Agent::start(&db.dir.join("eviction.db"), &cluster_args);
    let order: Vec<String> = evicting.get("/api/v1/eviction").json()["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pod_uid"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<&str> = [
        "pending",
        "besteffort",
        "unnamed",
        "hungry",
        "tight",
        "critical",
        "roomy",
    ]
    .map(|name| cluster.uid(name))
    .to_vec();
    assert_eq!(order, expected, "kubelet's order");

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-artifacts");
    let output = Command::new("node")
        .arg(e2e.join("dashboard.mjs"))
        .env("MEMGLASS_URL", format!("http://{}", agent.addr))
        .env("MEMGLASS_POD", &pod_a)
        .env("MEMGLASS_POD_ANON", (56 * MIB).to_string())
        .env("MEMGLASS_FILE", &mapped)
        .env("MEMGLASS_OOM_CGROUP", &oom_path)
        .env("MEMGLASS_ARTIFACTS", &artifacts)
        .env("MEMGLASS_TOKEN_URL", format!("http://{}", guarded.addr))
        .env("MEMGLASS_TOKEN", "dashboard-token")
        .env("MEMGLASS_EVICTION_URL", format!("http://{}", evicting.addr))
        .env("MEMGLASS_EVICTION_ORDER", order.join(","))
        .env("MEMGLASS_EVICTION_CRITICAL", cluster.uid("critical"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "dashboard check failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(found["ok"], true);
    assert_close(
        found["pod_anon"].as_u64().unwrap(),
        56 * MIB,
        "pod anon in the page",
    );
    for shot in [
        "overview.png",
        "pods-sorted.png",
        "pod.png",
        "oom.png",
        "oom-event.png",
        "eviction.png",
    ] {
        assert!(artifacts.join(shot).exists(), "{shot} not saved");
    }
    assert_eq!(found["eviction_rows"], 7, "{found}");
    assert_eq!(found["eviction_signals"], 2, "{found}");
    eprintln!("screenshots: {}", artifacts.display());
}
