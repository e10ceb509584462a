//! OOM kills explained: whose limit was hit (the scope), what filled the memory, and whose
//! pod and container the victim was (PRODUCT.md §2.3).
//!
//! - Scope: a global OOM (`CONSTRAINT_NONE`, cpuset or mempolicy) is the node; otherwise
//!   the OOM cgroup (`oom_memcg`) is identified by its path: kubepods (node allocatable),
//!   a QoS level, a pod, a container, or any other cgroup. Some kernels printed
//!   `constraint=CONSTRAINT_NONE` with an `oom_memcg` (5.2): the cgroup wins.
//! - Attribution: pod UID and container id come from the victim's cgroup path (else the
//!   OOM cgroup's), so they survive the cgroup's removal; names come from a
//!   [`Directory`] (the runtime or the API), when it still knows them.
//! - What filled it: anon, shmem (tmpfs), file (page cache) and kernel memory, from the
//!   stats the report printed for the OOM cgroup (memcg OOMs), the node's LRU counters
//!   (global OOMs), or, failing both, the victim's RSS.

use memglass_identify::{identify, CgroupKind, Directory, PathIdentity, QosClass};
use memglass_kernel::cgroup::KeyedValues;
use memglass_kernel::kmsg::oom::{Constraint, MemcgStats, OomKill};

/// Whose limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OomScope {
    /// The whole node ran out (no cgroup limit).
    Node,
    /// kubepods / kubepods.slice: the node's allocatable memory for pods.
    Kubepods,
    /// A QoS class cgroup (burstable, besteffort).
    Qos,
    /// A pod's limit.
    Pod,
    /// A container's own limit.
    Container,
    /// Any other cgroup (a systemd unit, a docker container outside Kubernetes…).
    Cgroup,
}

/// A kind of memory, for "what dominated".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// Anonymous memory (heaps, stacks), not counting shmem.
    Anon,
    /// tmpfs, emptyDir medium Memory, SysV/POSIX shared memory.
    Shmem,
    /// Page cache of regular files.
    File,
    /// Kernel memory charged to the cgroup (slab, stacks, page tables, sockets…).
    Kernel,
}

/// Where a [`Breakdown`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakdownSource {
    /// The OOM cgroup's `Memory cgroup stats for` block(s).
    MemcgStats,
    /// The node's `Node N` (or zone) LRU counters of a global OOM.
    NodeStats,
    /// Only the victim's anon/file/shmem RSS was known.
    VictimRss,
}

/// What the memory under the hit limit consisted of, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Breakdown {
    /// Where the figures came from.
    pub source: BreakdownSource,
    /// Anonymous memory (shmem excluded).
    pub anon: u64,
    /// Shared memory and tmpfs.
    pub shmem: u64,
    /// Page cache (shmem excluded).
    pub file: u64,
    /// Kernel memory, where the report says.
    pub kernel: Option<u64>,
}

impl Breakdown {
    /// All four parts.
    pub fn total(&self) -> u64 {
        self.anon
            .saturating_add(self.shmem)
            .saturating_add(self.file)
            .saturating_add(self.kernel.unwrap_or(0))
    }

    /// The largest part, when there is anything at all.
    pub fn dominant(&self) -> Option<(Component, u64)> {
        [
            (Component::Anon, self.anon),
            (Component::Shmem, self.shmem),
            (Component::File, self.file),
            (Component::Kernel, self.kernel.unwrap_or(0)),
        ]
        .into_iter()
        .filter(|&(_, bytes)| bytes > 0)
        .max_by_key(|&(_, bytes)| bytes)
    }
}

/// The counter the report showed at (or nearest to) its limit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LimitHit {
    /// `memory`, `memory+swap` or `swap`.
    pub counter: String,
    /// Usage, bytes.
    pub usage: u64,
    /// Limit, bytes.
    pub limit: u64,
}

/// One OOM kill, explained.
#[derive(Debug, Clone, PartialEq)]
pub struct OomReport {
    /// The kill as the kernel reported it.
    pub kill: OomKill,
    /// Whose limit was hit.
    pub scope: OomScope,
    /// The OOM cgroup's identity (memcg OOMs).
    pub oom_identity: Option<PathIdentity>,
    /// The victim cgroup's identity.
    pub task_identity: Option<PathIdentity>,
    /// The victim's pod, from its cgroup path.
    pub pod_uid: Option<String>,
    /// The victim's container, from its cgroup path.
    pub container_id: Option<String>,
    /// The pod's QoS class, from the path.
    pub qos_class: Option<QosClass>,
    /// Namespace, when the runtime or the API still knows the pod.
    pub namespace: Option<String>,
    /// Pod name, likewise.
    pub pod: Option<String>,
    /// Container name, likewise.
    pub container: Option<String>,
    /// The limit that was hit, as printed.
    pub limit_hit: Option<LimitHit>,
    /// What filled it.
    pub breakdown: Option<Breakdown>,
    /// The largest part of the breakdown.
    pub dominant: Option<Component>,
}

/// Explain one kill; names come from `directory` (empty when no runtime or API answered).
pub fn explain_oom(kill: OomKill, directory: &Directory) -> OomReport {
    let oom_identity = kill.oom_memcg.as_deref().map(identify);
    let task_identity = kill.task_memcg.as_deref().map(identify);
    let scope = scope(&kill, oom_identity.as_ref());
    // The victim's own cgroup is the most specific; the OOM cgroup may be a pod or higher.
    let attributed = task_identity
        .as_ref()
        .filter(|id| id.pod_uid.is_some() || id.container_id.is_some())
        .or(oom_identity.as_ref());
    let (pod_uid, container_id, qos_class) = attributed.map_or((None, None, None), |id| {
        (id.pod_uid.clone(), id.container_id.clone(), id.qos_class)
    });
    let resolved = attributed
        .map(|id| directory.resolve(id))
        .unwrap_or_default();
    let breakdown = breakdown(&kill, scope);
    OomReport {
        scope,
        limit_hit: limit_hit(&kill),
        dominant: breakdown.and_then(|b| b.dominant()).map(|(c, _)| c),
        breakdown,
        namespace: resolved
            .pod
            .map(|p| p.namespace.clone())
            .filter(|s| !s.is_empty()),
        pod: resolved
            .pod
            .map(|p| p.name.clone())
            .filter(|s| !s.is_empty()),
        container: resolved
            .container
            .filter(|c| !c.sandbox)
            .map(|c| c.name.clone())
            .filter(|s| !s.is_empty()),
        qos_class: qos_class.or(resolved.pod.and_then(|p| p.qos_class)),
        pod_uid,
        container_id,
        oom_identity,
        task_identity,
        kill,
    }
}

fn scope(kill: &OomKill, oom_identity: Option<&PathIdentity>) -> OomScope {
    let global = matches!(
        kill.constraint,
        Some(Constraint::None | Constraint::Cpuset | Constraint::MemoryPolicy)
    );
    match oom_identity.map(|id| id.kind) {
        None if global || kill.constraint.is_none() => OomScope::Node,
        None => OomScope::Cgroup,
        Some(CgroupKind::Root) => OomScope::Node,
        Some(CgroupKind::Kubepods) => OomScope::Kubepods,
        Some(CgroupKind::Qos) => OomScope::Qos,
        Some(CgroupKind::Pod) => OomScope::Pod,
        Some(CgroupKind::Container) => OomScope::Container,
        Some(_) => OomScope::Cgroup,
    }
}

/// The `memory` counter, unless a `memory+swap` or `swap` one was the one at its limit.
fn limit_hit(kill: &OomKill) -> Option<LimitHit> {
    let hit = |name: &str| {
        let counter = kill.counters.iter().find(|c| c.name == name)?;
        Some(LimitHit {
            counter: counter.name.clone(),
            usage: counter.usage,
            limit: counter.limit.bytes()?,
        })
    };
    let at_limit = |h: &LimitHit| h.limit > 0 && h.usage.saturating_add(64 << 10) >= h.limit;
    let memory = hit("memory");
    if memory.as_ref().is_some_and(at_limit) {
        return memory;
    }
    hit("memory+swap").filter(at_limit).or(memory)
}

fn breakdown(kill: &OomKill, scope: OomScope) -> Option<Breakdown> {
    let from_stats = (scope != OomScope::Node)
        .then(|| memcg_breakdown(kill))
        .flatten();
    from_stats
        .or_else(|| kill.node_stats.as_ref().map(node_breakdown))
        .or_else(|| {
            let v = &kill.victim;
            (v.anon_rss.is_some() || v.file_rss.is_some()).then(|| Breakdown {
                source: BreakdownSource::VictimRss,
                anon: v.anon_rss.unwrap_or(0),
                shmem: v.shmem_rss.unwrap_or(0),
                file: v.file_rss.unwrap_or(0),
                kernel: None,
            })
        })
}

/// v2 keys (`anon`, `file`, `shmem`, `kernel` or its parts), v1 hierarchical keys
/// (`total_rss`, `total_cache`, `total_shmem`), or the old one-line local stats summed
/// over the OOM cgroup's subtree. v1 kernel memory is the `kmem:` counter.
fn memcg_breakdown(kill: &OomKill) -> Option<Breakdown> {
    let kmem = kill
        .counters
        .iter()
        .find(|c| c.name == "kmem")
        .map(|c| c.usage);
    let block = kill
        .memcg_stats
        .iter()
        .find(|s| Some(&s.path) == kill.oom_memcg.as_ref() && !s.local)
        .or_else(|| kill.memcg_stats.iter().find(|s| !s.local));
    if let Some(MemcgStats { stat, .. }) = block {
        if stat.get("anon").is_some() {
            let shmem = stat.get("shmem").unwrap_or(0);
            let kernel = stat.get("kernel").or_else(|| {
                stat.sum(&[
                    "kernel_stack",
                    "pagetables",
                    "sec_pagetables",
                    "percpu",
                    "sock",
                    "vmalloc",
                ])
                .map(|parts| parts.saturating_add(slab(stat)))
            });
            return Some(Breakdown {
                source: BreakdownSource::MemcgStats,
                anon: stat.get("anon").unwrap_or(0),
                shmem,
                file: stat.get("file").unwrap_or(0).saturating_sub(shmem),
                kernel,
            });
        }
        if stat.get("total_rss").is_some() {
            return Some(v1_breakdown(stat, "total_", kmem));
        }
    }
    let local: Vec<&KeyedValues> = kill
        .memcg_stats
        .iter()
        .filter(|s| s.local)
        .map(|s| &s.stat)
        .collect();
    if local.is_empty() {
        return None;
    }
    let sum = |key: &str| {
        local
            .iter()
            .filter_map(|s| s.get(key))
            .fold(0u64, u64::saturating_add)
    };
    let total = KeyedValues::from_entries([
        ("rss", sum("rss")),
        ("cache", sum("cache")),
        ("shmem", sum("shmem")),
    ]);
    Some(v1_breakdown(&total, "", kmem))
}

fn slab(stat: &KeyedValues) -> u64 {
    stat.sum(&["slab_reclaimable", "slab_unreclaimable"])
        .or_else(|| stat.get("slab"))
        .unwrap_or(0)
}

/// v1 keys: rss excludes shmem; cache includes it.
fn v1_breakdown(stat: &KeyedValues, prefix: &str, kmem: Option<u64>) -> Breakdown {
    let get = |key: &str| stat.get(&format!("{prefix}{key}")).unwrap_or(0);
    let shmem = get("shmem");
    Breakdown {
        source: BreakdownSource::MemcgStats,
        anon: get("rss"),
        shmem,
        file: get("cache").saturating_sub(shmem),
        kernel: kmem,
    }
}

/// The node's LRU lists: shmem is on the anon lists, so it is taken out of anon.
fn node_breakdown(stat: &KeyedValues) -> Breakdown {
    let get = |key: &str| stat.get(key).unwrap_or(0);
    let shmem = get("shmem");
    let kernel = stat.sum(&[
        "slab_reclaimable",
        "slab_unreclaimable",
        "kernel_stack",
        "pagetables",
    ]);
    Breakdown {
        source: BreakdownSource::NodeStats,
        anon: get("active_anon")
            .saturating_add(get("inactive_anon"))
            .saturating_sub(shmem),
        shmem,
        file: get("active_file").saturating_add(get("inactive_file")),
        kernel,
    }
}

mod counters;
#[cfg(test)]
mod tests;

pub use counters::{
    check_counters, count_kills, report_accounts_for, report_fit, CgroupCounter, CgroupKills,
    CountedKill, CountedVictim, CounterCheck, KillBaseline,
};
