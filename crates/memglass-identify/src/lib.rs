//! IDENTIFY stage, path part: cgroup path → workload identity. Pure string work, no I/O.
//!
//! [`identify`] reads a cgroup path relative to its hierarchy root (`/` or `/a/b`, the form the
//! kernel prints as `oom_memcg=`/`task_memcg=` and in `/proc/<pid>/cgroup`) and says what the
//! cgroup is ([`CgroupKind`]) and whose it is: the pod's [`QosClass`] and UID, the container id
//! and the [`Runtime`] that named it. cgroup v1 and v2 paths look the same here. Names
//! (namespace, pod, container name) need the CRI or the Kubernetes API and are resolved later;
//! this crate may not touch the filesystem or network. It depends on `serde` only; the
//! kernel readers, analysis and sinks import it, never the reverse.
//!
//! ```
//! use memglass_identify::{identify, CgroupKind, QosClass, Runtime};
//!
//! let id = identify(
//!     "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0330b2c1_a15b_4cdd_b5e5_72d4a90bee82.slice/\
//!      docker-b27201334a41cd0749d053b18378d7ea65617b8e26277197ea25c974da1a5a8a.scope",
//! );
//! assert_eq!(id.kind, CgroupKind::Container);
//! assert_eq!(id.qos_class, Some(QosClass::Burstable));
//! assert_eq!(id.pod_uid.as_deref(), Some("0330b2c1-a15b-4cdd-b5e5-72d4a90bee82"));
//! assert_eq!(id.runtime, Some(Runtime::Docker));
//! ```
//!
//! # Rules, in order
//!
//! 1. No components → [`CgroupKind::Root`]. Empty components (`//`, a trailing `/`), surrounding
//!    whitespace and the ` (deleted)` suffix cgroup v2 appends in `/proc/<pid>/cgroup` are ignored.
//! 2. The first kubepods component from the root (`kubepods`, `kubepods.slice`, or
//!    `<root>-kubepods.slice` inside `<root>.slice`) switches to kubelet's layout, whatever sits
//!    above it (`--cgroup-root`, or a node that is itself a docker/LXC container): kubepods →
//!    QoS (`burstable`, `besteffort`) → pod (`pod<uid>`, directly under kubepods = Guaranteed) →
//!    container → deeper. Each level must be named exactly as kubelet names it for its driver;
//!    a level that is not is [`CgroupKind::Other`] and keeps what its ancestors established.
//! 3. Otherwise the first component from the root that names a container decides (docker,
//!    podman, containerd without Kubernetes, LXC; see [`Runtime`]).
//! 4. Otherwise the last component's systemd unit type: `*.service` → [`CgroupKind::Service`],
//!    `*.slice` → [`CgroupKind::Slice`], anything else (`*.scope` such as `session-3.scope` or
//!    `init.scope`, `*.mount`, plain directories) → [`CgroupKind::Other`]; all identity fields
//!    `None`.
//!
//! # Decisions for odd cases
//!
//! - **Runtime helpers** (CRI-O's `crio-conmon-<id>`, podman's `libpod-conmon-<id>`, LXC's
//!   `lxc.monitor.<name>`): kind [`CgroupKind::Other`], with the container id, runtime and (under
//!   kubelet) pod identity of the container they serve. Their memory belongs to the pod, but
//!   they are not the container, so per-container totals must not include them.
//! - **Cgroups nested inside a container** (crun's `crio-<id>.scope/container`, systemd or
//!   docker running inside a container, LXC's `.lxc` attach cgroup): kind [`CgroupKind::Other`]
//!   with the container's full identity. The container's own cgroup already includes them
//!   hierarchically, so calling them containers would double-count.
//! - **Pod sandboxes** (the pause container, or CRI-O's infra cgroup `crio-<id>` without
//!   `.scope`) look like any container by path and are [`CgroupKind::Container`]; only the CRI
//!   can tell them apart.
//! - **Bare 64-hex ids** below a pod (containerd or dockershim with the cgroupfs driver) have
//!   `runtime: None`: the path does not say which runtime made them.
//! - **Other cgroups below a pod or QoS level** (e.g. `crio-<id>.mount`, a truncated id): kind
//!   [`CgroupKind::Other`] with the pod's identity but no container.
//! - **Misconfigured nodes** (kubelet's systemd driver, runtime on cgroupfs) put containers in
//!   directories named `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`, under the
//!   runtime's service or at the root; these are containers with their full pod identity.
//! - **Pod UIDs**: `8-4-4-4-12` hex (dashes in the cgroupfs driver, underscores in the systemd
//!   driver, never mixed) or 32 hex digits (static pods, whose UID kubelet derives from an MD5
//!   hash). Upper-case hex is accepted and lower-cased (the API server and kubelet only generate
//!   lower case; compare case-insensitively to match a hand-written static-pod UID).
//! - **Container ids**: exactly 64 lower-case hex digits for docker, containerd, CRI-O, podman
//!   and nerdctl (all generate them that way), optionally wrapped as `<prefix><id>.scope`; any
//!   other suffix (`.mount`) or length is not a container. LXC ids are container names.
//! - **containerd without Kubernetes**: containerd's default cgroup is `/<namespace>/<id>`;
//!   memglass recognises it for the `default` and `k8s.io` namespaces when the id is 64 hex
//!   (nerdctl); `ctr run` containers with hand-picked names stay [`CgroupKind::Other`].
//! - **Podman pods** (`machine-libpod_pod_<id>.slice`) are slices, not Kubernetes pods:
//!   `pod_uid` is only ever a Kubernetes pod UID.

#![deny(missing_docs)]

mod directory;
mod ids;
mod kubepods;
mod runtime;
#[cfg(test)]
mod tests;

use std::fmt;

pub use directory::{ContainerInfo, Directory, NodeInfo, Origin, PodInfo, Resolved};

/// Identifies a cgroup from its path relative to its hierarchy root (`/` or `/a/b`, the form
/// the kernel prints as `oom_memcg`). See the [crate docs](crate) for the rules.
pub fn identify(path: &str) -> PathIdentity {
    let path = path.trim_end();
    let path = path.strip_suffix(" (deleted)").unwrap_or(path).trim();
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let Some(last) = comps.last() else {
        return PathIdentity::of_kind(CgroupKind::Root);
    };
    if let Some(id) = kubepods::identify(&comps) {
        return id;
    }
    if let Some(id) = runtime::identify_standalone(&comps) {
        return id;
    }
    PathIdentity::of_kind(unit_kind(last))
}

/// The kind of a cgroup that is neither kubelet's nor a container's, from its systemd unit type.
fn unit_kind(component: &str) -> CgroupKind {
    let is_unit = |suffix: &str| {
        component
            .strip_suffix(suffix)
            .is_some_and(|s| !s.is_empty())
    };
    if is_unit(".service") {
        CgroupKind::Service
    } else if is_unit(".slice") {
        CgroupKind::Slice
    } else {
        CgroupKind::Other
    }
}

/// What a cgroup path says about the workload it belongs to.
///
/// Each `Option` is `None` where the path does not tell. Fields are set for the cgroup itself
/// and for everything below it: a container's cgroup carries its pod's UID and QoS class too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PathIdentity {
    /// What the cgroup is.
    pub kind: CgroupKind,
    /// The pod's QoS class: from the QoS level of the path, or Guaranteed for a pod directly
    /// under kubepods.
    pub qos_class: Option<QosClass>,
    /// The Kubernetes pod UID in canonical form: lower case, dashed (`8-4-4-4-12`), the systemd
    /// driver's underscores turned back into dashes; static pods have 32 hex digits and no
    /// dashes.
    pub pod_uid: Option<String>,
    /// The bare container id (no runtime prefix, no `.scope` suffix); for LXC, the container
    /// name.
    pub container_id: Option<String>,
    /// The runtime that named the container's cgroup, when the name says so.
    pub runtime: Option<Runtime>,
}

impl PathIdentity {
    /// An identity of `kind` with every other field unknown.
    fn of_kind(kind: CgroupKind) -> Self {
        Self {
            kind,
            qos_class: None,
            pod_uid: None,
            container_id: None,
            runtime: None,
        }
    }
}

/// What a cgroup is, as PRODUCT.md's `kind` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupKind {
    /// The hierarchy root, `/`.
    Root,
    /// kubelet's node-allocatable cgroup: `kubepods` or `kubepods.slice`, wherever it sits.
    Kubepods,
    /// A QoS level under kubepods: burstable or besteffort (Guaranteed pods have none).
    Qos,
    /// A pod's cgroup.
    Pod,
    /// A container's own cgroup (Kubernetes or not).
    Container,
    /// A systemd service unit (`*.service`) that is not a container.
    Service,
    /// A systemd slice (`*.slice`) other than kubelet's.
    Slice,
    /// Anything else: scopes that are not containers (`session-3.scope`, `init.scope`), mount
    /// units, runtime helpers, cgroups nested inside containers, unknown directories. Identity
    /// fields, when set, say where it sits.
    Other,
}

/// A pod's Kubernetes QoS class, serialized with Kubernetes' spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum QosClass {
    /// Requests equal limits for every resource of every container; no QoS cgroup level.
    Guaranteed,
    /// Some request or limit, not Guaranteed; under `burstable`.
    Burstable,
    /// No requests or limits at all; under `besteffort`.
    BestEffort,
}

/// The container runtime (or engine) whose naming convention a container's cgroup follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// containerd: its CRI plugin (`cri-containerd-<id>.scope`), nerdctl
    /// (`nerdctl-<id>.scope`), or its default `/<namespace>/<id>` cgroup (namespaces `default`
    /// and `k8s.io`). Bare ids below a kubelet pod are not attributed (`None`).
    Containerd,
    /// CRI-O: `crio-<id>` (cgroupfs), `crio-<id>.scope` (systemd), and its `conmon` monitor
    /// `crio-conmon-<id>[.scope]`. Serialized `"cri-o"`.
    CriO,
    /// Docker (moby), also under kubelet via dockershim/cri-dockerd: `docker-<id>.scope`
    /// (systemd) or `/docker/<id>` (cgroupfs default parent).
    Docker,
    /// Podman: `libpod-<id>[.scope]` and its `conmon` in `libpod-conmon-<id>.scope`, rootful
    /// (`machine.slice`) or rootless (`user@<uid>.service`).
    Podman,
    /// LXC, and LXD/Incus which run on liblxc: `/lxc/<name>`, `/lxc.payload/<name>`,
    /// `/lxc.payload.<name>`, monitors in `lxc.monitor…`. The container id is the name.
    Lxc,
}

impl CgroupKind {
    /// The serialized name: `"root"`, `"kubepods"`, `"qos"`, `"pod"`, `"container"`,
    /// `"service"`, `"slice"` or `"other"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Kubepods => "kubepods",
            Self::Qos => "qos",
            Self::Pod => "pod",
            Self::Container => "container",
            Self::Service => "service",
            Self::Slice => "slice",
            Self::Other => "other",
        }
    }
}

impl QosClass {
    /// The serialized (Kubernetes) name: `"Guaranteed"`, `"Burstable"` or `"BestEffort"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Guaranteed => "Guaranteed",
            Self::Burstable => "Burstable",
            Self::BestEffort => "BestEffort",
        }
    }
}

impl Runtime {
    /// The serialized name: `"containerd"`, `"cri-o"`, `"docker"`, `"podman"` or `"lxc"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Containerd => "containerd",
            Self::CriO => "cri-o",
            Self::Docker => "docker",
            Self::Podman => "podman",
            Self::Lxc => "lxc",
        }
    }
}

impl fmt::Display for CgroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for QosClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
