//! IDENTIFY stage, Kubernetes API source: pods, containers and the node as the API server
//! describes them, turned into the identify stage's [`Directory`] (names, owners, QoS class,
//! priority, memory requests and limits) and [`NodeInfo`] (capacity and allocatable memory).
//!
//! Three inputs, one mapping path. [`fetch`] asks a live API server (kube-rs; kubeconfig or
//! in-cluster service account) once for this node's pods and the node; [`NodeWatch`] watches
//! them (kube-rs' `watcher` and `reflector`, on a thread of its own) and publishes the latest
//! directory, and posts Kubernetes Events on pods ([`PodEvent`]); [`pods_from_json`] and
//! [`node_from_json`] read `kubectl get pods -o json` / `kubectl get node NAME -o json` saved
//! from a cluster (`--pods FILE`, `--node FILE`). Both parse into k8s-openapi's typed `Pod` and
//! `Node` and go through [`directory_from_pods`] / [`node_info`].
//!
//! ```
//! use memglass_identify::{Origin, QosClass};
//!
//! let pods = r#"{"kind": "Pod", "apiVersion": "v1",
//!   "metadata": {"name": "web-0", "namespace": "shop", "uid": "0F8A3C51-5D0E-4C3A-9B7E-2A1D6F4E8C90"},
//!   "spec": {"containers": [{"name": "nginx", "resources": {"requests": {"memory": "64Mi"}}}]},
//!   "status": {"containerStatuses": [{"name": "nginx", "image": "nginx:1.27", "imageID": "",
//!     "ready": true, "restartCount": 0,
//!     "containerID": "containerd://3b9d1e2f4a5c6b7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d"}]}}"#;
//! let directory = memglass_kube::pods_from_json(pods, Origin::File)?;
//! let pod = directory.pod("0f8a3c51-5d0e-4c3a-9b7e-2a1d6f4e8c90").expect("the pod");
//! assert_eq!(pod.qos_class, Some(QosClass::Burstable)); // computed: status has no qosClass
//! assert_eq!(pod.memory_request, Some(64 << 20));
//! let container = directory.container("3b9d1e2f4a5c6b7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d");
//! assert_eq!(container.map(|c| c.name.as_str()), Some("nginx"));
//! # Ok::<(), memglass_kube::Error>(())
//! ```
//!
//! # What is filled in, and how
//!
//! - **Pods**: `metadata.uid` (lower case), namespace, name, `spec.priority`,
//!   `spec.priorityClassName`, the controlling owner reference as `Kind/name` (a static pod's
//!   is `Node/<node>`), `spec.nodeName`, `status.phase`, and `status.qosClass`, computed as
//!   kubelet does when the status lacks it.
//! - **Pod memory request**: the scheduler's and kubelet's effective request: the larger of
//!   Σ app containers (+ restartable sidecar init containers) and the largest ordinary init
//!   container (+ the sidecars started before it); pod-level `spec.resources` replaces that when
//!   set; RuntimeClass `spec.overhead` is added. **Pod memory limit**: the pod cgroup's limit as
//!   kubelet sets it, which exists only when every container, init containers included, has a
//!   memory limit. Details and sources in `resources.rs`.
//! - **Containers**: one per entry of `status.containerStatuses`, `initContainerStatuses` and
//!   `ephemeralContainerStatuses` that has a `containerID` (`containerd://`, `cri-o://`,
//!   `docker://` stripped), with the running image (`status.image`) and the spec's memory
//!   request and limit (a limit without a request defaults the request, as the API server
//!   does). Earlier instances (`lastState.terminated.containerID`) are not listed: their cgroups
//!   are gone. The API does not expose pod sandbox (pause) ids.
//! - **Memory quantities**: [`parse_memory`] / [`Quantity`], exact, fractions rounded up.
//!
//! Not read: in-place resize status (`status.containerStatuses[].resources`,
//! `allocatedResources`); the spec is used.
#![deny(missing_docs)]

mod error;
mod events;
mod json;
mod live;
mod map;
mod quantity;
mod resources;
pub mod schedule;
mod watch;

pub use error::{Error, Result};
pub use events::{PodEvent, REPORTING_CONTROLLER};
pub use json::{node_from_json, node_list_from_json, pod_list_from_json, pods_from_json};
pub use live::{fetch, fetch_cluster, node_name};
pub use map::{directory_from_pods, node_info, pod_info};
pub use quantity::{parse_memory, Quantity, QuantityError};
pub use watch::{NodeWatch, WatchStatus, CHECK_EVERY};

pub use memglass_identify::{ContainerInfo, Directory, NodeInfo, Origin, PodInfo};

#[cfg(test)]
mod fixture_tests;
