//! OOM kills as events: from the kernel log when the binary provides it ([`KernelOom`]),
//! otherwise from the cgroup and node counters ([`CounterWatch`]).
//!
//! Counters say *that* and *where* a kill happened, within one interval (the comparison is
//! memglass-analyse's `oom::count_kills`, shared with the CLI's). The kernel log adds
//! the process, the constraint and its RSS at the kill; when it is followed, its reports
//! are the events and the counters only add the kills whose report was lost (a ring-buffer
//! overrun), so every kill is counted once.

use memglass_analyse::oom::{count_kills, report_fit, CountedKill, CountedVictim, KillBaseline};
use memglass_analyse::{CgroupReport, Snapshot};
use memglass_identify::CgroupKind;

use crate::store::HistoryPoint;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OomSource {
    /// A kernel OOM report (`/dev/kmsg`).
    KernelLog,
    /// A cgroup's oom_kill counter went up.
    CgroupCounters,
    /// /proc/vmstat oom_kill went up with no cgroup to account for it.
    NodeCounter,
}

/// One OOM kill (or several in one interval, from counters), as stored and served.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OomEvent {
    /// Database id (null until stored).
    #[serde(default)]
    pub id: Option<i64>,
    /// Unix seconds (for counters: the collection that saw it).
    pub time: i64,
    /// The same, RFC 3339.
    pub time_rfc3339: String,
    /// Where the event came from.
    pub source: OomSource,
    /// Processes killed (1 for a kernel report).
    pub kills: u64,
    /// The victim's cgroup (the kernel's task_memcg); null when unknown.
    pub cgroup: Option<String>,
    /// The cgroup whose limit was hit (oom_memcg); null when unknown or a node OOM.
    pub oom_memcg: Option<String>,
    /// node, kubepods, qos, pod, container, cgroup or unknown (PRODUCT.md §2.3).
    pub scope: String,
    /// CONSTRAINT_MEMCG / CONSTRAINT_NONE (kernel log only).
    pub constraint: Option<String>,
    /// Victim's namespace.
    pub namespace: Option<String>,
    /// Victim's pod.
    pub pod: Option<String>,
    /// Victim's container.
    pub container: Option<String>,
    /// Victim's pod UID.
    pub pod_uid: Option<String>,
    /// Victim's container id.
    pub container_id: Option<String>,
    /// Killed process (kernel log only).
    pub pid: Option<u32>,
    /// Killed process name (kernel log only).
    pub comm: Option<String>,
    /// Its anonymous RSS at the kill (kernel log only).
    pub anon_rss: Option<u64>,
    /// Its file RSS at the kill (kernel log only).
    pub file_rss: Option<u64>,
    /// Its shmem RSS at the kill (kernel log only).
    pub shmem_rss: Option<u64>,
    /// The limit that was hit, at the last sample before the kill.
    pub limit: Option<u64>,
    /// The highest usage of the cgroup whose limit was hit: as the kernel printed it at
    /// the kill (kernel log), else its memory.peak (v2) or max_usage_in_bytes (v1) at the
    /// collection that saw the kill (counters). Null when unknown.
    #[serde(default)]
    pub peak: Option<u64>,
    /// What filled the memory whose limit was hit: anon, shmem, file or kernel.
    pub cause: Option<String>,
    /// Figures of that cgroup at the last sample before the kill.
    pub memory: Option<HistoryPoint>,
    /// Anything a reader should know (e.g. the victim's cgroup had already vanished).
    pub note: Option<String>,
    /// Flight recorder: the victim's samples of the minutes before the kill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flight: Vec<HistoryPoint>,
}

/// A kernel OOM report, as the kernel-log reader gives it (the seam for `memglass oom`'s
/// parser: the binary converts its events into these).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelOom {
    /// Unix seconds of the report.
    pub time: i64,
    /// Killed process.
    pub pid: Option<u32>,
    /// Its name.
    pub comm: Option<String>,
    /// `CONSTRAINT_MEMCG`, `CONSTRAINT_NONE`, …
    pub constraint: Option<String>,
    /// Whose limit was hit.
    pub oom_memcg: Option<String>,
    /// The victim's cgroup.
    pub task_memcg: Option<String>,
    /// RSS parts of the victim, bytes.
    pub anon_rss: Option<u64>,
    /// File RSS.
    pub file_rss: Option<u64>,
    /// Shmem RSS.
    pub shmem_rss: Option<u64>,
    /// Scope as the OOM analysis classified it (node, kubepods, qos, pod, container, cgroup).
    pub scope: Option<String>,
    /// What dominated the memory under the hit limit (anon, shmem, file, kernel).
    pub cause: Option<String>,
    /// The limit that was hit, as the report printed it.
    pub limit: Option<u64>,
    /// The usage of the hit counter as the report printed it (at the kill).
    pub peak: Option<u64>,
    /// Victim's namespace, pod and container names, when known.
    pub names: (Option<String>, Option<String>, Option<String>),
    /// Where the reader resumes after this report (persisted once the event is stored, so
    /// a restart neither loses nor repeats it).
    pub resume: Option<String>,
}

/// The scope PRODUCT.md §2.3 names for an OOM whose limit belonged to `oom_memcg`.
pub fn scope_of(oom_memcg: Option<&str>) -> &'static str {
    match oom_memcg.map(|path| memglass_identify::identify(path).kind) {
        None | Some(CgroupKind::Root) => "node",
        Some(CgroupKind::Kubepods) => "kubepods",
        Some(CgroupKind::Qos) => "qos",
        Some(CgroupKind::Pod) => "pod",
        Some(CgroupKind::Container) => "container",
        Some(_) => "cgroup",
    }
}

/// A counted kill waits for its kernel report at least this many collections…
pub const REPORT_WAIT_COLLECTIONS: u32 = 3;
/// …and at least this long (seconds); then it is an event of its own, its report lost.
pub const REPORT_WAIT_SECONDS: i64 = 5;
/// Kills given up on are remembered this long (seconds), so that a report read after all
/// does not count its kill a second time.
const GIVEN_UP_KEEP_SECONDS: i64 = 600;
/// At most this many kills waiting or given up on are remembered (the oldest go first).
const REMEMBERED_MAX: usize = 1000;

/// Kills the counters showed whose kernel report was not read (yet).
#[derive(Debug, Clone)]
struct Unreported {
    /// What the counters said; `kills` is what no report has accounted for.
    kill: CountedKill,
    /// Its event, made at the collection that counted it (the figures before the kill).
    event: OomEvent,
    /// Collections since (including) the one that counted it.
    collections: u32,
    /// The kernel log's overruns before that collection.
    overruns_before: u64,
}

/// Finds OOM kills by comparing counters of consecutive collections (the comparison is
/// memglass-analyse's [`count_kills`]; this keeps the baseline and makes the events).
///
/// Without the kernel log, the counters' kills are the events ([`CounterWatch::observe`]).
/// With it, the kernel's reports are, and the counters make sure none is missing
/// ([`CounterWatch::reconcile`]): a counted kill that no report accounts for within
/// [`REPORT_WAIT_COLLECTIONS`] collections and [`REPORT_WAIT_SECONDS`] becomes an event of
/// its own, noting that its report was lost (overwritten in an overrun ring buffer, or never
/// logged), so every kill is counted once.
#[derive(Debug, Default)]
pub struct CounterWatch {
    previous: Option<KillBaseline>,
    waiting: Vec<Unreported>,
    given_up: Vec<Unreported>,
    overruns: u64,
}

impl CounterWatch {
    /// Compare `now` with the previous collection (`before`, its analysed snapshot, gives
    /// the figures just before the kill). The first call only sets the baseline.
    pub fn observe(
        &mut self,
        time: i64,
        now: &Snapshot,
        before: Option<&Snapshot>,
    ) -> Vec<OomEvent> {
        self.count(now)
            .iter()
            .map(|kill| from_counters(time, kill, now, before))
            .collect()
    }

    /// The kills counted since the previous collection (none at the first).
    pub fn count(&mut self, now: &Snapshot) -> Vec<CountedKill> {
        match self.previous.replace(KillBaseline::of(now)) {
            Some(previous) => count_kills(&previous, now),
            None => Vec::new(),
        }
    }

    /// The events of one collection when the kernel log is followed: one per kernel
    /// report (`reports`, read *before* the counters of `now`, so a report's kill is
    /// always counted by then), plus the counted kills that waited long enough for a
    /// report in vain. A report whose kill was already given up on keeps its details with
    /// `kills` 0 (its kill was counted). `overruns`: the kernel log's overruns so far.
    pub fn reconcile(
        &mut self,
        time: i64,
        now: &Snapshot,
        before: Option<&Snapshot>,
        reports: &[KernelOom],
        overruns: u64,
    ) -> Vec<OomEvent> {
        for kill in self.count(now) {
            let event = from_counters(time, &kill, now, before);
            self.waiting.push(Unreported {
                kill,
                event,
                collections: 0,
                overruns_before: self.overruns,
            });
        }
        let mut events = Vec::with_capacity(reports.len());
        for report in reports {
            let mut event = from_kernel(report, now, before);
            if let Some(i) = accounted_by(report, &self.waiting) {
                self.waiting[i].kill.kills -= 1;
            } else if let Some(i) = accounted_by(report, &self.given_up) {
                let counted = &mut self.given_up[i];
                counted.kill.kills -= 1;
                event.kills = 0;
                event.note = Some(format!(
                    "its kill was already counted from the counters at {} (this report was read late)",
                    counted.event.time_rfc3339
                ));
            }
            // Else a kill from before the first collection, or one the counters cannot
            // see (outside this agent's cgroups): the report alone tells of it.
            events.push(event);
        }
        self.waiting.retain(|u| u.kill.kills > 0);
        let mut still = Vec::with_capacity(self.waiting.len());
        for mut unreported in std::mem::take(&mut self.waiting) {
            unreported.collections += 1;
            let waited = unreported.collections > REPORT_WAIT_COLLECTIONS
                && time - unreported.event.time >= REPORT_WAIT_SECONDS;
            if !waited {
                still.push(unreported);
                continue;
            }
            let mut event = unreported.event.clone();
            event.kills = unreported.kill.kills;
            let why = if overruns > unreported.overruns_before {
                "its kernel report was lost: the kernel log's ring buffer was overwritten before the agent read it"
            } else {
                "no kernel report of it was read (not logged, or lost)"
            };
            event.note = Some(match event.note {
                Some(note) => format!("{why}; {note}"),
                None => why.to_owned(),
            });
            events.push(event);
            self.given_up.push(unreported);
        }
        self.waiting = still;
        self.given_up
            .retain(|u| u.kill.kills > 0 && time - u.event.time <= GIVEN_UP_KEEP_SECONDS);
        for list in [&mut self.waiting, &mut self.given_up] {
            let over = list.len().saturating_sub(REMEMBERED_MAX);
            list.drain(..over);
        }
        self.overruns = overruns;
        events
    }
}

/// Which counted kill a report is: the closest cgroup ([`report_fit`]), then the first
/// collection that can have counted it (one that started at most 2 s before the report's
/// second; the report's clock is the kernel's, converted), else the latest. So when one
/// report of two kills in a cgroup was lost, the other is matched with its own count.
fn accounted_by(report: &KernelOom, counted: &[Unreported]) -> Option<usize> {
    counted
        .iter()
        .enumerate()
        .filter_map(|(index, u)| {
            let fit = report_fit(report.task_memcg.as_deref(), &u.kill)?;
            let t = u.event.time;
            let timing = if t >= report.time - 2 {
                (0, t)
            } else {
                (1, -t)
            };
            Some(((fit, timing), index))
        })
        .min()
        .map(|(_, index)| index)
}

/// The event of kills the counters found (`now`: the collection that counted them).
pub fn from_counters(
    time: i64,
    kill: &CountedKill,
    now: &Snapshot,
    before: Option<&Snapshot>,
) -> OomEvent {
    let victim = kill
        .cgroup
        .as_deref()
        .and_then(|path| now.cgroups.iter().find(|c| c.path == path));
    let source = match kill.victim {
        CountedVictim::OutsideCgroups => OomSource::NodeCounter,
        CountedVictim::Own | CountedVictim::VanishedDescendant => OomSource::CgroupCounters,
    };
    let mut event = event_for(time, source, victim, kill.oom_memcg.clone(), before);
    event.kills = kill.kills;
    event.peak = kill.peak;
    event.note = match kill.victim {
        CountedVictim::Own => None,
        CountedVictim::VanishedDescendant => Some(
            "the victim's cgroup (a descendant of this one) vanished before the collection".into(),
        ),
        CountedVictim::OutsideCgroups => Some(
            "counted by /proc/vmstat oom_kill only: the victim was outside every memory cgroup still present".into(),
        ),
    };
    event
}

/// Build an event for a victim cgroup (or none), with the limit-hit cgroup's figures
/// from the collection before the kill.
pub fn event_for(
    time: i64,
    source: OomSource,
    victim: Option<&CgroupReport>,
    oom_memcg: Option<String>,
    before: Option<&Snapshot>,
) -> OomEvent {
    let subject = oom_memcg
        .as_deref()
        .or(victim.map(|v| v.path.as_str()))
        .and_then(|p| before.and_then(|b| b.cgroups.iter().find(|c| c.path == p)));
    let scope = match (&oom_memcg, victim) {
        (Some(path), _) => scope_of(Some(path)),
        (None, None) => "node",
        (None, Some(_)) => "unknown",
    };
    OomEvent {
        id: None,
        time,
        time_rfc3339: crate::shared::rfc3339(time),
        source,
        kills: 1,
        cgroup: victim.map(|v| v.path.clone()),
        oom_memcg,
        scope: scope.to_owned(),
        constraint: None,
        namespace: victim.and_then(|v| v.namespace.clone()),
        pod: victim.and_then(|v| v.pod.clone()),
        container: victim.and_then(|v| v.container.clone()),
        pod_uid: victim.and_then(|v| v.pod_uid.clone()),
        container_id: victim.and_then(|v| v.container_id.clone()),
        pid: None,
        comm: None,
        anon_rss: None,
        file_rss: None,
        shmem_rss: None,
        limit: subject.and_then(|s| s.memory.limit),
        peak: None,
        cause: subject.and_then(cause),
        memory: subject.map(|s| point(time, s)),
        note: None,
        flight: Vec::new(),
    }
}

/// Turn a kernel report into an event, naming the victim from the snapshots.
pub fn from_kernel(report: &KernelOom, now: &Snapshot, before: Option<&Snapshot>) -> OomEvent {
    let find = |path: &str| {
        before
            .and_then(|b| b.cgroups.iter().find(|c| c.path == path))
            .or_else(|| now.cgroups.iter().find(|c| c.path == path))
    };
    let victim = report.task_memcg.as_deref().and_then(find);
    let mut event = event_for(
        report.time,
        OomSource::KernelLog,
        victim,
        report.oom_memcg.clone().filter(|p| p != "/"),
        before,
    );
    if victim.is_none() {
        event.cgroup = report.task_memcg.clone();
        if let Some(path) = &report.task_memcg {
            let identity = memglass_identify::identify(path);
            event.pod_uid = identity.pod_uid;
            event.container_id = identity.container_id;
        }
    }
    if let Some(scope) = &report.scope {
        event.scope = scope.clone();
    } else if report.constraint.as_deref() == Some("CONSTRAINT_NONE") {
        event.scope = "node".into();
    }
    // The report's own figures, printed at the kill, beat the last sample's.
    if report.cause.is_some() {
        event.cause = report.cause.clone();
    }
    if report.limit.is_some() {
        event.limit = report.limit;
    }
    event.peak = report.peak;
    let (namespace, pod, container) = &report.names;
    event.namespace = namespace.clone().or(event.namespace);
    event.pod = pod.clone().or(event.pod);
    event.container = container.clone().or(event.container);
    event.constraint = report.constraint.clone();
    event.pid = report.pid;
    event.comm = report.comm.clone();
    event.anon_rss = report.anon_rss;
    event.file_rss = report.file_rss;
    event.shmem_rss = report.shmem_rss;
    event
}

/// What filled a cgroup: the largest of anon, shmem, other page cache and kernel memory.
fn cause(c: &CgroupReport) -> Option<String> {
    let m = &c.memory;
    let shmem = m.shmem.unwrap_or(0);
    let parts = [
        ("anon", m.anon.unwrap_or(0)),
        ("shmem", shmem),
        ("file", m.file.unwrap_or(0).saturating_sub(shmem)),
        ("kernel", m.kernel.unwrap_or(0)),
    ];
    parts
        .iter()
        .filter(|(_, v)| *v > 0)
        .max_by_key(|(_, v)| *v)
        .map(|(name, _)| (*name).to_owned())
}

fn point(t: i64, c: &CgroupReport) -> HistoryPoint {
    let m = &c.memory;
    HistoryPoint {
        t,
        usage: m.usage,
        limit: m.limit,
        anon: m.anon,
        active_anon: m.active_anon,
        inactive_anon: m.inactive_anon,
        file: m.file,
        active_file: m.active_file,
        inactive_file: m.inactive_file,
        shmem: m.shmem,
        file_dirty: m.file_dirty,
        kernel: m.kernel,
        oom_kill: c.events.oom_kill,
        working_set: m.working_set,
        working_set_kubelet: m.working_set_kubelet,
    }
}

/// How long a victim's `memglass_oom_kills_total` series stays after its last kill: long
/// enough for any scrape interval to see it rise, also when its pod is already gone.
pub const KILL_SERIES_KEEP: i64 = 3600;
/// At most this many victims' series (a crash-looping container gets a new cgroup, and so
/// a new series, on each restart): the oldest go first.
pub const KILL_SERIES_MAX: usize = 1000;

/// The labels of one victim's kill counter: who was killed (namespace, pod, container,
/// cgroup; empty when unknown), whose limit was hit and what dominated (`unknown` when
/// neither the report nor the counters tell).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KillKey {
    /// Victim's namespace.
    pub namespace: String,
    /// Victim's pod.
    pub pod: String,
    /// Victim's container.
    pub container: String,
    /// Victim's cgroup (empty for a node OOM whose victim's cgroup is unknown).
    pub cgroup: String,
    /// node, kubepods, qos, pod, container, cgroup or unknown.
    pub scope: String,
    /// anon, shmem, file, kernel or unknown.
    pub cause: String,
}

/// OOM kills per victim since the agent started (`memglass_oom_kills_total`): each count
/// with the Unix time of its last kill, dropped [`KILL_SERIES_KEEP`] after it.
#[derive(Debug, Default)]
pub struct KillCounts {
    counts: std::collections::BTreeMap<KillKey, (u64, i64)>,
}

impl KillCounts {
    /// Count an event's kills under its victim's labels.
    pub fn add(&mut self, event: &OomEvent) {
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        let key = KillKey {
            namespace: text(&event.namespace),
            pod: text(&event.pod),
            container: text(&event.container),
            cgroup: text(&event.cgroup),
            scope: event.scope.clone(),
            cause: event.cause.clone().unwrap_or_else(|| "unknown".into()),
        };
        let entry = self.counts.entry(key).or_insert((0, event.time));
        entry.0 += event.kills;
        entry.1 = entry.1.max(event.time);
    }

    /// Forget victims whose last kill is older than [`KILL_SERIES_KEEP`] at `now`, and the
    /// oldest beyond [`KILL_SERIES_MAX`].
    pub fn expire(&mut self, now: i64) {
        self.counts
            .retain(|_, (_, last)| now - *last <= KILL_SERIES_KEEP);
        if self.counts.len() > KILL_SERIES_MAX {
            // Drop the `over` oldest: all older than the newest of them, then its ties.
            let over = self.counts.len() - KILL_SERIES_MAX;
            let mut lasts: Vec<i64> = self.counts.values().map(|(_, last)| *last).collect();
            lasts.sort_unstable();
            let cut = lasts[over - 1];
            let mut ties = over - lasts.iter().filter(|&&last| last < cut).count();
            self.counts.retain(|_, (_, last)| {
                if *last < cut {
                    false
                } else if *last == cut && ties > 0 {
                    ties -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    /// Each victim's labels and kill count.
    pub fn iter(&self) -> impl Iterator<Item = (&KillKey, u64)> {
        self.counts.iter().map(|(key, (count, _))| (key, *count))
    }
}

#[cfg(test)]
mod kill_count_tests {
    use super::*;

    fn kill(time: i64, cgroup: &str, pod: Option<&str>, cause: Option<&str>) -> OomEvent {
        let mut event = event_for(time, OomSource::NodeCounter, None, None, None);
        event.cgroup = Some(cgroup.into());
        event.pod = pod.map(String::from);
        event.scope = "container".into();
        event.cause = cause.map(String::from);
        event
    }

    #[test]
    fn kills_are_counted_per_victim_and_kept_an_hour() {
        let mut counts = KillCounts::default();
        counts.add(&kill(100, "/a", Some("web"), Some("anon")));
        counts.add(&kill(160, "/a", Some("web"), Some("anon")));
        counts.add(&kill(170, "/b", None, None));
        let seen: Vec<(String, String, String, u64)> = counts
            .iter()
            .map(|(k, n)| (k.cgroup.clone(), k.pod.clone(), k.cause.clone(), n))
            .collect();
        assert_eq!(
            seen,
            // Ordered by labels: namespace, then pod ("" first).
            [
                ("/b".into(), "".into(), "unknown".into(), 1),
                ("/a".into(), "web".into(), "anon".into(), 2)
            ]
        );
        counts.expire(160 + KILL_SERIES_KEEP);
        assert_eq!(counts.iter().count(), 2, "kept an hour after the last kill");
        counts.expire(161 + KILL_SERIES_KEEP);
        assert_eq!(
            counts
                .iter()
                .map(|(k, _)| k.cgroup.as_str())
                .collect::<Vec<_>>(),
            ["/b"]
        );
    }

    #[test]
    fn the_oldest_victims_go_first_beyond_the_cap() {
        let mut counts = KillCounts::default();
        // Key order (cgroup name) is the reverse of time order, and two share a time.
        for i in 0..KILL_SERIES_MAX + 3 {
            let time = if i == 0 { 1 } else { i as i64 };
            counts.add(&kill(
                time,
                &format!("/{:05}", KILL_SERIES_MAX + 3 - i),
                None,
                None,
            ));
        }
        counts.expire(10);
        assert_eq!(counts.iter().count(), KILL_SERIES_MAX);
        // Times 1, 1, 2 went; 3 stayed.
        assert!(counts
            .iter()
            .all(|(k, _)| k.cgroup != "/01003" && k.cgroup != "/01002"));
        assert!(counts.iter().any(|(k, _)| k.cgroup == "/01000"));
        assert!(counts.iter().all(|(k, _)| k.cgroup != "/01001"));
    }
}
