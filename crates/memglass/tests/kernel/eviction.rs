//! `memglass eviction` and `memglass requests` on real cgroups (PRODUCT.md §2, questions 1,
//! 2 and 5), on the kubepods tree of tests/cluster_support (its docs list the pods and the
//! order kubelet gives them).
use std::process::Command;

use memglass_testkit::{args, assert_close, memglass_bin, TestCgroup, Workload, MIB};
use serde_json::{json, Value};

use crate::cluster_support::*;

#[test]
fn eviction_ranks_real_pods_in_kubelets_order() {
    let cluster = Cluster::new();
    let doc = cluster.json(&["eviction", "--json"]);
    assert_eq!(doc["schema"], "memglass.eviction/v1");
    let pods = doc["pods"].as_array().unwrap();
    let order: Vec<&str> = pods
        .iter()
        .map(|p| p["pod_uid"].as_str().unwrap())
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
    .iter()
    .map(|name| cluster.uid(name))
    .collect();
    assert_eq!(order, expected, "kubelet's order: {doc:#}");
    assert!(
        !order.contains(&cluster.uid("elsewhere")),
        "a pod bound to another node is not this node's"
    );
    let pod = |name: &str| {
        pods.iter()
            .find(|p| p["pod_uid"] == cluster.uid(name))
            .unwrap()
    };

    // No stats: first, and nothing to compare.
    let pending = pod("pending");
    assert!(pending["working_set"].is_null() && pending["exceeds_request"].is_null());
    assert!(pending["cgroup"].is_null());
    assert_eq!(doc["next"]["pod_uid"], cluster.uid("pending"));

    // Every measured pod's working set is its pod cgroup's, as the kernel counts it.
    for (name, anon, exceeds) in [
        ("besteffort", 30, true),
        ("unnamed", 8, true),
        ("hungry", 120, true),
        ("tight", 40, true),
        ("critical", 16, true),
        ("roomy", 80, false),
    ] {
        let p = pod(name);
        let ws = u(&p["working_set"]);
        assert_close(ws, kernel_working_set(cluster.dir(name)), name);
        assert_close(ws, anon * MIB, name);
        assert_eq!(p["exceeds_request"], exceeds, "{name}: {p:#}");
        let request = p["request"].as_u64().unwrap_or(0);
        assert_eq!(
            i(&p["usage_over_request"]),
            ws as i64 - request as i64,
            "{name}"
        );
        assert!(p["reason"].as_str().unwrap().contains("priority"), "{p:#}");
    }

    // What --pods said, carried through.
    let tight = pod("tight");
    assert_eq!(tight["pod"], "tight");
    assert_eq!(tight["namespace"], "evict");
    assert_eq!(tight["qos_class"], "Burstable");
    assert_eq!(tight["priority"], 1000);
    assert_eq!(u(&tight["request"]), 16 * MIB);
    assert!(tight["reason"]
        .as_str()
        .unwrap()
        .starts_with("exceeds its request by"));
    let besteffort = pod("besteffort");
    assert!(besteffort["request"].is_null());
    assert_eq!(besteffort["priority"], 0, "unset priority counts as 0");
    assert_eq!(besteffort["qos_class"], "BestEffort");
    let unnamed = pod("unnamed");
    assert!(unnamed["pod"].is_null(), "appears by UID only");
    assert_eq!(unnamed["requests_known"], false);
    assert_eq!(pod("roomy")["qos_class"], "Guaranteed");

    // The critical pod keeps its place in the ranking but is never evicted.
    let critical = pod("critical");
    assert_eq!(critical["evictable"], false);
    assert_eq!(critical["protected"], "critical_priority");
    assert!(pods
        .iter()
        .filter(|p| p["pod_uid"] != cluster.uid("critical"))
        .all(|p| p["evictable"] == true));

    // The signals, each against the kernel's own figures.
    let signals = doc["signals"].as_array().unwrap();
    let node = &signals[0];
    assert_eq!(node["signal"], "memory.available");
    assert_eq!(node["cgroup"], "/");
    assert_eq!(u(&node["capacity"]), mem_total());
    assert_close(
        u(&node["working_set"]),
        kernel_working_set(&cluster.cg.dir),
        "root working set",
    );
    assert_eq!(
        u(&node["available"]),
        u(&node["capacity"]) - u(&node["working_set"])
    );
    assert_eq!(u(&node["threshold"]), 100 * MIB);
    assert_eq!(
        i(&node["margin"]),
        u(&node["available"]) as i64 - (100 * MIB) as i64
    );
    let allocatable = &signals[1];
    assert_eq!(allocatable["signal"], "allocatableMemory.available");
    assert_eq!(allocatable["cgroup"], "/kubepods");
    assert_eq!(allocatable["capacity_source"], "node_allocatable");
    assert_eq!(u(&allocatable["capacity"]), 1 << 30);
    let kubepods_ws = kernel_working_set(&cluster.cg.dir.join("kubepods"));
    assert_close(u(&allocatable["working_set"]), kubepods_ws, "kubepods");
    assert_close(kubepods_ws, 294 * MIB, "kubepods holds every pod's memory");
    assert_eq!(
        u(&allocatable["available"]),
        (1 << 30) - u(&allocatable["working_set"])
    );
    assert_eq!(allocatable["met"], false);
    assert_eq!(doc["under_pressure"], false);

    // 80% of 1 GiB (819 MiB) is more than the ~730 MiB left in allocatable: kubelet would
    // be evicting; 80% of MemTotal is far below what the node has available. kubelet holds the
    // fraction as a float32 (80/100 = 0.800000011920929…) and multiplies in float64.
    let fraction = f64::from(80f32 / 100.0);
    let pressed = cluster.json(&["eviction", "--json", "--threshold", "80%"]);
    let signals = pressed["signals"].as_array().unwrap();
    assert_eq!(signals[0]["met"], false, "{pressed:#}");
    assert_eq!(
        u(&signals[0]["threshold"]),
        (mem_total() as f64 * fraction) as u64
    );
    assert_eq!(signals[1]["met"], true, "{pressed:#}");
    assert_eq!(
        u(&signals[1]["threshold"]),
        (f64::from(1u32 << 30) * fraction) as u64
    );
    assert!(i(&signals[1]["margin"]) < 0);
    assert_eq!(pressed["under_pressure"], true);
    assert_eq!(pressed["threshold"]["percent"], 80.0);

    // The table says the same to a person.
    let table = String::from_utf8(cluster.memglass(&["eviction"]).stdout).unwrap();
    println!("{table}"); // shown with --nocapture: a real run to read
    assert!(table.contains("NEXT TO GO"), "{table}");
    assert!(table.contains("evict/hungry"), "{table}");
    assert!(
        table.contains("never evicted: critical priority"),
        "{table}"
    );
}

#[test]
fn requests_sum_against_allocatable_and_judge_each_pod() {
    let cluster = Cluster::new();
    let doc = cluster.json(&["requests", "--json"]);
    assert_eq!(doc["schema"], "memglass.requests/v1");
    let node = &doc["node"];
    assert_eq!(node["name"], NODE);
    assert_eq!(u(&node["allocatable"]), 1 << 30);
    assert_eq!(u(&node["capacity"]), 2 << 30);
    // 7 pods: six cgroups and the pending one bound here; not the one elsewhere.
    assert_eq!(node["pods"], 7, "{doc:#}");
    assert_eq!(node["pods_without_requests_data"], 1);
    // 16 + 200 + 64 + 0 + 10 + 100 (pending: the scheduler counts it) MiB.
    assert_eq!(u(&node["requests"]), 390 * MIB);
    assert_eq!(i(&node["room"]), (1024 - 390) * MIB as i64);
    // Only tight (44Mi) and roomy (200Mi) have limits.
    assert_eq!(u(&node["limits"]), 244 * MIB);
    assert_eq!(node["pods_without_limit"], 4);
    let ratio = node["limits_over_allocatable"].as_f64().unwrap();
    assert!((ratio - 244.0 / 1024.0).abs() < 1e-9, "{ratio}");

    let pods = doc["pods"].as_array().unwrap();
    let pod = |name: &str| {
        pods.iter()
            .find(|p| p["pod_uid"] == cluster.uid(name))
            .unwrap_or_else(|| panic!("{name} missing: {doc:#}"))
    };
    let measured = [
        "tight",
        "roomy",
        "hungry",
        "besteffort",
        "critical",
        "unnamed",
    ];
    let sum: u64 = measured.iter().map(|n| u(&pod(n)["working_set"])).sum();
    assert_eq!(u(&node["working_set"]), sum);
    assert_close(sum, 294 * MIB, "Σ working set");

    let verdicts = |name: &str| -> Vec<String> {
        pod(name)["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(verdicts("tight"), ["under_requested", "near_limit"]);
    assert_eq!(verdicts("roomy"), ["over_requested"]);
    assert_eq!(verdicts("hungry"), ["under_requested", "no_limit"]);
    assert_eq!(verdicts("besteffort"), ["no_request", "no_limit"]);
    assert_eq!(verdicts("critical"), ["under_requested", "no_limit"]);
    assert_eq!(verdicts("pending"), ["no_limit"]);
    assert!(
        verdicts("unnamed").is_empty(),
        "no requests data, no verdict"
    );
    assert_eq!(pod("unnamed")["requests_known"], false);

    // Figures and suggestions from the kernel's own counters.
    for name in measured {
        let p = pod(name);
        let ws = u(&p["working_set"]);
        assert_close(ws, kernel_working_set(cluster.dir(name)), name);
        let peak = u(&p["peak"]);
        assert!(
            peak >= ws,
            "{name}: the usage peak covers today's working set"
        );
        let peak_ws = u(&p["peak_working_set"]);
        assert!(peak_ws >= ws && peak_ws <= peak, "{name}: {p:#}");
        let request = u(&p["suggested"]["request"]);
        assert_eq!(request, (peak_ws * 115 / 100).div_ceil(MIB) * MIB, "{name}");
        let limit = u(&p["suggested"]["limit"]);
        assert_eq!(
            limit,
            ((peak * 130 / 100).div_ceil(MIB) * MIB).max(request),
            "{name}"
        );
    }
    let tight = pod("tight");
    assert_close(u(&tight["peak"]), 40 * MIB, "tight's peak");
    let container = &tight["containers"][0];
    assert_eq!(container["container"], "app");
    assert_eq!(u(&container["request"]), 16 * MIB);
    assert_eq!(u(&container["limit"]), 44 * MIB);
    assert_close(u(&container["working_set"]), 40 * MIB, "tight/app");
    assert_eq!(
        container["verdicts"],
        json!(["under_requested", "near_limit"])
    );
    assert!(doc["rule"]["history"]
        .as_str()
        .unwrap()
        .contains("short history"));

    let table = String::from_utf8(cluster.memglass(&["requests"]).stdout).unwrap();
    println!("{table}");
    assert!(table.contains("room left"), "{table}");
    assert!(table.contains("over-requested"), "{table}");
    assert!(table.contains("short history"), "{table}");
}

#[test]
fn without_requests_data_the_ranking_still_runs_and_says_why_once() {
    let cg = TestCgroup::new();
    let uid = format!("{:08x}-e71c-4000-8000-00000000beef", std::process::id());
    let (dir, _) = cg.child(&format!("kubepods/besteffort/pod{uid}/{:064x}", 7));
    let _workload = Workload::start(&dir, &args(&[("--anon", "12M".into())]));
    let output = Command::new(memglass_bin())
        .args(["--no-cri", "--cgroup-root"])
        .arg(&cg.dir)
        .args(["eviction", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.matches("--pods").count(), 1, "said once: {stderr}");
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pods = doc["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["pod_uid"], uid.as_str());
    assert_close(u(&pods[0]["working_set"]), 12 * MIB, "by UID");
    assert_eq!(
        doc["signals"].as_array().unwrap().len(),
        1,
        "no allocatable known"
    );
    let bad = Command::new(memglass_bin())
        .args([
            "--no-cri",
            "--cgroup-root",
            "/nonexistent/memglass",
            "requests",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
