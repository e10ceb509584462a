//! IDENTIFY-stage source of memglass: pod and container names from the container
//! runtime, over its CRI gRPC socket (containerd, CRI-O, cri-dockerd).
//!
//! [`fetch`] asks the runtime once for every pod sandbox and container and returns a
//! [`memglass_identify::Directory`]: pod UID → namespace/name, container id → name, image,
//! and whether it is the pod's sandbox (pause) container, named `POD` as cAdvisor does.
//! [`Cache`] keeps the last answer, asks again when a cgroup names a container it has
//! not seen (churn), and keeps the old answer while the runtime is away.
//!
//! ```no_run
//! let socket = memglass_cri::socket::detect(std::path::Path::new("/")).unwrap();
//! let directory = memglass_cri::fetch(&socket, std::time::Duration::from_secs(2))?;
//! # Ok::<(), memglass_cri::Error>(())
//! ```
#![deny(missing_docs)]

mod cache;
pub mod client;
mod error;
pub mod proto;
pub mod socket;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use memglass_identify::{ContainerInfo, Directory, Origin, PodInfo};

pub use cache::Cache;
pub use client::Client;
pub use error::{Error, Result};

/// Ask the runtime at `socket` for its pods and containers (blocking).
pub fn fetch(socket: &Path, timeout: Duration) -> Result<Directory> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut client = Client::connect(socket, timeout).await?;
        let sandboxes = client.list_pod_sandboxes().await?;
        let containers = client.list_containers().await?;
        Ok(directory_from(&sandboxes, &containers))
    })
}

/// Build the directory from the runtime's lists (pure).
pub fn directory_from(
    sandboxes: &[proto::PodSandbox],
    containers: &[proto::Container],
) -> Directory {
    let mut directory = Directory::new();
    directory.origins.push(Origin::Cri);
    let mut pod_of_sandbox: HashMap<&str, &str> = HashMap::new();
    for sandbox in sandboxes {
        let Some(meta) = &sandbox.metadata else {
            continue;
        };
        pod_of_sandbox.insert(&sandbox.id, &meta.uid);
        directory.add_pod(PodInfo {
            uid: meta.uid.clone(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
            ..PodInfo::default()
        });
        directory.add_container(ContainerInfo {
            id: sandbox.id.clone(),
            pod_uid: meta.uid.clone(),
            name: "POD".into(),
            sandbox: true,
            ..ContainerInfo::default()
        });
    }
    for container in containers {
        let pod_uid = pod_of_sandbox
            .get(container.pod_sandbox_id.as_str())
            .map(|uid| uid.to_string())
            .or_else(|| container.labels.get("io.kubernetes.pod.uid").cloned())
            .unwrap_or_default();
        let image = container
            .image
            .as_ref()
            .map(|spec| spec.user_specified_image.clone())
            .filter(|image| !image.is_empty())
            .or_else(|| container.image.as_ref().map(|spec| spec.image.clone()))
            .filter(|image| !image.is_empty());
        directory.add_container(ContainerInfo {
            id: container.id.clone(),
            pod_uid,
            name: container
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            image,
            sandbox: false,
            ..ContainerInfo::default()
        });
    }
    directory
}
