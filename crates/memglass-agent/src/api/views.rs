//! Documents built from the latest report for the API and the dashboard.

use memglass_analyse::{CgroupReport, Snapshot};
use memglass_identify::CgroupKind;
use serde_json::{json, Value};

use crate::shared::{rfc3339, Report};

/// The `memglass.snapshot/v1` document, exactly as `memglass snapshot --json` prints it.
pub fn snapshot_document(report: &Report) -> Value {
    let s = &report.snapshot;
    json!({
        "schema": "memglass.snapshot/v1",
        "taken_at": rfc3339(report.unix_seconds()),
        "cgroup_version": s.cgroup_version,
        "node": s.node,
        "reconciliation": s.reconciliation,
        "pods": s.pods,
        "cgroups": s.cgroups,
        "gaps": s.gaps,
        "vanished_cgroups": s.vanished,
        // From --node or the Kubernetes API, as `memglass snapshot --json` has it.
        "kubernetes_node": s.kubernetes_node,
        // The agent does not scan the files behind the cache holders on each collection:
        // null, as `memglass snapshot --json` without --cache-holders.
        "cache_holders": null,
    })
}

/// The dashboard's table: every pod, and every other cgroup that is not the root, a
/// kubelet level (kubepods, QoS) or inside a pod.
pub fn workloads(snapshot: &Snapshot) -> Vec<Value> {
    let in_pod: std::collections::HashSet<&str> = snapshot
        .pods
        .iter()
        .flat_map(|p| p.containers.iter().map(String::as_str))
        .collect();
    snapshot
        .cgroups
        .iter()
        .filter(|c| {
            let kubelet_level = matches!(
                c.kind,
                CgroupKind::Root | CgroupKind::Kubepods | CgroupKind::Qos
            );
            // Containers and anything nested inside a pod show on the pod's page.
            let inside_pod = in_pod.contains(c.path.as_str())
                || (c.pod_uid.is_some() && c.kind != CgroupKind::Pod);
            !kubelet_level && !inside_pod
        })
        .map(|c| row(snapshot, c))
        .collect()
}

fn row(snapshot: &Snapshot, c: &CgroupReport) -> Value {
    let containers = snapshot
        .pods
        .iter()
        .find(|p| p.path == c.path)
        .map_or(0, |p| p.containers.len());
    let m = &c.memory;
    let limit_percent = match (m.working_set_kubelet, m.limit) {
        (Some(ws), Some(limit)) if limit > 0 => Some(ws as f64 * 100.0 / limit as f64),
        _ => None,
    };
    json!({
        "path": c.path,
        "kind": c.kind,
        "namespace": c.namespace,
        "pod": c.pod,
        "container": c.container,
        "pod_uid": c.pod_uid,
        "container_id": c.container_id,
        "qos_class": c.qos_class,
        "containers": containers,
        "memory": m,
        "limit_percent": limit_percent,
        "oom_kill": c.events.oom_kill,
    })
}
