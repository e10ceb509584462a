//! Kubernetes API data on real cgroups: a cgroup tree laid out, under a test prefix, with
//! the pod UIDs and container ids of a pod list recorded from a real kubeadm 1.28 node
//! (fixtures/kube/kubeadm-1.28-containerd), each container holding real memory; memglass
//! given `--pods`/`--node` must name them and carry the API's requests, limits,
//! priorities and owners, and the node's allocatable memory.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

use memglass_testkit::{memglass_bin, TestCgroup, Workload};
use serde_json::Value;

const MIB: u64 = 1 << 20;

#[test]
fn recorded_pods_name_real_cgroups() {
    let recorded =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/kube/kubeadm-1.28-containerd");
    let cg = TestCgroup::new();
    let etcd_pod = "kubepods/burstable/pod8e8fff2d-be18-4c30-9237-15081eb36a31";
    let etcd = "bd8e739c800c48d94c001dffece330d6229d4223d417579a8da27eb474f3f0de";
    let proxy_pod = "kubepods/besteffort/pod83d837fe-eb56-4c66-a379-5add9d532499";
    let proxy = "68261f5136b984e8935b7876f97886e8d4a5233120a1a62663f23e7a09f28290";
    let (etcd_dir, etcd_path) = cg.child(&format!("{etcd_pod}/{etcd}"));
    let (proxy_dir, proxy_path) = cg.child(&format!("{proxy_pod}/{proxy}"));
    let _etcd = Workload::start(&etcd_dir, &["--anon".into(), "20M".into()]);
    let _proxy = Workload::start(&proxy_dir, &["--anon".into(), "8M".into()]);
    let output = Command::new(memglass_bin())
        .args(["--no-cri", "--pods"])
        .arg(recorded.join("pods.json"))
        .arg("--node")
        .arg(recorded.join("node.json"))
        .args(["snapshot", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let cgroup = |path: &str| {
        doc["cgroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == path)
            .unwrap_or_else(|| panic!("{path}"))
            .clone()
    };
    let etcd = cgroup(&etcd_path);
    assert_eq!(etcd["namespace"], "kube-system");
    assert_eq!(etcd["pod"], "etcd-k8s-controller-01");
    assert_eq!(etcd["container"], "etcd");
    assert_eq!(etcd["qos_class"], "Burstable");
    assert_eq!(etcd["workload"]["container_memory_request"], 100 * MIB);
    assert!(etcd["workload"]["container_memory_limit"].is_null());
    assert_eq!(etcd["workload"]["priority"], 2000001000);
    assert_eq!(etcd["workload"]["priority_class"], "system-node-critical");
    assert_eq!(etcd["workload"]["owner"], "Node/k8s-controller-01");
    assert!(etcd["memory"]["anon"].as_u64().unwrap() >= 18 * MIB);
    let pod = cgroup(&format!("{}/{etcd_pod}", cg.path));
    assert_eq!(pod["pod"], "etcd-k8s-controller-01");
    assert_eq!(pod["workload"]["pod_memory_request"], 100 * MIB);
    let proxy = cgroup(&proxy_path);
    assert_eq!(
        (proxy["pod"].as_str(), proxy["container"].as_str()),
        (Some("kube-proxy-p4jmn"), Some("kube-proxy"))
    );
    assert_eq!(proxy["qos_class"], "BestEffort");
    assert_eq!(
        proxy["workload"]["owner"]
            .as_str()
            .map(|o| o.starts_with("DaemonSet/")),
        Some(true)
    );
    assert_eq!(doc["kubernetes_node"]["name"], "k8s-controller-01");
    assert_eq!(doc["kubernetes_node"]["allocatable_memory"], 1912704 * 1024);
    assert_eq!(doc["kubernetes_node"]["capacity_memory"], 2015104 * 1024);
}

#[test]
fn unreadable_pods_file_is_one_line_and_exit_1() {
    let output = Command::new(memglass_bin())
        .args([
            "--no-cri",
            "--pods",
            "/nonexistent/pods.json",
            "snapshot",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/pods.json"), "{stderr}");
}
