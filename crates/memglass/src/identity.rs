//! Gather what the runtime, the Kubernetes API and `kubectl -o json` files know about
//! pods and containers into one directory. Failures here never fail a command: path identity
//! still names every cgroup's pod UID and container id.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use memglass_identify::{Directory, Origin};

use crate::cli::{IdentityArgs, SourceArgs};

/// How long a runtime may take to answer before memglass goes on without names.
const CRI_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the API server may take.
const KUBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The directory, and why parts of it are missing (one line each, for stderr).
pub struct Gathered {
    pub directory: Directory,
    pub warnings: Vec<String>,
}

pub fn gather(sources: &SourceArgs, args: &IdentityArgs) -> anyhow::Result<Gathered> {
    let mut directory = Directory::new();
    let mut warnings = Vec::new();
    if !args.no_cri {
        // A recorded tree (--cgroup-root) is not this machine's: ask only a named socket.
        let socket = match (&args.cri_socket, &sources.cgroup_root) {
            (Some(named), _) => Some(memglass_cri::socket::parse(named)),
            (None, None) => memglass_cri::socket::detect(Path::new("/")),
            (None, Some(_)) => None,
        };
        if let Some(socket) = socket {
            match memglass_cri::fetch(&socket, CRI_TIMEOUT) {
                Ok(found) => directory.merge(found),
                Err(error) => {
                    warnings.push(format!("{error} (pod and container names unavailable)"))
                }
            }
        }
    }
    directory.merge(files(args)?);
    if wants_api(sources, args) {
        let node = memglass_kube::node_name(args.node_name.as_deref()).ok();
        match memglass_kube::fetch(node.as_deref(), KUBE_TIMEOUT) {
            Ok(found) => directory.merge(found),
            Err(error) => warnings.push(format!(
                "Kubernetes API: {error} (requests, limits and priorities unavailable)"
            )),
        }
    }
    Ok(Gathered {
        directory,
        warnings,
    })
}

/// The `--pods`/`--node` files (failing to read them is an error, not a warning: they are
/// the user's explicit wish).
pub fn files(args: &IdentityArgs) -> anyhow::Result<Directory> {
    let mut directory = Directory::new();
    if let Some(path) = &args.pods {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let pods = memglass_kube::pods_from_json(&text, Origin::File).with_context(|| {
            format!(
                "{}: not a `kubectl get pods -o json` document",
                path.display()
            )
        })?;
        directory.merge(pods);
    }
    if let Some(path) = &args.node {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let node = memglass_kube::node_from_json(&text).with_context(|| {
            format!(
                "{}: not a `kubectl get node -o json` document",
                path.display()
            )
        })?;
        directory.node = Some(node);
    }
    Ok(directory)
}

/// Whether to ask the Kubernetes API: `--kube`, or inside a cluster (the service account's
/// `KUBERNETES_SERVICE_HOST`) on the live tree (not a recorded `--cgroup-root`).
pub fn wants_api(sources: &SourceArgs, args: &IdentityArgs) -> bool {
    let in_cluster =
        std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() && sources.cgroup_root.is_none();
    args.kube || in_cluster
}
