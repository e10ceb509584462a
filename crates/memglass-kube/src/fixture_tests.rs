//! The JSON readers on responses recorded from real clusters (`fixtures/kube/`, sources in
//! its README); expected values are read off the files. Malformed-input tests use small
//! hand-written JSON.

use memglass_identify::{ContainerInfo, Directory, NodeInfo, Origin, PodInfo, QosClass};
use serde_json::Value;

use crate::{node_from_json, pods_from_json, Error};

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/kube/",
            $path
        ))
    };
}

const KUBEADM_PODS: &str = fixture!("kubeadm-1.28-containerd/pods.json");
const KUBEADM_NODE: &str = fixture!("kubeadm-1.28-containerd/node.json");
const KIND_LIST: &str = fixture!("kind-list.json");
const MINIKUBE_NODE: &str = fixture!("minikube-1.15-node.json");
const OPENSHIFT_POD: &str = fixture!("openshift-4.15-crio-pod.json");
const PROMETHEUS: &str = fixture!("openshift-4.8-prometheus-k8s-0.json");
const ETCD_STATIC: &str = fixture!("openshift-4.8-etcd-static-pod.json");

const MI: u64 = 1 << 20;

fn pods(text: &str) -> Directory {
    match pods_from_json(text, Origin::File) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    }
}

fn pod<'a>(d: &'a Directory, uid: &str) -> &'a PodInfo {
    d.pod(uid).unwrap_or_else(|| panic!("no pod {uid}"))
}

fn container<'a>(d: &'a Directory, id: &str) -> &'a ContainerInfo {
    d.container(id)
        .unwrap_or_else(|| panic!("no container {id}"))
}

#[test]
fn kubeadm_kube_system_pods() {
    let d = pods(KUBEADM_PODS);
    assert_eq!(
        d.len(),
        (7, 5),
        "7 pods; the 2 Pending coredns have no containers"
    );
    assert_eq!(d.origins, vec![Origin::File]);

    // A Deployment's pod, Pending (no node, no containers), system-cluster-critical.
    assert_eq!(
        pod(&d, "2c176363-9a3a-40d0-ab36-27f04a14dceb"),
        &PodInfo {
            uid: "2c176363-9a3a-40d0-ab36-27f04a14dceb".into(),
            namespace: "kube-system".into(),
            name: "coredns-5dd5756b68-2zrhr".into(),
            qos_class: Some(QosClass::Burstable),
            priority: Some(2_000_000_000),
            priority_class: Some("system-cluster-critical".into()),
            owner: Some("ReplicaSet/coredns-5dd5756b68".into()),
            memory_request: Some(70 * MI),
            eviction_memory_request: Some(70 * MI),
            memory_limit: Some(170 * MI),
            node_name: None,
            phase: Some("Pending".into()),
        }
    );
    // A static pod: owned by its Node, system-node-critical, request without limit.
    assert_eq!(
        pod(&d, "8e8fff2d-be18-4c30-9237-15081eb36a31"),
        &PodInfo {
            uid: "8e8fff2d-be18-4c30-9237-15081eb36a31".into(),
            namespace: "kube-system".into(),
            name: "etcd-k8s-controller-01".into(),
            qos_class: Some(QosClass::Burstable),
            priority: Some(2_000_001_000),
            priority_class: Some("system-node-critical".into()),
            owner: Some("Node/k8s-controller-01".into()),
            memory_request: Some(100 * MI),
            eviction_memory_request: Some(100 * MI),
            memory_limit: None,
            node_name: Some("k8s-controller-01".into()),
            phase: Some("Running".into()),
        }
    );
    assert_eq!(
        container(
            &d,
            "bd8e739c800c48d94c001dffece330d6229d4223d417579a8da27eb474f3f0de"
        ),
        &ContainerInfo {
            id: "bd8e739c800c48d94c001dffece330d6229d4223d417579a8da27eb474f3f0de".into(),
            pod_uid: "8e8fff2d-be18-4c30-9237-15081eb36a31".into(),
            name: "etcd".into(),
            image: Some("registry.k8s.io/etcd:3.5.15-0".into()),
            sandbox: false,
            memory_request: Some(100 * MI),
            memory_limit: None,
        }
    );
    // The previous instance (lastState.terminated) is gone from the node: not listed.
    assert!(d
        .container("636168c87901fee448ea70708b601f2d01d9ab6949ceac7e2bd5e64ee1ed4284")
        .is_none());

    // kube-apiserver requests cpu only: Burstable with no memory figures.
    let apiserver = pod(&d, "06a7744c-36a8-4393-b2a2-16cc32e364f8");
    assert_eq!(apiserver.qos_class, Some(QosClass::Burstable));
    assert_eq!(
        (apiserver.memory_request, apiserver.memory_limit),
        (None, None)
    );

    // A DaemonSet's BestEffort pod.
    let proxy = pod(&d, "83d837fe-eb56-4c66-a379-5add9d532499");
    assert_eq!(proxy.name, "kube-proxy-p4jmn");
    assert_eq!(proxy.qos_class, Some(QosClass::BestEffort));
    assert_eq!(proxy.owner.as_deref(), Some("DaemonSet/kube-proxy"));
    assert_eq!(proxy.priority, Some(2_000_001_000));
    let proxy_container = container(
        &d,
        "68261f5136b984e8935b7876f97886e8d4a5233120a1a62663f23e7a09f28290",
    );
    assert_eq!(proxy_container.name, "kube-proxy");
    assert_eq!(proxy_container.pod_uid, proxy.uid);
    assert_eq!(
        (proxy_container.memory_request, proxy_container.memory_limit),
        (None, None)
    );

    for (id, name) in [
        (
            "75e23a466fc0e0602fe4bbfa69f6a0e88276bc68100ae29ddc1eee073a153245",
            "kube-apiserver",
        ),
        (
            "7f3553e68eff4ba7a0cff75104541e4cb70f2973423bfbb30b57830552dd3553",
            "kube-controller-manager",
        ),
        (
            "264b87fc7577336d4fbc954c77a7a9fbac42cc4c493976a901fe97d14275d104",
            "kube-scheduler",
        ),
    ] {
        assert_eq!(container(&d, id).name, name);
    }
}

#[test]
fn kubeadm_and_minikube_nodes() {
    assert_eq!(
        node_from_json(KUBEADM_NODE).ok(),
        Some(NodeInfo {
            name: "k8s-controller-01".into(),
            capacity_memory: Some(2_015_104 * 1024),
            allocatable_memory: Some(1_912_704 * 1024),
        })
    );
    assert_eq!(
        node_from_json(MINIKUBE_NODE).ok(),
        Some(NodeInfo {
            name: "minikube".into(),
            capacity_memory: Some(8_165_556 * 1024),
            allocatable_memory: Some(8_063_156 * 1024),
        })
    );
    // `kubectl get nodes -o json` of a one-node cluster works too.
    let list = format!(r#"{{"kind": "List", "apiVersion": "v1", "items": [{MINIKUBE_NODE}]}}"#);
    assert_eq!(
        node_from_json(&list).map(|n| n.name).ok().as_deref(),
        Some("minikube")
    );
}

#[test]
fn kind_list_of_best_effort_pods() {
    let d = pods(KIND_LIST);
    assert_eq!(d.len(), (2, 2));
    let t1 = pod(&d, "2fd916b3-3df3-41ff-87b7-0213c60210cd");
    assert_eq!((t1.namespace.as_str(), t1.name.as_str()), ("default", "t1"));
    assert_eq!(t1.qos_class, Some(QosClass::BestEffort));
    assert_eq!(t1.priority, Some(0));
    assert_eq!(t1.priority_class, None);
    assert_eq!(t1.owner, None);
    assert_eq!(t1.node_name.as_deref(), Some("116-control-plane"));
    assert_eq!((t1.memory_request, t1.memory_limit), (None, None));
    let c = container(
        &d,
        "5e3db942e312548c103c334ce3ba00751360c07049971c8a00d2044ab055129b",
    );
    assert_eq!(c.name, "t2");
    assert_eq!(c.pod_uid, "375f3cc4-6bb4-4880-b3f3-0d3c43eef30c");
    assert_eq!(c.image.as_deref(), Some("docker.io/itaysk/cyan:latest"));
}

#[test]
fn single_cri_o_pod_with_a_custom_priority_class() {
    let d = pods(OPENSHIFT_POD);
    assert_eq!(d.len(), (1, 1));
    assert_eq!(
        pod(&d, "b650b63f-b736-4338-bd66-29c44bb5c18a"),
        &PodInfo {
            uid: "b650b63f-b736-4338-bd66-29c44bb5c18a".into(),
            namespace: "clusters-dev05".into(),
            name: "capi-provider-77674b845-rxwv2".into(),
            qos_class: Some(QosClass::Burstable),
            priority: Some(100_000_000),
            priority_class: Some("hypershift-control-plane".into()),
            owner: Some("ReplicaSet/capi-provider-77674b845".into()),
            memory_request: Some(100 * MI),
            eviction_memory_request: Some(100 * MI),
            memory_limit: None,
            node_name: Some("dev09".into()),
            phase: Some("Running".into()),
        }
    );
    let c = container(
        &d,
        "ed912e3d6e4692820c71226bf0107e8d28152eb3f134c3c26dc36d10a4c722b4",
    );
    assert_eq!(c.name, "manager");
    assert_eq!(c.memory_request, Some(100 * MI));
    assert!(c
        .image
        .as_deref()
        .is_some_and(|i| i.starts_with("registry.redhat.io/multicluster-engine/")));
}

#[test]
fn statefulset_pod_sums_seven_containers() {
    let d = pods(PROMETHEUS);
    assert_eq!(d.len(), (1, 7));
    let p = pod(&d, "4f346c63-4d5b-461b-898c-9c0fca14b797");
    assert_eq!(p.owner.as_deref(), Some("StatefulSet/prometheus-k8s"));
    assert_eq!(p.priority_class.as_deref(), Some("system-cluster-critical"));
    assert_eq!(p.priority, Some(2_000_000_000));
    assert_eq!(
        p.node_name.as_deref(),
        Some("worker-0.imeixner20210707.lab.upshift.rdu2.redhat.com")
    );
    // 1Gi + 10Mi + 100Mi + 20Mi + 20Mi + 20Mi + 10Mi, no limits.
    assert_eq!(p.memory_request, Some(1204 * MI));
    assert_eq!(p.memory_limit, None);
    let prometheus = container(
        &d,
        "24bd6a01994feaec82a3adf4ec92da1b4cab6fe2f90d978d4f5d2f7cb7376914",
    );
    assert_eq!(prometheus.name, "prometheus");
    assert_eq!(prometheus.memory_request, Some(1 << 30));
    let sidecar = container(
        &d,
        "68fb3900e7d8b9f34fa1b6fc9a6591f4c9d39dc5ef71aeac3d940481de85afda",
    );
    assert_eq!(sidecar.name, "thanos-sidecar");
    assert_eq!(sidecar.memory_request, Some(100 * MI));
}

#[test]
fn static_pod_with_init_containers() {
    let d = pods(ETCD_STATIC);
    assert_eq!(d.len(), (1, 5), "2 init + 3 app containers");
    let p = pod(&d, "1770220e-f347-45bc-9165-60b6e61d0a6f");
    assert_eq!(
        p.owner.as_deref(),
        Some("Node/master-0.imeixner20210707.lab.upshift.rdu2.redhat.com")
    );
    assert_eq!(p.priority_class.as_deref(), Some("system-node-critical"));
    // max(max(60Mi, 60Mi) init, 60Mi + 600Mi + 200Mi app) = 860Mi.
    assert_eq!(p.memory_request, Some(860 * MI));
    assert_eq!(p.qos_class, Some(QosClass::Burstable));
    let init = container(
        &d,
        "7fd19af353b27599b0f3c96720fb8201d58ada2ce6400259f345d48f88bd82bc",
    );
    assert_eq!(init.name, "etcd-ensure-env-vars");
    assert_eq!(init.memory_request, Some(60 * MI));
    let etcd = container(
        &d,
        "47e51e5446b2392912df28a0ac2bca207bbda371cc77bc125553020d17d3cc60",
    );
    assert_eq!(etcd.name, "etcd");
    assert_eq!(etcd.memory_request, Some(600 * MI));
}

/// Every recorded pod, with `status.qosClass` removed, gets the class its cluster assigned.
#[test]
fn computed_qos_matches_every_recorded_pod() {
    let mut checked = 0;
    for text in [
        KUBEADM_PODS,
        KIND_LIST,
        OPENSHIFT_POD,
        PROMETHEUS,
        ETCD_STATIC,
    ] {
        let recorded = pods(text);
        let mut value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let mut strip = |pod: &mut Value| {
            if let Some(status) = pod.get_mut("status").and_then(Value::as_object_mut) {
                assert!(status.remove("qosClass").is_some());
            }
        };
        match value.get_mut("items").and_then(Value::as_array_mut) {
            Some(items) => items.iter_mut().for_each(&mut strip),
            None => strip(&mut value),
        }
        let computed = pods(&value.to_string());
        for p in recorded.pods() {
            assert_eq!(
                pod(&computed, &p.uid).qos_class,
                p.qos_class,
                "{}/{}",
                p.namespace,
                p.name
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

#[test]
fn malformed_input_is_a_one_line_error() {
    let err = |text: &str| match pods_from_json(text, Origin::File) {
        Ok(_) => panic!("accepted {text}"),
        Err(e) => e,
    };
    let message = |text: &str| err(text).to_string();

    assert!(matches!(err("{"), Error::Json(_)));
    assert!(message("[1, 2]").starts_with("document: expected Pod, found a JSON array"));
    assert_eq!(
        message(r#"{"kind": "Node", "metadata": {"name": "n"}}"#),
        "document: expected Pod, found kind Node"
    );
    assert_eq!(
        message(r#"{"kind": "List", "items": [{"kind": "Service"}]}"#),
        "item 0: expected Pod, found kind Service"
    );
    let ok =
        r#"{"metadata": {"uid": "u1", "namespace": "a", "name": "p"}, "spec": {"containers": []}}"#;
    let no_uid =
        r#"{"metadata": {"namespace": "kube-system", "name": "x"}, "spec": {"containers": []}}"#;
    assert_eq!(
        message(&format!(
            r#"{{"kind": "PodList", "items": [{ok}, {ok}, {ok}, {no_uid}]}}"#
        )),
        "item 3 (kube-system/x): metadata.uid missing"
    );
    assert_eq!(
        message(r#"{"metadata": {"uid": "u", "namespace": "a", "name": "p"}}"#),
        "pod a/p: spec missing"
    );
    assert_eq!(
        message(
            r#"{"metadata": {"uid": "u", "namespace": "a", "name": "p"}, "spec": {"containers": [
                {"name": "c", "resources": {"limits": {"memory": "1.5GB"}}}]}}"#
        ),
        "pod a/p: spec.containers[0].resources.limits.memory: invalid quantity \"1.5GB\": unknown suffix"
    );
    let schema = message(r#"{"metadata": {"uid": 7}, "spec": {"containers": []}}"#);
    assert!(
        schema.starts_with("document: not a valid Pod: "),
        "{schema}"
    );
    assert!(!schema.contains('\n'));

    let node_err = |text: &str| match node_from_json(text) {
        Ok(n) => panic!("accepted {n:?}"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        node_err(
            r#"{"kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"memory": "8Gb"}}}"#
        ),
        "node n: status.capacity.memory: invalid quantity \"8Gb\": unknown suffix"
    );
    assert_eq!(
        node_err(r#"{"kind": "Node", "metadata": {}}"#),
        "node: metadata.name missing"
    );
    assert_eq!(
        node_err(r#"{"kind": "List", "items": []}"#),
        "document: expected one Node (kubectl get node NAME -o json), found a list of 0 items"
    );
    assert_eq!(
        node_err(KUBEADM_PODS),
        "document: expected one Node (kubectl get node NAME -o json), found a list of 7 items"
    );
}
