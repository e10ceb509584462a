//! What the runtime and the Kubernetes API know about pods and containers, as plain
//! lookup tables. Filled by sources elsewhere (`memglass-cri` from the CRI socket,
//! `memglass-kube` from the API server or `kubectl -o json` files); read here without I/O.

use std::collections::HashMap;

use crate::{PathIdentity, QosClass};

/// Where a fact came from, so merged directories can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The container runtime's CRI socket.
    Cri,
    /// The Kubernetes API server.
    KubeApi,
    /// A `kubectl get … -o json` file given on the command line.
    File,
}

/// One pod, as the runtime or the API describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodInfo {
    /// metadata.uid (dashed, lower case).
    pub uid: String,
    /// metadata.namespace.
    pub namespace: String,
    /// metadata.name.
    pub name: String,
    /// status.qosClass.
    pub qos_class: Option<QosClass>,
    /// spec.priority.
    pub priority: Option<i32>,
    /// spec.priorityClassName.
    pub priority_class: Option<String>,
    /// The controlling owner, as `Kind/name` (e.g. `ReplicaSet/web-5d4f8`).
    pub owner: Option<String>,
    /// The pod's memory request in bytes as the scheduler counts it (component-helpers
    /// `PodRequests`: containers, init containers and sidecars, pod-level resources, plus
    /// RuntimeClass overhead); `None` when nothing names memory.
    pub memory_request: Option<u64>,
    /// The memory request kubelet's eviction ranking subtracts from the pod's working set
    /// (`GetResourceRequestQuantity`): the same without overhead unless the request is
    /// non-zero, and without the containers when pod-level resources are set. `None` = none
    /// (kubelet's zero). Differs from `memory_request` only for overhead-only pods and pods
    /// with pod-level resources.
    #[serde(default)]
    pub eviction_memory_request: Option<u64>,
    /// Σ of the containers' memory limits in bytes (`None` unless every container has one).
    pub memory_limit: Option<u64>,
    /// spec.nodeName.
    pub node_name: Option<String>,
    /// status.phase.
    pub phase: Option<String>,
}

/// One container (or pod sandbox), as the runtime or the API describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerInfo {
    /// The bare runtime id (64 hex for containerd, CRI-O and docker).
    pub id: String,
    /// UID of the pod it belongs to.
    pub pod_uid: String,
    /// Container name from the pod spec; `POD` for the sandbox (cAdvisor's convention).
    pub name: String,
    /// Image reference, when known.
    pub image: Option<String>,
    /// True for the pod sandbox (pause) container.
    pub sandbox: bool,
    /// resources.requests.memory in bytes.
    pub memory_request: Option<u64>,
    /// resources.limits.memory in bytes.
    pub memory_limit: Option<u64>,
}

/// The node's memory as the API reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// metadata.name.
    pub name: String,
    /// status.capacity.memory in bytes.
    pub capacity_memory: Option<u64>,
    /// status.allocatable.memory in bytes.
    pub allocatable_memory: Option<u64>,
}

/// Pods and containers by UID and id, merged from every source that answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    pods: HashMap<String, PodInfo>,
    containers: HashMap<String, ContainerInfo>,
    /// The node, when the API (or a file) described it.
    pub node: Option<NodeInfo>,
    /// Sources that contributed.
    pub origins: Vec<Origin>,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Directory {
        Directory::default()
    }

    /// Add or complete a pod: fields already known are kept unless `pod` has them.
    pub fn add_pod(&mut self, pod: PodInfo) {
        let key = pod.uid.to_ascii_lowercase();
        match self.pods.get_mut(&key) {
            None => {
                self.pods.insert(key, pod);
            }
            Some(known) => merge_pod(known, pod),
        }
    }

    /// Add or complete a container.
    pub fn add_container(&mut self, container: ContainerInfo) {
        let key = container.id.to_ascii_lowercase();
        match self.containers.get_mut(&key) {
            None => {
                self.containers.insert(key, container);
            }
            Some(known) => {
                let ContainerInfo {
                    image,
                    memory_request,
                    memory_limit,
                    ..
                } = container.clone();
                if known.name.is_empty() {
                    known.name = container.name;
                }
                if known.pod_uid.is_empty() {
                    known.pod_uid = container.pod_uid;
                }
                known.sandbox |= container.sandbox;
                known.image = known.image.take().or(image);
                known.memory_request = known.memory_request.or(memory_request);
                known.memory_limit = known.memory_limit.or(memory_limit);
            }
        }
    }

    /// Merge another source's directory into this one.
    pub fn merge(&mut self, other: Directory) {
        for pod in other.pods.into_values() {
            self.add_pod(pod);
        }
        for container in other.containers.into_values() {
            self.add_container(container);
        }
        if self.node.is_none() {
            self.node = other.node;
        }
        for origin in other.origins {
            if !self.origins.contains(&origin) {
                self.origins.push(origin);
            }
        }
    }

    /// The pod with this UID.
    pub fn pod(&self, uid: &str) -> Option<&PodInfo> {
        self.pods.get(&uid.to_ascii_lowercase())
    }

    /// The container with this id.
    pub fn container(&self, id: &str) -> Option<&ContainerInfo> {
        self.containers.get(&id.to_ascii_lowercase())
    }

    /// All pods, in no particular order.
    pub fn pods(&self) -> impl Iterator<Item = &PodInfo> {
        self.pods.values()
    }

    /// Number of pods and containers known.
    pub fn len(&self) -> (usize, usize) {
        (self.pods.len(), self.containers.len())
    }

    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.containers.is_empty()
    }

    /// Names and facts for a cgroup identified by its path: the container's pod wins
    /// over the path's pod UID (they agree on every real node; the runtime is the truth).
    pub fn resolve(&self, identity: &PathIdentity) -> Resolved<'_> {
        let container = identity
            .container_id
            .as_deref()
            .and_then(|id| self.container(id));
        let pod_uid = container
            .map(|c| c.pod_uid.as_str())
            .filter(|uid| !uid.is_empty())
            .or(identity.pod_uid.as_deref());
        Resolved {
            pod: pod_uid.and_then(|uid| self.pod(uid)),
            container,
        }
    }
}

fn merge_pod(known: &mut PodInfo, pod: PodInfo) {
    let fill = |mine: &mut String, theirs: String| {
        if mine.is_empty() {
            *mine = theirs;
        }
    };
    fill(&mut known.namespace, pod.namespace);
    fill(&mut known.name, pod.name);
    known.qos_class = known.qos_class.or(pod.qos_class);
    known.priority = known.priority.or(pod.priority);
    known.priority_class = known.priority_class.take().or(pod.priority_class);
    known.owner = known.owner.take().or(pod.owner);
    known.memory_request = known.memory_request.or(pod.memory_request);
    known.eviction_memory_request = known
        .eviction_memory_request
        .or(pod.eviction_memory_request);
    known.memory_limit = known.memory_limit.or(pod.memory_limit);
    known.node_name = known.node_name.take().or(pod.node_name);
    known.phase = known.phase.take().or(pod.phase);
}

/// What the directory knows about one cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// Its pod, if known.
    pub pod: Option<&'a PodInfo>,
    /// Its container, if known.
    pub container: Option<&'a ContainerInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identify;

    #[test]
    fn resolves_names_from_path_ids() {
        let mut directory = Directory::new();
        directory.add_pod(PodInfo {
            uid: "0f8a3c51-5d0e-4c3a-9b7e-2a1d6f4e8c90".into(),
            namespace: "shop".into(),
            name: "web-1".into(),
            ..PodInfo::default()
        });
        let id = "3b9d1e2f4a5c6b7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d";
        directory.add_container(ContainerInfo {
            id: id.into(),
            pod_uid: "0f8a3c51-5d0e-4c3a-9b7e-2a1d6f4e8c90".into(),
            name: "nginx".into(),
            ..ContainerInfo::default()
        });
        let path = format!("/kubepods/burstable/pod0f8a3c51-5d0e-4c3a-9b7e-2a1d6f4e8c90/{id}");
        let resolved = directory.resolve(&identify(&path));
        assert_eq!(resolved.pod.map(|p| p.name.as_str()), Some("web-1"));
        assert_eq!(resolved.container.map(|c| c.name.as_str()), Some("nginx"));
        let pod_only = directory.resolve(&identify(
            "/kubepods/burstable/pod0f8a3c51-5d0e-4c3a-9b7e-2a1d6f4e8c90",
        ));
        assert_eq!(pod_only.pod.map(|p| p.namespace.as_str()), Some("shop"));
        assert!(pod_only.container.is_none());
        assert_eq!(
            directory.resolve(&identify("/system.slice/x.service")),
            Resolved::default()
        );
    }

    #[test]
    fn merging_completes_without_overwriting() {
        let mut cri = Directory::new();
        cri.add_pod(PodInfo {
            uid: "u".into(),
            namespace: "ns".into(),
            name: "p".into(),
            ..PodInfo::default()
        });
        let mut api = Directory::new();
        api.add_pod(PodInfo {
            uid: "U".into(),
            name: "other".into(),
            priority: Some(1000),
            memory_request: Some(64 << 20),
            ..PodInfo::default()
        });
        cri.merge(api);
        let pod = cri.pod("u").unwrap();
        assert_eq!(pod.name, "p", "the first source's name is kept");
        assert_eq!(pod.priority, Some(1000));
        assert_eq!(pod.memory_request, Some(64 << 20));
    }
}
