//! `memglass eviction` and `memglass requests` on real cgroups (PRODUCT.md §2, questions 1,
//! 2 and 5): a kubelet-style tree under a test prefix (`kubepods/{burstable,besteffort}/
//! pod<uid>/<container id>`, a Guaranteed pod directly under kubepods), each container
//! holding real anonymous memory, and a `kubectl get pods -o json` / `kubectl get node -o
//! json` pair naming them with requests, limits and priorities. memglass reads the tree with
//! `--cgroup-root` (so the test's cgroup is the "root" and nobody else's pods take part).
//!
//! The pods are chosen so kubelet's order is not "largest first":
//!
//! | pod | anon | request | limit | priority | kubelet's rank |
//! |---|---|---|---|---|---|
//! | pending (bound here, no cgroup) | – | 100Mi | – | 0 | 1: no stats |
//! | besteffort | 30M | – | – | unset | 2: exceeds by 30M, priority 0 |
//! | unnamed (not in --pods) | 8M | ? | ? | ? | 3: exceeds by 8M, priority 0 |
//! | hungry | 120M | 64Mi | – | 1000 | 4: exceeds by 56M |
//! | tight | 40M | 16Mi | 44Mi | 1000 | 5: exceeds by 24M |
//! | critical | 16M | 10Mi | – | 2000001000 | 6: exceeds, but never evicted |
//! | roomy (Guaranteed) | 80M | 200Mi | 200Mi | 0 | 7: within its request |
//!
//! A pod bound to another node (1Gi request) must appear nowhere.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memglass_testkit::{args, assert_close, memglass_bin, Scratch, TestCgroup, Workload, MIB};
use serde_json::{json, Value};

const NODE: &str = "memglass-test-node";

/// One pod of the test cluster.
struct TestPod {
    name: &'static str,
    /// Path below the test cgroup: None for a pod without a cgroup.
    qos_dir: Option<&'static str>,
    anon_mib: u64,
    request: Option<&'static str>,
    limit: Option<&'static str>,
    priority: Option<i64>,
    priority_class: Option<&'static str>,
    qos: &'static str,
    /// Listed in --pods.
    listed: bool,
    node: &'static str,
    phase: &'static str,
}

const PODS: [TestPod; 8] = [
    TestPod {
        name: "tight",
        qos_dir: Some("kubepods/burstable"),
        anon_mib: 40,
        request: Some("16Mi"),
        limit: Some("44Mi"),
        priority: Some(1000),
        priority_class: Some("batch"),
        qos: "Burstable",
        listed: true,
        node: NODE,
        phase: "Running",
    },
    TestPod {
        name: "roomy",
        qos_dir: Some("kubepods"),
        anon_mib: 80,
        request: Some("200Mi"),
        limit: Some("200Mi"),
        priority: Some(0),
        priority_class: None,
        qos: "Guaranteed",
        listed: true,
        node: NODE,
        phase: "Running",
    },
    TestPod {
        name: "hungry",
        qos_dir: Some("kubepods/burstable"),
        anon_mib: 120,
        request: Some("64Mi"),
        limit: None,
        priority: Some(1000),
        priority_class: Some("batch"),
        qos: "Burstable",
        listed: true,
        node: NODE,
        phase: "Running",
    },
    TestPod {
        name: "besteffort",
        qos_dir: Some("kubepods/besteffort"),
        anon_mib: 30,
        request: None,
        limit: None,
        priority: None,
        priority_class: None,
        qos: "BestEffort",
        listed: true,
        node: NODE,
        phase: "Running",
    },
    TestPod {
        name: "critical",
        qos_dir: Some("kubepods/burstable"),
        anon_mib: 16,
        request: Some("10Mi"),
        limit: None,
        priority: Some(2_000_001_000),
        priority_class: Some("system-node-critical"),
        qos: "Burstable",
        listed: true,
        node: NODE,
        phase: "Running",
    },
    TestPod {
        name: "unnamed",
        qos_dir: Some("kubepods/burstable"),
        anon_mib: 8,
        request: None,
        limit: None,
        priority: None,
        priority_class: None,
        qos: "Burstable",
        listed: false,
        node: NODE,
        phase: "Running",
    },
    TestPod {
        name: "pending",
        qos_dir: None,
        anon_mib: 0,
        request: Some("100Mi"),
        limit: None,
        priority: Some(0),
        priority_class: None,
        qos: "Burstable",
        listed: true,
        node: NODE,
        phase: "Pending",
    },
    TestPod {
        name: "elsewhere",
        qos_dir: None,
        anon_mib: 0,
        request: Some("1Gi"),
        limit: None,
        priority: Some(0),
        priority_class: None,
        qos: "Burstable",
        listed: true,
        node: "another-node",
        phase: "Running",
    },
];

/// The tree, its workloads and the --pods/--node files; removed on drop. Fields drop in
/// order: the workloads first, so their cgroups are empty when the tree is removed.
struct Cluster {
    _workloads: Vec<Workload>,
    cg: TestCgroup,
    _scratch: Scratch,
    pods_file: PathBuf,
    node_file: PathBuf,
    /// Pod name → (uid, pod cgroup dir).
    pods: Vec<(&'static str, String, Option<PathBuf>)>,
}

impl Cluster {
    fn new() -> Cluster {
        let cg = TestCgroup::new();
        let scratch = Scratch::new();
        let pid = std::process::id();
        let mut items = Vec::new();
        let mut workloads = Vec::new();
        let mut pods = Vec::new();
        for (n, pod) in PODS.iter().enumerate() {
            // Unique per test process: other runs may build kubepods trees at the same time.
            let uid = format!("{pid:08x}-e71c-4000-8000-{n:012x}");
            let container_id = format!("{pid:08x}{:056x}", n + 1);
            let mut dir = None;
            if let Some(qos_dir) = pod.qos_dir {
                let (container_dir, _) = cg.child(&format!("{qos_dir}/pod{uid}/{container_id}"));
                dir = container_dir.parent().map(Path::to_path_buf);
                workloads.push(Workload::start(
                    &container_dir,
                    &args(&[("--anon", format!("{}M", pod.anon_mib))]),
                ));
            }
            pods.push((pod.name, uid.clone(), dir));
            if pod.listed {
                items.push(pod_json(pod, &uid, &container_id));
            }
        }
        let pods_file = scratch.dir.join("pods.json");
        let node_file = scratch.dir.join("node.json");
        let list = json!({"kind": "List", "apiVersion": "v1", "items": items});
        std::fs::write(&pods_file, list.to_string()).unwrap();
        let node = json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": NODE},
            "status": {"capacity": {"memory": "2Gi"}, "allocatable": {"memory": "1Gi"}}});
        std::fs::write(&node_file, node.to_string()).unwrap();
        Cluster {
            cg,
            _scratch: scratch,
            _workloads: workloads,
            pods_file,
            node_file,
            pods,
        }
    }

    /// Run memglass on this tree with --pods and --node.
    fn memglass(&self, command: &[&str]) -> Output {
        let output = Command::new(memglass_bin())
            .arg("--no-cri")
            .arg("--cgroup-root")
            .arg(&self.cg.dir)
            .arg("--pods")
            .arg(&self.pods_file)
            .arg("--node")
            .arg(&self.node_file)
            .args(command)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "memglass {command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn json(&self, command: &[&str]) -> Value {
        serde_json::from_slice(&self.memglass(command).stdout).unwrap()
    }

    fn uid(&self, name: &str) -> &str {
        &self.pods.iter().find(|p| p.0 == name).unwrap().1
    }

    fn dir(&self, name: &str) -> &Path {
        self.pods
            .iter()
            .find(|p| p.0 == name)
            .and_then(|p| p.2.as_deref())
            .unwrap()
    }
}

fn pod_json(pod: &TestPod, uid: &str, container_id: &str) -> Value {
    let mut resources = json!({});
    if let Some(request) = pod.request {
        resources["requests"] = json!({"memory": request});
    }
    if let Some(limit) = pod.limit {
        resources["limits"] = json!({"memory": limit});
    }
    let mut spec = json!({"nodeName": pod.node,
        "containers": [{"name": "app", "image": "busybox", "resources": resources}]});
    if let Some(priority) = pod.priority {
        spec["priority"] = json!(priority);
    }
    if let Some(class) = pod.priority_class {
        spec["priorityClassName"] = json!(class);
    }
    json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": pod.name, "namespace": "evict", "uid": uid,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{}-rs", pod.name), "uid": "00000000-0000-4000-8000-000000000000",
                "controller": true}]},
        "spec": spec,
        "status": {"phase": pod.phase, "qosClass": pod.qos,
            "containerStatuses": [{"name": "app", "image": "busybox", "imageID": "",
                "ready": true, "restartCount": 0,
                "containerID": format!("containerd://{container_id}")}]}})
}

/// usage − inactive_file of a cgroup, read from the kernel's own files now.
fn kernel_working_set(dir: &Path) -> u64 {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let v2 = dir.join("memory.current").exists();
    let usage: u64 = read(if v2 {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    })
    .trim()
    .parse()
    .unwrap();
    let key = if v2 {
        "inactive_file"
    } else {
        "total_inactive_file"
    };
    let inactive_file: u64 = read("memory.stat")
        .lines()
        .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
        .unwrap();
    usage.saturating_sub(inactive_file)
}

fn mem_total() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn u(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{value} is not a size"))
}

fn i(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

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
    // be evicting; 80% of MemTotal is far below what the node has available.
    let pressed = cluster.json(&["eviction", "--json", "--threshold", "80%"]);
    let signals = pressed["signals"].as_array().unwrap();
    assert_eq!(signals[0]["met"], false, "{pressed:#}");
    assert_eq!(
        u(&signals[0]["threshold"]),
        (mem_total() as f64 * 0.8) as u64
    );
    assert_eq!(signals[1]["met"], true, "{pressed:#}");
    assert_eq!(
        u(&signals[1]["threshold"]),
        (f64::from(1u32 << 30) * 0.8) as u64
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
