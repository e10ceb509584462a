//! `fetch` against a stand-in API server on 127.0.0.1 that answers kube-rs' requests with
//! responses recorded from a real cluster (`fixtures/kube/kubeadm-1.28-containerd/`). The
//! client is configured the way a user's would be: a kubeconfig file named by `KUBECONFIG`.
//!
//! One test function, because it sets process environment variables (`KUBECONFIG`,
//! `NODE_NAME`) that a parallel test would race with.
#![allow(clippy::expect_used)] // tests: a failed expect is a failed test

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memglass_kube::{fetch, fetch_cluster, node_from_json, pods_from_json, Error, Origin};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/kube/");
const NODE: &str = "k8s-controller-01";

fn fixture(name: &str) -> String {
    let path = format!("{FIXTURES}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the server answers: status and JSON body for a request target (path and query).
type Routes = fn(&str) -> Option<(u16, String)>;

/// A one-thread HTTP/1.1 server on 127.0.0.1 (random port) that records every request target
/// and stops when dropped. `routes` returning `None` means: accept, then never answer.
struct FakeApiServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    fn start(routes: Routes) -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut silent = Vec::new(); // connections held open without an answer
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Some(held) = serve(stream, routes, &requests) {
                        silent.push(held);
                    }
                }
            })
        };
        FakeApiServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Writes a kubeconfig pointing at this server (plain HTTP, no credentials) and returns
    /// its path.
    fn kubeconfig(&self, dir: &std::path::Path) -> PathBuf {
        let path = dir.join(format!("kubeconfig-{}", self.port));
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: recorded\n  cluster:\n    server: http://127.0.0.1:{}\n\
             contexts:\n- name: recorded\n  context:\n    cluster: recorded\n    user: nobody\n\
             current-context: recorded\n\
             users:\n- name: nobody\n  user: {{}}\n",
            self.port
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request head, records its target, answers once and closes; returns the stream
/// instead when the route says to stay silent.
fn serve(stream: TcpStream, routes: Routes, requests: &Mutex<Vec<String>>) -> Option<TcpStream> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header == "\r\n" {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1)?.to_string();
    requests.lock().ok()?.push(target.clone());
    let Some((status, body)) = routes(&target) else {
        return Some(stream);
    };
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        if status == 200 { "OK" } else { "Not Found" },
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
    None
}

/// The recorded cluster: its one node and the kube-system pods on it.
fn recorded_cluster(target: &str) -> Option<(u16, String)> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let not_found = |what: &str| {
        (
            404,
            format!(
                r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{what} not found","reason":"NotFound","code":404}}"#
            ),
        )
    };
    Some(match path {
        "/api/v1/pods" => {
            let selector = field_selector(query);
            if selector.is_none() || selector.as_deref() == Some(&format!("spec.nodeName={NODE}")) {
                // The cluster has one node: all its pods are that node's.
                (200, fixture("kubeadm-1.28-containerd/pods.json"))
            } else {
                (
                    200,
                    r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#
                        .into(),
                )
            }
        }
        p if p == format!("/api/v1/nodes/{NODE}") => {
            (200, fixture("kubeadm-1.28-containerd/node.json"))
        }
        // The NodeList of the same dump, around its one item (fixtures/kube/README.md).
        "/api/v1/nodes" => (
            200,
            format!(
                r#"{{"kind":"NodeList","apiVersion":"v1","metadata":{{"resourceVersion":"1"}},"items":[{}]}}"#,
                fixture("kubeadm-1.28-containerd/node.json")
            ),
        ),
        p => not_found(p),
    })
}

/// A server that accepts and never answers.
fn black_hole(_: &str) -> Option<(u16, String)> {
    None
}

/// The decoded `fieldSelector` parameter of a query string.
fn field_selector(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("fieldSelector="))
        .map(percent_decode)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn fetch_from_a_recorded_api_server() {
    let dir = std::env::temp_dir().join(format!("memglass-kube-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let timeout = Duration::from_secs(10);

    // The file-based reading of the same recorded responses.
    let mut expected = pods_from_json(
        &fixture("kubeadm-1.28-containerd/pods.json"),
        Origin::KubeApi,
    )
    .expect("pods fixture");
    expected.node =
        Some(node_from_json(&fixture("kubeadm-1.28-containerd/node.json")).expect("node"));

    let server = FakeApiServer::start(recorded_cluster);
    std::env::set_var("KUBECONFIG", server.kubeconfig(&dir));
    std::env::remove_var("NODE_NAME");

    // 1. Node name given: only that node's pods are asked for, then the node.
    let directory = fetch(Some(NODE), timeout).expect("fetch");
    assert_eq!(directory, expected);
    assert_eq!(directory.origins, vec![Origin::KubeApi]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (path, query) = requests[0].split_once('?').expect("a query string");
    assert_eq!(path, "/api/v1/pods");
    assert_eq!(
        field_selector(query).as_deref(),
        Some("spec.nodeName=k8s-controller-01"),
        "{}",
        requests[0]
    );
    assert_eq!(requests[1], "/api/v1/nodes/k8s-controller-01");

    // 2. No name given: NODE_NAME (the downward-API convention) names the node.
    std::env::set_var("NODE_NAME", NODE);
    assert_eq!(fetch(None, timeout).expect("fetch via NODE_NAME"), expected);
    std::env::remove_var("NODE_NAME");

    // 2b. The whole cluster (`memglass cluster pending --kube`): every pod, every node, and
    // the scheduler's verdict as from the files.
    let before = server.requests().len();
    let (pods, nodes) = fetch_cluster(timeout).expect("fetch_cluster");
    let requests = server.requests();
    assert_eq!(
        requests[before..],
        ["/api/v1/pods?", "/api/v1/nodes?"],
        "{requests:?}"
    );
    assert_eq!(pods.len(), 7);
    assert_eq!(nodes.len(), 1);
    let pending = memglass_kube::schedule::pending(&pods, &nodes, None).expect("pending");
    assert_eq!(pending.len(), 2);
    assert_eq!(
        pending[0].nodes[0].reasons,
        ["untolerated taint node.kubernetes.io/not-ready:NoSchedule"]
    );

    // 3. An unknown node: no pods, and the node lookup fails with the server's 404.
    let err = fetch(Some("nope"), timeout).expect_err("node nope does not exist");
    let message = err.to_string();
    assert!(matches!(err, Error::Api { .. }), "{message}");
    assert!(
        message.starts_with("Kubernetes API: get node nope: "),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    drop(server);

    // 4. A server that never answers: the timeout ends it.
    let silent = FakeApiServer::start(black_hole);
    std::env::set_var("KUBECONFIG", silent.kubeconfig(&dir));
    let started = Instant::now();
    let err = fetch(Some(NODE), Duration::from_millis(500)).expect_err("no answer");
    assert!(
        matches!(err, Error::Timeout(_) | Error::Api { .. }),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);

    // 5. No server at all (the port is closed now): a connection error, not a hang.
    let err = fetch(Some(NODE), timeout).expect_err("connection refused");
    assert!(matches!(err, Error::Api { .. }), "{err}");

    std::env::remove_var("KUBECONFIG");
    let _ = std::fs::remove_dir_all(&dir);
}
