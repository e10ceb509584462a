//! Memory cgroups: finding the hierarchy, walking it, and reading each cgroup's files
//! into one normalised [`CgroupMemory`] whatever the cgroup version.

pub mod hierarchy;
pub mod limit;
pub mod normalize;
pub mod reclaim;
pub mod stat;
pub mod v1;
pub mod v2;
mod walk;

pub use hierarchy::{CgroupVersion, MemoryHierarchy};
pub use limit::Limit;
pub use stat::KeyedValues;
pub use walk::walk;

use crate::parse::Pressure;

/// One memory cgroup as read from the kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupSample {
    /// Path relative to the hierarchy's root, starting with "/" (the form the kernel
    /// prints as `oom_memcg=`).
    pub path: String,
    /// cgroup API version it was read through.
    pub version: CgroupVersion,
    /// Inode number of the cgroup directory (what /proc/kpagecgroup reports).
    pub inode: u64,
    /// Its memory figures.
    pub memory: CgroupMemory,
}

impl CgroupSample {
    /// True for the hierarchy's root cgroup.
    pub fn is_root(&self) -> bool {
        self.path == "/"
    }

    /// The parent's path ("/" for top-level cgroups, `None` for the root).
    pub fn parent_path(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        match self.path.rfind('/') {
            Some(0) => Some("/"),
            Some(index) => Some(&self.path[..index]),
            None => None,
        }
    }
}

/// Where `usage` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum UsageSource {
    /// cgroup v2 `memory.current`.
    #[serde(rename = "memory.current")]
    MemoryCurrent,
    /// cgroup v1 `memory.usage_in_bytes`.
    #[serde(rename = "memory.usage_in_bytes")]
    UsageInBytes,
    /// v2 root: anon + file of `memory.stat` (no memory.current there).
    #[serde(rename = "memory.stat:anon+file")]
    StatAnonPlusFile,
}

/// One cgroup's memory, normalised from v1 or v2 files. Sizes are bytes; `None` means
/// this kernel does not report the figure.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupMemory {
    /// Memory charged to the cgroup and its descendants.
    pub usage: Option<u64>,
    /// Which file `usage` came from.
    pub usage_source: UsageSource,
    /// Hard limit (v2 memory.max, v1 memory.limit_in_bytes).
    pub limit: Limit,
    /// v2 memory.high (throttling threshold).
    pub high: Option<Limit>,
    /// v2 memory.low (best-effort protection).
    pub low: Option<Limit>,
    /// v2 memory.min (hard protection).
    pub min: Option<Limit>,
    /// v1 memory.soft_limit_in_bytes.
    pub soft_limit: Option<Limit>,
    /// v2 memory.swap.max.
    pub swap_limit: Option<Limit>,
    /// Peak usage (v2 memory.peak, v1 memory.max_usage_in_bytes).
    pub peak: Option<u64>,
    /// Anonymous memory (v2 anon, v1 total_rss).
    pub anon: Option<u64>,
    /// Anonymous pages on the active LRU.
    pub active_anon: Option<u64>,
    /// Anonymous pages on the inactive LRU.
    pub inactive_anon: Option<u64>,
    /// Page cache including tmpfs/shmem (v2 file, v1 total_cache).
    pub file: Option<u64>,
    /// Page cache on the active LRU.
    pub active_file: Option<u64>,
    /// Page cache on the inactive LRU.
    pub inactive_file: Option<u64>,
    /// tmpfs, shared memory (part of `file`, on the anon LRUs).
    pub shmem: Option<u64>,
    /// Page cache mapped into page tables.
    pub file_mapped: Option<u64>,
    /// Page cache waiting to be written back.
    pub file_dirty: Option<u64>,
    /// Page cache being written back.
    pub file_writeback: Option<u64>,
    /// Kernel memory (v2 `kernel` or its parts; v1 kmem + kmem.tcp usage).
    pub kernel: Option<u64>,
    /// Swap in use (v2 memory.swap.current, v1 total_swap).
    pub swap: Option<u64>,
    /// Unevictable pages (mlocked, ramfs, SHM_LOCK).
    pub unevictable: Option<u64>,
    /// Event counters, hierarchical.
    pub events: CgroupEvents,
    /// Event counters of this cgroup alone (v2 memory.events.local).
    pub events_local: Option<CgroupEvents>,
    /// Memory pressure (v2 only).
    pub pressure: Option<Pressure>,
    /// The whole memory.stat as read, including keys memglass does not name.
    pub stat: KeyedValues,
}

/// Memory event counters. `None` where the kernel has no such counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CgroupEvents {
    /// Times usage went below memory.low and was reclaimed anyway (v2).
    pub low: Option<u64>,
    /// Times usage went over memory.high and was throttled (v2).
    pub high: Option<u64>,
    /// Times usage hit memory.max (v2).
    pub max: Option<u64>,
    /// Times the cgroup hit its limit and the OOM killer was invoked (v2).
    pub oom: Option<u64>,
    /// Processes killed by the OOM killer (v2 memory.events, v1 memory.oom_control ≥ 4.13).
    pub oom_kill: Option<u64>,
    /// Group OOM kills (v2 memory.oom.group).
    pub oom_group_kill: Option<u64>,
    /// Times usage hit the limit (v1 memory.failcnt).
    pub failcnt: Option<u64>,
}
