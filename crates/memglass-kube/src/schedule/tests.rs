//! The scheduler's arithmetic on a recorded cluster (fixtures/kube/kubeadm-1.28-containerd:
//! two coredns pods really stayed Pending there) and on constructed pods and nodes for the
//! rules no recording shows.

use serde_json::{json, Value};

use super::*;
use crate::json::{node_list_from_json, pod_list_from_json};

fn fixture(name: &str) -> String {
    let path = format!("{}/../../fixtures/kube/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const MI: u64 = 1 << 20;

#[test]
fn recorded_kubeadm_cluster_coredns_is_pending_on_the_not_ready_taint() {
    let pods = pod_list_from_json(&fixture("kubeadm-1.28-containerd/pods.json")).unwrap();
    let nodes = node_list_from_json(&fixture("kubeadm-1.28-containerd/node.json")).unwrap();
    let pending = pending(&pods, &nodes, None).unwrap();
    let names: Vec<&str> = pending.iter().map(|p| p.pod.as_str()).collect();
    assert_eq!(
        names,
        ["coredns-5dd5756b68-2zrhr", "coredns-5dd5756b68-wcs5x"]
    );
    let coredns = &pending[0];
    assert_eq!(coredns.request, 70 * MI);
    assert_eq!(coredns.cpu_request_millis, 100);
    assert_eq!(coredns.bound_to, None);
    let node = &coredns.nodes[0];
    assert_eq!(node.node, "k8s-controller-01");
    // allocatable 1912704Ki; requested: etcd's 100Mi (the other running pods request cpu only).
    assert_eq!(node.allocatable, Some(1_912_704 * 1024));
    assert_eq!(node.requested, 100 * MI);
    assert_eq!(node.free, Some(1_912_704 * 1024 - 100 * 1_048_576));
    // The control-plane taint is tolerated (Equal, both values empty); not-ready:NoSchedule
    // is not (coredns tolerates it only for NoExecute); the nodeSelector matches; cpu fits
    // (650m of 2 requested).
    assert_eq!(
        node.reasons,
        ["untolerated taint node.kubernetes.io/not-ready:NoSchedule"]
    );
    assert!(!node.fits);
    assert_eq!(node.unused_requests, None);
}

fn pod(name: &str, node: Option<&str>, phase: &str, memory: &str, extra: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "app",
        "resources": {"requests": {"memory": memory, "cpu": "100m"}}}]});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            spec[k] = v;
        }
    }
    json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
        "spec": spec, "status": {"phase": phase}})
}

fn node(name: &str, memory: &str, extra: Value) -> Value {
    let mut node = json!({"kind": "Node", "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"disk": "ssd", "kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"allocatable": {"memory": memory, "cpu": "2", "pods": "3"}}});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            node["spec"][k] = v;
        }
    }
    node
}

fn run(pods: Vec<Value>, nodes: Vec<Value>) -> Vec<PendingPod> {
    let pods = pod_list_from_json(&json!({"items": pods}).to_string()).unwrap();
    let nodes = node_list_from_json(&json!({"items": nodes}).to_string()).unwrap();
    pending(&pods, &nodes, None).unwrap()
}

#[test]
fn memory_fit_counts_non_terminated_pods_and_needs_strictly_more() {
    let result = run(
        vec![
            pod("web", Some("n1"), "Running", "600Mi", json!({})),
            pod("done", Some("n1"), "Succeeded", "900Mi", json!({})),
            pod("broken", Some("n1"), "Failed", "900Mi", json!({})),
            pod("starting", Some("n1"), "Pending", "200Mi", json!({})),
            pod("new", None, "Pending", "224Mi", json!({})),
            pod("big", None, "Pending", "225Mi", json!({})),
        ],
        vec![node("n1", "1Gi", json!({}))],
    );
    let get = |name: &str| result.iter().find(|p| p.pod == name).unwrap();
    // 1Gi − (600 + 200) = 224Mi free: 224Mi fits exactly, 225Mi does not.
    let new = &get("new").nodes[0];
    assert_eq!(new.requested, 800 * MI);
    assert_eq!(new.free, Some(224 * MI as i64));
    assert!(new.fits, "{new:?}");
    let big = &get("big").nodes[0];
    assert_eq!(
        big.reasons,
        [format!(
            "Insufficient memory (requests {} B, {} B free)",
            225 * MI,
            224 * MI
        )]
    );
    // A pod bound to the node and still Pending is not counted against itself.
    let starting = get("starting");
    assert_eq!(starting.bound_to.as_deref(), Some("n1"));
    assert_eq!(starting.nodes[0].requested, 600 * MI);
    assert!(starting.nodes[0].fits);
}

#[test]
fn a_pod_without_requests_fits_an_overcommitted_node_but_not_a_full_one() {
    let mut nothing = pod("nothing", None, "Pending", "0", json!({}));
    nothing["spec"]["containers"][0]["resources"] = json!({});
    let result = run(
        vec![
            pod("a", Some("n1"), "Running", "2Gi", json!({})),
            nothing.clone(),
        ],
        vec![node("n1", "1Gi", json!({}))],
    );
    assert_eq!(result[0].request, 0);
    assert_eq!(result[0].nodes[0].free, Some(-(1i64 << 30)));
    assert!(result[0].nodes[0].fits, "{:?}", result[0].nodes[0]);
    // allocatable pods: 3.
    let result = run(
        vec![
            pod("a", Some("n1"), "Running", "1Mi", json!({})),
            pod("b", Some("n1"), "Running", "1Mi", json!({})),
            pod("c", Some("n1"), "Running", "1Mi", json!({})),
            nothing,
        ],
        vec![node("n1", "1Gi", json!({}))],
    );
    assert_eq!(result[0].nodes[0].reasons, ["Too many pods (3 of 3)"]);
}

#[test]
fn cpu_taints_cordons_and_selectors_block_too() {
    let tolerant = json!({"tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]});
    let mut hungry_cpu = pod("cpu", None, "Pending", "1Mi", json!({}));
    hungry_cpu["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("1900m");
    let result = run(
        vec![
            pod("hog", Some("n1"), "Running", "1Mi", json!({})),
            pod(
                "picky",
                None,
                "Pending",
                "1Mi",
                json!({"nodeSelector": {"disk": "hdd"}}),
            ),
            pod("db", None, "Pending", "1Mi", tolerant),
            hungry_cpu,
        ],
        vec![
            node("n1", "1Gi", json!({})),
            node(
                "tainted",
                "1Gi",
                json!({"taints": [
                {"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                {"key": "soft", "effect": "PreferNoSchedule"}]}),
            ),
            node("cordoned", "1Gi", json!({"unschedulable": true})),
        ],
    );
    let reasons = |pod: &str, node: &str| {
        result
            .iter()
            .find(|p| p.pod == pod)
            .unwrap()
            .nodes
            .iter()
            .find(|n| n.node == node)
            .unwrap()
            .reasons
            .clone()
    };
    assert_eq!(
        reasons("picky", "n1"),
        ["nodeSelector disk=hdd does not match"]
    );
    assert_eq!(
        reasons("picky", "tainted"),
        [
            "untolerated taint dedicated=db:NoSchedule",
            "nodeSelector disk=hdd does not match"
        ]
    );
    assert!(
        reasons("db", "tainted").is_empty(),
        "PreferNoSchedule never blocks"
    );
    assert_eq!(
        reasons("db", "cordoned"),
        ["node is unschedulable (cordoned)"]
    );
    // 1900m + 100m of hog = 2000m: fits exactly on n1; elsewhere nothing else is requested.
    assert!(reasons("cpu", "n1").is_empty());
    let result2 = run(
        vec![
            pod("hog", Some("n1"), "Running", "1Mi", json!({})),
            pod("hog2", Some("n1"), "Running", "1Mi", json!({})),
        ],
        vec![node("n1", "1Gi", json!({}))],
    );
    assert!(result2.is_empty(), "no Pending pod");
}

#[test]
fn required_node_affinity_terms_are_ored_expressions_anded() {
    let affinity = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]},
        {"matchExpressions": [{"key": "disk", "operator": "Exists"},
                              {"key": "gpu", "operator": "DoesNotExist"}],
         "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n2"]}]}
    ]}}}});
    let result = run(
        vec![pod("p", None, "Pending", "1Mi", affinity)],
        vec![node("n1", "1Gi", json!({})), node("n2", "1Gi", json!({}))],
    );
    let n = |name: &str| result[0].nodes.iter().find(|n| n.node == name).unwrap();
    assert!(n("n1").fits);
    assert_eq!(n("n2").reasons, ["required node affinity does not match"]);
}

#[test]
fn sidecars_and_init_containers_and_overhead_in_the_request() {
    let mut p = pod(
        "p",
        None,
        "Pending",
        "100Mi",
        json!({
        "initContainers": [
            {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"memory": "64Mi"}}},
            {"name": "migrate", "resources": {"requests": {"memory": "300Mi"}}}],
        "overhead": {"memory": "10Mi", "cpu": "50m"}}),
    );
    p["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("0.1");
    let result = run(vec![p], vec![node("n1", "1Gi", json!({}))]);
    // max(100 + 64, 300 + 64) + 10.
    assert_eq!(result[0].request, 374 * MI);
    assert_eq!(result[0].cpu_request_millis, 150);
}

#[test]
fn with_usage_unused_requests_and_the_pods_to_shrink() {
    let pods = pod_list_from_json(
        &json!({"items": [
            pod("fat", Some("n1"), "Running", "600Mi", json!({})),
            pod("lean", Some("n1"), "Running", "300Mi", json!({})),
            pod("slim", Some("n1"), "Running", "100Mi", json!({})),
            pod("new", None, "Pending", "300Mi", json!({})),
        ]})
        .to_string(),
    )
    .unwrap();
    let nodes =
        node_list_from_json(&json!({"items": [node("n1", "1Gi", json!({}))]}).to_string()).unwrap();
    let mut usage = BTreeMap::new();
    let key = |name: &str| ("shop".to_owned(), name.to_owned());
    usage.insert(
        key("fat"),
        PodUsage {
            working_set: Some(100 * MI),
            suggested_request: Some(120 * MI),
        },
    );
    usage.insert(
        key("lean"),
        PodUsage {
            working_set: Some(200 * MI),
            suggested_request: None,
        },
    );
    usage.insert(
        key("slim"),
        PodUsage {
            working_set: Some(150 * MI),
            suggested_request: Some(173 * MI),
        },
    );
    let result = pending(&pods, &nodes, Some(&usage)).unwrap();
    let n1 = &result[0].nodes[0];
    // 1Gi − 1000Mi = 24Mi free; 276Mi short.
    assert!(!n1.fits);
    // (600 − 100) + (300 − 200) + 0 (slim uses more than its request).
    assert_eq!(n1.unused_requests, Some(600 * MI));
    // fat alone frees 480Mi ≥ 276Mi.
    assert_eq!(n1.shrink.len(), 1);
    assert_eq!(n1.shrink[0].pod, "fat");
    assert_eq!(n1.shrink[0].suggested_request, 120 * MI);
    assert_eq!(n1.shrink[0].frees, 480 * MI);
}
