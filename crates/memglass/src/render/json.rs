//! The `memglass.snapshot/v1` JSON document (docs/json-format.md): a stable contract.

use std::io::Write;
use std::time::SystemTime;

use memglass_analyse::{CgroupReport, NodeReport, PodGroup, Reconciliation, Snapshot};
use memglass_kernel::Gap;
use serde::Serialize;

/// Schema name and version; fields may be added, never renamed.
pub const SNAPSHOT_SCHEMA: &str = "memglass.snapshot/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    taken_at: String,
    cgroup_version: u8,
    node: &'a NodeReport,
    reconciliation: &'a Reconciliation,
    pods: &'a [PodGroup],
    cgroups: &'a [CgroupReport],
    gaps: &'a [Gap],
    vanished_cgroups: usize,
    /// The node as Kubernetes describes it (null without --kube/--node).
    kubernetes_node: Option<&'a memglass_identify::NodeInfo>,
}

/// Write the snapshot as one JSON document and a newline.
pub fn write_snapshot(
    out: &mut impl Write,
    snapshot: &Snapshot,
    taken_at: SystemTime,
) -> anyhow::Result<()> {
    let document = Document {
        schema: SNAPSHOT_SCHEMA,
        taken_at: humantime::format_rfc3339_seconds(taken_at).to_string(),
        cgroup_version: snapshot.cgroup_version,
        node: &snapshot.node,
        reconciliation: &snapshot.reconciliation,
        pods: &snapshot.pods,
        cgroups: &snapshot.cgroups,
        gaps: &snapshot.gaps,
        vanished_cgroups: snapshot.vanished,
        kubernetes_node: snapshot.kubernetes_node.as_ref(),
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    Ok(())
}
