//! Tier 6: `memglass cluster` against a real Prometheus (Debian's `prometheus`) and a real
//! VictoriaMetrics (Debian's `victoria-metrics`, single node), both scraping the same three
//! real agents every second. Each agent is a "node": its own `--node-name`, its own
//! `--cgroup-root` subtree of real cgroups (kubepods/burstable/pod<uid>/<container id>)
//! holding real memory, its own `--pods`/`--node` files, and its own network namespace
//! (`ip netns`, a veth pair, 10.x.y.0/30 addresses chosen from the test's PID; the agent
//! enters only the network namespace with `nsenter --net`, because `ip netns exec` mounts a
//! fresh /sys that hides the cgroup filesystems): the agent
//! listens on its namespace's address with a bearer token, as a DaemonSet pod would, and
//! the stores scrape it across the veth. The stores listen on 127.0.0.1. Every process is
//! killed by its PID when the test ends; the namespaces (with their veths) and the cgroups
//! are removed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: fail loudly

mod agent_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use agent_support::*;
use memglass_testkit::{memglass_bin, Scratch, TestCgroup, Workload};
use serde_json::{json, Value};

/// One pod of a node: name, anon MiB held, memory request, container limit (MiB).
struct PodSpec {
    name: &'static str,
    anon_mib: u64,
    request: &'static str,
    limit_mib: Option<u64>,
}

const NODES: [(&str, &[PodSpec]); 3] = [
    (
        "node-a",
        &[
            PodSpec {
                name: "fat-a",
                anon_mib: 24,
                request: "800Mi",
                limit_mib: None,
            },
            PodSpec {
                name: "web-a",
                anon_mib: 40,
                request: "16Mi",
                limit_mib: None,
            },
        ],
    ),
    (
        "node-b",
        &[
            // Allocated once and never touched again: all of it inactive_anon.
            PodSpec {
                name: "idle-b",
                anon_mib: 160,
                request: "64Mi",
                limit_mib: None,
            },
            PodSpec {
                name: "small-b",
                anon_mib: 8,
                request: "4Mi",
                limit_mib: None,
            },
        ],
    ),
    (
        "node-c",
        &[
            PodSpec {
                name: "app-c",
                anon_mib: 16,
                request: "8Mi",
                limit_mib: None,
            },
            // Its container's limit is 32 MiB; the test allocates 64 MiB in it.
            PodSpec {
                name: "oomer-c",
                anon_mib: 0,
                request: "16Mi",
                limit_mib: Some(32),
            },
        ],
    ),
];

const TOKEN: &str = "cluster-test-token";

/// A network namespace with a veth pair to this one; deleted (with the pair) on drop.
struct NetNs {
    name: String,
    /// This side's address and the namespace's.
    host: String,
    inside: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    fn new(index: usize) -> NetNs {
        let pid = std::process::id();
        let name = format!("memglass-test-{pid}-{index}");
        // 10.(64..128).(0..256).(4 index + 1, 2): one /30 per node, unique per test PID.
        let base = format!("10.{}.{}", 64 + (pid >> 8) % 64, pid % 256);
        let host = format!("{base}.{}", index * 4 + 1);
        let inside = format!("{base}.{}", index * 4 + 2);
        let (veth_host, veth_inside) = (format!("mg{pid:x}h{index}"), format!("mg{pid:x}n{index}"));
        ip(&["netns", "add", &name]);
        let ns = NetNs { name, host, inside };
        ip(&[
            "link",
            "add",
            &veth_host,
            "type",
            "veth",
            "peer",
            "name",
            &veth_inside,
            "netns",
            &ns.name,
        ]);
        ip(&["addr", "add", &format!("{}/30", ns.host), "dev", &veth_host]);
        ip(&["link", "set", &veth_host, "up"]);
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{}/30", ns.inside),
            "dev",
            &veth_inside,
        ]);
        ip(&["-n", &ns.name, "link", "set", &veth_inside, "up"]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A node: its cgroup subtree, workloads, files, network namespace and agent.
struct TestNode {
    name: &'static str,
    // Drop order: the agent, the namespace, the workloads, then the cgroups.
    agent: Agent,
    _netns: NetNs,
    _workloads: Vec<Workload>,
    _cg: TestCgroup,
    _scratch: Scratch,
    pods_json: Value,
    /// Pod name → container cgroup dir.
    containers: Vec<(&'static str, PathBuf)>,
}

fn pod_json(node: &str, pod: &PodSpec, uid: &str, container_id: &str) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": pod.name, "namespace": "shop", "uid": uid},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox",
            "resources": {"requests": {"memory": pod.request, "cpu": "10m"}}}]},
        "status": {"phase": "Running", "qosClass": "Burstable",
            "containerStatuses": [{"name": "app", "image": "busybox", "imageID": "",
                "ready": true, "restartCount": 0,
                "containerID": format!("containerd://{container_id}")}]}})
}

fn node_json(name: &str) -> Value {
    json!({"kind": "Node", "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"capacity": {"memory": "2Gi", "cpu": "2", "pods": "110"},
                   "allocatable": {"memory": "1Gi", "cpu": "2", "pods": "110"}}})
}

impl TestNode {
    fn start(index: usize, name: &'static str, pods: &[PodSpec]) -> TestNode {
        let cg = TestCgroup::new();
        let scratch = Scratch::new();
        let pid = std::process::id();
        let mut items = Vec::new();
        let mut workloads = Vec::new();
        let mut containers = Vec::new();
        for (n, pod) in pods.iter().enumerate() {
            let uid = format!("{pid:08x}-c1a5-4000-8{index:03x}-{n:012x}");
            let container_id = format!("{pid:08x}{index:04x}{:052x}", n + 1);
            let (dir, _) = cg.child(&format!("kubepods/burstable/pod{uid}/{container_id}"));
            if let Some(limit) = pod.limit_mib {
                // Only the memory limit (not memsw): the kernel OOM-kills.
                cg.write(
                    &dir,
                    if cg.is_v2() {
                        "memory.max"
                    } else {
                        "memory.limit_in_bytes"
                    },
                    &(limit * MIB).to_string(),
                );
            }
            if pod.anon_mib > 0 {
                workloads.push(Workload::start(
                    &dir,
                    &args(&[("--anon", format!("{}M", pod.anon_mib))]),
                ));
            }
            containers.push((pod.name, dir));
            items.push(pod_json(name, pod, &uid, &container_id));
        }
        let pods_json = json!({"kind": "List", "apiVersion": "v1", "items": items});
        let pods_file = scratch.dir.join("pods.json");
        let node_file = scratch.dir.join("node.json");
        std::fs::write(&pods_file, pods_json.to_string()).unwrap();
        std::fs::write(&node_file, node_json(name).to_string()).unwrap();
        let root = cg.dir.display().to_string();
        let (pods_arg, node_arg) = (
            pods_file.display().to_string(),
            node_file.display().to_string(),
        );
        let extra = vec![
            "--cgroup-root",
            root.as_str(),
            "--pods",
            pods_arg.as_str(),
            "--node",
            node_arg.as_str(),
            "--node-name",
            name,
        ];
        // The kernel log is the whole host's: each agent keeps the kills inside its own
        // subtree (paths mapped into it) and counts its node's kills from its root's
        // counter, not /proc/vmstat (a live --cgroup-root subtree is a node of its own).
        let netns = NetNs::new(index);
        let token_file = scratch.dir.join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let token_file = token_file.display().to_string();
        let agent = Agent::start_in(
            &["nsenter", &format!("--net=/run/netns/{}", netns.name)],
            &format!("{}:9850", netns.inside),
            Some((&token_file, TOKEN)),
            &scratch.dir.join("h.db"),
            &extra,
        );
        assert_eq!(agent.addr.to_string(), format!("{}:9850", netns.inside));
        TestNode {
            name,
            agent,
            _netns: netns,
            _workloads: workloads,
            _cg: cg,
            _scratch: scratch,
            pods_json,
            containers,
        }
    }

    fn container(&self, pod: &str) -> &Path {
        &self.containers.iter().find(|c| c.0 == pod).unwrap().1
    }
}

/// A store we started, with its log.
struct Store {
    name: &'static str,
    addr: SocketAddr,
    _server: Started,
    log: PathBuf,
}

impl Store {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query's result, or None while the store does not answer yet.
    fn query(&self, query: &str) -> Option<Vec<Value>> {
        let path = format!("/api/v1/query?query={}", urlencode(query));
        let answer = try_get(self.addr, &path)?;
        let body: Value = serde_json::from_str(&answer.body).ok()?;
        body["data"]["result"].as_array().cloned()
    }
}

/// The first target carries a `node` target label (as a scrape config that relabels
/// `__meta_kubernetes_pod_node_name` would); the others are named by the agents'
/// `memglass_node_info`. Both ways must give the same names.
fn scrape_config(targets: &[String], token_file: &Path) -> String {
    let (first, rest) = targets.split_first().unwrap();
    let list = rest
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: memglass\n    scrape_interval: 1s\n    scrape_timeout: 1s\n\
         \x20   bearer_token_file: {}\n\
         \x20   static_configs:\n\
         \x20     - targets: ['{first}']\n        labels: {{node: {}}}\n\
         \x20     - targets: [{list}]\n",
        token_file.display(),
        NODES[0].0
    )
}

fn start_prometheus(dir: &Path, config: &str) -> Store {
    let port = free_port();
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let log = dir.join("prometheus.log");
    let server = Started(
        Command::new("/usr/bin/prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    Store {
        name: "prometheus",
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        _server: server,
        log,
    }
}

fn start_victoria_metrics(dir: &Path, config: &str) -> Store {
    let port = free_port();
    std::fs::write(dir.join("scrape.yml"), config).unwrap();
    let log = dir.join("victoria-metrics.log");
    let server = Started(
        Command::new("/usr/bin/victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.join("vm").display()))
            .arg(format!(
                "-promscrape.config={}",
                dir.join("scrape.yml").display()
            ))
            .arg("-retentionPeriod=1d")
            // Answer with what was just scraped (the default hides the last 30 s).
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .arg("-loggerLevel=WARN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    Store {
        name: "victoria-metrics",
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        _server: server,
        log,
    }
}

/// `memglass cluster ARGS --prometheus URL --json`, its document and its wall time.
fn cluster(store: &Store, command: &[&str]) -> (Value, Duration) {
    let started = Instant::now();
    let output = Command::new(memglass_bin())
        .arg("cluster")
        .args(command)
        .args(["--prometheus", &store.url(), "--json"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "memglass cluster {command:?} on {}: {}",
        store.name,
        String::from_utf8_lossy(&output.stderr)
    );
    (serde_json::from_slice(&output.stdout).unwrap(), took)
}

/// Poll `done` every 500 ms for up to `seconds`.
#[track_caller]
fn wait(store: &Store, seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{}: {what}; log:\n{}", store.name, store.log());
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn cluster_commands_on_prometheus_and_victoria_metrics() {
    tool_present("/usr/bin/prometheus", "prometheus");
    tool_present("/usr/bin/victoria-metrics", "victoria-metrics");
    let nodes: Vec<TestNode> = NODES
        .iter()
        .enumerate()
        .map(|(i, (name, pods))| TestNode::start(i, name, pods))
        .collect();
    let targets: Vec<String> = nodes.iter().map(|n| n.agent.addr.to_string()).collect();
    let dir = Scratch::new();
    std::fs::write(dir.dir.join("token"), TOKEN).unwrap();
    let config = scrape_config(&targets, &dir.dir.join("token"));
    let stores = [
        start_prometheus(&dir.dir, &config),
        start_victoria_metrics(&dir.dir, &config),
    ];
    for store in &stores {
        wait(store, 120, "three agents scraped", || {
            store
                .query("count(memglass_node_info)")
                .and_then(|r| r.first().map(|s| s["value"][1] == "3"))
                .unwrap_or(false)
        });
        // node-a's target label won; the agent's own name moved to exported_node.
        let info = store.query("memglass_node_info{node=\"node-a\"}").unwrap();
        assert_eq!(info.len(), 1, "{}: {info:?}", store.name);
        assert_eq!(
            info[0]["metric"]["exported_node"], "node-a",
            "{}",
            store.name
        );
    }

    // A real OOM kill in node-c's container, after the stores began scraping, so the
    // victim's series is born inside the window (docs/metrics.md's caveat).
    let oomer = nodes[2].container("oomer-c");
    memglass_testkit::oom_kill_in(oomer);

    let mut latencies = Vec::new();
    for store in &stores {
        // top --by inactive_anon: idle-b on node-b first, every pod on its own node.
        wait(store, 60, "top lists all six pods", || {
            cluster(store, &["top", "--by", "inactive_anon"]).0["pods"]
                .as_array()
                .is_some_and(|p| p.len() == 6)
        });
        let (top, _) = cluster(store, &["top", "--by", "inactive_anon"]);
        assert_eq!(top["schema"], "memglass.cluster-top/v1");
        assert_eq!(top["by"], "inactive_anon");
        let first = &top["pods"][0];
        assert_eq!(first["node"], "node-b", "{}: {top}", store.name);
        assert_eq!(first["namespace"], "shop");
        assert_eq!(first["pod"], "idle-b", "{}: {top}", store.name);
        assert_close(
            first["value"].as_u64().unwrap(),
            160 * MIB,
            "idle-b inactive_anon",
        );
        assert!(
            first["working_set_kubelet"].as_u64().unwrap() >= 150 * MIB,
            "{first}"
        );
        for pod in top["pods"].as_array().unwrap() {
            let name = pod["pod"].as_str().unwrap();
            let node = NODES
                .iter()
                .find(|(_, pods)| pods.iter().any(|p| p.name == name))
                .unwrap()
                .0;
            assert_eq!(pod["node"], node, "{}: {pod}", store.name);
        }
        let oomer_row = top["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pod"] == "oomer-c")
            .unwrap();
        // The 32 MiB limit is its container's; the pod cgroup has none.
        assert!(oomer_row["limit"].is_null(), "{oomer_row}");
        // --limit and --namespace go to the store.
        let (two, _) = cluster(store, &["top", "--by", "anon", "--limit", "2"]);
        assert_eq!(two["pods"].as_array().unwrap().len(), 2, "{two}");
        assert_eq!(two["pods"][0]["pod"], "idle-b");
        assert_eq!(two["pods"][1]["pod"], "web-a");
        let (none, _) = cluster(store, &["top", "--namespace", "elsewhere"]);
        assert_eq!(none["pods"], json!([]));

        // eviction: each node's next pod is what that node's agent says.
        let (eviction, _) = cluster(store, &["eviction"]);
        assert_eq!(eviction["schema"], "memglass.cluster-eviction/v1");
        let rows = eviction["nodes"].as_array().unwrap();
        assert_eq!(rows.len(), 3, "{}: {eviction}", store.name);
        for node in &nodes {
            let row = rows.iter().find(|r| r["node"] == node.name).unwrap();
            let own = node
                .agent
                .get_with(
                    "/api/v1/eviction",
                    &[("Authorization", &format!("Bearer {TOKEN}"))],
                )
                .json();
            assert_eq!(
                (&row["next"]["namespace"], &row["next"]["pod"]),
                (&own["next"]["namespace"], &own["next"]["pod"]),
                "{}: {row} vs the agent's {}",
                store.name,
                own["next"]
            );
            assert!(row["next"]["pod"].is_string(), "{row}");
            let tightest = own["signals"]
                .as_array()
                .unwrap()
                .iter()
                .min_by_key(|s| s["margin"].as_i64().unwrap())
                .unwrap();
            assert_eq!(row["signal"], tightest["signal"], "{row} vs {tightest}");
            assert_eq!(row["threshold"], tightest["threshold"]);
            assert_eq!(
                row["margin"].as_i64().unwrap(),
                row["available"].as_i64().unwrap() - row["threshold"].as_i64().unwrap()
            );
        }
        let margins: Vec<i64> = rows.iter().map(|r| r["margin"].as_i64().unwrap()).collect();
        assert!(margins.windows(2).all(|w| w[0] <= w[1]), "{margins:?}");

        // oom: the one real kill, counted once, in node-c's container.
        wait(store, 60, "the OOM kill is counted", || {
            cluster(store, &["oom", "--since", "10m"]).0["kills"]
                .as_array()
                .is_some_and(|k| !k.is_empty())
        });
        // Let a few more scrapes land: the count must not grow (born-at-1 counted once).
        std::thread::sleep(Duration::from_secs(3));
        let (oom, _) = cluster(store, &["oom", "--since", "10m"]);
        assert_eq!(oom["schema"], "memglass.cluster-oom/v1");
        assert_eq!(oom["since"], "10m");
        // The three "nodes" share this host's kernel log and /proc/vmstat, but each counts
        // only the kills inside its own subtree: one row, on node-c.
        let kills = oom["kills"].as_array().unwrap();
        assert_eq!(kills.len(), 1, "{}: {oom}", store.name);
        let kill = &kills[0];
        assert_eq!(kill["node"], "node-c", "{kill}");
        assert_eq!(kill["namespace"], "shop");
        assert_eq!(kill["pod"], "oomer-c", "{kill}");
        assert_eq!(kill["container"], "app", "{kill}");
        assert_eq!(kill["scope"], "container", "{kill}");
        assert_eq!(kill["cause"], "anon", "{kill}: the kernel report's stats");
        assert_eq!(kill["count"], 1, "{}: {kill}", store.name);

        // The tables for people name the same pods.
        for (command, expect) in [
            (&["top", "--by", "inactive_anon"][..], "shop/idle-b"),
            (&["oom", "--since", "10m"][..], "shop/oomer-c"),
            (&["eviction"][..], "node-c"),
        ] {
            let out = Command::new(memglass_bin())
                .arg("cluster")
                .args(command)
                .args(["--prometheus", &store.url()])
                .output()
                .unwrap();
            assert!(out.status.success());
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(expect), "{command:?}:\n{text}");
            if store.name == "prometheus" {
                eprintln!("$ memglass cluster {}\n{text}", command.join(" "));
            }
        }

        // Latency of each command (the whole process: start, its queries in parallel, the
        // answers), and of its queries alone asked one after another, medians of 5.
        let by: memglass_cluster::top::By = "inactive_anon".parse().unwrap();
        for (command, queries) in [
            (
                &["top", "--by", "inactive_anon"][..],
                memglass_cluster::top::queries(&by, None, 20),
            ),
            (
                &["oom", "--since", "24h"][..],
                memglass_cluster::oom::queries(Duration::from_secs(86400), None),
            ),
            (&["eviction"][..], memglass_cluster::eviction::queries()),
        ] {
            let times = (0..5).map(|_| cluster(store, command).1).collect();
            let store_times = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    for q in &queries {
                        let path = format!("/api/v1/query?query={}", urlencode(q));
                        assert_eq!(http_get(store.addr, &path, &[]).status, 200, "{q}");
                    }
                    started.elapsed()
                })
                .collect();
            latencies.push(format!(
                "{:<16} {:<22} command {:>6.1} ms · its {} queries in series {:>6.1} ms",
                store.name,
                command.join(" "),
                median(times).as_secs_f64() * 1000.0,
                queries.len(),
                median(store_times).as_secs_f64() * 1000.0
            ));
        }
    }

    // pending with Prometheus: a 400Mi pod does not fit node-a (800Mi + 16Mi requested of
    // 1Gi), whose fat-a uses a fraction of its request: shrink fat-a.
    let mut all_pods: Vec<Value> = nodes
        .iter()
        .flat_map(|n| n.pods_json["items"].as_array().unwrap().clone())
        .collect();
    all_pods.push(json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "new", "namespace": "shop", "uid": "n-e-w"},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"memory": "400Mi"}}}]},
        "status": {"phase": "Pending"}}));
    std::fs::write(
        dir.dir.join("all-pods.json"),
        json!({"items": all_pods}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.dir.join("nodes.json"),
        json!({"items": NODES.iter().map(|(n, _)| node_json(n)).collect::<Vec<_>>()}).to_string(),
    )
    .unwrap();
    for store in &stores {
        let started = Instant::now();
        let output = Command::new(memglass_bin())
            .arg("--pods")
            .arg(dir.dir.join("all-pods.json"))
            .args(["cluster", "pending", "--nodes"])
            .arg(dir.dir.join("nodes.json"))
            .args(["--prometheus", &store.url(), "--json"])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pending: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(pending["schema"], "memglass.cluster-pending/v1");
        assert_eq!(pending["pods"].as_array().unwrap().len(), 1, "{pending}");
        let pod = &pending["pods"][0];
        assert_eq!(pod["pod"], "new");
        assert_eq!(pod["request"], 400 * MIB);
        let node = |name: &str| {
            pod["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["node"] == name)
                .unwrap()
                .clone()
        };
        let a = node("node-a");
        assert_eq!(a["fits"], false, "{a}");
        assert_eq!(a["requested"], 816 * MIB);
        assert_eq!(a["free"], 208 * MIB);
        assert!(a["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("Insufficient memory"));
        // fat-a requests 800Mi and uses ~24 MiB; web-a uses more than its 16Mi.
        assert!(a["unused_requests"].as_u64().unwrap() > 700 * MIB, "{a}");
        assert_eq!(a["shrink"][0]["pod"], "fat-a", "{a}");
        assert!(a["shrink"][0]["frees"].as_u64().unwrap() > 192 * MIB, "{a}");
        assert_eq!(node("node-b")["fits"], true);
        latencies.push(format!(
            "{:<16} {:<22} command {:>6.1} ms (one run)",
            store.name,
            "pending (+ usage)",
            took.as_secs_f64() * 1000.0
        ));
    }

    // Series each node's agent exports, as the stores see them.
    let prometheus = &stores[0];
    let series = prometheus.query("scrape_samples_scraped").unwrap();
    let mut per_node = Vec::new();
    for node in &nodes {
        let addr = node.agent.addr.to_string();
        let n = series
            .iter()
            .find(|s| s["metric"]["instance"] == addr.as_str())
            .map(|s| s["value"][1].as_str().unwrap().to_owned())
            .unwrap();
        per_node.push(format!("{}: {n} series", node.name));
    }
    eprintln!("cluster query latency:");
    for line in &latencies {
        eprintln!("  {line}");
    }
    eprintln!("series per node: {}", per_node.join(", "));
}

/// A stand-in store on 127.0.0.1 answering every request with `status` and `body`.
fn fake_store(status: &'static str, body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn run(args: &[&str], env_url: Option<&str>) -> Output {
    let mut command = Command::new(memglass_bin());
    command.args(args).env_remove("MEMGLASS_PROMETHEUS_URL");
    if let Some(url) = env_url {
        command.env("MEMGLASS_PROMETHEUS_URL", url);
    }
    command.output().unwrap()
}

#[test]
fn store_errors_are_one_line_and_exit_1_usage_errors_exit_2() {
    let refused = fake_store(
        "400 Bad Request",
        r#"{"status":"error","errorType":"bad_data","error":"1:14: parse error: unexpected character"}"#,
    );
    let out = run(&["cluster", "eviction"], Some(&format!("http://{refused}")));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad_data: 1:14: parse error: unexpected character"),
        "{stderr}"
    );

    let proxy = fake_store("502 Bad Gateway", "<html>bad gateway</html>");
    let out = run(
        &["cluster", "top", "--prometheus", &format!("http://{proxy}")],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 502 is not a Prometheus API answer"),
        "{stderr}"
    );

    let out = run(&["cluster", "oom"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MEMGLASS_PROMETHEUS_URL"));
    let out = run(
        &["cluster", "top", "--by", "rss", "--prometheus", "http://x"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["cluster", "pending", "--nodes", "/nonexistent"], None);
    assert_eq!(out.status.code(), Some(2));

    // An empty answer is no error: an empty document.
    let empty = fake_store(
        "200 OK",
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
    );
    let out = run(
        &[
            "cluster",
            "top",
            "--json",
            "--prometheus",
            &format!("http://{empty}"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"schema":"memglass.cluster-top/v1","by":"working_set_kubelet","pods":[]}"#
    );
}

/// A CA and a server certificate for 127.0.0.1 (openssl), in `dir`: (ca.pem, server.pem,
/// server.key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=memglass test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn secured_stores_tls_with_a_ca_file_or_none_basic_auth_and_bearer_tokens() {
    tool_present("/usr/bin/victoria-metrics", "victoria-metrics");
    let dir = Scratch::new();
    let (ca, cert, key) = certificates(&dir.dir);
    std::fs::write(dir.dir.join("password"), "s3cret\n").unwrap();
    std::fs::write(dir.dir.join("wrong"), "nope\n").unwrap();
    // VictoriaMetrics over TLS with basic auth (nothing to scrape: empty answers).
    let port = free_port();
    let log = dir.dir.join("vm.log");
    let _vm = Started(
        Command::new("/usr/bin/victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.dir.join("vm").display()))
            .arg("-tls")
            .arg(format!("-tlsCertFile={}", cert.display()))
            .arg(format!("-tlsKeyFile={}", key.display()))
            .arg("-httpAuth.username=memglass")
            .arg("-httpAuth.password=s3cret")
            .arg("-loggerLevel=WARN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "victoria-metrics never listened: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let url = format!("https://127.0.0.1:{port}");
    let ca = ca.display().to_string();
    let auth = format!("memglass:{}", dir.dir.join("password").display());
    let wrong = format!("memglass:{}", dir.dir.join("wrong").display());
    let cmd = |extra: &[&str]| {
        let mut args = vec!["cluster", "eviction", "--json", "--prometheus", &url];
        args.extend_from_slice(extra);
        run(&args, None)
    };
    let ok = cmd(&["--ca-file", &ca, "--basic-auth", &auth]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        r#"{"schema":"memglass.cluster-eviction/v1","nodes":[]}"#
    );
    let ok = cmd(&["--insecure-skip-tls-verify", "--basic-auth", &auth]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // The system's roots do not know our CA.
    let untrusted = cmd(&["--basic-auth", &auth]);
    assert_eq!(untrusted.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // A wrong password: the store's 401, on one line.
    let refused = cmd(&["--ca-file", &ca, "--basic-auth", &wrong]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");

    // A bearer token from a file reaches the store.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 8192];
            let n = stream.read(&mut buffer).unwrap_or(0);
            let request = String::from_utf8_lossy(&buffer[..n]).to_lowercase();
            let tenant_ok = !request.contains("x-scope-orgid")
                || request.contains("\r\nx-scope-orgid: team-a\r\n");
            let (status, body) =
                if request.contains("\r\nauthorization: bearer tok-123\r\n") && tenant_ok {
                    (
                        "200 OK",
                        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                    )
                } else {
                    ("401 Unauthorized", "Unauthorized")
                };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    std::fs::write(dir.dir.join("token"), "tok-123\n").unwrap();
    let token = dir.dir.join("token").display().to_string();
    let fake_url = format!("http://{fake}");
    let out = run(
        &[
            "cluster",
            "oom",
            "--json",
            "--prometheus",
            &fake_url,
            "--bearer-token-file",
            &token,
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An extra header (a Mimir/Cortex tenant) goes along.
    for (tenant, code) in [("team-a", 0), ("team-b", 1)] {
        let header = format!("X-Scope-OrgID: {tenant}");
        let out = run(
            &[
                "cluster",
                "oom",
                "--json",
                "--prometheus",
                &fake_url,
                "--bearer-token-file",
                &token,
                "--header",
                &header,
            ],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "{tenant}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run(
        &["cluster", "oom", "--json", "--prometheus", &fake_url],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));
}
