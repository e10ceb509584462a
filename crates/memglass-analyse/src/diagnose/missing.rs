//! "Missing" memory (PRODUCT.md §2, question 4): a working set far above what the
//! processes' RSS explains, and what holds it. Each rule looks at one container (or any
//! other leaf cgroup that is not a pod's infrastructure) and needs both a share of its
//! memory and a floor in bytes, so small cgroups never trip one.

use std::collections::HashMap;

use memglass_identify::CgroupKind;

use super::{
    memory_qos, mib, percent, Evidence, Finding, Inputs, Kind, Remedy, Setting, Severity, MIB,
};
use crate::cgroup::{parent_path, CgroupReport};
use crate::filecache::CacheHolder;

/// `page_cache_working_set`: active page cache above this share of kubelet's working set...
const ACTIVE_CACHE_PERCENT: f64 = 50.0;
/// ...and at least this much.
const ACTIVE_CACHE_MIN: u64 = 64 * MIB;
/// `tmpfs`: shmem above this share of usage, and at least this much.
const TMPFS_PERCENT: f64 = 25.0;
const TMPFS_MIN: u64 = 32 * MIB;
/// `dirty_backlog`: dirty + writeback above this share of usage, and at least this much.
const DIRTY_PERCENT: f64 = 10.0;
const DIRTY_MIN: u64 = 32 * MIB;
/// `deleted_open_files`: deleted files still open holding at least this much cache.
const DELETED_MIN: u64 = 16 * MIB;
/// `kernel_memory`: kernel memory above this share of usage, and at least this much.
const KERNEL_PERCENT: f64 = 25.0;
const KERNEL_MIN: u64 = 64 * MIB;
/// `dying_cgroups`: memory charged below a cgroup but to none of its live children, at
/// least this much and this share of its usage.
const DYING_MIN: u64 = 32 * MIB;
const DYING_PERCENT: f64 = 10.0;
/// Files named as evidence, at most.
const FILES_LISTED: usize = 5;

pub(super) fn check(inputs: &Inputs<'_>, findings: &mut Vec<Finding>) {
    for c in inputs.snapshot.cgroups.iter().filter(|c| is_workload(c)) {
        let files = files_of(inputs.cache_holders, &c.path);
        page_cache(inputs, c, &files, findings);
        tmpfs(c, &files, findings);
        dirty(c, findings);
        deleted(c, &files, findings);
        kernel(c, findings);
    }
    dying(inputs, findings);
}

/// Containers, the pod's sandbox aside: where processes hold memory. (Pods would repeat
/// their containers' findings.)
fn is_workload(c: &CgroupReport) -> bool {
    c.kind == CgroupKind::Container && c.workload.as_ref().and_then(|w| w.sandbox) != Some(true)
}

/// The measured files of `path`'s cgroup (and cgroups below it), largest cached first.
fn files_of<'a>(
    holders: &'a [CacheHolder],
    path: &str,
) -> Vec<&'a memglass_kernel::filecache::CachedFile> {
    let mut files: Vec<_> = holders
        .iter()
        .filter(|h| h.cgroup == path || h.cgroup.starts_with(&format!("{path}/")))
        .flat_map(|h| h.files.iter())
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.cache.cached));
    files
}

fn file_name(file: &memglass_kernel::filecache::CachedFile) -> String {
    file.candidate
        .host_path
        .clone()
        .unwrap_or_else(|| file.candidate.container_path.clone())
}

fn file_evidence(files: &[&memglass_kernel::filecache::CachedFile], f: &mut Finding) {
    for file in files.iter().take(FILES_LISTED) {
        f.evidence.push(Evidence::bytes(
            &format!("file:{}", file_name(file)),
            file.cache.cached,
            format!("cached bytes of the file ({:?})", file.cache.method).to_lowercase(),
        ));
    }
}

fn page_cache(
    inputs: &Inputs<'_>,
    c: &CgroupReport,
    files: &[&memglass_kernel::filecache::CachedFile],
    findings: &mut Vec<Finding>,
) {
    let (Some(ws), Some(active)) = (c.memory.working_set_kubelet, c.memory.active_file) else {
        return;
    };
    let share = percent(active, ws);
    if active < ACTIVE_CACHE_MIN || share <= ACTIVE_CACHE_PERCENT {
        return;
    }
    let near_limit = c
        .memory
        .limit
        .is_some_and(|limit| percent(ws, limit) > 75.0);
    let severity = if near_limit {
        Severity::Warning
    } else {
        Severity::Info
    };
    let mut f = Finding::about(Kind::PageCacheWorkingSet, severity, c);
    f.summary = format!(
        "Active page cache ({}) is {share:.0}% of the working set: files read again and again, counted by kubelet and `kubectl top` although the kernel can reclaim them.",
        mib(active)
    );
    f.evidence = vec![
        Evidence::bytes("active_file", active, "memory.stat active_file"),
        Evidence::bytes(
            "working_set_kubelet",
            ws,
            "usage − memory.stat inactive_file",
        ),
        Evidence::percent("of_working_set", share, "active_file / working_set_kubelet"),
    ];
    if let Some(anon) = c.memory.anon {
        f.evidence
            .push(Evidence::bytes("anon", anon, "memory.stat anon / rss"));
    }
    file_evidence(files, &mut f);
    // Cache nobody maps can go without touching a process's pages.
    let unmapped = c
        .memory
        .file
        .unwrap_or(0)
        .saturating_sub(c.memory.shmem.unwrap_or(0))
        .saturating_sub(c.memory.file_mapped.unwrap_or(0));
    let mut remedy = Remedy {
        text: format!(
            "Nothing is lost: the kernel reclaims this cache under pressure. To keep it from counting toward eviction and limits, reclaim it proactively (cgroup v2 memory.reclaim: about {} is unmapped cache)",
            mib(unmapped)
        ),
        set: Vec::new(),
        command: (c.cgroup_version == 2 && unmapped >= MIB)
            .then(|| format!("memglass reclaim --cgroup {} --bytes {}", c.path, super::quantity(unmapped / MIB * MIB))),
    };
    let request = c.workload.as_ref().and_then(|w| w.container_memory_request);
    if let Some(qos) = memory_qos(request, c.memory.limit, None, &inputs.settings) {
        remedy.text.push_str(&format!(
            ", or set memory QoS (KEP-2570) so the kernel trims it at {}",
            mib(qos.high)
        ));
        remedy
            .set
            .push(Setting::new("memory.high", Some(c.path.clone()), qos.high));
    }
    remedy.text.push_str(
        "; or have the application read with less reuse (O_DIRECT, posix_fadvise DONTNEED).",
    );
    f.remedy = remedy;
    findings.push(f);
}

fn tmpfs(
    c: &CgroupReport,
    files: &[&memglass_kernel::filecache::CachedFile],
    findings: &mut Vec<Finding>,
) {
    let (Some(usage), Some(shmem)) = (c.memory.usage, c.memory.shmem) else {
        return;
    };
    let share = percent(shmem, usage);
    if shmem < TMPFS_MIN || share <= TMPFS_PERCENT {
        return;
    }
    let mut f = Finding::about(Kind::Tmpfs, Severity::Warning, c);
    f.summary = format!(
        "tmpfs / shared memory holds {} ({share:.0}% of its memory): it counts as page cache but cannot be reclaimed without swap.",
        mib(shmem)
    );
    f.evidence = vec![
        Evidence::bytes("shmem", shmem, "memory.stat shmem"),
        Evidence::bytes("usage", usage, "memory.current / memory.usage_in_bytes"),
        Evidence::percent("of_usage", share, "shmem / usage"),
    ];
    file_evidence(files, &mut f);
    f.remedy = Remedy {
        text: "Set a sizeLimit on emptyDir volumes with medium: Memory (or use disk-backed emptyDir), and remove files from /dev/shm and tmpfs mounts that are no longer needed.".into(),
        ..Remedy::default()
    };
    findings.push(f);
}

fn dirty(c: &CgroupReport, findings: &mut Vec<Finding>) {
    let (Some(usage), Some(dirty)) = (c.memory.usage, c.memory.file_dirty) else {
        return;
    };
    let writeback = c.memory.file_writeback.unwrap_or(0);
    let backlog = dirty.saturating_add(writeback);
    let share = percent(backlog, usage);
    if backlog < DIRTY_MIN || share <= DIRTY_PERCENT {
        return;
    }
    let mut f = Finding::about(Kind::DirtyBacklog, Severity::Warning, c);
    f.summary = format!(
        "{} of written data waits for writeback ({share:.0}% of its memory): it cannot be reclaimed until the disk takes it, and writers get throttled near the limit.",
        mib(backlog)
    );
    f.evidence = vec![
        Evidence::bytes("file_dirty", dirty, "memory.stat file_dirty / dirty"),
        Evidence::bytes(
            "file_writeback",
            writeback,
            "memory.stat file_writeback / writeback",
        ),
        Evidence::bytes("usage", usage, "memory.current / memory.usage_in_bytes"),
    ];
    f.remedy = Remedy {
        text: "Have the writer flush as it goes (fsync / sync_file_range, O_DSYNC for logs), or lower vm.dirty_background_bytes so writeback starts earlier; check the disk keeps up.".into(),
        ..Remedy::default()
    };
    findings.push(f);
}

fn deleted(
    c: &CgroupReport,
    files: &[&memglass_kernel::filecache::CachedFile],
    findings: &mut Vec<Finding>,
) {
    let gone: Vec<&&memglass_kernel::filecache::CachedFile> =
        files.iter().filter(|f| f.candidate.deleted).collect();
    let held: u64 = gone.iter().map(|f| f.cache.cached).sum();
    if held < DELETED_MIN {
        return;
    }
    let mut f = Finding::about(Kind::DeletedOpenFiles, Severity::Warning, c);
    f.summary = format!(
        "{} deleted file(s) still open hold {} of page cache (and their disk space) until the process closes them.",
        gone.len(),
        mib(held)
    );
    for file in gone.iter().take(FILES_LISTED) {
        let process = pid_of(&file.candidate.open)
            .map(|pid| format!("held open by pid {pid}"))
            .unwrap_or_else(|| "held open or mapped".into());
        f.evidence.push(Evidence::bytes(
            &format!("deleted:{}", file.candidate.container_path),
            file.cache.cached,
            format!(
                "{process} ({:?}); file size {}",
                file.candidate.found_by,
                mib(file.cache.size)
            )
            .to_lowercase(),
        ));
    }
    f.remedy = Remedy {
        text: "Restart or signal the process to reopen its files (log rotation without copytruncate leaves the old file open), or truncate the file through /proc/PID/fd.".into(),
        set: Vec::new(),
        command: Some(format!("memglass cache --cgroup {}", c.path)),
    };
    findings.push(f);
}

/// The PID in `/proc/PID/fd/N` or `/proc/PID/map_files/...`.
fn pid_of(open: &std::path::Path) -> Option<u32> {
    let mut parts = open.iter().map(|p| p.to_str().unwrap_or(""));
    while let Some(part) = parts.next() {
        if part == "proc" {
            return parts.next()?.parse().ok();
        }
    }
    None
}

fn kernel(c: &CgroupReport, findings: &mut Vec<Finding>) {
    let (Some(usage), Some(kernel)) = (c.memory.usage, c.memory.kernel) else {
        return;
    };
    let share = percent(kernel, usage);
    if kernel < KERNEL_MIN || share <= KERNEL_PERCENT {
        return;
    }
    let mut f = Finding::about(Kind::KernelMemory, Severity::Warning, c);
    f.summary = format!(
        "Kernel memory charged to it is {} ({share:.0}% of its memory): no process's RSS shows it.",
        mib(kernel)
    );
    f.evidence = vec![
        Evidence::bytes(
            "kernel",
            kernel,
            "memory.stat kernel / memory.kmem.usage_in_bytes",
        ),
        Evidence::bytes("usage", usage, "memory.current / memory.usage_in_bytes"),
    ];
    let mut parts: Vec<(&str, u64)> = [
        "slab",
        "sock",
        "pagetables",
        "kernel_stack",
        "percpu",
        "vmalloc",
    ]
    .iter()
    .filter_map(|key| Some((*key, c.stat.get(key)?)))
    .filter(|(_, v)| *v > 0)
    .collect();
    parts.sort_by_key(|(_, v)| std::cmp::Reverse(*v));
    for (key, value) in &parts {
        f.evidence
            .push(Evidence::bytes(key, *value, format!("memory.stat {key}")));
    }
    let largest = parts.first().map(|(k, _)| *k);
    f.remedy = Remedy {
        text: match largest {
            Some("sock") => "Socket buffers: look for connections whose data is not read (a slow consumer), or too many open sockets.".into(),
            Some("pagetables") => "Page tables: many processes mapping large memory; fewer processes or huge pages reduce them.".into(),
            Some("slab") => "Slab (dentries, inodes): many files created or looked up; find the directory walkers or short-lived files.".into(),
            _ => "Find what the processes ask of the kernel: open files, sockets, many threads or mappings.".into(),
        },
        ..Remedy::default()
    };
    findings.push(f);
}

/// Pod, QoS and kubepods cgroups whose usage is well above Σ their live children's (and,
/// on v1, their own pages): memory still charged to children that were removed.
fn dying(inputs: &Inputs<'_>, findings: &mut Vec<Finding>) {
    let mut children: HashMap<&str, u64> = HashMap::new();
    for c in &inputs.snapshot.cgroups {
        if let (Some(parent), Some(usage)) = (parent_path(&c.path), c.memory.usage) {
            *children.entry(parent).or_default() += usage;
        }
    }
    for c in inputs.snapshot.cgroups.iter().filter(|c| {
        matches!(
            c.kind,
            CgroupKind::Pod | CgroupKind::Qos | CgroupKind::Kubepods
        )
    }) {
        let Some(usage) = c.memory.usage else {
            continue;
        };
        let live = children.get(c.path.as_str()).copied().unwrap_or(0);
        // v1 keeps a cgroup's own pages in its local counters; v2 pod and QoS cgroups
        // have no processes of their own.
        let own = match (c.cgroup_version, c.stat.get("rss"), c.stat.get("cache")) {
            (1, Some(rss), Some(cache)) => rss.saturating_add(cache),
            _ => 0,
        };
        let residual = usage.saturating_sub(live).saturating_sub(own);
        let share = percent(residual, usage);
        if residual < DYING_MIN || share <= DYING_PERCENT {
            continue;
        }
        let mut f = Finding::about(Kind::DyingCgroups, Severity::Info, c);
        let former = match c.kind {
            CgroupKind::Pod => "containers of this pod that were removed (restarted or finished)",
            _ => "pods that were removed",
        };
        f.summary = format!(
            "{} ({share:.0}% of its usage) is still charged to {former}: mostly page cache they read, kept until reclaimed.",
            mib(residual)
        );
        f.evidence = vec![
            Evidence::bytes("usage", usage, "memory.current / memory.usage_in_bytes"),
            Evidence::bytes(
                "children_usage",
                live,
                "Σ usage of the live cgroups directly below",
            ),
            Evidence::bytes(
                "charged_to_removed",
                residual,
                "usage − Σ children − own pages",
            ),
        ];
        if own > 0 {
            f.evidence.push(Evidence::bytes(
                "own_pages",
                own,
                "memory.stat rss + cache (v1, local)",
            ));
        }
        f.remedy = Remedy {
            text: "The kernel frees it under pressure; until then it counts in this cgroup's usage (and kubelet's working set if active). Reclaim it proactively, or drop the files it caches when no longer needed.".into(),
            set: Vec::new(),
            command: Some(if c.cgroup_version == 2 && c.kind == CgroupKind::Pod {
                format!(
                    "memglass reclaim --cgroup {} --bytes {}",
                    c.path,
                    super::quantity(residual / MIB * MIB)
                )
            } else {
                "memglass pages".into()
            }),
        };
        findings.push(f);
    }
}
