//! Typed Kubernetes objects (k8s-openapi `Pod`, `Node`) → the identify stage's `PodInfo`,
//! `ContainerInfo` and `NodeInfo`. The one mapping path: JSON files and the live API both end
//! here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use memglass_identify::{ContainerInfo, Directory, NodeInfo, Origin, PodInfo};

use crate::error::{Error, Result};
use crate::quantity::{parse_memory, Quantity};
use crate::resources::{parse_qos, FieldError, PodResources, Resources};

/// Builds a directory from typed pods (as the API returns them), labelling errors
/// `pod namespace/name`.
pub fn directory_from_pods(pods: &[Pod], origin: Origin) -> Result<Directory> {
    build_directory(
        pods.iter()
            .map(|pod| (format!("pod {}", pod_label(pod)), pod)),
        origin,
    )
}

/// Builds a directory from pods, each with the label its errors carry.
pub(crate) fn build_directory<'a>(
    pods: impl Iterator<Item = (String, &'a Pod)>,
    origin: Origin,
) -> Result<Directory> {
    let mut directory = Directory::new();
    for (object, pod) in pods {
        let (info, containers) = pod_info(pod, &object)?;
        directory.add_pod(info);
        for container in containers {
            directory.add_container(container);
        }
    }
    directory.origins.push(origin);
    Ok(directory)
}

/// `namespace/name` as far as known, for messages.
pub(crate) fn pod_label(pod: &Pod) -> String {
    let meta = &pod.metadata;
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or("?"),
        meta.name.as_deref().unwrap_or("?")
    )
}

/// One pod and its containers. `object` names the pod in errors.
pub fn pod_info(pod: &Pod, object: &str) -> Result<(PodInfo, Vec<ContainerInfo>)> {
    let missing = |field| Error::Missing {
        object: object.to_string(),
        field,
    };
    let quantity = |e: FieldError| Error::Quantity {
        object: object.to_string(),
        field: e.field,
        source: e.source,
    };
    let meta = &pod.metadata;
    let uid = non_empty(meta.uid.as_deref()).ok_or_else(|| missing("metadata.uid"))?;
    let namespace =
        non_empty(meta.namespace.as_deref()).ok_or_else(|| missing("metadata.namespace"))?;
    let name = non_empty(meta.name.as_deref()).ok_or_else(|| missing("metadata.name"))?;
    let spec = pod.spec.as_ref().ok_or_else(|| missing("spec"))?;
    let status = pod.status.as_ref();

    let resources = PodResources::read(spec).map_err(quantity)?;
    let recorded_qos = status
        .and_then(|s| s.qos_class.as_deref())
        .and_then(parse_qos);
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| format!("{}/{}", o.kind, o.name));
    let info = PodInfo {
        uid: uid.to_ascii_lowercase(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        qos_class: Some(recorded_qos.unwrap_or_else(|| resources.qos_class())),
        priority: spec.priority,
        priority_class: spec.priority_class_name.clone().filter(|s| !s.is_empty()),
        owner,
        memory_request: bytes(resources.memory_request()),
        eviction_memory_request: bytes(resources.eviction_memory_request()),
        memory_limit: bytes(resources.memory_limit()),
        node_name: spec.node_name.clone().filter(|s| !s.is_empty()),
        phase: status.and_then(|s| s.phase.clone()),
    };

    let mut containers = Vec::new();
    if let Some(status) = status {
        let init_resources: Vec<Resources> = resources.init.iter().map(|(r, _)| *r).collect();
        let groups: [(&[ContainerStatus], &[Container], &[Resources]); 3] = [
            (
                status.container_statuses.as_deref().unwrap_or_default(),
                &spec.containers,
                &resources.app,
            ),
            (
                status
                    .init_container_statuses
                    .as_deref()
                    .unwrap_or_default(),
                spec.init_containers.as_deref().unwrap_or_default(),
                &init_resources,
            ),
            // Ephemeral containers cannot set resources.
            (
                status
                    .ephemeral_container_statuses
                    .as_deref()
                    .unwrap_or_default(),
                &[],
                &[],
            ),
        ];
        for (statuses, specs, specs_resources) in groups {
            for status in statuses {
                let Some(id) = container_id(status.container_id.as_deref()) else {
                    continue; // not started yet: nothing on the node to attribute
                };
                let index = specs.iter().position(|c| c.name == status.name);
                let own = index
                    .and_then(|i| specs_resources.get(i))
                    .copied()
                    .unwrap_or_default();
                let spec_image = index
                    .and_then(|i| specs.get(i))
                    .and_then(|c| c.image.clone());
                containers.push(ContainerInfo {
                    id,
                    pod_uid: info.uid.clone(),
                    name: status.name.clone(),
                    image: non_empty(Some(status.image.as_str()))
                        .map(str::to_string)
                        .or(spec_image),
                    sandbox: false,
                    memory_request: bytes(own.requests.memory),
                    memory_limit: bytes(own.limits.memory),
                });
            }
        }
    }
    Ok((info, containers))
}

/// The previous instance of each container that has one (`lastState.terminated.containerID`,
/// the container before its last restart), as a container of the same name, pod and
/// resources. Their cgroups are gone, so no cgroup is named by them; an OOM kill is: the
/// kernel reports the killed container's id, and by the time its report is read the API
/// may already show the restarted container's new id. Only the watch adds them (the
/// one-shot paths describe what exists).
pub(crate) fn earlier_instances(pod: &Pod, current: &[ContainerInfo]) -> Vec<ContainerInfo> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let statuses = [
        status.container_statuses.as_deref(),
        status.init_container_statuses.as_deref(),
    ];
    let mut earlier = Vec::new();
    for status in statuses.into_iter().flatten().flatten() {
        let previous = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| container_id(t.container_id.as_deref()));
        let (Some(previous), Some(now)) =
            (previous, current.iter().find(|c| c.name == status.name))
        else {
            continue;
        };
        if previous != now.id {
            earlier.push(ContainerInfo {
                id: previous,
                ..now.clone()
            });
        }
    }
    earlier
}

/// The node's name and memory.
pub fn node_info(node: &Node) -> Result<NodeInfo> {
    let name = non_empty(node.metadata.name.as_deref()).ok_or_else(|| Error::Missing {
        object: "node".into(),
        field: "metadata.name",
    })?;
    let object = format!("node {name}");
    let status = node.status.as_ref();
    let memory = |map: Option<&BTreeMap<String, ApiQuantity>>, field: &str| {
        map.and_then(|m| m.get("memory"))
            .map(|q| {
                parse_memory(&q.0).map_err(|source| Error::Quantity {
                    object: object.clone(),
                    field: field.to_string(),
                    source,
                })
            })
            .transpose()
    };
    Ok(NodeInfo {
        name: name.to_string(),
        capacity_memory: memory(
            status.and_then(|s| s.capacity.as_ref()),
            "status.capacity.memory",
        )?,
        allocatable_memory: memory(
            status.and_then(|s| s.allocatable.as_ref()),
            "status.allocatable.memory",
        )?,
    })
}

/// `containerd://<id>`, `cri-o://<id>`, `docker://<id>` → the bare id (lower case). A value
/// without a scheme is taken whole; an empty one means the container has not started.
pub(crate) fn container_id(raw: Option<&str>) -> Option<String> {
    let raw = non_empty(raw)?;
    let id = raw.split_once("://").map_or(raw, |(_, id)| id);
    non_empty(Some(id)).map(str::to_ascii_lowercase)
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Whole bytes, rounded up, saturating at `u64::MAX` (more than 16 EiB): one absurd quantity
/// must not reject a whole pod list, and kubelet compares it exactly, so it orders above every
/// real figure either way (see [`crate::quantity`]).
fn bytes(q: Option<Quantity>) -> Option<u64> {
    q.map(Quantity::ceil_units_saturating)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_instances_keep_the_containers_name() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/kube/kubeadm-1.28-containerd/pods.json"
        ))
        .unwrap_or_default();
        let list: k8s_openapi::List<Pod> = serde_json::from_str(&text).unwrap_or_default();
        let etcd = list
            .items
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some("etcd-k8s-controller-01"));
        let Some(etcd) = etcd else {
            panic!("the recorded etcd pod");
        };
        let Ok((_, containers)) = pod_info(etcd, "etcd") else {
            panic!("etcd maps");
        };
        let earlier = earlier_instances(etcd, &containers);
        assert_eq!(earlier.len(), 1);
        assert!(
            earlier[0].id.starts_with("636168c87901"),
            "{:?}",
            earlier[0]
        );
        assert_eq!(earlier[0].name, "etcd");
        assert_eq!(earlier[0].pod_uid, containers[0].pod_uid);
        assert_eq!(earlier[0].memory_request, Some(100 << 20));
        assert_eq!(earlier_instances(etcd, &[]), Vec::new());
    }

    #[test]
    fn container_ids_lose_their_scheme() {
        let id = "bd8e739c800c48d94c001dffece330d6229d4223d417579a8da27eb474f3f0de";
        for scheme in ["containerd", "cri-o", "docker"] {
            assert_eq!(
                container_id(Some(&format!("{scheme}://{id}"))).as_deref(),
                Some(id)
            );
        }
        assert_eq!(container_id(Some(id)).as_deref(), Some(id));
        assert_eq!(container_id(Some("")), None);
        assert_eq!(container_id(Some("containerd://")), None);
        assert_eq!(container_id(None), None);
    }
}
