//! Kernel files: memory.stat, memory.events, memory.pressure, single-value cgroup files,
//! /proc/meminfo, /proc/vmstat, mountinfo.

use std::path::Path;

use memglass_kernel::cgroup::v1::V1Files;
use memglass_kernel::cgroup::v2::V2Files;
use memglass_kernel::cgroup::{hierarchy, normalize, KeyedValues, Limit};
use memglass_kernel::proc::{meminfo, VmStat};
use memglass_kernel::{mounts, parse};

use super::text;
use crate::seeds::Fixtures;
use crate::Target;

const STAT_WORDS: &[&str] = &[
    "anon",
    "file",
    "kernel",
    "shmem",
    "active_anon",
    "inactive_anon",
    "active_file",
    "inactive_file",
    "total_rss",
    "total_cache",
    "total_swap",
    "hierarchical_memory_limit",
    "slab_reclaimable",
    "percpu",
    "sock",
    "vmalloc",
    "oom_kill",
    "oom",
    "max",
    "high",
    "low",
    "oom_group_kill",
    "under_oom",
    "oom_kill_disable",
    " ",
    "\n",
];

/// memory.stat (v1 and v2) → KeyedValues → normalised CgroupMemory.
pub static MEMORY_STAT: Target = Target {
    name: "memory-stat",
    about: "memory.stat (v1, v2): KeyedValues::parse, normalize::from_v1/from_v2",
    seeds: |f| f.host_files("memory.stat"),
    tokens: STAT_WORDS,
    mutate: None,
    run: |input| {
        let Ok(stat) = KeyedValues::parse(&text(input)) else {
            return;
        };
        let _ = stat.sum(&["anon", "file", "kernel"]);
        let _ = serde_json::to_vec(&stat);
        let v1 = normalize::from_v1(V1Files {
            usage_in_bytes: stat.get("total_rss"),
            limit_in_bytes: stat.get("hierarchical_memory_limit").map(Limit::from_v1),
            soft_limit_in_bytes: stat.get("total_cache").map(Limit::from_v1),
            max_usage_in_bytes: stat.get("total_swap"),
            failcnt: stat.get("total_pgfault"),
            oom_control: Some(stat.clone()),
            kmem_usage_in_bytes: stat.get("total_shmem"),
            kmem_tcp_usage_in_bytes: stat.get("total_mapped_file"),
            stat: stat.clone(),
        });
        let v2 = normalize::from_v2(v2_files(Some(stat.clone()), Some(stat)));
        std::hint::black_box((v1, v2));
    },
};

fn v2_files(stat: Option<KeyedValues>, events: Option<KeyedValues>) -> V2Files {
    let value = |key: &str| stat.as_ref().and_then(|s| s.get(key));
    V2Files {
        current: value("anon"),
        max: Some(Limit::from_v2(value("file"))),
        high: Some(Limit::from_v2(value("kernel"))),
        low: None,
        min: Some(Limit::from_v2(None)),
        peak: value("shmem"),
        swap_current: value("sock"),
        swap_max: None,
        events_local: events.clone(),
        events,
        pressure: None,
        stat,
    }
}

/// memory.events, memory.events.local, memory.oom_control.
pub static MEMORY_EVENTS: Target = Target {
    name: "memory-events",
    about: "memory.events(.local), memory.oom_control: KeyedValues::parse, from_v1/from_v2 events",
    seeds: |f| {
        let mut seeds = f.host_files("memory.events");
        seeds.extend(f.host_files("memory.events.local"));
        seeds.extend(f.host_files("memory.oom_control"));
        seeds
    },
    tokens: STAT_WORDS,
    mutate: None,
    run: |input| {
        let Ok(events) = KeyedValues::parse(&text(input)) else {
            return;
        };
        let v2 = normalize::from_v2(v2_files(None, Some(events.clone())));
        let v1 = normalize::from_v1(V1Files {
            stat: events.clone(),
            usage_in_bytes: None,
            limit_in_bytes: None,
            soft_limit_in_bytes: None,
            max_usage_in_bytes: None,
            failcnt: events.get("max"),
            oom_control: Some(events),
            kmem_usage_in_bytes: None,
            kmem_tcp_usage_in_bytes: None,
        });
        std::hint::black_box((v1, v2));
    },
};

/// memory.pressure and /proc/pressure/memory (PSI).
pub static MEMORY_PRESSURE: Target = Target {
    name: "memory-pressure",
    about: "memory.pressure, /proc/pressure/memory: parse::pressure",
    seeds: |f| {
        let mut seeds = f.host_files("memory.pressure");
        seeds.push(b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n".to_vec());
        seeds
    },
    tokens: &[
        "some", "full", "avg10=", "avg60=", "avg300=", "total=", "=", "0.00", "100.00", "1e5",
        "NaN", "inf", "-0.0",
    ],
    mutate: None,
    run: |input| {
        if let Ok(pressure) = parse::pressure(&text(input)) {
            let _ = serde_json::to_vec(&pressure);
        }
    },
};

/// Single-value cgroup files: memory.current, memory.max, memory.limit_in_bytes…
pub static CGROUP_VALUE: Target = Target {
    name: "cgroup-value",
    about: "memory.current/max/high/low/min/peak/swap.*, v1 *_in_bytes, failcnt: single_u64, u64_or_max, Limit",
    seeds: |f| {
        let mut seeds = Vec::new();
        for name in [
            "memory.current", "memory.max", "memory.high", "memory.low", "memory.min",
            "memory.peak", "memory.swap.current", "memory.swap.max", "memory.usage_in_bytes",
            "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.max_usage_in_bytes",
            "memory.failcnt", "memory.kmem.usage_in_bytes",
        ] {
            let mut found = f.host_files(name);
            found.sort();
            found.dedup();
            seeds.extend(found);
        }
        seeds
    },
    tokens: &["max", "\n", " ", "9223372036854771712", "-1"],
    mutate: None,
    run: |input| {
        let text = text(input);
        if let Ok(value) = parse::single_u64(&text) {
            let _ = Limit::from_v1(value).bytes();
        }
        if let Ok(value) = parse::u64_or_max(&text) {
            let _ = Limit::from_v2(value).bytes();
        }
    },
};

/// /proc/meminfo.
pub static MEMINFO: Target = Target {
    name: "meminfo",
    about: "/proc/meminfo: proc::meminfo::parse (kB → bytes, Hugetlb fallback)",
    seeds: |f| f.host_files("meminfo"),
    tokens: &[
        "MemTotal:",
        "MemFree:",
        "MemAvailable:",
        "kB",
        "Hugetlb:",
        "HugePages_Total:",
        "Hugepagesize:",
        "Active(anon):",
        ":",
        "  ",
    ],
    mutate: None,
    run: |input| {
        std::hint::black_box(meminfo::parse(&text(input)).ok());
    },
};

/// /proc/vmstat.
pub static VMSTAT: Target = Target {
    name: "vmstat",
    about: "/proc/vmstat: KeyedValues::parse, VmStat::oom_kill",
    seeds: |f| f.host_files("vmstat"),
    tokens: &[
        "oom_kill",
        "pgscan_kswapd",
        "nr_free_pages",
        "workingset_refault_file",
    ],
    mutate: None,
    run: |input| {
        if let Ok(all) = KeyedValues::parse(&text(input)) {
            let _ = VmStat { all }.oom_kill();
        }
    },
};

/// /proc/self/mountinfo and /proc/PID/mountinfo.
pub static MOUNTINFO: Target = Target {
    name: "mountinfo",
    about: "mountinfo: mounts::parse, Mount::{is_content,overlay_upper,host_path}, find_memory_hierarchy, kernel_path_in",
    seeds: |f: &Fixtures| {
        let mut seeds = f.host_files("mountinfo");
        seeds.push(
            b"1 0 0:50 / / rw - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/var/lib/containerd/snap/9/fs,workdir=/w\n\
              4 1 254:0 /var/lib/kubelet/pods/u/volumes/x /data rw - ext4 /dev/vda rw\n\
              30 23 0:26 /../../.. /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
              31 23 0:27 /a\\040b /mnt/with\\134slash rw - tmpfs tmpfs rw\n"
                .to_vec(),
        );
        seeds
    },
    tokens: &[
        " - ", "cgroup", "cgroup2", "memory", "overlay", "upperdir=", "/../..", "\\040", "\\134",
        "\\", "\\777", "/sys/fs/cgroup", "/dev/shm", "/proc", "shared:1", "master:2",
    ],
    mutate: None,
    run: |input| {
        let text = text(input);
        let parsed = mounts::parse(&text);
        for mount in parsed.iter().take(64) {
            let _ = mount.is_content();
            let _ = mount.overlay_upper();
            let _ = mount.host_path(&parsed);
        }
        let _ = hierarchy::find_memory_hierarchy(&text, |_| Some("cpu memory pids".into()));
        if let Some(mount) = parsed.iter().rev().find(|m| m.fstype.starts_with("cgroup")) {
            let dir = Path::new(&mount.mount_point).join("kubepods.slice");
            let _ = hierarchy::kernel_path_in(&text, &dir);
        }
        let _ = hierarchy::kernel_path_in(&text, Path::new("/sys/fs/cgroup/memory/kubepods"));
    },
};
