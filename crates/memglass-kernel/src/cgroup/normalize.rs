//! The one place that knows both v1 and v2: their files → [`CgroupMemory`].
//!
//! Each figure records where it came from in `docs/kernel-files.md`; the mapping is the
//! table of PRODUCT.md §1.

use crate::cgroup::limit::Limit;
use crate::cgroup::stat::KeyedValues;
use crate::cgroup::v1::V1Files;
use crate::cgroup::v2::V2Files;
use crate::cgroup::{CgroupEvents, CgroupMemory, UsageSource};

/// v2 kernels before 5.18 have no `kernel` key: sum its parts instead.
const V2_KERNEL_PARTS: [&str; 8] = [
    "slab_reclaimable",
    "slab_unreclaimable",
    "kernel_stack",
    "pagetables",
    "sec_pagetables",
    "percpu",
    "sock",
    "vmalloc",
];

/// Normalise a v1 cgroup. The `total_*` keys are hierarchical (this cgroup and below).
pub fn from_v1(files: V1Files) -> CgroupMemory {
    let stat = &files.stat;
    let oom_kill = files.oom_control.as_ref().and_then(|c| c.get("oom_kill"));
    let kernel = match (files.kmem_usage_in_bytes, files.kmem_tcp_usage_in_bytes) {
        (None, None) => None,
        (kmem, tcp) => Some(kmem.unwrap_or(0).saturating_add(tcp.unwrap_or(0))),
    };
    CgroupMemory {
        usage: files.usage_in_bytes,
        usage_source: UsageSource::UsageInBytes,
        limit: files.limit_in_bytes.unwrap_or(Limit::Unlimited),
        high: None,
        low: None,
        min: None,
        soft_limit: files.soft_limit_in_bytes,
        swap_limit: None,
        peak: files.max_usage_in_bytes,
        anon: stat.get("total_rss"),
        active_anon: stat.get("total_active_anon"),
        inactive_anon: stat.get("total_inactive_anon"),
        file: stat.get("total_cache"),
        active_file: stat.get("total_active_file"),
        inactive_file: stat.get("total_inactive_file"),
        shmem: stat.get("total_shmem"),
        file_mapped: stat.get("total_mapped_file"),
        file_dirty: stat.get("total_dirty"),
        file_writeback: stat.get("total_writeback"),
        kernel,
        swap: stat.get("total_swap"),
        unevictable: stat.get("total_unevictable"),
        events: CgroupEvents {
            oom: None,
            oom_kill,
            failcnt: files.failcnt,
            ..CgroupEvents::default()
        },
        events_local: None,
        pressure: None,
        stat: files.stat,
    }
}

/// Normalise a v2 cgroup. On the root, which has no `memory.current`, usage is
/// anon + file of its `memory.stat` (cAdvisor's emulation, used by kubelet).
pub fn from_v2(files: V2Files) -> CgroupMemory {
    let stat = files.stat.unwrap_or_default();
    let (usage, usage_source) = match files.current {
        Some(current) => (Some(current), UsageSource::MemoryCurrent),
        None => (stat.sum(&["anon", "file"]), UsageSource::StatAnonPlusFile),
    };
    let kernel = stat.get("kernel").or_else(|| stat.sum(&V2_KERNEL_PARTS));
    CgroupMemory {
        usage,
        usage_source,
        limit: files.max.unwrap_or(Limit::Unlimited),
        high: files.high,
        low: files.low,
        min: files.min,
        soft_limit: None,
        swap_limit: files.swap_max,
        peak: files.peak,
        anon: stat.get("anon"),
        active_anon: stat.get("active_anon"),
        inactive_anon: stat.get("inactive_anon"),
        file: stat.get("file"),
        active_file: stat.get("active_file"),
        inactive_file: stat.get("inactive_file"),
        shmem: stat.get("shmem"),
        file_mapped: stat.get("file_mapped"),
        file_dirty: stat.get("file_dirty"),
        file_writeback: stat.get("file_writeback"),
        kernel,
        swap: files.swap_current,
        unevictable: stat.get("unevictable"),
        events: files.events.as_ref().map(v2_events).unwrap_or_default(),
        events_local: files.events_local.as_ref().map(v2_events),
        pressure: files.pressure,
        stat,
    }
}

fn v2_events(events: &KeyedValues) -> CgroupEvents {
    CgroupEvents {
        low: events.get("low"),
        high: events.get("high"),
        max: events.get("max"),
        oom: events.get("oom"),
        oom_kill: events.get("oom_kill"),
        oom_group_kill: events.get("oom_group_kill"),
        failcnt: None,
    }
}
