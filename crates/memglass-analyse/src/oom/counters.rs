//! Kill counters next to the kernel log: /proc/vmstat `oom_kill` counts every kill since
//! boot, each cgroup's `memory.events(.local)` / `memory.oom_control` counts its own, so kills
//! whose report the ring buffer overwrote (or that a log lost) are still counted.

use crate::oom::OomReport;

/// Kills the counters know of and the log does not have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CounterCheck {
    /// /proc/vmstat oom_kill: every OOM kill since boot.
    pub node_oom_kill: Option<u64>,
    /// Kill events this boot's kernel log still holds.
    pub log_events: usize,
    /// Per cgroup with kills counted.
    pub cgroups: Vec<CgroupCounter>,
}

/// One cgroup's kill counter next to the log's events for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CgroupCounter {
    /// The cgroup.
    pub path: String,
    /// Kills of tasks in this cgroup (v2 memory.events.local, v1 memory.oom_control
    /// oom_kill); the hierarchical counter where no local one exists.
    pub oom_kill: u64,
    /// Whether `oom_kill` counts descendants too.
    pub hierarchical: bool,
    /// Times this cgroup hit its limit and invoked the killer (v2 `oom`).
    pub oom: Option<u64>,
    /// Log events whose victim was in this cgroup (or below, when hierarchical).
    pub log_events: usize,
}

impl CounterCheck {
    /// Kills counted node-wide that the log does not show.
    pub fn missing_from_log(&self) -> u64 {
        self.node_oom_kill
            .map_or(0, |n| n.saturating_sub(self.log_events as u64))
    }
}

/// One cgroup's kill counters, as a snapshot read them (`None` where the kernel has no such
/// counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupKills<'a> {
    /// The cgroup.
    pub path: &'a str,
    /// Hierarchical kills (v2 memory.events; v1 summed up the tree by the snapshot).
    pub oom_kill: Option<u64>,
    /// Kills of this cgroup's own tasks (v2 memory.events.local, v1 memory.oom_control).
    pub oom_kill_local: Option<u64>,
    /// Times the cgroup hit its limit and invoked the killer (v2 `oom`).
    pub oom: Option<u64>,
}

/// Compare the kernel's kill counters with the kills found in this boot's log.
pub fn check_counters<'a>(
    reports: &[OomReport],
    node_oom_kill: Option<u64>,
    cgroups: impl IntoIterator<Item = CgroupKills<'a>>,
) -> CounterCheck {
    let victims = |path: &str, below: bool| {
        reports
            .iter()
            .flat_map(|r| {
                std::iter::repeat_n(r.kill.task_memcg.as_deref(), 1 + r.kill.group_kills.len())
            })
            .flatten()
            .filter(|memcg| *memcg == path || (below && is_below(memcg, path)))
            .count()
    };
    let rows = cgroups
        .into_iter()
        .filter(|c| c.path != "/")
        .filter_map(|c| {
            let (oom_kill, hierarchical) = match c.oom_kill_local {
                Some(local) => (local, false),
                None => (c.oom_kill?, true),
            };
            (oom_kill > 0).then(|| CgroupCounter {
                path: c.path.to_owned(),
                oom_kill,
                hierarchical,
                oom: c.oom,
                log_events: victims(c.path, hierarchical),
            })
        })
        .collect();
    CounterCheck {
        node_oom_kill,
        log_events: reports.iter().map(|r| 1 + r.kill.group_kills.len()).sum(),
        cgroups: rows,
    }
}

pub(super) fn is_below(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('/'))
}
