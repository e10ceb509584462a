//! Kill counters next to the kernel log: /proc/vmstat `oom_kill` counts every kill since
//! boot, each cgroup's `memory.events(.local)` / `memory.oom_control` counts its own, so kills
//! whose report the ring buffer overwrote (or that a log lost) are still counted.
//!
//! Two comparisons live here, for whoever calls them (the CLI, the agent):
//! - [`check_counters`]: the counters since boot next to the kills one log holds;
//! - [`count_kills`]: two snapshots' counters → the kills between them, per victim cgroup,
//!   with the cgroup whose limit was hit, kills of descendants that vanished meanwhile and
//!   kills outside every cgroup still present; [`report_fit`] says how well a kernel report
//!   fits one of those.
//!
//! Counters say *that* and *where* a kill happened, within one interval: v2's
//! `memory.events.local` (and v1's own `oom_control`) name the victim's cgroup, a local
//! `oom` (v2) or `failcnt` (v1) increase names whose limit was hit, and the node's
//! `vmstat oom_kill` catches kills outside any cgroup still present.

use std::collections::HashMap;

use crate::oom::OomReport;
use crate::{CgroupReport, Snapshot};

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

/// The counters of one cgroup that [`count_kills`] compares between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KillCounters {
    /// Kills of this cgroup's own tasks (v2 memory.events.local, v1 oom_control).
    kills_local: u64,
    /// Kills in its subtree (v2 memory.events; v1: the same as local).
    kills_tree: u64,
    /// Times its own limit invoked the killer (v2 local `oom`).
    ooms_local: u64,
    /// Times its own limit was hit (v1 `failcnt`).
    failcnt: u64,
}

impl KillCounters {
    fn of(c: &CgroupReport) -> KillCounters {
        let local = c.events_local.unwrap_or(c.events);
        KillCounters {
            kills_local: local.oom_kill.unwrap_or(0),
            kills_tree: c.events.oom_kill.unwrap_or(0),
            ooms_local: local.oom.unwrap_or(0),
            failcnt: local.failcnt.unwrap_or(0),
        }
    }
}

/// The kill counters of one snapshot, kept to compare the next one with (only cgroups
/// with a counter above zero: a missing cgroup counts zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KillBaseline {
    cgroups: HashMap<String, KillCounters>,
    node: u64,
}

impl KillBaseline {
    /// The counters of `snapshot`.
    pub fn of(snapshot: &Snapshot) -> KillBaseline {
        KillBaseline {
            cgroups: snapshot
                .cgroups
                .iter()
                .map(|c| (c.path.clone(), KillCounters::of(c)))
                .filter(|(_, counters)| *counters != KillCounters::default())
                .collect(),
            node: snapshot.node.oom_kill.unwrap_or(0),
        }
    }

    fn get(&self, path: &str) -> KillCounters {
        self.cgroups.get(path).copied().unwrap_or_default()
    }
}

/// Whose kills a [`CountedKill`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CountedVictim {
    /// Tasks of the cgroup itself.
    Own,
    /// Tasks of a descendant that vanished before the second snapshot (v2: counted in
    /// the subtree by no cgroup still present).
    VanishedDescendant,
    /// Counted by /proc/vmstat oom_kill only: the victim was outside every memory cgroup
    /// still present (`cgroup` is `None`).
    OutsideCgroups,
}

/// Kills the counters show between two snapshots, for one victim cgroup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CountedKill {
    /// The victim's cgroup ([`CountedVictim::Own`]), the nearest ancestor still present
    /// ([`CountedVictim::VanishedDescendant`]), or `None` ([`CountedVictim::OutsideCgroups`]).
    pub cgroup: Option<String>,
    /// Which of the three.
    pub victim: CountedVictim,
    /// Processes killed.
    pub kills: u64,
    /// The deepest cgroup from the victim up whose limit-hit counter (v2 `oom`, v1
    /// `failcnt`) went up and that has a limit: whose limit was hit, when the counters tell.
    pub oom_memcg: Option<String>,
    /// memory.peak (v2) or max_usage_in_bytes (v1) of the limit-hit cgroup (else of the
    /// victim's) in the second snapshot.
    pub peak: Option<u64>,
}

/// The kills between `previous` and `now`, per victim cgroup (the root's own kills and
/// the node's are [`CountedVictim::OutsideCgroups`] together). A cgroup that appeared
/// since `previous` counts from zero; a counter that went down counts nothing.
pub fn count_kills(previous: &KillBaseline, now: &Snapshot) -> Vec<CountedKill> {
    let current: HashMap<&str, KillCounters> = now
        .cgroups
        .iter()
        .map(|c| (c.path.as_str(), KillCounters::of(c)))
        .collect();
    let delta = |path: &str, f: fn(&KillCounters) -> u64| {
        let now = current.get(path).map_or(0, f);
        now.saturating_sub(f(&previous.get(path)))
    };
    let mut children_kills: HashMap<&str, u64> = HashMap::new();
    for cgroup in &now.cgroups {
        if let Some(parent) = parent(&cgroup.path) {
            *children_kills.entry(parent).or_default() += delta(&cgroup.path, |c| c.kills_tree);
        }
    }
    let mut kills = Vec::new();
    for cgroup in &now.cgroups {
        let own = delta(&cgroup.path, |c| c.kills_local);
        let children = children_kills
            .get(cgroup.path.as_str())
            .copied()
            .unwrap_or(0);
        // v2: kills counted in this subtree but by no cgroup still present.
        let vanished = delta(&cgroup.path, |c| c.kills_tree)
            .saturating_sub(children)
            .saturating_sub(own);
        for (n, victim) in [
            (own, CountedVictim::Own),
            (vanished, CountedVictim::VanishedDescendant),
        ] {
            if n > 0 && !cgroup.is_root() {
                let hit = limit_hit(now, &cgroup.path, |p| {
                    delta(p, |c| c.ooms_local) + delta(p, |c| c.failcnt)
                });
                let subject = hit.as_deref().unwrap_or(&cgroup.path);
                let peak = now
                    .cgroups
                    .iter()
                    .find(|c| c.path == subject)
                    .and_then(|c| c.memory.peak);
                kills.push(CountedKill {
                    cgroup: Some(cgroup.path.clone()),
                    victim,
                    kills: n,
                    oom_memcg: hit,
                    peak,
                });
            }
        }
    }
    let accounted: u64 = kills.iter().map(|k| k.kills).sum();
    let outside = now
        .node
        .oom_kill
        .unwrap_or(0)
        .saturating_sub(previous.node)
        .saturating_sub(accounted);
    if outside > 0 {
        kills.push(CountedKill {
            cgroup: None,
            victim: CountedVictim::OutsideCgroups,
            kills: outside,
            oom_memcg: None,
            peak: None,
        });
    }
    kills
}

/// How well a kernel report of a kill in `task_memcg` fits `kill` (lower is closer): the
/// victim's own cgroup, else the nearest ancestor whose vanished descendants were counted,
/// else the kills outside every cgroup (also for a report without a cgroup). `None`: it is
/// not one of these kills, or none is left (`kills` 0).
pub fn report_fit(task_memcg: Option<&str>, kill: &CountedKill) -> Option<usize> {
    if kill.kills == 0 {
        return None;
    }
    match (kill.victim, kill.cgroup.as_deref(), task_memcg) {
        (CountedVictim::Own, Some(path), Some(task)) if path == task => Some(0),
        (CountedVictim::VanishedDescendant, Some(path), Some(task))
            if path == "/" || is_below(task, path) =>
        {
            // The nearer the ancestor, the better.
            Some(usize::MAX / 2 - path.len())
        }
        (CountedVictim::OutsideCgroups, _, _) => Some(usize::MAX - 1),
        _ => None,
    }
}

/// Which of `counted` a kernel report of a kill in `task_memcg` is, by [`report_fit`] (the
/// first of equals). `None`: the counters have not (yet) counted it.
pub fn report_accounts_for<'a>(
    task_memcg: Option<&str>,
    counted: impl IntoIterator<Item = &'a CountedKill>,
) -> Option<usize> {
    counted
        .into_iter()
        .enumerate()
        .filter_map(|(index, kill)| Some((report_fit(task_memcg, kill)?, index)))
        .min()
        .map(|(_, index)| index)
}

/// The deepest cgroup from `victim` up whose limit-hit counters went up, if any.
fn limit_hit(now: &Snapshot, victim: &str, increased: impl Fn(&str) -> u64) -> Option<String> {
    let mut path = Some(victim);
    while let Some(p) = path {
        let limited = now
            .cgroups
            .iter()
            .any(|c| c.path == p && c.memory.limit.is_some());
        if limited && increased(p) > 0 {
            return Some(p.to_owned());
        }
        path = parent(p);
    }
    None
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/"),
        Some(at) => Some(&path[..at]),
        None => None,
    }
}

pub(super) fn is_below(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod kill_tests {
    use super::*;

    fn counted(cgroup: Option<&str>, victim: CountedVictim, kills: u64) -> CountedKill {
        CountedKill {
            cgroup: cgroup.map(str::to_owned),
            victim,
            kills,
            oom_memcg: None,
            peak: None,
        }
    }

    #[test]
    fn a_report_is_the_victims_own_kill_else_a_vanished_descendants_else_the_nodes() {
        let kills = [
            counted(None, CountedVictim::OutsideCgroups, 1),
            counted(Some("/a"), CountedVictim::VanishedDescendant, 1),
            counted(Some("/a/b"), CountedVictim::VanishedDescendant, 1),
            counted(Some("/a/b/c"), CountedVictim::Own, 1),
            counted(Some("/z"), CountedVictim::Own, 0),
        ];
        let which = |task: Option<&str>| report_accounts_for(task, &kills);
        assert_eq!(which(Some("/a/b/c")), Some(3));
        assert_eq!(which(Some("/a/b/gone")), Some(2), "the nearest ancestor");
        assert_eq!(which(Some("/a/gone")), Some(1));
        assert_eq!(which(Some("/ab")), Some(0), "/ab is not below /a");
        assert_eq!(which(None), Some(0));
        assert_eq!(which(Some("/z")), Some(0), "no kill left in /z");
        assert_eq!(report_accounts_for(Some("/z"), &kills[3..]), None);
    }
}
