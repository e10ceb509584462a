//! Everything analysed for one sample.

use memglass_identify::{CgroupKind, Directory, PathIdentity, QosClass};
use std::collections::HashMap;

use memglass_kernel::cgroup::CgroupVersion;
use memglass_kernel::{Gap, HostSample};

use crate::cgroup::{self, parent_path, CgroupReport};
use crate::node::{self, NodeReport, RootUsage};
use crate::reconcile::{self, Reconciliation};

/// The analysed state of the node and every memory cgroup at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// cgroup version of the memory hierarchy (1 or 2).
    pub cgroup_version: u8,
    /// The node breakdown.
    pub node: NodeReport,
    /// Node vs cgroups.
    pub reconciliation: Reconciliation,
    /// Each pod cgroup with its containers (indexes into `cgroups`' paths).
    pub pods: Vec<PodGroup>,
    /// Every memory cgroup, parents before children.
    pub cgroups: Vec<CgroupReport>,
    /// What could not be read.
    pub gaps: Vec<Gap>,
    /// Cgroups that vanished mid-read.
    pub vanished: usize,
    /// The node as the Kubernetes API (or --node) describes it: capacity, allocatable.
    pub kubernetes_node: Option<memglass_identify::NodeInfo>,
}

/// Analyse `sample`; `identities[i]` identifies `sample.cgroups[i]`, and `directory`
/// names their pods and containers where a runtime or the API was asked.
pub fn snapshot(
    sample: &HostSample,
    identities: &[PathIdentity],
    directory: &Directory,
) -> Snapshot {
    let mut cgroups: Vec<CgroupReport> = sample
        .cgroups
        .iter()
        .zip(identities)
        .map(|(cgroup, identity)| cgroup::report(cgroup, identity, directory.resolve(identity)))
        .collect();
    if sample.hierarchy.version == CgroupVersion::V1 {
        make_v1_oom_kills_hierarchical(&mut cgroups);
    }
    let root = sample
        .cgroups
        .iter()
        .find(|c| c.is_root())
        .map(|c| RootUsage {
            usage: c.memory.usage,
            inactive_file: c.memory.inactive_file,
        })
        .unwrap_or_default();
    let oom_kill = sample.vmstat.as_ref().and_then(|v| v.oom_kill());
    let node = node::break_down(&sample.meminfo, root, oom_kill);
    let reconciliation = reconcile::reconcile(&node, &cgroups);
    let pods = group_pods(&cgroups);
    Snapshot {
        cgroup_version: sample.hierarchy.version.number(),
        node,
        reconciliation,
        pods,
        cgroups,
        gaps: sample.gaps.clone(),
        vanished: sample.vanished,
        kubernetes_node: directory.node.clone(),
    }
}

/// A pod and the cgroups of its containers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodGroup {
    /// Pod UID.
    pub pod_uid: String,
    /// Namespace, when known.
    pub namespace: Option<String>,
    /// Pod name, when known.
    pub pod: Option<String>,
    /// QoS class.
    pub qos_class: Option<QosClass>,
    /// The pod cgroup's path.
    pub path: String,
    /// Paths of its container cgroups (sandbox included), in cgroup order.
    pub containers: Vec<String>,
}

/// Group container cgroups under their pod cgroup (by pod UID; a pod may appear twice
/// when a node runs two kubelets' trees, so the pod path is the key).
fn group_pods(cgroups: &[CgroupReport]) -> Vec<PodGroup> {
    let mut pods: Vec<PodGroup> = cgroups
        .iter()
        .filter(|c| c.kind == CgroupKind::Pod)
        .map(|c| PodGroup {
            pod_uid: c.pod_uid.clone().unwrap_or_default(),
            namespace: c.namespace.clone(),
            pod: c.pod.clone(),
            qos_class: c.qos_class,
            path: c.path.clone(),
            containers: Vec::new(),
        })
        .collect();
    for container in cgroups.iter().filter(|c| c.kind == CgroupKind::Container) {
        let parent = parent_path(&container.path);
        if let Some(pod) = pods.iter_mut().find(|p| Some(p.path.as_str()) == parent) {
            pod.containers.push(container.path.clone());
        }
    }
    pods
}

/// v1 counts `oom_kill` only in the cgroup whose task was killed; v2's memory.events is
/// hierarchical. Make v1 match v2 (a pod counts its containers' kills) and keep the
/// kernel's own counter as `events_local`. `cgroups` is in parents-before-children order.
fn make_v1_oom_kills_hierarchical(cgroups: &mut [CgroupReport]) {
    let index: HashMap<String, usize> = cgroups
        .iter()
        .enumerate()
        .map(|(i, c)| (c.path.clone(), i))
        .collect();
    for cgroup in cgroups.iter_mut() {
        cgroup.events_local = Some(cgroup.events);
    }
    for i in (0..cgroups.len()).rev() {
        let Some(kills) = cgroups[i].events.oom_kill else {
            continue;
        };
        let parent = parent_path(&cgroups[i].path).and_then(|p| index.get(p).copied());
        if let Some(parent) = parent {
            let total = &mut cgroups[parent].events.oom_kill;
            *total = Some(total.unwrap_or(0).saturating_add(kills));
        }
    }
}

impl Snapshot {
    /// The largest cgroups by kubelet's working set, with each pod's containers (largest
    /// first) under it instead of in the ranking: what a person reads first.
    pub fn top_with_containers(&self, count: usize) -> Vec<(&CgroupReport, Vec<&CgroupReport>)> {
        let by_path: HashMap<&str, &CgroupReport> =
            self.cgroups.iter().map(|c| (c.path.as_str(), c)).collect();
        let grouped: std::collections::HashSet<&str> = self
            .pods
            .iter()
            .flat_map(|p| p.containers.iter().map(String::as_str))
            .collect();
        let ws = |c: &&CgroupReport| std::cmp::Reverse(c.memory.working_set_kubelet.unwrap_or(0));
        let mut ranked: Vec<&CgroupReport> = self
            .cgroups
            .iter()
            .filter(|c| !c.is_root() && !grouped.contains(c.path.as_str()))
            .collect();
        ranked.sort_by_key(ws);
        ranked.truncate(count);
        ranked
            .into_iter()
            .map(|cgroup| {
                let mut containers: Vec<&CgroupReport> = self
                    .pods
                    .iter()
                    .filter(|p| p.path == cgroup.path)
                    .flat_map(|p| {
                        p.containers
                            .iter()
                            .filter_map(|path| by_path.get(path.as_str()).copied())
                    })
                    .collect();
                containers.sort_by_key(ws);
                (cgroup, containers)
            })
            .collect()
    }

    /// Non-root cgroups ranked by working set (kubelet's, the eviction figure), largest first.
    pub fn top_by_working_set(&self, count: usize) -> Vec<&CgroupReport> {
        let mut ranked: Vec<&CgroupReport> = self.cgroups.iter().filter(|c| !c.is_root()).collect();
        ranked.sort_by_key(|c| std::cmp::Reverse(c.memory.working_set_kubelet.unwrap_or(0)));
        ranked.truncate(count);
        ranked
    }
}
