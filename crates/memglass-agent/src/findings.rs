//! The agent's findings: `memglass diagnose`'s rules (memglass_analyse::diagnose) run once
//! per collection, served as `/api/v1/findings` and `memglass_finding`.
//!
//! What the agent adds to a snapshot: the OOM kills of the last hour from its store (a
//! kill's finding holds for an hour), the files the last file-cache measurement found, and
//! an hour of working-set history of every pod and container with a limit (for leaks),
//! read again at most once a minute.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use memglass_analyse::diagnose::{self, Finding, History, Inputs, RecentKill, Settings};
use memglass_identify::{CgroupKind, Directory};

use crate::oom::{OomEvent, OomSource};
use crate::shared::Report;
use crate::store::Store;

/// How long a kill stays a finding.
pub const KILL_WINDOW: Duration = Duration::from_secs(3600);
/// How much history a leak is judged on.
pub const LEAK_WINDOW: Duration = Duration::from_secs(3600);
/// At most this many kills are looked at.
const MAX_KILLS: u32 = 500;

/// The working-set histories the leak rule reads, refreshed at most every `every`.
#[derive(Debug)]
pub struct LeakWatch {
    every: Duration,
    last: Option<Instant>,
    histories: Vec<History>,
}

impl LeakWatch {
    /// Read the history again at most once a minute (every ten collections when that is
    /// sooner, every collection when the interval is longer).
    pub fn new(interval: Duration) -> LeakWatch {
        LeakWatch {
            every: (interval * 10).min(Duration::from_secs(60)).max(interval),
            last: None,
            histories: Vec::new(),
        }
    }

    fn refresh(&mut self, store: &Store, report: &Report) {
        if self.last.is_some_and(|at| at.elapsed() < self.every) {
            return;
        }
        self.last = Some(Instant::now());
        let limited: HashSet<&str> = report
            .snapshot
            .cgroups
            .iter()
            .filter(|c| matches!(c.kind, CgroupKind::Pod | CgroupKind::Container))
            .filter(|c| c.memory.limit.is_some())
            .map(|c| c.path.as_str())
            .collect();
        let to = report.unix_seconds();
        let from = to - LEAK_WINDOW.as_secs() as i64;
        self.histories = store.working_sets(&limited, from, to).unwrap_or_default();
    }
}

/// The findings for `report`, named by `directory`.
pub fn compute(
    report: &Report,
    directory: &Directory,
    store: &Store,
    holders: &[memglass_analyse::filecache::CacheHolder],
    leaks: &mut LeakWatch,
    settings: Settings,
) -> Vec<Finding> {
    let now = report.unix_seconds();
    leaks.refresh(store, report);
    let kills: Vec<RecentKill> = store
        .oom_events(now - KILL_WINDOW.as_secs() as i64, now, MAX_KILLS)
        .unwrap_or_default()
        .iter()
        .flat_map(|event| {
            std::iter::repeat_n(recent_kill(event), event.kills.clamp(1, 100) as usize)
        })
        .collect();
    diagnose::diagnose(&Inputs {
        snapshot: &report.snapshot,
        directory,
        eviction: &report.eviction,
        sizing: &report.sizing,
        kills: &kills,
        cache_holders: holders,
        histories: &leaks.histories,
        settings: Settings { now, ..settings },
    })
}

/// A stored OOM event as the rules read a kill.
pub fn recent_kill(event: &OomEvent) -> RecentKill {
    RecentKill {
        time: Some(event.time),
        cgroup: event.cgroup.clone(),
        oom_memcg: event.oom_memcg.clone(),
        scope: event.scope.clone(),
        namespace: event.namespace.clone(),
        pod: event.pod.clone(),
        container: event.container.clone(),
        pod_uid: event.pod_uid.clone(),
        comm: event.comm.clone(),
        anon_rss: event.anon_rss,
        cause: event.cause.clone(),
        limit: event.limit,
        usage: event.peak,
        from_counter: event.source != OomSource::KernelLog,
    }
}
