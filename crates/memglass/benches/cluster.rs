//! Cluster query latency: `memglass cluster top|oom|eviction` against a real local
//! Prometheus (Debian's `prometheus`) holding what several real agents export, each as
//! its own node over the same kubepods-like tree of real cgroups.
//!
//! ```text
//! ci/bench cluster                          (root; about two minutes)
//! cargo bench -p memglass --bench cluster -- 4 1500 20   (nodes, cgroups per node, runs)
//! ```
//!
//! Builds the snapshot benchmark's tree under this run's own prefix (pods of 4 containers,
//! each charged 64 KiB of tmpfs) with a `--pods` file naming every pod, starts one release
//! agent per "node" on 127.0.0.1 (`--cgroup-root` the tree, its own `--node-name`,
//! `--interval 10s`) and Prometheus on 127.0.0.1 scraping them every 5 s. Once every agent
//! has been scraped three times, each command runs N times as its own process
//! (`--json > /dev/null`, wall time), and the anchor is the same queries sent by the same
//! client library in this process (the store's own time plus the HTTP round trips): what
//! is left is memglass's start, parse and rendering. Every process is killed by its PID at
//! the end; the cgroups and the Prometheus data are removed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: fail loudly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memglass_cluster::{eviction, oom, top, Options, Prometheus};
use memglass_testkit::tree::{charge_tmpfs, kubepods_tree};
use memglass_testkit::{RemoveOnDrop, Scratch, TestCgroup};
use serde_json::{json, Value};

mod support;
use support::{figure, measure, ms, quantile};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let nodes: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(4);
    let cgroups: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1500);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    assert!(
        Path::new("/usr/bin/prometheus").exists(),
        "needs Debian's prometheus (ci/apt-ensure prometheus)"
    );

    let root = TestCgroup::new();
    let started = Instant::now();
    let containers = kubepods_tree(&root, cgroups);
    let shm = format!("/dev/shm/{}", root.path.trim_start_matches('/'));
    std::fs::create_dir_all(&shm).unwrap();
    let _remove_shm = RemoveOnDrop(shm.clone().into());
    charge_tmpfs(&containers, &shm);
    let dir = Scratch::new();
    let (pods_file, node_file) = (dir.dir.join("pods.json"), dir.dir.join("node.json"));
    let pods = write_pods(&containers, &pods_file);
    std::fs::write(
        &node_file,
        json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "bench"},
            "status": {"capacity": {"memory": "64Gi"}, "allocatable": {"memory": "60Gi"}}})
        .to_string(),
    )
    .unwrap();
    println!(
        "tree: {cgroups} cgroups ({} containers, {pods} pods), built in {:.1} s",
        containers.len(),
        started.elapsed().as_secs_f64()
    );

    let agents: Vec<Process> = (0..nodes)
        .map(|i| {
            let db = dir.dir.join(format!("node-{i}.db"));
            let child = Command::new(env!("CARGO_BIN_EXE_memglass"))
                .arg("--no-cri")
                .arg("--cgroup-root")
                .arg(&root.dir)
                .arg("--pods")
                .arg(&pods_file)
                .arg("--node")
                .arg(&node_file)
                .args(["--node-name", &format!("bench-node-{i}")])
                .args([
                    "agent",
                    "--listen",
                    "127.0.0.1:0",
                    "--interval",
                    "10s",
                    "--db",
                ])
                .arg(&db)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            Process::agent(child)
        })
        .collect();
    let targets: Vec<String> = agents
        .iter()
        .map(|a| format!("'{}'", a.addr.unwrap()))
        .collect();
    let config = format!(
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\n\
         scrape_configs:\n  - job_name: memglass\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    std::fs::write(dir.dir.join("prometheus.yml"), config).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _prometheus = Process {
        child: Command::new("/usr/bin/prometheus")
            .arg(format!(
                "--config.file={}",
                dir.dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={store}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        addr: None,
    };
    let waited = Instant::now();
    loop {
        // One series per target scraped successfully at least three times.
        let each =
            instant(store, "sum_over_time(up{job=\"memglass\"}[5m]) >= 3").map_or(0, |r| r.len());
        if each == nodes {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(180),
            "Prometheus did not scrape {nodes} agents three times in 3 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let series = instant(store, "count({__name__=~\".+\"})")
        .and_then(|r| r.first().and_then(value))
        .unwrap_or(0.0);
    let per_scrape = instant(store, "sum(scrape_samples_scraped{job=\"memglass\"})")
        .and_then(|r| r.first().and_then(value))
        .unwrap_or(0.0);
    println!(
        "Prometheus: {nodes} agents scraped 3 times in {:.0} s; {series:.0} series in the store ({per_scrape:.0} samples per round of scrapes)",
        waited.elapsed().as_secs_f64()
    );

    let url = format!("http://{store}");
    let client = Prometheus::new(&Options {
        url: url.clone(),
        bearer_token_file: None,
        basic_auth: None,
        ca_file: None,
        insecure_skip_tls_verify: false,
        timeout: Duration::from_secs(30),
        headers: Vec::new(),
    })
    .unwrap();
    let commands: [(&str, Vec<String>); 3] = [
        ("top", top::queries(&top::By::WorkingSetKubelet, None, 20)),
        ("oom", oom::queries(Duration::from_secs(86400), None)),
        ("eviction", eviction::queries()),
    ];
    for (command, queries) in &commands {
        let cli = || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_memglass"));
            c.args(["cluster", command, "--json", "--prometheus", &url]);
            c
        };
        // Check once that it answers with something, then warm up both.
        let out = cli().output().unwrap();
        assert!(
            out.status.success(),
            "memglass cluster {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for answer in client.query_all(queries) {
            answer.unwrap();
        }
        let (mut wall, mut anchor) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            wall.push(measure(&mut cli()).wall);
            let t = Instant::now();
            for answer in client.query_all(queries) {
                std::hint::black_box(answer.unwrap().len());
            }
            anchor.push(t.elapsed());
        }
        wall.sort();
        anchor.sort();
        println!(
            "memglass cluster {command} --json: median {:.1} ms, p90 {:.1} ms, max {:.1} ms; its {} queries in-process: median {:.1} ms [{runs} runs, {} KiB of JSON]",
            ms(quantile(&wall, 0.5)),
            ms(quantile(&wall, 0.9)),
            ms(*wall.last().unwrap()),
            queries.len(),
            ms(quantile(&anchor, 0.5)),
            out.stdout.len() / 1024
        );
        figure(
            "cluster",
            &format!(
                "memglass cluster {command} (median of {runs}), {nodes} nodes × {cgroups} cgroups, {series:.0} series in Prometheus"
            ),
            &format!("{:.1} ms", ms(quantile(&wall, 0.5))),
            "-",
            &format!(
                "its {} queries sent in-process {:.1} ms; p90 {:.1} ms",
                queries.len(),
                ms(quantile(&anchor, 0.5)),
                ms(quantile(&wall, 0.9))
            ),
            None,
        );
    }
}

/// A `kubectl get pods -o json` list naming every pod of the tree (4 containers each).
fn write_pods(containers: &[std::path::PathBuf], file: &Path) -> usize {
    let mut by_pod: Vec<(String, Vec<String>)> = Vec::new();
    for c in containers {
        let pod = c.parent().unwrap().file_name().unwrap().to_string_lossy();
        let uid = pod.trim_start_matches("pod").to_owned();
        let id = c.file_name().unwrap().to_string_lossy().into_owned();
        match by_pod.last_mut() {
            Some((u, ids)) if *u == uid => ids.push(id),
            _ => by_pod.push((uid, vec![id])),
        }
    }
    let items: Vec<Value> = by_pod
        .iter()
        .enumerate()
        .map(|(n, (uid, ids))| {
            let specs: Vec<Value> = (0..ids.len())
                .map(|i| json!({"name": format!("c{i}"), "image": "busybox",
                    "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "256Mi"}}}))
                .collect();
            let statuses: Vec<Value> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| json!({"name": format!("c{i}"), "image": "busybox", "imageID": "",
                    "ready": true, "restartCount": 0, "containerID": format!("containerd://{id}")}))
                .collect();
            json!({"kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": format!("bench-{n}"), "namespace": format!("ns-{}", n % 10), "uid": uid},
                "spec": {"nodeName": "bench", "priority": 0, "containers": specs},
                "status": {"phase": "Running", "qosClass": "Burstable", "containerStatuses": statuses}})
        })
        .collect();
    std::fs::write(
        file,
        json!({"kind": "List", "apiVersion": "v1", "items": items}).to_string(),
    )
    .unwrap();
    by_pod.len()
}

/// A process we started, killed by its PID when dropped.
struct Process {
    child: Child,
    addr: Option<SocketAddr>,
}

impl Process {
    /// An agent: its address from its first lines on stderr.
    fn agent(mut child: Child) -> Process {
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut process = Process { child, addr: None };
        let mut log = String::new();
        loop {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "agent died: {log}"
            );
            log.push_str(&line);
            if let Some(rest) = line.split("http://").nth(1) {
                process.addr = Some(rest.split('/').next().unwrap().parse().unwrap());
                std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                return process;
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An instant query's result vector, or None while the store does not answer.
fn instant(store: SocketAddr, query: &str) -> Option<Vec<Value>> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut stream = TcpStream::connect(store).ok()?;
    write!(
        stream,
        "GET /api/v1/query?query={encoded} HTTP/1.1\r\nHost: {store}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    // Prometheus answers small results with a Content-Length; large ones chunked.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let doc: Value = serde_json::from_str(&body).ok()?;
    doc["data"]["result"].as_array().cloned()
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn value(series: &Value) -> Option<f64> {
    series["value"][1].as_str()?.parse().ok()
}
