//! The pods of this node, as kubelet and the scheduler count them: every pod cgroup joined
//! with what the directory (CRI, `--pods`, the API) knows about its pod, plus the pods the
//! directory binds to this node that have no cgroup (yet). Shared by [`crate::eviction`] and
//! [`crate::sizing`].

use memglass_identify::{CgroupKind, Directory, PodInfo};

use crate::cgroup::CgroupReport;
use crate::snapshot::Snapshot;

/// One pod of this node.
#[derive(Debug, Clone, Copy)]
pub struct NodePod<'a> {
    /// Pod UID (from the cgroup path, or the directory's for a pod without a cgroup).
    pub uid: &'a str,
    /// Its pod cgroup (the first one when two kubelet trees hold the same UID).
    pub cgroup: Option<&'a CgroupReport>,
    /// What the directory knows about it (requests, priority, names).
    pub info: Option<&'a PodInfo>,
    /// True when the pod's spec was read ([`spec_known`]): its request, limit and priority
    /// are then the pod's own, and `None` means "not set".
    pub spec_known: bool,
}

/// True when `info` comes from the pod's spec (the Kubernetes API or a `kubectl -o json`
/// file), not only from the container runtime. The CRI names pods but knows nothing of
/// their requests, limits, priority or QoS class; `memglass-kube` always fills the QoS
/// class (from `status.qosClass`, or computed from the spec as kubelet does), so a known
/// QoS class is the mark of a spec.
pub fn spec_known(info: &PodInfo) -> bool {
    info.qos_class.is_some()
}

/// `status.phase` values kubelet no longer counts as active (its `activePods` filter) and
/// the scheduler no longer counts against allocatable.
fn is_terminal(info: &PodInfo) -> bool {
    matches!(info.phase.as_deref(), Some("Succeeded" | "Failed"))
}

/// Pods of this node, in cgroup order, then pods without a cgroup by UID.
///
/// - every pod cgroup, named or not (a pod the directory does not know still counts, by
///   UID), except those whose pod the directory says has terminated;
/// - every pod the directory binds to this node (`spec.nodeName` equal to the node's name
///   from `--node` or the API) that has no pod cgroup and has not terminated. Without the
///   node's name, such pods are left out: a `kubectl get pods -A -o json` file holds the
///   whole cluster's.
pub fn node_pods<'a>(snapshot: &'a Snapshot, directory: &'a Directory) -> Vec<NodePod<'a>> {
    let mut pods: Vec<NodePod<'a>> = Vec::new();
    for cgroup in snapshot
        .cgroups
        .iter()
        .filter(|c| c.kind == CgroupKind::Pod)
    {
        let Some(uid) = cgroup.pod_uid.as_deref() else {
            continue;
        };
        if pods.iter().any(|p| p.uid == uid) {
            continue;
        }
        let info = directory.pod(uid);
        if info.is_some_and(is_terminal) {
            continue;
        }
        pods.push(NodePod {
            uid,
            cgroup: Some(cgroup),
            info,
            spec_known: info.is_some_and(spec_known),
        });
    }
    let node_name = snapshot
        .kubernetes_node
        .as_ref()
        .map(|n| n.name.as_str())
        .filter(|n| !n.is_empty());
    if let Some(node_name) = node_name {
        let mut bound: Vec<&PodInfo> = directory
            .pods()
            .filter(|p| p.node_name.as_deref() == Some(node_name) && !is_terminal(p))
            .filter(|p| {
                !pods
                    .iter()
                    .any(|known| known.uid.eq_ignore_ascii_case(&p.uid))
            })
            .collect();
        bound.sort_by(|a, b| a.uid.cmp(&b.uid));
        pods.extend(bound.into_iter().map(|info| NodePod {
            uid: &info.uid,
            cgroup: None,
            info: Some(info),
            spec_known: spec_known(info),
        }));
    }
    pods
}

/// The kubepods cgroup that holds these pods: the one with the most of them below it
/// (the first on ties; a node has one, test machines and nested nodes may have several).
pub fn kubepods_of<'a>(snapshot: &'a Snapshot, pods: &[NodePod<'_>]) -> Option<&'a CgroupReport> {
    let mut best: Option<(&CgroupReport, usize)> = None;
    for kubepods in snapshot
        .cgroups
        .iter()
        .filter(|c| c.kind == CgroupKind::Kubepods)
    {
        let prefix = format!("{}/", kubepods.path.trim_end_matches('/'));
        let held = pods
            .iter()
            .filter_map(|p| p.cgroup)
            .filter(|c| c.path.starts_with(&prefix))
            .count();
        if best.is_none_or(|(_, most)| held > most) {
            best = Some((kubepods, held));
        }
    }
    best.map(|(kubepods, _)| kubepods)
}

/// The cgroups directly below `pod`'s cgroup that are containers.
pub fn containers_of<'a>(snapshot: &'a Snapshot, pod: &CgroupReport) -> Vec<&'a CgroupReport> {
    snapshot
        .pods
        .iter()
        .filter(|group| group.path == pod.path)
        .flat_map(|group| group.containers.iter())
        .filter_map(|path| snapshot.cgroups.iter().find(|c| &c.path == path))
        .collect()
}
