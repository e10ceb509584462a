//! Does the node add up? Σ top-level cgroups + memory outside them + free = MemTotal.
//!
//! The residual is shown, never hidden: it is what neither meminfo nor the cgroups explain
//! (pages in flight between lists, memory charged to dying cgroups counted twice, etc.).

use crate::cgroup::CgroupReport;
use crate::node::NodeReport;

/// The node reconciled against its cgroups. Bytes; `residual` is signed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reconciliation {
    /// MemTotal.
    pub mem_total: u64,
    /// Σ usage of the root's children (each includes its descendants).
    pub top_level_cgroups: u64,
    /// User memory outside every top-level cgroup: node application − Σ their anon + file
    /// (root-cgroup processes, uncharged cache, hugetlb), floored at 0.
    pub user_outside_cgroups: u64,
    /// Kernel memory outside every top-level cgroup: node kernel − Σ their kernel, floored.
    pub kernel_outside_cgroups: u64,
    /// MemFree.
    pub free: u64,
    /// MemTotal − (the four parts above).
    pub residual: i64,
}

/// Reconcile the node with its top-level cgroups.
pub fn reconcile(node: &NodeReport, cgroups: &[CgroupReport]) -> Reconciliation {
    let top: Vec<&CgroupReport> = cgroups.iter().filter(|c| c.depth() == 1).collect();
    let total = |f: &dyn Fn(&CgroupReport) -> Option<u64>| {
        top.iter()
            .filter_map(|c| f(c))
            .fold(0u64, u64::saturating_add)
    };
    let top_level_cgroups = total(&|c| c.memory.usage);
    let top_user = total(&|c| {
        Some(
            c.memory
                .anon
                .unwrap_or(0)
                .saturating_add(c.memory.file.unwrap_or(0)),
        )
    });
    let top_kernel = total(&|c| c.memory.kernel);
    let user_outside_cgroups = node.application.saturating_sub(top_user);
    let kernel_outside_cgroups = node.kernel.saturating_sub(top_kernel);
    let explained = i128::from(top_level_cgroups)
        + i128::from(user_outside_cgroups)
        + i128::from(kernel_outside_cgroups)
        + i128::from(node.mem_free);
    let residual = (i128::from(node.mem_total) - explained).clamp(i64::MIN.into(), i64::MAX.into());
    Reconciliation {
        mem_total: node.mem_total,
        top_level_cgroups,
        user_outside_cgroups,
        kernel_outside_cgroups,
        free: node.mem_free,
        residual: residual as i64,
    }
}
