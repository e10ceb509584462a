//! A kubelet-style tree of real cgroups holding real memory, and the `--pods`/`--node`
//! files naming it (PRODUCT.md §2, questions 1, 2 and 5). Shared by the eviction tests of
//! the CLI (tests/kernel/eviction.rs) and of the agent (tests/agent.rs).
//!
//! `kubepods/{burstable,besteffort}/pod<uid>/<container id>` under a test prefix (a
//! Guaranteed pod directly under kubepods), each container holding real anonymous memory
//! (the memglass-workload helper), and a `kubectl get pods -o json` / `kubectl get node -o
//! json` pair naming them with requests, limits and priorities. memglass reads the tree
//! with `--cgroup-root` (so the test's cgroup is the "root" and nobody else's pods take
//! part).
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
#![allow(clippy::unwrap_used, dead_code)] // tests: fail loudly; each binary uses a part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memglass_testkit::{args, memglass_bin, Scratch, TestCgroup, Workload};
use serde_json::{json, Value};

pub const NODE: &str = "memglass-test-node";

/// One pod of the test cluster.
pub struct TestPod {
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

pub const PODS: [TestPod; 8] = [
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
pub struct Cluster {
    _workloads: Vec<Workload>,
    pub cg: TestCgroup,
    _scratch: Scratch,
    pub pods_file: PathBuf,
    pub node_file: PathBuf,
    /// Pod name → (uid, pod cgroup dir).
    pub pods: Vec<(&'static str, String, Option<PathBuf>)>,
}

impl Cluster {
    pub fn new() -> Cluster {
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
    pub fn memglass(&self, command: &[&str]) -> Output {
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

    pub fn json(&self, command: &[&str]) -> Value {
        serde_json::from_slice(&self.memglass(command).stdout).unwrap()
    }

    pub fn uid(&self, name: &str) -> &str {
        &self.pods.iter().find(|p| p.0 == name).unwrap().1
    }

    pub fn dir(&self, name: &str) -> &Path {
        self.pods
            .iter()
            .find(|p| p.0 == name)
            .and_then(|p| p.2.as_deref())
            .unwrap()
    }
}

pub fn pod_json(pod: &TestPod, uid: &str, container_id: &str) -> Value {
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
pub fn kernel_working_set(dir: &Path) -> u64 {
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

pub fn mem_total() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

pub fn u(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{value} is not a size"))
}

pub fn i(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{value} is not a number"))
}
