//! Shared by the agent's tests: the real agent binary as a guard (killed by its PID on
//! drop, also when a test fails), a tiny HTTP/1.1 client, and /metrics parsing.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unused_imports)] // tests: fail loudly

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memglass_testkit::memglass_bin;
pub use memglass_testkit::{args, assert_close, MIB};

pub mod prometheus;

/// `memglass agent` running on 127.0.0.1 (port chosen by the kernel), killed on drop.
pub struct Agent {
    child: Child,
    pub addr: SocketAddr,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Agent {
    /// Start the agent with `--listen 127.0.0.1:0 --db <db> --interval 1s` and `extra`.
    pub fn start(db: &Path, extra: &[&str]) -> Agent {
        Agent::start_in(&[], "127.0.0.1:0", None, db, extra)
    }

    /// The same with environment variables set for the agent (e.g. `KUBECONFIG`).
    pub fn start_with_env(db: &Path, extra: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Agent {
        Agent::start_full(&[], "127.0.0.1:0", None, db, extra, env)
    }

    /// Start the agent as `wrapper… memglass --no-cri agent --listen <listen> --interval 1s
    /// --db <db> extra…` (e.g. `nsenter --net=…` as the wrapper; it execs, so the PID is the
    /// agent's), with `--token-file` when `token` is `(file, token)`, and wait for its first
    /// collection.
    pub fn start_in(
        wrapper: &[&str],
        listen: &str,
        token: Option<(&str, &str)>,
        db: &Path,
        extra: &[&str],
    ) -> Agent {
        Agent::start_full(wrapper, listen, token, db, extra, &[])
    }

    /// [`start_in`](Agent::start_in) with environment variables. Lines before the
    /// "listening" one (warnings) are kept in `stderr`. With `--tls-cert-file` in `extra`
    /// it returns once the agent listens, without asking it anything.
    pub fn start_full(
        wrapper: &[&str],
        listen: &str,
        token: Option<(&str, &str)>,
        db: &Path,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Agent {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(memglass_bin());
                c
            }
            None => Command::new(memglass_bin()),
        };
        command.args(["--no-cri", "agent", "--listen", listen, "--interval", "1s"]);
        if let Some((file, _)) = token {
            command.args(["--token-file", file]);
        }
        let mut child = command
            .arg("--db")
            .arg(db)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start memglass agent");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut before = String::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("agent did not start: {before}");
            }
            if let Some(addr) = line
                .split_once("listening on http")
                .and_then(|(_, rest)| rest.split("://").nth(1))
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse().ok())
            {
                break addr;
            }
            before.push_str(&line);
        };
        // Keep draining stderr so the agent never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(before));
        let sink = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let agent = Agent {
            child,
            addr,
            stderr: log,
        };
        if extra.contains(&"--tls-cert-file") {
            return agent; // not plain HTTP: the test waits for it its own way
        }
        let auth = token.map(|(_, t)| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        agent.wait_for(|a| {
            a.get_with("/api/v1/health", &headers).json()["collections"].as_u64() >= Some(1)
        });
        agent
    }

    /// The process id (ours: we started it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` and reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn get(&self, path: &str) -> Response {
        http_get(self.addr, path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http_get(self.addr, path, headers)
    }

    /// Poll until `done` (every 200 ms, at most 30 s).
    #[track_caller]
    pub fn wait_for(&self, done: impl Fn(&Agent) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting on the agent");
    }

    /// Wait for `n` more collections than now.
    pub fn wait_collections(&self, n: u64) {
        let now = self.get("/api/v1/health").json()["collections"]
            .as_u64()
            .unwrap();
        self.wait_for(|a| a.get("/api/v1/health").json()["collections"].as_u64() >= Some(now + n));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// GET with `Connection: close` (the server sends Content-Length).
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, "GET", path, headers)
}

pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut response = Response {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    };
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        response.body = dechunk(body);
    }
    response
}

/// GET, or `None` while nothing listens yet.
pub fn try_get(addr: SocketAddr, path: &str) -> Option<Response> {
    TcpStream::connect(addr).ok()?;
    Some(http_get(addr, path, &[]))
}

/// Undo `Transfer-Encoding: chunked` (Prometheus' Go server uses it).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process we started (a Prometheus server), killed by its PID on drop.
pub struct Started(pub Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Percent-encode a query parameter.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Samples of a text exposition: (name, labels) → value.
pub type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Parse the Prometheus text format (enough for memglass's own output).
pub fn parse_metrics(text: &str) -> Samples {
    let mut samples = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while let Some((key, after)) = rest.split_once("=\"") {
            let mut value = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(if escaped == 'n' { '\n' } else { escaped });
                        }
                    }
                    '"' => {
                        end = i;
                        break;
                    }
                    c => value.push(c),
                }
            }
            map.insert(key.trim_start_matches(',').to_owned(), value);
            rest = &after[(end + 1).min(after.len())..];
        }
        samples.insert((name.to_owned(), map), value.parse().unwrap());
    }
    samples
}

/// The value of `name` for `cgroup` (and `extra` labels), if exported.
pub fn value(samples: &Samples, name: &str, cgroup: &str, extra: &[(&str, &str)]) -> Option<f64> {
    samples.iter().find_map(|((n, labels), v)| {
        (n == name
            && labels.get("cgroup").map(String::as_str) == Some(cgroup)
            && extra
                .iter()
                .all(|(k, want)| labels.get(*k).map(String::as_str) == Some(*want)))
        .then_some(*v)
    })
}

/// A kubelet-style pod with one container under `cg`: (container dir, pod path, container path).
pub fn pod_tree(
    cg: &memglass_testkit::TestCgroup,
    n: u32,
) -> (std::path::PathBuf, String, String, String) {
    let uid = format!("{n:08x}-1111-4222-8333-{:012x}", std::process::id());
    let pod_rel = format!("kubepods/burstable/pod{uid}");
    let (_, pod_path) = cg.child(&pod_rel);
    let (dir, container_path) = cg.child(&format!("{pod_rel}/{:064x}", u64::from(n) + 0xc0ffee));
    (dir, pod_path, container_path, uid)
}

/// The tier-5 tool must be here: a missing one fails the test (ci/test installs it),
/// so no run passes without having checked.
pub fn tool_present(path: &str, what: &str) -> bool {
    assert!(
        Path::new(path).exists(),
        "{path} is not installed: ci/test installs {what}"
    );
    true
}

/// `promtool check metrics` accepts `body` (Debian's prometheus package; ci/test
/// installs it).
pub fn promtool_passes(body: &str) {
    tool_present("/usr/bin/promtool", "prometheus");
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file in /dev/shm (tmpfs) named for this test, removed on drop.
pub struct ShmFile(pub String, memglass_testkit::RemoveOnDrop);

impl ShmFile {
    pub fn new(tag: &str) -> ShmFile {
        let path = format!("/dev/shm/memglass-agent-test-{}-{tag}", std::process::id());
        ShmFile(path.clone(), memglass_testkit::RemoveOnDrop(path.into()))
    }
}

impl Agent {
    /// Start with `--token-file`, waiting for the first collection with the token.
    pub fn start_with_token(db: &Path, token_file: &str, token: &str) -> Agent {
        let child = Command::new(memglass_bin())
            .args([
                "--no-cri",
                "agent",
                "--listen",
                "127.0.0.1:0",
                "--interval",
                "1s",
            ])
            .args(["--token-file", token_file])
            .arg("--db")
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start memglass agent");
        let mut agent = Agent {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: Default::default(),
        };
        let mut stderr = BufReader::new(agent.child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        agent.addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("agent did not start: {line}"));
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let auth = format!("Bearer {token}");
        agent.wait_for(|a| {
            a.get_with("/api/v1/health", &[("Authorization", &auth)])
                .json()["collections"]
                .as_u64()
                >= Some(1)
        });
        agent
    }
}
