//! kubelet's cgroup layouts, for both cgroup drivers (`pkg/kubelet/cm/cgroup_manager_linux.go`,
//! `qos_container_manager_linux.go`, `pod_container_manager_linux.go`).
//!
//! kubelet names its cgroups abstractly (`[kubepods, burstable, pod<uid>]`) and renders them:
//! - cgroupfs driver: joined with `/`: `/kubepods/burstable/pod<uid>`;
//! - systemd driver: each level is a slice named after all its ancestors joined with `-`, with
//!   `-` inside a part escaped to `_`:
//!   `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice`.
//!
//! Guaranteed pods sit directly under kubepods (there is no `guaranteed` level). `--cgroup-root`
//! prefixes the whole tree (`/kubelet/kubepods`, or `/kubelet.slice/kubelet-kubepods.slice`),
//! and the node itself may be a container (kind, minikube, LXC), so the kubepods component is
//! searched anywhere in the path.

use crate::ids::{is_container_id, parse_pod_uid};
use crate::runtime::{self, Hit, Role};
use crate::{CgroupKind, PathIdentity, QosClass, Runtime};

/// The cgroup driver a kubepods component was rendered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver<'a> {
    /// Plain directory names.
    Cgroupfs,
    /// systemd slices; `stem` is the component's unit name without `.slice`, which every child
    /// slice name must extend with `-<part>`.
    Systemd { stem: &'a str },
}

/// Returns the driver if `comps[i]` is kubelet's node-allocatable cgroup: `kubepods`,
/// `kubepods.slice`, or `<root>-kubepods.slice` directly inside `<root>.slice` (a systemd
/// `--cgroup-root`).
fn kubepods_at<'a>(comps: &[&'a str], i: usize) -> Option<Driver<'a>> {
    let component = comps[i];
    if component == "kubepods" {
        return Some(Driver::Cgroupfs);
    }
    let stem = component.strip_suffix(".slice")?;
    if stem == "kubepods" {
        return Some(Driver::Systemd { stem });
    }
    let root = stem.strip_suffix("-kubepods")?;
    let parent = comps.get(i.checked_sub(1)?)?;
    (!root.is_empty() && parent.strip_suffix(".slice") == Some(root))
        .then_some(Driver::Systemd { stem })
}

/// A QoS level below kubepods; returns the class and the stem children must extend.
fn qos_at<'a>(driver: Driver<'a>, component: &'a str) -> Option<(QosClass, Driver<'a>)> {
    let (name, child) = match driver {
        Driver::Cgroupfs => (component, Driver::Cgroupfs),
        Driver::Systemd { stem } => {
            let child_stem = component.strip_suffix(".slice")?;
            let name = child_stem.strip_prefix(stem)?.strip_prefix('-')?;
            (name, Driver::Systemd { stem: child_stem })
        }
    };
    let qos = match name {
        "burstable" => QosClass::Burstable,
        "besteffort" => QosClass::BestEffort,
        _ => return None,
    };
    Some((qos, child))
}

/// A pod level below kubepods or a QoS level; returns the canonical pod UID.
fn pod_at(driver: Driver<'_>, component: &str) -> Option<String> {
    match driver {
        Driver::Cgroupfs => parse_pod_uid(component.strip_prefix("pod")?, b'-'),
        Driver::Systemd { stem } => {
            let uid = component
                .strip_suffix(".slice")?
                .strip_prefix(stem)?
                .strip_prefix("-pod")?;
            parse_pod_uid(uid, b'_')
        }
    }
}

/// Identifies a path containing a kubepods component (the first one, counted from the root);
/// `None` if it has none.
pub(crate) fn identify(comps: &[&str]) -> Option<PathIdentity> {
    let (i, driver) = (0..comps.len()).find_map(|i| kubepods_at(comps, i).map(|d| (i, d)))?;
    Some(below_kubepods(driver, &comps[i + 1..]))
}

/// Walks the components below the kubepods cgroup.
fn below_kubepods(driver: Driver<'_>, rest: &[&str]) -> PathIdentity {
    let mut id = PathIdentity::of_kind(CgroupKind::Kubepods);
    let mut rest = rest.iter().copied();
    let Some(mut component) = rest.next() else {
        return id;
    };

    let mut parent = driver;
    if let Some((qos, child)) = qos_at(driver, component) {
        id.kind = CgroupKind::Qos;
        id.qos_class = Some(qos);
        parent = child;
        match rest.next() {
            Some(next) => component = next,
            None => return id,
        }
    }

    // Below kubepods or a QoS level, only a pod is expected.
    id.kind = CgroupKind::Other;
    let Some(uid) = pod_at(parent, component) else {
        return id;
    };
    id.kind = CgroupKind::Pod;
    id.qos_class.get_or_insert(QosClass::Guaranteed);
    id.pod_uid = Some(uid);
    let Some(component) = rest.next() else {
        return id;
    };

    // Below a pod: containers and runtime helpers; anything else is pod-level "other".
    id.kind = CgroupKind::Other;
    let Some(hit) = runtime::pod_child_container(component) else {
        return id;
    };
    let last = rest.next().is_none();
    let container = runtime::from_hit(hit, last);
    id.kind = container.kind;
    id.container_id = container.container_id;
    id.runtime = container.runtime;
    id
}

/// A container cgroup created where kubelet's systemd-style cgroupsPath was taken literally,
/// which happens when kubelet uses the systemd driver but the runtime uses cgroupfs (a common
/// misconfiguration, e.g. containerd without `SystemdCgroup = true`). runc's systemd path format
/// `slice:prefix:name` then becomes one directory, such as
/// `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`, under the runtime's own cgroup or at
/// the root. The pod, its QoS class and the container are all still in the name.
pub(crate) fn misplaced_container(component: &str) -> Option<Hit> {
    let mut parts = component.split(':');
    let (slice, prefix, id) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_container_id(id) {
        return None;
    }
    let runtime = match prefix {
        "cri-containerd" => Runtime::Containerd,
        "crio" => Runtime::CriO,
        "docker" => Runtime::Docker,
        _ => return None,
    };
    let (head, uid) = slice.strip_suffix(".slice")?.rsplit_once("-pod")?;
    let uid = parse_pod_uid(uid, b'_')?;
    let (kubepods, qos) = if let Some(k) = head.strip_suffix("-burstable") {
        (k, QosClass::Burstable)
    } else if let Some(k) = head.strip_suffix("-besteffort") {
        (k, QosClass::BestEffort)
    } else {
        (head, QosClass::Guaranteed)
    };
    if !(kubepods == "kubepods" || kubepods.ends_with("-kubepods")) {
        return None;
    }
    Some(Hit {
        runtime: Some(runtime),
        container_id: id.to_owned(),
        role: Role::Container,
        pod: Some((qos, uid)),
    })
}
