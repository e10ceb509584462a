//! The real agent with `--kube`, pointed (through a kubeconfig in `KUBECONFIG`) at the
//! stand-in API server of memglass-testkit serving the pods and node recorded from a real
//! kubeadm 1.28 cluster (fixtures/kube/kubeadm-1.28-containerd), on real cgroups with real
//! workloads whose pod UID and container id match the pods the tests add:
//!
//! - a pod added to the watch is named on /metrics within 5 s (the delay is printed);
//! - the API server going away and coming back on the same port loses nothing: /metrics is
//!   served meanwhile, the health document and stderr say so, and a pod added while it was
//!   away is named after the reconnection;
//! - a real OOM kill posts exactly one `MemglassOOMKill` Event on the victim's pod, and a
//!   second identical kill patches that event's series instead of posting another.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod agent_support;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent_support::*;
use memglass_testkit::fake_api::{derived_pod, FakeApi, Request};
use memglass_testkit::{Scratch, TestCgroup, Workload};
use serde_json::Value;

const NODE: &str = "k8s-controller-01";

fn recorded(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/kube/kubeadm-1.28-containerd")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The recorded kube-proxy pod (DaemonSet, BestEffort, kube-system), to derive new pods
/// from.
fn recorded_proxy(pods: &Value) -> Value {
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == "kube-proxy-p4jmn")
        .unwrap()
        .clone()
}

/// A BestEffort pod's cgroups under `cg`: (container dir, container path, uid, container id).
fn besteffort_pod(cg: &TestCgroup, n: u32) -> (PathBuf, String, String, String) {
    let uid = format!("{n:08x}-7777-4222-8333-{:012x}", std::process::id());
    // Unique per run: the kernel log still holds earlier runs' kills.
    let id = format!("{:056x}{n:08x}", std::process::id());
    let (dir, path) = cg.child(&format!("kubepods/besteffort/pod{uid}/{id}"));
    (dir, path, uid, id)
}

/// The `pod` label of `cgroup` on the agent's /metrics, if named.
fn pod_label(agent: &Agent, cgroup: &str) -> Option<String> {
    let metrics = parse_metrics(&agent.get("/metrics").body);
    metrics.keys().find_map(|(name, labels)| {
        (name == "memglass_cgroup_memory_usage_bytes"
            && labels.get("cgroup").map(String::as_str) == Some(cgroup))
        .then(|| labels.get("pod").cloned().unwrap_or_default())
        .filter(|p| !p.is_empty())
    })
}

/// Poll `done` every 50 ms for at most `limit`; the time it took.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn new_pods_are_named_within_seconds_also_after_the_api_comes_back() {
    let cg = TestCgroup::new();
    let (dir1, _, uid1, id1) = besteffort_pod(&cg, 1);
    let (dir2, _, uid2, id2) = besteffort_pod(&cg, 2);
    let _w1 = Workload::start(&dir1, &args(&[("--anon", "8M".into())]));
    let _w2 = Workload::start(&dir2, &args(&[("--anon", "8M".into())]));
    // The agent reads only our tree: paths are relative to it.
    let path1 = format!("/kubepods/besteffort/pod{uid1}/{id1}");
    let path2 = format!("/kubepods/besteffort/pod{uid2}/{id2}");

    let pods = recorded("pods.json");
    let mut api = FakeApi::start(&pods, &recorded("node.json"));
    let scratch = Scratch::new();
    let kubeconfig = api.kubeconfig(&scratch.dir);
    let cgroup_root = cg.dir.display().to_string();
    let agent = Agent::start_with_env(
        &scratch.dir.join("h.db"),
        &["--kube", "--node-name", NODE, "--cgroup-root", &cgroup_root],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    agent.wait_collections(1);
    let health = agent.get("/api/v1/health").json();
    assert_eq!(health["kube"]["connected"], true, "{health}");
    assert_eq!(health["kube"]["synced"], true, "{health}");
    assert_eq!(health["kube"]["node"], NODE);
    assert_eq!(health["kube"]["pods"], 5, "{health}");
    assert_eq!(pod_label(&agent, &path1), None);

    // 1. A pod created on this node is named within seconds.
    let proxy = recorded_proxy(&pods);
    api.add_pod(derived_pod(&proxy, "kube-proxy-first", &uid1, &id1));
    let took = within(Duration::from_secs(5), || {
        pod_label(&agent, &path1).as_deref() == Some("kube-proxy-first")
    })
    .unwrap_or_else(|| panic!("not named within 5 s: {}", agent.stderr.lock().unwrap()));
    eprintln!("pod created → named on /metrics: {took:?}");
    let metrics = parse_metrics(&agent.get("/metrics").body);
    assert_eq!(
        value(&metrics, "memglass_agent_kube_api_connected", "", &[]),
        None,
        "the API metrics carry no cgroup label"
    );
    assert!(metrics.iter().any(
        |((name, labels), v)| name == "memglass_agent_kube_api_connected"
            && labels.get("node").map(String::as_str) == Some(NODE)
            && *v == 1.0
    ));
    let scrape = agent.get("/metrics").body;
    promtool_passes(&scrape);
    // The API families are documented in docs/metrics.md (the contract).
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .unwrap();
    for line in scrape
        .lines()
        .filter(|l| l.starts_with("# TYPE memglass_agent_kube"))
    {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            doc.contains(&format!("`{name}")),
            "{name} is not in docs/metrics.md"
        );
    }

    // 2. The API server goes away: the agent keeps serving and says so.
    api.pause();
    within(Duration::from_secs(10), || {
        agent.get("/api/v1/health").json()["kube"]["connected"] == false
    })
    .expect("the health document says the API is away");
    let health = agent.get("/api/v1/health").json();
    assert!(
        health["kube"]["watch_errors"].as_u64() >= Some(1),
        "{health}"
    );
    assert!(health["kube"]["last_error"].is_string(), "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    let collections = health["collections"].as_u64().unwrap();
    // A pod created while the API is away.
    api.add_pod(derived_pod(&proxy, "kube-proxy-second", &uid2, &id2));
    agent.wait_collections(3);
    let scrape = agent.get("/metrics");
    assert_eq!(scrape.status, 200);
    assert_eq!(
        pod_label(&agent, &path1).as_deref(),
        Some("kube-proxy-first"),
        "the last names are served while the API is away"
    );
    assert_eq!(pod_label(&agent, &path2), None);
    let metrics = parse_metrics(&scrape.body);
    assert!(metrics
        .iter()
        .any(|((name, _), v)| name == "memglass_agent_kube_api_connected" && *v == 0.0));
    assert!(
        agent.get("/api/v1/health").json()["collections"]
            .as_u64()
            .unwrap()
            >= collections + 3
    );
    assert!(
        agent
            .stderr
            .lock()
            .unwrap()
            .contains("warning: Kubernetes API unreachable"),
        "{}",
        agent.stderr.lock().unwrap()
    );

    // 3. Back on the same port: the pod created meanwhile is named.
    api.resume();
    let took = within(Duration::from_secs(45), || {
        pod_label(&agent, &path2).as_deref() == Some("kube-proxy-second")
    })
    .unwrap_or_else(|| {
        panic!(
            "not named after the reconnection: {}",
            agent.stderr.lock().unwrap()
        )
    });
    eprintln!("API back → pod created meanwhile named on /metrics: {took:?}");
    let health = agent.get("/api/v1/health").json();
    assert_eq!(health["kube"]["connected"], true, "{health}");
    assert_eq!(health["kube"]["pods"], 7, "{health}");
    within(Duration::from_secs(5), || {
        agent
            .stderr
            .lock()
            .unwrap()
            .contains("Kubernetes API reachable again")
    })
    .expect("stderr says the API is back");
    // The watch resumed from a resourceVersion it had seen (no full list needed).
    let resumed: Vec<Request> = api
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/api/v1/pods" && r.param("watch").as_deref() == Some("true"))
        .collect();
    assert!(resumed.len() >= 2, "{resumed:?}");
}

/// Run the workload helper with `--anon 64M` in `dir` (limit 32M): the kernel kills it.
fn oom_kill(dir: &std::path::Path) {
    memglass_testkit::oom_kill_in(dir);
}

fn oom_event_requests(api: &FakeApi) -> Vec<Request> {
    api.requests()
        .into_iter()
        .filter(|r| {
            r.path()
                .starts_with("/apis/events.k8s.io/v1/namespaces/kube-system/events")
                && r.json()["reason"] == "MemglassOOMKill"
        })
        .collect()
}

#[test]
fn an_oom_kill_posts_one_event_on_the_victims_pod_and_a_repeat_patches_it() {
    let cg = TestCgroup::new();
    let (dir, path, uid, id) = besteffort_pod(&cg, 3);
    // Only the memory limit (not memsw): the kernel OOM-kills instead of failing charges.
    cg.write(
        &dir,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(32 * MIB).to_string(),
    );
    let pods = recorded("pods.json");
    let api = FakeApi::start(&pods, &recorded("node.json"));
    api.add_pod(derived_pod(
        &recorded_proxy(&pods),
        "kube-proxy-oom",
        &uid,
        &id,
    ));
    let scratch = Scratch::new();
    let kubeconfig = api.kubeconfig(&scratch.dir);
    // The live tree (kernel log paths are relative to the hierarchy's root).
    let env: [(&str, &OsStr); 1] = [("KUBECONFIG", kubeconfig.as_os_str())];
    let agent = Agent::start_with_env(
        &scratch.dir.join("h.db"),
        &["--kube", "--node-name", NODE],
        &env,
    );
    let calm = Workload::start(&dir, &args(&[("--anon", "4M".into())]));
    within(Duration::from_secs(10), || {
        pod_label(&agent, &path).as_deref() == Some("kube-proxy-oom")
    })
    .expect("the pod is named");
    drop(calm);

    oom_kill(&dir);
    within(Duration::from_secs(20), || {
        !oom_event_requests(&api).is_empty()
    })
    .unwrap_or_else(|| panic!("no event posted: {}", agent.get("/api/v1/health").body));
    let first = oom_event_requests(&api);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].method, "POST");
    let event = first[0].json();
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reportingController"], "memglass");
    assert_eq!(event["metadata"]["namespace"], "kube-system");
    let regarding = &event["regarding"];
    assert_eq!(regarding["apiVersion"], "v1");
    assert_eq!(regarding["kind"], "Pod");
    assert_eq!(regarding["namespace"], "kube-system");
    assert_eq!(regarding["name"], "kube-proxy-oom");
    assert_eq!(regarding["uid"], uid.as_str());
    let note = event["note"].as_str().unwrap();
    eprintln!("event note: {note}");
    assert!(
        note.starts_with("Kernel OOM kill in container kube-proxy"),
        "{note}"
    );
    assert!(
        note.contains(&format!(
            "the container's own memory limit was hit ({path})"
        )),
        "{note}"
    );
    assert!(note.contains("Limit 32.0 MiB, peak 32.0 MiB."), "{note}");
    // The counters say no more than the scope; the kernel log says what filled it.
    let oom = agent.get("/api/v1/oom").json();
    let stored = oom["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["cgroup"] == path.as_str())
        .unwrap()
        .clone();
    assert_eq!(stored["peak"].as_u64(), Some(32 * MIB), "{stored}");
    if stored["source"] == "kernel_log" {
        assert!(
            note.contains("anon dominated the memory under that limit"),
            "{note}"
        );
        assert!(note.contains("From the kernel log"), "{note}");
    }

    // The same kill again: the event's series is patched, no second event is created.
    oom_kill(&dir);
    within(Duration::from_secs(20), || {
        oom_event_requests(&api).len() >= 2
    })
    .unwrap_or_else(|| panic!("no second request: {}", agent.get("/api/v1/health").body));
    std::thread::sleep(Duration::from_secs(2));
    let all = oom_event_requests(&api);
    let methods: Vec<&str> = all.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["POST", "PATCH"], "{all:?}");
    let name = event["metadata"]["name"].as_str().unwrap();
    assert!(
        all[1].path().ends_with(&format!("/events/{name}")),
        "{}",
        all[1].target
    );
    assert_eq!(all[1].json()["series"]["count"], 2);

    // The API already shows the container restarted (a new id, ours as the last state's)
    // when the kernel's report of the next kill is read: the kill still names it.
    let mut restarted = derived_pod(&recorded_proxy(&pods), "kube-proxy-oom", &uid, &id);
    let status = &mut restarted["status"]["containerStatuses"][0];
    status["containerID"] = serde_json::json!(format!("containerd://{:064x}", 0xbeefu64));
    status["lastState"]["terminated"]["containerID"] =
        serde_json::json!(format!("containerd://{id}"));
    api.add_pod(restarted);
    agent.wait_collections(2);
    // (Other tests kill in parallel: count only ours.)
    let ours = |agent: &Agent| -> Vec<Value> {
        agent.get("/api/v1/oom").json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cgroup"] == path.as_str())
            .cloned()
            .collect()
    };
    let before = ours(&agent).len();
    oom_kill(&dir);
    within(Duration::from_secs(20), || ours(&agent).len() > before)
        .expect("the third kill is recorded");
    let newest = ours(&agent)[0].clone();
    assert_eq!(newest["container"], "kube-proxy", "{newest}");
    assert_eq!(newest["pod"], "kube-proxy-oom", "{newest}");
    within(Duration::from_secs(20), || {
        oom_event_requests(&api).len() >= 3
    })
    .expect("a third request");
    let all = oom_event_requests(&api);
    let methods: Vec<&str> = all.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["POST", "PATCH", "PATCH"], "{all:?}");
    assert_eq!(all[2].json()["series"]["count"], 3);

    let health = agent.get("/api/v1/health").json();
    assert_eq!(health["kube"]["events"]["enabled"], true);
    assert!(
        health["kube"]["events"]["posted"].as_u64() >= Some(3),
        "{health}"
    );
    assert_eq!(health["kube"]["events"]["failed"], 0, "{health}");
}

#[test]
fn no_events_posts_nothing() {
    let cg = TestCgroup::new();
    let (dir, path, uid, id) = besteffort_pod(&cg, 4);
    cg.write(
        &dir,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(32 * MIB).to_string(),
    );
    let pods = recorded("pods.json");
    let api = FakeApi::start(&pods, &recorded("node.json"));
    api.add_pod(derived_pod(
        &recorded_proxy(&pods),
        "kube-proxy-quiet",
        &uid,
        &id,
    ));
    let scratch = Scratch::new();
    let kubeconfig = api.kubeconfig(&scratch.dir);
    let agent = Agent::start_with_env(
        &scratch.dir.join("h.db"),
        &["--kube", "--node-name", NODE, "--no-events"],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    within(Duration::from_secs(10), || {
        pod_label(&agent, &path).as_deref() == Some("kube-proxy-quiet")
    })
    .expect("the pod is named");
    oom_kill(&dir);
    within(Duration::from_secs(20), || {
        agent.get("/api/v1/oom").json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cgroup"] == path.as_str())
    })
    .expect("the kill is recorded");
    agent.wait_collections(2);
    let posted: Vec<Request> = api
        .requests()
        .into_iter()
        .filter(|r| r.path().starts_with("/apis/events.k8s.io/"))
        .collect();
    assert!(posted.is_empty(), "{posted:?}");
    assert_eq!(
        agent.get("/api/v1/health").json()["kube"]["events"]["enabled"],
        false
    );
}

#[test]
fn the_pod_next_in_the_eviction_order_gets_one_event_near_the_threshold() {
    let cg = TestCgroup::new();
    let (dir, _, uid, id) = besteffort_pod(&cg, 5);
    let _workload = Workload::start(&dir, &args(&[("--anon", "8M".into())]));
    let pods = recorded("pods.json");
    let api = FakeApi::start(&pods, &recorded("node.json"));
    // kube-proxy is system-node-critical (never evicted): this one has no priority class.
    let mut pod = derived_pod(&recorded_proxy(&pods), "kube-proxy-next", &uid, &id);
    pod["spec"]["priority"] = serde_json::json!(0);
    pod["spec"]["priorityClassName"] = Value::Null;
    api.add_pod(pod);
    let scratch = Scratch::new();
    let kubeconfig = api.kubeconfig(&scratch.dir);
    let cgroup_root = cg.dir.display().to_string();
    // A threshold of 99% of the node's memory: memory.available is within 20% of it.
    let agent = Agent::start_with_env(
        &scratch.dir.join("h.db"),
        &[
            "--kube",
            "--node-name",
            NODE,
            "--cgroup-root",
            &cgroup_root,
            "--eviction-threshold",
            "99%",
        ],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    let eviction_events = || -> Vec<Request> {
        api.requests()
            .into_iter()
            .filter(|r| {
                r.path().starts_with("/apis/events.k8s.io/")
                    && r.json()["reason"] == "MemglassEvictionNext"
            })
            .collect()
    };
    within(Duration::from_secs(15), || !eviction_events().is_empty())
        .unwrap_or_else(|| panic!("no event: {}", agent.get("/api/v1/eviction").body));
    // Several collections later: still one event (it is repeated only every 5 minutes).
    agent.wait_collections(3);
    let posted = eviction_events();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].method, "POST");
    let event = posted[0].json();
    let next = agent.get("/api/v1/eviction").json()["next"].clone();
    assert_eq!(next["pod"], "kube-proxy-next", "{next}");
    assert_eq!(event["regarding"]["kind"], "Pod");
    assert_eq!(event["regarding"]["namespace"], next["namespace"], "{next}");
    assert_eq!(event["regarding"]["name"], next["pod"], "{next}");
    assert_eq!(event["regarding"]["uid"], next["pod_uid"], "{next}");
    let note = event["note"].as_str().unwrap();
    eprintln!("eviction note: {note}");
    assert!(
        note.starts_with("Next in kubelet's memory eviction order: memory.available is ")
            || note.starts_with(
                "Next in kubelet's memory eviction order: allocatableMemory.available is "
            ),
        "{note}"
    );
    assert!(note.contains("; memglass warns within "), "{note}");
    assert!(note.contains("This pod: working set "), "{note}");
}
