//! Container runtimes: which path components name a container (or a runtime's per-container
//! helper), with or without Kubernetes.
//!
//! Used twice: below a kubelet pod cgroup (see [`crate::kubepods`]), and on paths with no
//! kubepods component at all (plain docker, podman, containerd, LXC), scanned from the root so
//! that the outermost container wins and everything below it counts as nested.

use crate::ids::is_container_id;
use crate::kubepods;
use crate::{CgroupKind, PathIdentity, QosClass, Runtime};

/// What a component is to its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The container's own cgroup.
    Container,
    /// A runtime helper dedicated to one container, beside it: CRI-O's and podman's `conmon`,
    /// LXC's monitor. Not the container, but tied to its id.
    Helper,
}

/// A container (or helper) found in a path component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) runtime: Option<Runtime>,
    pub(crate) container_id: String,
    pub(crate) role: Role,
    /// Pod identity carried by the component itself (only the misplaced
    /// `<pod slice>:<prefix>:<id>` form, see [`kubepods::misplaced_container`]).
    pub(crate) pod: Option<(QosClass, String)>,
}

/// Runtime prefixes of container cgroup names, each followed by a 64-hex id and, under a systemd
/// cgroup manager, a `.scope` suffix. Sources: kubelet/runc `slice:prefix:id` cgroupsPath
/// conventions as seen in cAdvisor's container handlers, CRI-O's `crio-conmon` placement
/// (`internal/config/cgmgr`), podman's `libpod-conmon-` units, nerdctl's systemd scopes.
const PREFIXES: &[(&str, Runtime, Role)] = &[
    ("cri-containerd-", Runtime::Containerd, Role::Container),
    ("crio-conmon-", Runtime::CriO, Role::Helper),
    ("crio-", Runtime::CriO, Role::Container),
    ("docker-", Runtime::Docker, Role::Container),
    ("libpod-conmon-", Runtime::Podman, Role::Helper),
    ("libpod-", Runtime::Podman, Role::Container),
    ("nerdctl-", Runtime::Containerd, Role::Container),
];

/// containerd namespaces whose default cgroup is `/<namespace>/<id>` (containerd's default OCI
/// spec for `ctr run`, and nerdctl with the cgroupfs manager).
const CONTAINERD_NAMESPACES: &[&str] = &["default", "k8s.io"];

/// Matches `<prefix><64 hex>` or `<prefix><64 hex>.scope` from [`PREFIXES`].
///
/// Only `.scope` is accepted as a suffix: systemd also names `.mount` units after container
/// ids (`crio-<id>.mount`, `…-<id>-shm.mount`), and those are mounts, not containers.
pub(crate) fn prefixed_container(component: &str) -> Option<Hit> {
    let base = component.strip_suffix(".scope").unwrap_or(component);
    PREFIXES.iter().find_map(|&(prefix, runtime, role)| {
        let id = base.strip_prefix(prefix)?;
        is_container_id(id).then(|| Hit {
            runtime: Some(runtime),
            container_id: id.to_owned(),
            role,
            pod: None,
        })
    })
}

/// A container component directly below a kubelet pod cgroup: a runtime-prefixed name, or a
/// bare 64-hex id (containerd and dockershim/cri-dockerd under the cgroupfs driver), whose
/// runtime the path does not tell.
pub(crate) fn pod_child_container(component: &str) -> Option<Hit> {
    prefixed_container(component).or_else(|| {
        is_container_id(component).then(|| Hit {
            runtime: None,
            container_id: component.to_owned(),
            role: Role::Container,
            pod: None,
        })
    })
}

/// A container named by `comps[i]` on a path without a kubepods component.
fn standalone_container(comps: &[&str], i: usize) -> Option<Hit> {
    let component = comps[i];
    let parent = i.checked_sub(1).and_then(|p| comps.get(p)).copied();
    prefixed_container(component)
        .or_else(|| kubepods::misplaced_container(component))
        .or_else(|| bare_container(component, parent))
        .or_else(|| lxc_container(component, parent))
}

/// A bare 64-hex id below a parent that names its runtime: docker's default cgroupfs parent
/// `/docker`, or a containerd namespace.
fn bare_container(component: &str, parent: Option<&str>) -> Option<Hit> {
    if !is_container_id(component) {
        return None;
    }
    let runtime = match parent? {
        "docker" => Runtime::Docker,
        ns if CONTAINERD_NAMESPACES.contains(&ns) => Runtime::Containerd,
        _ => return None,
    };
    Some(Hit {
        runtime: Some(runtime),
        container_id: component.to_owned(),
        role: Role::Container,
        pod: None,
    })
}

/// LXC (and LXD/Incus, which use liblxc) containers, whose "id" is the container name:
/// - LXC ≤ 3.0: `/lxc/<name>`;
/// - LXC 3.1–3.2: `/lxc.payload/<name>` and the monitor in `/lxc.monitor/<name>`;
/// - LXC ≥ 4.0: `/lxc.payload.<name>` and `/lxc.monitor.<name>`.
fn lxc_container(component: &str, parent: Option<&str>) -> Option<Hit> {
    let (name, role) = if let Some(name) = component.strip_prefix("lxc.payload.") {
        (name, Role::Container)
    } else if let Some(name) = component.strip_prefix("lxc.monitor.") {
        (name, Role::Helper)
    } else {
        match parent? {
            "lxc" | "lxc.payload" => (component, Role::Container),
            "lxc.monitor" => (component, Role::Helper),
            _ => return None,
        }
    };
    (!name.is_empty()).then(|| Hit {
        runtime: Some(Runtime::Lxc),
        container_id: name.to_owned(),
        role,
        pod: None,
    })
}

/// Identifies a path that has no kubepods component: the first (outermost) component naming a
/// container decides; `None` if there is none.
pub(crate) fn identify_standalone(comps: &[&str]) -> Option<PathIdentity> {
    let (i, hit) = (0..comps.len()).find_map(|i| standalone_container(comps, i).map(|h| (i, h)))?;
    let last = i + 1 == comps.len();
    Some(from_hit(hit, last))
}

/// Builds the identity of a container hit; `last` says whether the hit is the path's final
/// component (otherwise the path is a cgroup nested inside the container).
pub(crate) fn from_hit(hit: Hit, last: bool) -> PathIdentity {
    let kind = if last && hit.role == Role::Container {
        CgroupKind::Container
    } else {
        CgroupKind::Other
    };
    let (qos_class, pod_uid) = match hit.pod {
        Some((qos, uid)) => (Some(qos), Some(uid)),
        None => (None, None),
    };
    PathIdentity {
        kind,
        qos_class,
        pod_uid,
        container_id: Some(hit.container_id),
        runtime: hit.runtime,
    }
}
