//! `NodeWatch` against the stand-in API server of memglass-testkit (`fake_api`), serving
//! the pods and node recorded from a real kubeadm 1.28 cluster
//! (`fixtures/kube/kubeadm-1.28-containerd/`): the requests kube-rs' watcher sends, a pod
//! added to the watch named within a second, the last directory kept while the server is
//! away and the pod added meanwhile named after it comes back, and events posted once then
//! patched as a series.
//!
//! One test function, because it sets `KUBECONFIG` for the process.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expect is a failed test

use std::time::{Duration, Instant};

use memglass_kube::{node_from_json, pods_from_json, NodeWatch, Origin, PodEvent};
use memglass_testkit::fake_api::{derived_pod, FakeApi};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/kube/");
const NODE: &str = "k8s-controller-01";

fn fixture(name: &str) -> String {
    let path = format!("{FIXTURES}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Poll `done` every 10 ms for at most `limit`; the time it took.
fn within(limit: Duration, done: impl Fn() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn watch_names_new_pods_survives_the_server_going_away_and_posts_events() {
    let dir = std::env::temp_dir().join(format!("memglass-kube-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pods: Value = serde_json::from_str(&fixture("kubeadm-1.28-containerd/pods.json")).unwrap();
    let node: Value = serde_json::from_str(&fixture("kubeadm-1.28-containerd/node.json")).unwrap();
    let mut api = FakeApi::start(&pods, &node);
    std::env::set_var("KUBECONFIG", api.kubeconfig(&dir));

    // The same objects read from the files: what the watch must publish.
    let mut expected = pods_from_json(
        &fixture("kubeadm-1.28-containerd/pods.json"),
        Origin::KubeApi,
    )
    .unwrap();
    expected.node = Some(node_from_json(&fixture("kubeadm-1.28-containerd/node.json")).unwrap());

    let watch = NodeWatch::start(Some(NODE), Duration::from_secs(5), true).expect("start");
    assert!(
        watch.wait_synced(Duration::from_secs(10)),
        "{:?}",
        watch.status()
    );
    // coredns is Pending with no nodeName: not this node's, so not served.
    let published = watch.directory();
    assert_eq!(published.node, expected.node);
    assert_eq!(published.len().0, 5, "{published:?}");
    for pod in published.pods() {
        assert_eq!(expected.pod(&pod.uid), Some(pod));
    }
    let status = watch.status();
    assert!(status.connected && status.synced, "{status:?}");
    assert_eq!(status.node, NODE);

    // What kube-rs' watcher asked: one list then one watch per resource, each with the
    // field selector, the list's resourceVersion and bookmarks.
    // (The watch starts right after the list is delivered.)
    let watching = |path: &str| {
        api.requests()
            .iter()
            .any(|r| r.path() == path && r.param("watch").as_deref() == Some("true"))
    };
    assert!(within(Duration::from_secs(5), || watching("/api/v1/pods")
        && watching("/api/v1/nodes"))
    .is_some());
    let requests = api.requests();
    for (path, selector) in [
        ("/api/v1/pods", format!("spec.nodeName={NODE}")),
        ("/api/v1/nodes", format!("metadata.name={NODE}")),
    ] {
        let asked: Vec<_> = requests.iter().filter(|r| r.path() == path).collect();
        let list = asked.first().expect("a list");
        assert_eq!(list.param("fieldSelector"), Some(selector.clone()));
        assert_eq!(list.param("watch"), None);
        let watch_request = asked
            .iter()
            .find(|r| r.param("watch").as_deref() == Some("true"))
            .expect("a watch");
        assert_eq!(watch_request.param("fieldSelector"), Some(selector));
        assert_eq!(
            watch_request.param("resourceVersion").as_deref(),
            Some("22127")
        );
        assert_eq!(
            watch_request.param("allowWatchBookmarks").as_deref(),
            Some("true")
        );
    }

    // A pod added to the stream is in the directory within a second.
    let recorded_proxy = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == "kube-proxy-p4jmn")
        .unwrap();
    let first_id = format!("{:064x}", 0xabc1u64);
    api.add_pod(derived_pod(
        recorded_proxy,
        "kube-proxy-new1",
        "11111111-2222-4333-8444-000000000001",
        &first_id,
    ));
    let took = within(Duration::from_secs(5), || {
        watch.directory().container(&first_id).is_some()
    })
    .expect("the added pod is named");
    eprintln!("pod added → directory: {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let pod = watch
        .directory()
        .pod("11111111-2222-4333-8444-000000000001")
        .cloned()
        .unwrap();
    assert_eq!(pod.name, "kube-proxy-new1");
    assert_eq!(pod.owner.as_deref(), Some("DaemonSet/kube-proxy"));

    // The server goes away: the last directory stays, the status says so.
    api.pause();
    assert!(
        within(Duration::from_secs(10), || !watch.status().connected).is_some(),
        "{:?}",
        watch.status()
    );
    let status = watch.status();
    assert!(
        status.errors >= 1 && status.last_error.is_some(),
        "{status:?}"
    );
    assert_eq!(watch.directory().len().0, 6);
    // A pod created while it is away…
    let second_id = format!("{:064x}", 0xabc2u64);
    api.add_pod(derived_pod(
        recorded_proxy,
        "kube-proxy-new2",
        "11111111-2222-4333-8444-000000000002",
        &second_id,
    ));
    std::thread::sleep(Duration::from_secs(2));
    assert!(watch.directory().container(&second_id).is_none());
    // …is named once it is back (the watch resumes from its last resourceVersion).
    api.resume();
    let back = Instant::now();
    let took = within(Duration::from_secs(40), || {
        watch.directory().container(&second_id).is_some()
    })
    .expect("the pod added while away is named after the reconnection");
    eprintln!("server back → pod named: {took:?}");
    assert!(watch.status().connected);
    assert_eq!(watch.directory().len().0, 7);
    let resumed = api
        .requests()
        .into_iter()
        .filter(|r| r.at >= back && r.path() == "/api/v1/pods")
        .find(|r| r.param("watch").as_deref() == Some("true"))
        .expect("a new pod watch");
    let rv: u64 = resumed.param("resourceVersion").unwrap().parse().unwrap();
    assert!(rv > 22127, "resumed from {rv}");

    // Away again, this time past the server's watch window: a pod is deleted and another
    // created meanwhile; the resumed watch gets 410 Gone, lists again, and the directory
    // is replaced as a whole (the deleted pod gone, the new one named).
    api.pause();
    assert!(within(Duration::from_secs(10), || !watch.status().connected).is_some());
    assert!(api.delete_pod("kube-proxy-new2"));
    let third_id = format!("{:064x}", 0xabc3u64);
    api.add_pod(derived_pod(
        recorded_proxy,
        "kube-proxy-new3",
        "11111111-2222-4333-8444-000000000003",
        &third_id,
    ));
    api.expire_history();
    api.resume();
    let back = Instant::now();
    let took = within(Duration::from_secs(40), || {
        let directory = watch.directory();
        directory.container(&third_id).is_some() && directory.container(&second_id).is_none()
    })
    .expect("relisted after 410 Gone");
    eprintln!("server back past its window → relisted: {took:?}");
    assert_eq!(watch.directory().len().0, 7);
    let relisted = api
        .requests()
        .into_iter()
        .filter(|r| r.at >= back && r.path() == "/api/v1/pods")
        .any(|r| r.param("watch").is_none());
    assert!(relisted, "a new list after 410 Gone");

    // Events: the first is created (POST), a repeat on the same pod and reason joins a
    // series (PATCH), another reason is a new event.
    let event = |reason: &str, note: &str| PodEvent {
        namespace: "kube-system".into(),
        name: "kube-proxy-new1".into(),
        uid: "11111111-2222-4333-8444-000000000001".into(),
        warning: true,
        reason: reason.into(),
        action: "Explain".into(),
        note: note.into(),
    };
    assert!(watch.post(event("MemglassOOMKill", "first")));
    assert!(
        within(Duration::from_secs(10), || watch.status().events_posted
            == 1)
        .is_some()
    );
    assert!(watch.post(event("MemglassOOMKill", "second")));
    assert!(watch.post(event("MemglassEvictionNext", "other")));
    assert!(
        within(Duration::from_secs(10), || watch.status().events_posted
            == 3)
        .is_some(),
        "{:?}",
        watch.status()
    );
    let events: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| {
            r.path()
                .starts_with("/apis/events.k8s.io/v1/namespaces/kube-system/events")
        })
        .collect();
    let methods: Vec<&str> = events.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["POST", "PATCH", "POST"]);
    let created = events[0].json();
    assert_eq!(created["reason"], "MemglassOOMKill");
    assert_eq!(created["note"], "first");
    assert_eq!(created["type"], "Warning");
    assert_eq!(created["reportingController"], "memglass");
    assert_eq!(created["reportingInstance"], format!("memglass-{NODE}"));
    assert_eq!(created["regarding"]["kind"], "Pod");
    assert_eq!(created["regarding"]["name"], "kube-proxy-new1");
    assert_eq!(
        created["regarding"]["uid"],
        "11111111-2222-4333-8444-000000000001"
    );
    let name = created["metadata"]["name"].as_str().unwrap();
    assert!(events[1].path().ends_with(&format!("/events/{name}")));
    assert_eq!(events[1].json()["series"]["count"], 2);
    assert_eq!(watch.status().events_failed, 0);

    drop(watch);
    drop(api);
    std::env::remove_var("KUBECONFIG");
    let _ = std::fs::remove_dir_all(&dir);
}
