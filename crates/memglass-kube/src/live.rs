//! The live source: this node's pods and the node itself from the API server, through kube-rs.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use memglass_identify::{Directory, Origin};

use crate::error::{causes, Error, Result};
use crate::map::{directory_from_pods, node_info};

/// The node whose pods memglass describes: `explicit` when given (`--node-name`), else the
/// `NODE_NAME` environment variable (set it from `spec.nodeName` with the downward API in a
/// DaemonSet), else the kernel's hostname (`/proc/sys/kernel/hostname`), which kubelet uses
/// as the node name unless `--hostname-override` says otherwise. Inside a pod without
/// `hostNetwork` the hostname is the pod's name, so a DaemonSet must set `NODE_NAME`.
pub fn node_name(explicit: Option<&str>) -> Result<String> {
    let given = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    if let Some(name) = given(explicit) {
        return Ok(name);
    }
    if let Some(name) = given(std::env::var("NODE_NAME").ok().as_deref()) {
        return Ok(name);
    }
    match std::fs::read_to_string("/proc/sys/kernel/hostname") {
        Ok(host) => given(Some(&host)).ok_or_else(|| Error::NoNodeName("empty hostname".into())),
        Err(e) => Err(Error::NoNodeName(e.to_string())),
    }
}

/// Asks the API server for the pods on one node (field selector `spec.nodeName=<node>`) and
/// for that node's capacity and allocatable memory, and maps them exactly as
/// [`pods_from_json`](crate::pods_from_json) and [`node_from_json`](crate::node_from_json) do.
///
/// The client comes from `kube::Config::infer()`: `$KUBECONFIG` or `~/.kube/config` when
/// present, else the in-cluster service account (`KUBERNETES_SERVICE_HOST`, the mounted token
/// and CA). The account needs `list` on pods and `get` on nodes. `node` is resolved by
/// [`node_name`]. `timeout` bounds connecting, each read, and the whole exchange.
///
/// Blocking: it runs a small current-thread tokio runtime of its own, so call it from
/// synchronous code (not from inside another tokio runtime).
pub fn fetch(node: Option<&str>, timeout: Duration) -> Result<Directory> {
    let node = node_name(node)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        match tokio::time::timeout(timeout, fetch_async(&node, timeout)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(timeout)),
        }
    })
}

async fn fetch_async(node: &str, timeout: Duration) -> Result<Directory> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| Error::Config(causes(&e)))?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    let client = kube::Client::try_from(config).map_err(|e| Error::Config(causes(&e)))?;

    let pods: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={node}");
    let list = pods
        .list(&ListParams::default().fields(&selector))
        .await
        .map_err(|source| Error::api(format!("list pods on node {node}"), source))?;
    let nodes: Api<Node> = Api::all(client);
    let node_object = nodes
        .get(node)
        .await
        .map_err(|source| Error::api(format!("get node {node}"), source))?;

    let mut directory = directory_from_pods(&list.items, Origin::KubeApi)?;
    directory.node = Some(node_info(&node_object)?);
    Ok(directory)
}

/// Every pod (all namespaces) and every node of the cluster, from the API server
/// (kubeconfig or in-cluster service account): what `kubectl get pods -A -o json` and
/// `kubectl get nodes -o json` return. Blocking, like [`fetch`].
pub fn fetch_cluster(timeout: Duration) -> Result<(Vec<Pod>, Vec<Node>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let ask = async {
            let mut config = kube::Config::infer()
                .await
                .map_err(|e| Error::Config(causes(&e)))?;
            config.connect_timeout = Some(timeout);
            config.read_timeout = Some(timeout);
            let client = kube::Client::try_from(config).map_err(|e| Error::Config(causes(&e)))?;
            let pods = Api::<Pod>::all(client.clone())
                .list(&ListParams::default())
                .await
                .map_err(|source| Error::api("list pods".into(), source))?;
            let nodes = Api::<Node>::all(client)
                .list(&ListParams::default())
                .await
                .map_err(|source| Error::api("list nodes".into(), source))?;
            Ok((pods.items, nodes.items))
        };
        match tokio::time::timeout(timeout, ask).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(timeout)),
        }
    })
}
