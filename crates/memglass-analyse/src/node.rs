//! Node memory: where every byte of MemTotal is, from /proc/meminfo.
//!
//! The LRU lists partition user memory: shmem sits on the anon lists and Buffers on the
//! file lists, so both are shown as parts but never added again.

use memglass_kernel::proc::MemInfo;

/// The node's memory broken down. Bytes; `None` where this kernel lacks the counter.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeReport {
    /// MemTotal.
    pub mem_total: u64,
    /// MemFree.
    pub mem_free: u64,
    /// MemAvailable (the kernel's estimate).
    pub mem_available: Option<u64>,
    /// Buffers (part of the file LRUs).
    pub buffers: Option<u64>,
    /// Active(anon).
    pub active_anon: Option<u64>,
    /// Inactive(anon).
    pub inactive_anon: Option<u64>,
    /// Active(file).
    pub active_file: Option<u64>,
    /// Inactive(file).
    pub inactive_file: Option<u64>,
    /// Unevictable LRU (mlocked, ramfs).
    pub unevictable: Option<u64>,
    /// Shmem: tmpfs and shared memory (part of the anon LRUs).
    pub shmem: Option<u64>,
    /// Dirty page cache.
    pub dirty: Option<u64>,
    /// Page cache under writeback.
    pub writeback: Option<u64>,
    /// SReclaimable.
    pub slab_reclaimable: Option<u64>,
    /// SUnreclaim.
    pub slab_unreclaimable: Option<u64>,
    /// KernelStack.
    pub kernel_stack: Option<u64>,
    /// PageTables (+ SecPageTables where the kernel has it).
    pub pagetables: Option<u64>,
    /// VmallocUsed.
    pub vmalloc: Option<u64>,
    /// Percpu.
    pub percpu: Option<u64>,
    /// HugeTLB pages of all sizes.
    pub hugetlb: Option<u64>,
    /// Application memory: anon + file LRUs + unevictable + hugetlb.
    pub application: u64,
    /// Kernel memory that a counter names: slab + kernel_stack + pagetables + vmalloc + percpu.
    pub kernel_named: u64,
    /// Memory the kernel handed out straight from the page allocator that no counter
    /// names: MemTotal − MemFree − application − kernel_named, floored at 0.
    pub alloc_page: u64,
    /// All kernel memory: kernel_named + alloc_page.
    pub kernel: u64,
    /// kubelet's eviction signal: MemTotal − (root usage − root inactive_file).
    /// `None` when the root cgroup's usage is unknown.
    pub memory_available: Option<u64>,
    /// The root working set that signal subtracts (root usage − root inactive_file).
    pub root_working_set: Option<u64>,
    /// OOM kills since boot (/proc/vmstat oom_kill).
    pub oom_kill: Option<u64>,
}

/// The root cgroup's figures kubelet's signal needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RootUsage {
    /// v1: root memory.usage_in_bytes; v2: anon + file of the root memory.stat.
    pub usage: Option<u64>,
    /// Root inactive_file (v1 total_inactive_file).
    pub inactive_file: Option<u64>,
}

/// Break the node's memory down.
pub fn break_down(info: &MemInfo, root: RootUsage, oom_kill: Option<u64>) -> NodeReport {
    let sum = |parts: &[Option<u64>]| {
        parts
            .iter()
            .flatten()
            .fold(0u64, |a, &b| a.saturating_add(b))
    };
    let pagetables = match (info.page_tables, info.sec_page_tables) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    };
    let application = sum(&[
        info.active_anon,
        info.inactive_anon,
        info.active_file,
        info.inactive_file,
        info.unevictable,
        info.hugetlb,
    ]);
    let kernel_named = sum(&[
        info.slab_reclaimable,
        info.slab_unreclaimable,
        info.kernel_stack,
        pagetables,
        info.vmalloc_used,
        info.percpu,
    ]);
    let alloc_page = info
        .mem_total
        .saturating_sub(info.mem_free)
        .saturating_sub(application)
        .saturating_sub(kernel_named);
    let root_working_set = root
        .usage
        .map(|usage| working_set_kubelet(usage, root.inactive_file.unwrap_or(0)));
    NodeReport {
        mem_total: info.mem_total,
        mem_free: info.mem_free,
        mem_available: info.mem_available,
        buffers: info.buffers,
        active_anon: info.active_anon,
        inactive_anon: info.inactive_anon,
        active_file: info.active_file,
        inactive_file: info.inactive_file,
        unevictable: info.unevictable,
        shmem: info.shmem,
        dirty: info.dirty,
        writeback: info.writeback,
        slab_reclaimable: info.slab_reclaimable,
        slab_unreclaimable: info.slab_unreclaimable,
        kernel_stack: info.kernel_stack,
        pagetables,
        vmalloc: info.vmalloc_used,
        percpu: info.percpu,
        hugetlb: info.hugetlb,
        application,
        kernel_named,
        alloc_page,
        kernel: kernel_named.saturating_add(alloc_page),
        memory_available: root_working_set.map(|ws| info.mem_total.saturating_sub(ws)),
        root_working_set,
        oom_kill,
    }
}

/// kubelet's working set: usage − inactive_file, floored at 0.
pub fn working_set_kubelet(usage: u64, inactive_file: u64) -> u64 {
    usage.saturating_sub(inactive_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded on the build machine (Linux 6.18.44), 2026-11-25.
    const HOST: &str = include_str!("../../../fixtures/hosts/v1-hybrid-6.18/proc/meminfo");

    #[test]
    fn parts_add_up_to_mem_total() {
        let info = memglass_kernel::proc::meminfo::parse(HOST).unwrap();
        let node = break_down(&info, RootUsage::default(), None);
        assert_eq!(
            node.application + node.kernel + node.mem_free,
            node.mem_total,
            "alloc_page closes the sum exactly when it is not floored"
        );
        assert!(node.alloc_page > 0);
        assert_eq!(node.memory_available, None);
    }

    #[test]
    fn memory_available_is_kubelets_formula() {
        let info = memglass_kernel::proc::meminfo::parse(
            "MemTotal: 1000 kB\nMemFree: 100 kB\nActive(anon): 300 kB\nInactive(file): 200 kB\n",
        )
        .unwrap();
        let root = RootUsage {
            usage: Some(700 * 1024),
            inactive_file: Some(200 * 1024),
        };
        let node = break_down(&info, root, Some(3));
        assert_eq!(node.root_working_set, Some(500 * 1024));
        assert_eq!(node.memory_available, Some(500 * 1024));
        assert_eq!(node.application, 500 * 1024);
        assert_eq!(node.alloc_page, 400 * 1024);
        assert_eq!(node.oom_kill, Some(3));
    }

    #[test]
    fn inconsistent_counters_floor_instead_of_wrapping() {
        let info = memglass_kernel::proc::meminfo::parse(
            "MemTotal: 100 kB\nMemFree: 90 kB\nActive(anon): 300 kB\n",
        )
        .unwrap();
        let node = break_down(
            &info,
            RootUsage {
                usage: Some(u64::MAX),
                inactive_file: None,
            },
            None,
        );
        assert_eq!(node.alloc_page, 0);
        assert_eq!(node.memory_available, Some(0));
        assert_eq!(working_set_kubelet(5, 10), 0);
    }
}
