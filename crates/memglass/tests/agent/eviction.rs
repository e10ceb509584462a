//! The agent's eviction and sizing view on the real kubepods tree of tests/cluster_support
//! (real cgroups, real anonymous memory, `--pods`/`--node` naming the pods): /metrics,
//! /api/v1/eviction and /api/v1/requests against `memglass eviction --json` and
//! `memglass requests --json` run on the same tree, and against the kernel's own files.
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::agent_support::*;
use crate::cluster_support::*;
use memglass_testkit::{memglass_bin, Scratch};

/// Figures measured from the kernel: the CLI and the agent read them at different moments.
const MEASURED: [&str; 7] = [
    "working_set",
    "usage_over_request",
    "available",
    "margin",
    "peak",
    "peak_working_set",
    "usage",
];

/// The API's document equals the CLI's apart from `taken_at`; figures the kernel measured
/// may differ by what changed between the two reads (within assert_close's tolerance),
/// and so may the sizes quoted in `reason` sentences. Returns how many measured figures
/// differed at all.
fn assert_same_document(api: &Value, cli: &Value, path: &str) -> usize {
    match (api, cli) {
        (Value::Object(a), Value::Object(c)) => {
            let keys = |o: &serde_json::Map<String, Value>| {
                o.keys()
                    .filter(|k| *k != "taken_at")
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(keys(a), keys(c), "{path}: fields differ");
            keys(a)
                .iter()
                .map(|k| assert_same_document(&a[k], &c[k], &format!("{path}.{k}")))
                .sum()
        }
        (Value::Array(a), Value::Array(c)) => {
            assert_eq!(a.len(), c.len(), "{path}: lengths differ");
            a.iter()
                .zip(c)
                .enumerate()
                .map(|(i, (a, c))| assert_same_document(a, c, &format!("{path}[{i}]")))
                .sum()
        }
        (Value::Number(a), Value::Number(c)) if a != c => {
            let last = path.rsplit('.').next().unwrap_or_default();
            let measured = MEASURED.contains(&last) || path.contains(".suggested.");
            assert!(measured, "{path}: {a} (agent) != {c} (CLI)");
            let (a, c) = (a.as_f64().unwrap(), c.as_f64().unwrap());
            let tolerance = (c.abs() / 50.0).max(2.0 * MIB as f64);
            assert!(
                (a - c).abs() <= tolerance,
                "{path}: {a} (agent) vs {c} (CLI)"
            );
            1
        }
        (Value::String(a), Value::String(c)) if a != c && path.ends_with(".reason") => {
            let words = |s: &str| s.replace(|ch: char| ch.is_ascii_digit() || ch == '.', "");
            assert_eq!(words(a), words(c), "{path}");
            1
        }
        (a, c) => {
            assert_eq!(a, c, "{path}");
            0
        }
    }
}

/// The series of `name` whose labels include `want`.
fn series(m: &Samples, name: &str, want: &[(&str, &str)]) -> Vec<f64> {
    m.iter()
        .filter(|((n, labels), _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect()
}

/// The one value of `name` for `want`.
#[track_caller]
fn one(m: &Samples, name: &str, want: &[(&str, &str)]) -> f64 {
    let found = series(m, name, want);
    assert_eq!(found.len(), 1, "{name} {want:?}: {found:?}");
    found[0]
}

#[test]
fn eviction_and_sizing_agree_with_the_cli_and_the_kernel() {
    let cluster = Cluster::new();
    let db = Scratch::new();
    let root = cluster.cg.dir.display().to_string();
    let pods = cluster.pods_file.display().to_string();
    let node = cluster.node_file.display().to_string();
    // 80% of allocatable (1 GiB) is more than what is left there: that signal is met.
    let agent = Agent::start(
        &db.dir.join("h.db"),
        &[
            "--cgroup-root",
            &root,
            "--pods",
            &pods,
            "--node",
            &node,
            "--eviction-threshold",
            "80%",
            // Containers' requests, limits and suggestions are an opt-in family.
            "--metrics-families",
            "container_sizing",
        ],
    );
    agent.wait_collections(1);
    let cli = cluster.json(&["eviction", "--json", "--threshold", "80%"]);
    let cli_requests = cluster.json(&["requests", "--json"]);
    let scrape = agent.get("/metrics");
    let api = agent.get("/api/v1/eviction");
    let api_requests = agent.get("/api/v1/requests");

    // The API serves the CLI's documents.
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(
        api.header("content-type").as_deref(),
        Some("application/json")
    );
    let api = api.json();
    assert_eq!(api["schema"], "memglass.eviction/v1");
    let moved = assert_same_document(&api, &cli, "eviction");
    eprintln!("eviction: {moved} measured figures moved between the CLI's read and the agent's");
    assert_eq!(api_requests.status, 200, "{}", api_requests.body);
    let api_requests = api_requests.json();
    assert_eq!(api_requests["schema"], "memglass.requests/v1");
    let moved = assert_same_document(&api_requests, &cli_requests, "requests");
    eprintln!("requests: {moved} measured figures moved");

    // /metrics: kubelet's order, the same as the CLI's.
    assert_eq!(scrape.status, 200);
    let m = parse_metrics(&scrape.body);
    let cli_pods = cli["pods"].as_array().unwrap();
    assert_eq!(cli_pods.len(), 7, "{cli:#}");
    assert_eq!(
        series(&m, "memglass_pod_eviction_rank", &[]).len(),
        7,
        "one rank per pod"
    );
    for pod in cli_pods {
        // Pods without a cgroup (pending) have cgroup="" and their names.
        let cgroup = pod["cgroup"].as_str().unwrap_or("");
        let mut want = vec![("cgroup", cgroup)];
        if cgroup.is_empty() {
            want.push(("pod", pod["pod"].as_str().unwrap()));
        }
        let rank = one(&m, "memglass_pod_eviction_rank", &want);
        assert_eq!(rank as u64, pod["rank"].as_u64().unwrap(), "{pod:#}");
        let labels = m
            .keys()
            .find(|(n, l)| n == "memglass_pod_eviction_rank" && l["cgroup"] == cgroup)
            .map(|(_, l)| l.clone())
            .unwrap();
        assert_eq!(
            labels.keys().collect::<Vec<_>>(),
            ["cgroup", "container", "namespace", "pod"]
        );
        assert_eq!(labels["pod"], pod["pod"].as_str().unwrap_or(""));
        assert_eq!(labels["namespace"], pod["namespace"].as_str().unwrap_or(""));
        assert_eq!(labels["container"], "");
        let evictable = one(&m, "memglass_pod_eviction_evictable", &want);
        assert_eq!(evictable == 1.0, pod["evictable"] == true, "{pod:#}");
        let next = one(&m, "memglass_pod_eviction_next", &want);
        assert_eq!(
            next == 1.0,
            pod["pod_uid"] == cli["next"]["pod_uid"],
            "{pod:#}"
        );
        let exceeds = series(&m, "memglass_pod_memory_exceeds_request", &want);
        match pod["exceeds_request"].as_bool() {
            Some(e) => assert_eq!(exceeds, [f64::from(u8::from(e))], "{pod:#}"),
            None => assert!(exceeds.is_empty(), "no stats, no series: {pod:#}"),
        }
        let request = series(&m, "memglass_pod_memory_request_bytes", &want);
        match (pod["requests_known"].as_bool(), pod["request"].as_u64()) {
            (Some(true), Some(r)) => assert_eq!(request, [r as f64], "{pod:#}"),
            _ => assert!(request.is_empty(), "{pod:#}"),
        }
        assert_eq!(
            one(&m, "memglass_pod_priority", &want),
            pod["priority"].as_f64().unwrap()
        );
        if let Some(ws) = pod["working_set"].as_u64() {
            // The pod's working set as the kernel counts it, in both.
            let over = one(&m, "memglass_pod_memory_usage_over_request_bytes", &want);
            let kernel = kernel_working_set(&cluster.cg.dir.join(cgroup.trim_start_matches('/')));
            assert_close(ws, kernel, "CLI working set vs kernel");
            let request = pod["request"].as_u64().unwrap_or(0);
            assert_close(
                (over + request as f64) as u64,
                kernel,
                "agent working set − request + request vs kernel",
            );
        }
    }
    // kubelet's order by name: the pending pod, then those over their requests.
    let rank_of = |name: &str| {
        let uid = cluster.uid(name);
        cli_pods.iter().find(|p| p["pod_uid"] == uid).unwrap()["rank"]
            .as_u64()
            .unwrap()
    };
    let order = [
        "pending",
        "besteffort",
        "unnamed",
        "hungry",
        "tight",
        "critical",
        "roomy",
    ];
    assert_eq!(order.map(rank_of), [1, 2, 3, 4, 5, 6, 7]);

    // The signals: the CLI's, and the kernel's own figures.
    for signal in cli["signals"].as_array().unwrap() {
        let name = signal["signal"].as_str().unwrap();
        let want = [
            ("signal", name),
            ("cgroup", signal["cgroup"].as_str().unwrap()),
        ];
        let available = one(&m, "memglass_eviction_signal_available_bytes", &want) as u64;
        assert_close(available, signal["available"].as_u64().unwrap(), name);
        let threshold = one(&m, "memglass_eviction_signal_threshold_bytes", &want) as u64;
        assert_eq!(threshold, signal["threshold"].as_u64().unwrap(), "{name}");
        let capacity = one(&m, "memglass_eviction_signal_capacity_bytes", &want) as u64;
        assert_eq!(capacity, signal["capacity"].as_u64().unwrap(), "{name}");
        let kernel = match name {
            "memory.available" => {
                assert_eq!(capacity, mem_total());
                mem_total() - kernel_working_set(&cluster.cg.dir)
            }
            _ => {
                assert_eq!(capacity, 1 << 30, "node allocatable from --node");
                (1 << 30) - kernel_working_set(&cluster.cg.dir.join("kubepods"))
            }
        };
        assert_close(available, kernel, name);
        // kubelet holds the fraction as a float32 (80/100 = 0.800000011920929…) and
        // multiplies in float64.
        let fraction = f64::from(80f32 / 100.0);
        assert_eq!(
            threshold,
            (capacity as f64 * fraction) as u64,
            "80% of capacity"
        );
    }
    assert_eq!(
        series(&m, "memglass_eviction_signal_available_bytes", &[]).len(),
        2
    );
    assert_eq!(cli["under_pressure"], true, "80% of allocatable is crossed");

    // Sizing: the node's sums, each pod's verdicts and suggestions.
    assert_eq!(
        one(&m, "memglass_node_allocatable_memory_bytes", &[]),
        f64::from(1u32 << 30)
    );
    assert_eq!(
        one(&m, "memglass_node_memory_requests_bytes", &[]) as u64,
        390 * MIB
    );
    assert_eq!(
        one(&m, "memglass_node_memory_limits_bytes", &[]) as u64,
        244 * MIB
    );
    for pod in cli_requests["pods"].as_array().unwrap() {
        let Some(cgroup) = pod["cgroup"].as_str() else {
            continue;
        };
        let want = [("cgroup", cgroup)];
        let mut verdicts: Vec<String> = m
            .iter()
            .filter(|((n, l), v)| {
                n == "memglass_pod_memory_sizing_verdict" && l["cgroup"] == cgroup && **v == 1.0
            })
            .map(|((_, l), _)| l["verdict"].clone())
            .collect();
        verdicts.sort();
        let mut expected: Vec<String> = pod["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        expected.sort();
        assert_eq!(verdicts, expected, "{cgroup}");
        if let Some(suggested) = pod["suggested"]["request"].as_u64() {
            let agent = one(&m, "memglass_pod_memory_suggested_request_bytes", &want) as u64;
            assert_close(agent, suggested, "suggested request");
            assert_eq!(agent % MIB, 0, "a whole number of MiB");
            let limit = one(&m, "memglass_pod_memory_suggested_limit_bytes", &want) as u64;
            assert_close(limit, pod["suggested"]["limit"].as_u64().unwrap(), "limit");
        }
        for container in pod["containers"].as_array().unwrap() {
            let path = container["cgroup"].as_str().unwrap();
            let named = [("cgroup", path), ("container", "app")];
            if let Some(request) = container["request"].as_u64() {
                let agent = one(&m, "memglass_container_memory_request_bytes", &named);
                assert_eq!(agent as u64, request, "{path}");
            }
            if let Some(suggested) = container["suggested"]["request"].as_u64() {
                let agent = one(
                    &m,
                    "memglass_container_memory_suggested_request_bytes",
                    &[("cgroup", path)],
                );
                assert_close(agent as u64, suggested, "container suggestion");
            }
        }
    }
    let tight = format!("/kubepods/burstable/pod{}", cluster.uid("tight"));
    assert_eq!(
        one(
            &m,
            "memglass_pod_memory_sizing_verdict",
            &[("cgroup", &tight), ("verdict", "near_limit")]
        ),
        1.0
    );
    assert_eq!(
        one(&m, "memglass_pod_memory_limit_bytes", &[("cgroup", &tight)]) as u64,
        44 * MIB
    );
    let tight_pod = cli_requests["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cgroup"] == tight.as_str())
        .unwrap();
    assert_close(
        one(
            &m,
            "memglass_pod_memory_suggested_request_bytes",
            &[("cgroup", &tight)],
        ) as u64,
        (40 * MIB * 115 / 100).div_ceil(MIB) * MIB,
        "tight's suggestion from its real 40 MiB",
    );
    assert!(tight_pod["verdicts"]
        .as_array()
        .unwrap()
        .contains(&"under_requested".into()));

    // Pod series join the cgroup series one to one (same label sets).
    let ws_labels: Vec<_> = m
        .keys()
        .filter(|(n, l)| {
            n == "memglass_cgroup_memory_working_set_kubelet_bytes" && l["cgroup"] == tight
        })
        .map(|(_, l)| l.clone())
        .collect();
    let rank_labels: Vec<_> = m
        .keys()
        .filter(|(n, l)| n == "memglass_pod_eviction_rank" && l["cgroup"] == tight)
        .map(|(_, l)| l.clone())
        .collect();
    assert_eq!(ws_labels, rank_labels);
    assert_eq!(rank_labels[0]["pod"], "tight");

    promtool_passes(&scrape.body);

    // The snapshot carries the node --node named.
    let snapshot = agent.get("/api/v1/snapshot").json();
    assert_eq!(snapshot["kubernetes_node"]["name"], NODE);
    assert_eq!(
        snapshot["kubernetes_node"]["allocatable_memory"].as_u64(),
        Some(1 << 30)
    );

    // A threshold kubelet would not take is a usage error.
    let bad = Command::new(memglass_bin())
        .args([
            "agent",
            "--eviction-threshold",
            "lots",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_default_threshold_is_kubelets_100mi() {
    let cluster = Cluster::new();
    let db = Scratch::new();
    let root = cluster.cg.dir.display().to_string();
    let node = cluster.node_file.display().to_string();
    let agent = Agent::start(
        &db.dir.join("h.db"),
        &["--cgroup-root", &root, "--node", &node],
    );
    let m = parse_metrics(&agent.get("/metrics").body);
    for signal in ["memory.available", "allocatableMemory.available"] {
        assert_eq!(
            one(
                &m,
                "memglass_eviction_signal_threshold_bytes",
                &[("signal", signal)]
            ) as u64,
            100 * MIB,
            "{signal}"
        );
    }
    // Without --pods nothing is known of requests: ranks by UID, no request series.
    assert_eq!(series(&m, "memglass_pod_eviction_rank", &[]).len(), 6);
    assert!(series(&m, "memglass_pod_memory_request_bytes", &[]).is_empty());
    let doc = agent.get("/api/v1/eviction").json();
    assert_eq!(doc["threshold"]["bytes"], 100 * MIB);
    promtool_passes(&agent.get("/metrics").body);
}
