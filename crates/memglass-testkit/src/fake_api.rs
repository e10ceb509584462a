//! A stand-in Kubernetes API server on 127.0.0.1 for one node, answering what kube-rs'
//! client, `watcher` and event `Recorder` ask, from recorded objects (fixtures/kube/):
//!
//! - `GET /api/v1/pods?fieldSelector=spec.nodeName=<node>` (list, `limit` ignored: every
//!   item in one page) and `…&watch=true&resourceVersion=<rv>`: a chunked stream of
//!   `{"type":"ADDED"|"MODIFIED"|"DELETED","object":…}` lines for every change after `rv`,
//!   then new ones as they happen, with a `BOOKMARK` every second when
//!   `allowWatchBookmarks=true`, until `timeoutSeconds` or [`FakeApi::pause`];
//! - the same for `GET /api/v1/nodes?fieldSelector=metadata.name=<node>`, and
//!   `GET /api/v1/nodes/<node>`;
//! - `POST /apis/events.k8s.io/v1/namespaces/<ns>/events` (201, the event echoed) and
//!   `PATCH …/events/<name>` (200, the patch echoed), each recorded ([`FakeApi::requests`]);
//! - `GET /version`.
//!
//! Resource versions count up from the recorded list's; the change log is kept whole, so
//! a watch resumed from any version it handed out gets exactly what it missed, until
//! [`FakeApi::expire_history`]: then, as a real server whose window has passed, it answers
//! an older version with 410 Gone (an ERROR watch event, reason Expired).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: fail loudly

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// GET, POST, PATCH…
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The body (empty for GET).
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

impl Request {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// A decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        query_param(&self.target, name)
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug)]
struct State {
    node_name: String,
    rv: u64,
    pods: BTreeMap<String, Value>,
    node: Value,
    /// (resourceVersion, resource "pods"/"nodes", type, object)
    log: Vec<(u64, &'static str, &'static str, Value)>,
    requests: Vec<Request>,
    /// Bumped by pause: streams of an earlier generation end.
    generation: u64,
    /// Watches from a resourceVersion below this get 410 Gone.
    expired_through: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The server; stops (and ends every stream) when dropped.
#[derive(Debug)]
pub struct FakeApi {
    /// The port it listens on (kept across pause/resume).
    pub port: u16,
    shared: Arc<Shared>,
    accepting: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl FakeApi {
    /// Serve `node` (a Node object, as `kubectl get node -o json` prints it) and the pods of
    /// `pod_list` (a PodList) whose `spec.nodeName` is that node.
    pub fn start(pod_list: &Value, node: &Value) -> FakeApi {
        let node_name = node["metadata"]["name"]
            .as_str()
            .expect("node name")
            .to_owned();
        let rv = pod_list["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let pods = pod_list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|p| p["spec"]["nodeName"] == node_name.as_str())
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap().to_owned(),
                    p.clone(),
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                node_name,
                rv,
                pods,
                node: node.clone(),
                log: Vec::new(),
                requests: Vec::new(),
                generation: 0,
                expired_through: 0,
            }),
            changed: Condvar::new(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let mut api = FakeApi {
            port,
            shared,
            accepting: None,
        };
        api.accept(listener);
        api
    }

    fn accept(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (Arc::clone(&self.shared), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let shared = Arc::clone(&shared);
                        std::thread::spawn(move || serve(stream, &shared));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        self.accepting = Some((stop, thread));
    }

    /// Stop listening and cut every open connection (watches included): the port refuses
    /// connections until [`FakeApi::resume`].
    pub fn pause(&mut self) {
        if let Some((stop, thread)) = self.accepting.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = thread.join();
        }
        self.shared.state.lock().unwrap().generation += 1;
        self.shared.changed.notify_all();
    }

    /// Listen again on the same port.
    pub fn resume(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("rebind 127.0.0.1:{}: {e}", self.port),
            }
        };
        self.accept(listener);
    }

    /// Add (or replace) a pod, as the API would after a create: a new resourceVersion and
    /// an ADDED (or MODIFIED) watch event. Returns the resourceVersion.
    pub fn add_pod(&self, mut pod: Value) -> u64 {
        let mut state = self.shared.state.lock().unwrap();
        state.rv += 1;
        let rv = state.rv;
        pod["metadata"]["resourceVersion"] = json!(rv.to_string());
        let name = pod["metadata"]["name"]
            .as_str()
            .expect("pod name")
            .to_owned();
        let kind = if state.pods.contains_key(&name) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.pods.insert(name, pod.clone());
        state.log.push((rv, "pods", kind, pod));
        drop(state);
        self.shared.changed.notify_all();
        rv
    }

    /// Delete a pod (a DELETED watch event with a new resourceVersion); false when there is
    /// no such pod.
    pub fn delete_pod(&self, name: &str) -> bool {
        let mut state = self.shared.state.lock().unwrap();
        let Some(mut pod) = state.pods.remove(name) else {
            return false;
        };
        state.rv += 1;
        let rv = state.rv;
        pod["metadata"]["resourceVersion"] = json!(rv.to_string());
        state.log.push((rv, "pods", "DELETED", pod));
        drop(state);
        self.shared.changed.notify_all();
        true
    }

    /// Forget the change log up to now, as a server whose watch window has passed: a watch
    /// from an older resourceVersion gets `410 Gone` (an ERROR event with reason Expired),
    /// and the client must list again.
    pub fn expire_history(&self) {
        let mut state = self.shared.state.lock().unwrap();
        state.expired_through = state.rv;
        state.log.clear();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// Writes a kubeconfig pointing at this server (plain HTTP, no credentials) into `dir`
    /// and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
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

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.pause();
    }
}

/// A recorded pod turned into another one of this node: new name, UID and container id
/// (containerd), everything else as recorded.
pub fn derived_pod(recorded: &Value, name: &str, uid: &str, container_id: &str) -> Value {
    let mut pod = recorded.clone();
    pod["metadata"]["name"] = json!(name);
    pod["metadata"]["uid"] = json!(uid);
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        statuses.truncate(1);
        if let Some(first) = statuses.first_mut() {
            first["containerID"] = json!(format!("containerd://{container_id}"));
        }
    }
    pod
}

fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let request = Request {
        method,
        target,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let generation = {
        let mut state = shared.state.lock().unwrap();
        state.requests.push(request.clone());
        state.generation
    };
    let mut stream = stream;
    let path = request.path().to_owned();
    let watch = request.param("watch").as_deref() == Some("true");
    let (status, body) = {
        let state = shared.state.lock().unwrap();
        let node = state.node_name.clone();
        match (request.method.as_str(), path.as_str()) {
            ("GET", "/api/v1/pods") | ("GET", "/api/v1/nodes") if watch => {
                drop(state);
                let resource = if path.ends_with("pods") {
                    "pods"
                } else {
                    "nodes"
                };
                stream_watch(stream, shared, &request, resource, generation);
                return;
            }
            ("GET", "/api/v1/pods") => {
                let wanted = format!("spec.nodeName={node}");
                let items: Vec<&Value> = if request.param("fieldSelector") == Some(wanted) {
                    state.pods.values().collect()
                } else {
                    Vec::new()
                };
                (200, list("PodList", state.rv, &items))
            }
            ("GET", "/api/v1/nodes") => {
                let wanted = format!("metadata.name={node}");
                let items: Vec<&Value> = if request.param("fieldSelector") == Some(wanted) {
                    vec![&state.node]
                } else {
                    Vec::new()
                };
                (200, list("NodeList", state.rv, &items))
            }
            ("GET", p) if p == format!("/api/v1/nodes/{node}") => (200, state.node.to_string()),
            ("GET", "/version") => (
                200,
                json!({"major": "1", "minor": "28", "gitVersion": "v1.28.15"}).to_string(),
            ),
            ("POST", p) if p.starts_with("/apis/events.k8s.io/v1/namespaces/") => {
                (201, request.body.clone())
            }
            ("PATCH", p) if p.starts_with("/apis/events.k8s.io/v1/namespaces/") => {
                (200, request.body.clone())
            }
            (_, p) => (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": format!("{p} not found"), "reason": "NotFound", "code": 404})
                .to_string(),
            ),
        }
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        if status < 300 { "OK" } else { "Not Found" },
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

fn list(kind: &str, rv: u64, items: &[&Value]) -> String {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()},
           "items": items})
    .to_string()
}

/// Send every change after the request's resourceVersion, then new ones, until the
/// timeout or a pause.
fn stream_watch(
    mut stream: TcpStream,
    shared: &Shared,
    request: &Request,
    resource: &'static str,
    generation: u64,
) {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut sent_through: u64 = request
        .param("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = request
        .param("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(290);
    let bookmarks = request.param("allowWatchBookmarks").as_deref() == Some("true");
    let selector = request.param("fieldSelector").unwrap_or_default();
    let end = Instant::now() + Duration::from_secs(timeout);
    let mut last_bookmark = Instant::now();
    let mut state = shared.state.lock().unwrap();
    if sent_through < state.expired_through {
        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {sent_through} ({})", state.expired_through),
            "reason": "Expired", "code": 410}})
        .to_string();
        drop(state);
        let chunk = format!("{:x}\r\n{gone}\n\r\n0\r\n\r\n", gone.len() + 1);
        let _ = stream.write_all(chunk.as_bytes());
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let matches = |state: &State, object: &Value| match resource {
        "pods" => {
            selector == format!("spec.nodeName={}", state.node_name)
                && object["spec"]["nodeName"] == state.node_name.as_str()
        }
        _ => selector == format!("metadata.name={}", state.node_name),
    };
    loop {
        if state.generation != generation || Instant::now() >= end {
            break;
        }
        let mut lines = Vec::new();
        for (rv, kind, event, object) in &state.log {
            if *rv > sent_through && *kind == resource && matches(&state, object) {
                lines.push(json!({"type": event, "object": object}).to_string());
            }
        }
        sent_through = sent_through.max(state.rv);
        if bookmarks && last_bookmark.elapsed() >= Duration::from_secs(1) {
            let kind = if resource == "pods" { "Pod" } else { "Node" };
            lines.push(
                json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1",
                       "metadata": {"resourceVersion": state.rv.to_string()}}})
                .to_string(),
            );
            last_bookmark = Instant::now();
        }
        if !lines.is_empty() {
            drop(state);
            for line in lines {
                let chunk = format!("{:x}\r\n{line}\n\r\n", line.len() + 1);
                if stream.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
            }
            let _ = stream.flush();
            state = shared.state.lock().unwrap();
            continue;
        }
        state = shared
            .changed
            .wait_timeout(state, Duration::from_millis(200))
            .unwrap()
            .0;
    }
    let cut = state.generation != generation;
    drop(state);
    if cut {
        // The server went away: no clean end of the stream.
        let _ = stream.shutdown(Shutdown::Both);
    } else {
        let _ = stream.write_all(b"0\r\n\r\n");
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// A decoded query parameter of a request target.
pub fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

/// `%3D` → `=`, `+` → space.
pub fn percent_decode(s: &str) -> String {
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
