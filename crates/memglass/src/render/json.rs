//! The `memglass.snapshot/v1` JSON document (docs/json-format.md): a stable contract.

use std::io::Write;
use std::time::SystemTime;

use memglass_analyse::filecache::CacheHolder;
use memglass_analyse::{CgroupReport, NodeReport, PodGroup, Reconciliation, Snapshot};
use memglass_kernel::Gap;
use serde::Serialize;

use crate::render::cache::FileJson;

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
    /// The files behind the largest page-cache holders (null: not looked at).
    cache_holders: Option<Vec<HolderJson<'a>>>,
}

/// One cache holder: the cgroup, its own page-cache figure and its largest files.
#[derive(Serialize)]
struct HolderJson<'a> {
    cgroup: &'a str,
    namespace: Option<&'a str>,
    pod: Option<&'a str>,
    container: Option<&'a str>,
    /// The cgroup's page cache, from `file_source`.
    file: Option<u64>,
    file_source: &'static str,
    /// Σ cached of the files listed (their whole cache, whichever cgroup it is charged to).
    files_cached: u64,
    files: Vec<FileJson<'a>>,
    warnings: &'a [String],
}

impl<'a> HolderJson<'a> {
    fn new(holder: &'a CacheHolder, cgroups: &'a [CgroupReport]) -> HolderJson<'a> {
        let cgroup = cgroups.iter().find(|c| c.path == holder.cgroup);
        HolderJson {
            cgroup: &holder.cgroup,
            namespace: cgroup.and_then(|c| c.namespace.as_deref()),
            pod: cgroup.and_then(|c| c.pod.as_deref()),
            container: cgroup.and_then(|c| c.container.as_deref()),
            file: cgroup.and_then(|c| c.memory.file),
            file_source: file_source(cgroup.map_or(2, |c| c.cgroup_version)),
            files_cached: holder.files_cached(),
            files: holder.files.iter().map(FileJson::new).collect(),
            warnings: &holder.warnings,
        }
    }
}

/// Where a cgroup's page-cache figure comes from.
pub fn file_source(cgroup_version: u8) -> &'static str {
    if cgroup_version == 1 {
        "memory.stat total_cache"
    } else {
        "memory.stat file"
    }
}

/// Write the snapshot as one JSON document and a newline.
pub fn write_snapshot(
    out: &mut impl Write,
    snapshot: &Snapshot,
    holders: Option<&[CacheHolder]>,
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
        cache_holders: holders.map(|holders| {
            holders
                .iter()
                .map(|h| HolderJson::new(h, &snapshot.cgroups))
                .collect()
        }),
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    Ok(())
}
