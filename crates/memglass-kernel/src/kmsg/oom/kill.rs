//! What one OOM kill's report said: the event [`OomKill`] and its parts. Sizes in bytes
//! unless a field says pages.

use crate::cgroup::{KeyedValues, Limit};
use crate::kmsg::LogTime;

/// The kernel's `constraint=` (`enum oom_constraint`): what limited the allocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Constraint {
    /// The whole machine (a global OOM).
    #[serde(rename = "CONSTRAINT_NONE")]
    None,
    /// A cpuset's memory nodes.
    #[serde(rename = "CONSTRAINT_CPUSET")]
    Cpuset,
    /// A NUMA memory policy.
    #[serde(rename = "CONSTRAINT_MEMORY_POLICY")]
    MemoryPolicy,
    /// A memory cgroup's limit.
    #[serde(rename = "CONSTRAINT_MEMCG")]
    Memcg,
    /// A value this parser does not know, as printed.
    #[serde(untagged)]
    Other(String),
}

impl Constraint {
    pub(crate) fn parse(text: &str) -> Constraint {
        match text {
            "CONSTRAINT_NONE" => Constraint::None,
            "CONSTRAINT_CPUSET" => Constraint::Cpuset,
            "CONSTRAINT_MEMORY_POLICY" => Constraint::MemoryPolicy,
            "CONSTRAINT_MEMCG" => Constraint::Memcg,
            other => Constraint::Other(other.to_owned()),
        }
    }

    /// The kernel's spelling (`CONSTRAINT_MEMCG`).
    pub fn as_str(&self) -> &str {
        match self {
            Constraint::None => "CONSTRAINT_NONE",
            Constraint::Cpuset => "CONSTRAINT_CPUSET",
            Constraint::MemoryPolicy => "CONSTRAINT_MEMORY_POLICY",
            Constraint::Memcg => "CONSTRAINT_MEMCG",
            Constraint::Other(text) => text,
        }
    }
}

/// The task whose allocation invoked the OOM killer (not necessarily the victim).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trigger {
    /// Its command name.
    pub comm: String,
    /// Its PID (from the `CPU: … PID:` line of the stack dump).
    pub pid: Option<u32>,
    /// The allocation's flags as printed (`0xcc0(GFP_KERNEL)`).
    pub gfp_mask: Option<String>,
    /// log2 of the number of pages asked for.
    pub order: Option<u32>,
    /// Its oom_score_adj.
    pub oom_score_adj: Option<i32>,
}

/// A killed process. Sizes in bytes (the kernel prints kB).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Victim {
    /// PID.
    pub pid: u32,
    /// Command name.
    pub comm: Option<String>,
    /// Owner's UID.
    pub uid: Option<u32>,
    /// Virtual size.
    pub total_vm: Option<u64>,
    /// Resident anonymous memory.
    pub anon_rss: Option<u64>,
    /// Resident file-backed memory.
    pub file_rss: Option<u64>,
    /// Resident shared memory (tmpfs, SysV/POSIX shm) (4.5+).
    pub shmem_rss: Option<u64>,
    /// Page tables (5.3+).
    pub pgtables: Option<u64>,
    /// oom_score_adj (5.4+).
    pub oom_score_adj: Option<i32>,
}

/// The task the killer chose, as printed before 5.0 (`Kill process … score …`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Selected {
    /// PID.
    pub pid: u32,
    /// Command name.
    pub comm: Option<String>,
    /// Its badness score.
    pub score: Option<u64>,
}

/// A `memory:`, `memory+swap:`, `kmem:` or `swap:` line of a memcg OOM report: the OOM
/// cgroup's counter at the time. Bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageCounter {
    /// `memory`, `memory+swap`, `kmem` or `swap`.
    pub name: String,
    /// Usage.
    pub usage: u64,
    /// Limit (the kernel prints "none" as a huge number).
    pub limit: Limit,
    /// Times usage hit the limit.
    pub failcnt: u64,
}

/// One `Memory cgroup stats for PATH` block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemcgStats {
    /// The cgroup.
    pub path: String,
    /// Whether the values are the cgroup's alone (before 5.3: one line per cgroup of the
    /// subtree, `KB` → bytes) or its memory.stat (5.3+: hierarchical, bytes and counts).
    pub local: bool,
    /// The values, keys as printed.
    pub stat: KeyedValues,
}

/// One row of the task table. Memory columns are in pages, as printed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskRow {
    /// PID.
    pub pid: u32,
    /// UID.
    pub uid: Option<u32>,
    /// Thread group id.
    pub tgid: Option<u32>,
    /// Virtual size, pages.
    pub total_vm_pages: Option<u64>,
    /// Resident set, pages.
    pub rss_pages: Option<u64>,
    /// Resident anonymous pages (6.8+).
    pub rss_anon_pages: Option<u64>,
    /// Resident file pages (6.8+).
    pub rss_file_pages: Option<u64>,
    /// Resident shmem pages (6.8+).
    pub rss_shmem_pages: Option<u64>,
    /// Page tables, bytes (4.15+).
    pub pgtables_bytes: Option<u64>,
    /// Swap entries, pages.
    pub swapents_pages: Option<u64>,
    /// oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// Command name.
    pub name: String,
}

/// What the OOM reaper left of the victim. Bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reaped {
    /// Anonymous memory still resident.
    pub anon_rss: Option<u64>,
    /// File memory still resident.
    pub file_rss: Option<u64>,
    /// Shared memory still resident.
    pub shmem_rss: Option<u64>,
}

/// One OOM kill, as its report told it. Optional fields are what this kernel's report (or
/// what survived of it) did not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomKill {
    /// When the victim was killed (the kill line; else the report's last line).
    pub time: LogTime,
    /// `/dev/kmsg` sequence number of that line.
    pub seq: Option<u64>,
    /// Who invoked the killer.
    pub trigger: Option<Trigger>,
    /// The constraint: printed (4.19+) or, before, inferred from the report's wording.
    pub constraint: Option<Constraint>,
    /// True when the kernel printed `constraint=` itself.
    pub constraint_printed: bool,
    /// `nodemask=`, as printed.
    pub nodemask: Option<String>,
    /// The trigger's cpuset.
    pub cpuset: Option<String>,
    /// `mems_allowed=`, as printed.
    pub mems_allowed: Option<String>,
    /// The summary said `global_oom`.
    pub global_oom: bool,
    /// The cgroup whose limit was hit (`oom_memcg=`, `… limit of Y`, or the first stats
    /// block, which every kernel prints for the OOM cgroup first).
    pub oom_memcg: Option<String>,
    /// The victim's cgroup (`task_memcg=`, `Task in X …`).
    pub task_memcg: Option<String>,
    /// The killed process.
    pub victim: Victim,
    /// The task the killer chose, when printed (before 5.0; may differ from the victim).
    pub selected: Option<Selected>,
    /// The cgroup killed as a whole (`memory.oom.group`).
    pub oom_group: Option<String>,
    /// The other processes killed with it (oom.group).
    pub group_kills: Vec<Victim>,
    /// The kill line's message (`Memory cgroup out of memory`, `Out of memory`).
    pub message: Option<String>,
    /// The OOM cgroup's counters.
    pub counters: Vec<UsageCounter>,
    /// The stats dump(s).
    pub memcg_stats: Vec<MemcgStats>,
    /// Global OOMs: the `Mem-Info:` counters, in pages.
    pub mem_info_pages: Option<KeyedValues>,
    /// Global OOMs: the `Node N active_anon:…kB` lines summed over nodes (4.8+; before,
    /// the zone lines summed over zones), bytes.
    pub node_stats: Option<KeyedValues>,
    /// The task table.
    pub tasks: Vec<TaskRow>,
    /// The OOM reaper's line about the victim.
    pub reaped: Option<Reaped>,
}

impl OomKill {
    /// The kill as an agent sees it whose root is the cgroup `subtree` (a kernel path such
    /// as `/memglass-1/node-a`; `--cgroup-root` on a live subtree, which works as a node of
    /// its own): cgroup paths made relative to it, a limit above it becomes `/` (for that
    /// node, a limit above its root is the node's). None when the victim's cgroup is not
    /// inside it, or not known: that kill is not this node's.
    pub fn within(mut self, subtree: &str) -> Option<OomKill> {
        let inside = |path: &str| -> Option<String> {
            let root = subtree.trim_end_matches('/');
            if root.is_empty() {
                return Some(path.to_owned());
            }
            match path.strip_prefix(root) {
                Some("") => Some("/".to_owned()),
                Some(rest) if rest.starts_with('/') => Some(rest.to_owned()),
                _ => None,
            }
        };
        let or_root = |path: &str| inside(path).unwrap_or_else(|| "/".to_owned());
        self.task_memcg = Some(inside(self.task_memcg.as_deref()?)?);
        self.oom_memcg = self.oom_memcg.as_deref().map(or_root);
        self.oom_group = self.oom_group.as_deref().and_then(inside);
        for stats in &mut self.memcg_stats {
            stats.path = or_root(&stats.path);
        }
        Some(self)
    }
}
