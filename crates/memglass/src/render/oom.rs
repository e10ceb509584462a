//! `memglass oom`: the table for a person, the JSON events for scripts (docs/json-format.md,
//! PRODUCT.md §4), and the one sentence that explains each kill.

use std::io::Write;
use std::time::{Duration, SystemTime};

use memglass_analyse::oom::{
    Breakdown, BreakdownSource, Component, CounterCheck, LimitHit, OomReport, OomScope,
};
use memglass_identify::QosClass;
use memglass_kernel::cgroup::KeyedValues;
use memglass_kernel::kmsg::oom::{
    MemcgStats, Reaped, Selected, TaskRow, Trigger, UsageCounter, Victim,
};
use serde::Serialize;

use crate::render::human::bytes;

/// When a kill happened, as far as its log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    /// Wall-clock time.
    pub wall: Option<SystemTime>,
    /// False when the log printed local time without a zone (then `wall` counts that
    /// local time as UTC).
    pub zone_known: bool,
    /// Time since boot (printk clock).
    pub uptime: Option<Duration>,
}

impl EventTime {
    /// RFC 3339, UTC (`Z`); without a zone when the log did not say which.
    pub fn rfc3339(&self) -> Option<String> {
        let text = humantime::format_rfc3339_seconds(self.wall?).to_string();
        Some(if self.zone_known {
            text
        } else {
            text.trim_end_matches('Z').to_owned()
        })
    }

    /// At or after `since`.
    pub fn is_since(&self, since: SystemTime) -> bool {
        self.wall.is_some_and(|wall| wall >= since)
    }
}

/// The kill counters and the cgroup version they were read through.
#[derive(Debug, Clone)]
pub struct Counters {
    /// Counters next to the log.
    pub check: CounterCheck,
    /// 1 or 2 (names the files).
    pub cgroup_version: u8,
}

/// One event of `memglass oom --json`.
#[derive(Serialize)]
struct Event<'a> {
    time: Option<String>,
    uptime_seconds: Option<f64>,
    seq: Option<u64>,
    pid: u32,
    comm: Option<&'a str>,
    uid: Option<u32>,
    constraint: Option<&'a str>,
    oom_memcg: Option<&'a str>,
    task_memcg: Option<&'a str>,
    scope: OomScope,
    pod_uid: Option<&'a str>,
    container_id: Option<&'a str>,
    qos_class: Option<QosClass>,
    namespace: Option<&'a str>,
    pod: Option<&'a str>,
    container: Option<&'a str>,
    anon_rss: Option<u64>,
    file_rss: Option<u64>,
    shmem_rss: Option<u64>,
    total_vm: Option<u64>,
    pgtables: Option<u64>,
    oom_score_adj: Option<i32>,
    explanation: String,
    dominant: Option<Component>,
    breakdown: Option<&'a Breakdown>,
    limit_hit: Option<&'a LimitHit>,
    message: Option<&'a str>,
    trigger: Option<&'a Trigger>,
    selected: Option<&'a Selected>,
    oom_group: Option<&'a str>,
    also_killed: &'a [Victim],
    reaped: Option<&'a Reaped>,
    counters: Vec<Counter<'a>>,
    memcg_stats: &'a [MemcgStats],
    node_stats: Option<&'a KeyedValues>,
    mem_info_pages: Option<&'a KeyedValues>,
    tasks: &'a [TaskRow],
}

/// A usage line with "no limit" as null.
#[derive(Serialize)]
struct Counter<'a> {
    name: &'a str,
    usage: u64,
    limit: Option<u64>,
    failcnt: u64,
}

fn event<'a>(report: &'a OomReport, time: &EventTime) -> Event<'a> {
    let kill = &report.kill;
    let victim = &kill.victim;
    Event {
        time: time.rfc3339(),
        uptime_seconds: time.uptime.map(|u| u.as_secs_f64()),
        seq: kill.seq,
        pid: victim.pid,
        comm: victim.comm.as_deref(),
        uid: victim.uid,
        constraint: kill.constraint.as_ref().map(|c| c.as_str()),
        oom_memcg: kill.oom_memcg.as_deref(),
        task_memcg: kill.task_memcg.as_deref(),
        scope: report.scope,
        pod_uid: report.pod_uid.as_deref(),
        container_id: report.container_id.as_deref(),
        qos_class: report.qos_class,
        namespace: report.namespace.as_deref(),
        pod: report.pod.as_deref(),
        container: report.container.as_deref(),
        anon_rss: victim.anon_rss,
        file_rss: victim.file_rss,
        shmem_rss: victim.shmem_rss,
        total_vm: victim.total_vm,
        pgtables: victim.pgtables,
        oom_score_adj: victim.oom_score_adj,
        explanation: explanation(report),
        dominant: report.dominant,
        breakdown: report.breakdown.as_ref(),
        limit_hit: report.limit_hit.as_ref(),
        message: kill.message.as_deref(),
        trigger: kill.trigger.as_ref(),
        selected: kill.selected.as_ref(),
        oom_group: kill.oom_group.as_deref(),
        also_killed: &kill.group_kills,
        reaped: kill.reaped.as_ref(),
        counters: kill.counters.iter().map(counter).collect(),
        memcg_stats: &kill.memcg_stats,
        node_stats: kill.node_stats.as_ref(),
        mem_info_pages: kill.mem_info_pages.as_ref(),
        tasks: &kill.tasks,
    }
}

fn counter(c: &UsageCounter) -> Counter<'_> {
    Counter {
        name: &c.name,
        usage: c.usage,
        limit: c.limit.bytes(),
        failcnt: c.failcnt,
    }
}

/// The events as one JSON array and a newline.
pub fn write_json(out: &mut impl Write, events: &[(OomReport, EventTime)]) -> anyhow::Result<()> {
    let events: Vec<Event<'_>> = events.iter().map(|(r, t)| event(r, t)).collect();
    serde_json::to_writer(&mut *out, &events)?;
    writeln!(out)?;
    Ok(())
}

/// One event as one line of JSON (`--follow --json`).
pub fn write_json_line(
    out: &mut impl Write,
    report: &OomReport,
    time: &EventTime,
) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, &event(report, time))?;
    writeln!(out)?;
    Ok(())
}

/// The table: a line per kill with its explanation under it, then the counters.
pub fn write_table(
    out: &mut impl Write,
    events: &[(OomReport, EventTime)],
    counters: Option<&Counters>,
    source: &str,
    since: bool,
) -> std::io::Result<()> {
    let filtered = if since { " since the given time" } else { "" };
    writeln!(out, "OOM KILLS  ({} in {source}{filtered})", events.len())?;
    if !events.is_empty() {
        write_header(out)?;
    }
    for (report, time) in events {
        write_event(out, report, time)?;
    }
    if let Some(counters) = counters {
        write_counters(out, counters)?;
    }
    Ok(())
}

fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<20} {:<9} {:<24} {:<30} {:>10} {:>10} {:>10}  DOMINANT",
        "TIME", "SCOPE", "VICTIM", "POD / CONTAINER", "ANON_RSS", "FILE_RSS", "SHMEM_RSS"
    )
}

/// One kill: its line, the sentence, and the cgroups it names.
pub fn write_event(
    out: &mut impl Write,
    report: &OomReport,
    time: &EventTime,
) -> std::io::Result<()> {
    let kill = &report.kill;
    let v = &kill.victim;
    let when = time
        .rfc3339()
        .or_else(|| time.uptime.map(|u| format!("+{:.3}s", u.as_secs_f64())))
        .unwrap_or_else(|| "-".into());
    let victim = format!("{} ({})", v.comm.as_deref().unwrap_or("?"), v.pid);
    writeln!(
        out,
        "{:<20} {:<9} {:<24} {:<30} {:>10} {:>10} {:>10}  {}",
        when,
        scope_word(report.scope),
        victim,
        workload(report),
        bytes(v.anon_rss),
        bytes(v.file_rss),
        bytes(v.shmem_rss),
        report.dominant.map_or("-", component_word),
    )?;
    writeln!(out, "  {}", explanation(report))?;
    match (&kill.oom_memcg, &kill.task_memcg) {
        (Some(oom), Some(task)) if oom == task => writeln!(out, "  cgroup {oom}")?,
        (oom, task) => {
            if let Some(oom) = oom {
                writeln!(out, "  limit of {oom}")?;
            }
            if let Some(task) = task {
                writeln!(out, "  victim in {task}")?;
            }
        }
    }
    Ok(())
}

fn write_counters(out: &mut impl Write, counters: &Counters) -> std::io::Result<()> {
    let check = &counters.check;
    writeln!(out)?;
    writeln!(
        out,
        "COUNTERS  (kills the kernel counted, next to the log's)"
    )?;
    match check.node_oom_kill {
        Some(kills) => writeln!(
            out,
            "  node: /proc/vmstat oom_kill {kills} since boot; the log holds {} kill(s){}",
            check.log_events,
            if check.missing_from_log() > 0 {
                format!(" — {}", missing_sentence(counters))
            } else {
                String::new()
            }
        )?,
        None => writeln!(
            out,
            "  node: /proc/vmstat has no oom_kill counter (before 4.13)"
        )?,
    }
    for row in &check.cgroups {
        let file = match (counters.cgroup_version, row.hierarchical) {
            (2, false) => "memory.events.local",
            (2, true) => "memory.events",
            (_, false) => "memory.oom_control",
            (_, true) => "memory.oom_control, with descendants",
        };
        let oom = row.oom.map(|n| format!(", oom {n}")).unwrap_or_default();
        let gap = row.oom_kill.saturating_sub(row.log_events as u64);
        let note = if gap > 0 {
            format!(" — {gap} not in the log")
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {}: oom_kill {} ({file}){oom}; in the log {}{note}",
            row.path, row.oom_kill, row.log_events
        )?;
    }
    Ok(())
}

/// "N kill(s) … are not in the log", for the table and for stderr.
pub fn missing_sentence(counters: &Counters) -> String {
    format!(
        "{} kill(s) counted since boot are not in the kernel log (the ring buffer \
         overwrote their reports, or their lines were lost)",
        counters.check.missing_from_log()
    )
}

/// One sentence: which limit was hit, what dominated, who was killed.
pub fn explanation(report: &OomReport) -> String {
    let kill = &report.kill;
    let mut sentence = match report.scope {
        OomScope::Node => {
            let how = match kill.constraint.as_ref().map(|c| c.as_str()) {
                Some("CONSTRAINT_CPUSET") => " (its cpuset's memory nodes)",
                Some("CONSTRAINT_MEMORY_POLICY") => " (a NUMA memory policy's nodes)",
                _ => " (no cgroup limit involved)",
            };
            format!("The node ran out of memory{how}")
        }
        scope => {
            let whose = match scope {
                OomScope::Kubepods => "Node allocatable (kubepods)".to_owned(),
                OomScope::Qos => match report.qos_class {
                    Some(qos) => format!("The {qos} QoS class's"),
                    None => "A QoS class's".to_owned(),
                },
                OomScope::Pod => "The pod's".to_owned(),
                OomScope::Container => "The container's own".to_owned(),
                _ => match kill.oom_memcg.as_deref() {
                    Some(path) => format!("The cgroup {path}'s"),
                    None => {
                        return format!(
                            "A memory cgroup's limit was hit, which one the log does not say: \
                             only the kill line was logged (the kernel rate-limits OOM report \
                             headers to 10 per 5 s){}",
                            victim_clause(kill)
                        )
                    }
                },
            };
            match &report.limit_hit {
                Some(hit) => format!(
                    "{whose} limit was hit ({} {} of {})",
                    hit.counter,
                    bytes(Some(hit.usage)),
                    bytes(Some(hit.limit))
                ),
                None => format!("{whose} limit was hit"),
            }
        }
    };
    if let Some(breakdown) = report.breakdown {
        if let Some((component, amount)) = breakdown.dominant() {
            let source = match breakdown.source {
                BreakdownSource::MemcgStats => "the cgroup's stats",
                BreakdownSource::NodeStats => "the node's counters",
                BreakdownSource::VictimRss => "the victim's RSS",
            };
            sentence.push_str(&format!(
                ": {} dominated ({} of {}, from {source})",
                component_phrase(component),
                bytes(Some(amount)),
                bytes(Some(breakdown.total()))
            ));
        }
    }
    sentence.push_str(&victim_clause(kill));
    sentence
}

/// "; killed comm (pid N, anon-rss X) [and N more …]."
fn victim_clause(kill: &memglass_kernel::kmsg::oom::OomKill) -> String {
    let v = &kill.victim;
    let mut clause = format!(
        "; killed {} (pid {}",
        v.comm.as_deref().unwrap_or("?"),
        v.pid
    );
    if let Some(anon) = v.anon_rss {
        clause.push_str(&format!(", anon-rss {}", bytes(Some(anon))));
    }
    clause.push(')');
    if !kill.group_kills.is_empty() {
        clause.push_str(&format!(
            " and {} more of its cgroup (memory.oom.group)",
            kill.group_kills.len()
        ));
    }
    clause.push('.');
    clause
}

fn scope_word(scope: OomScope) -> &'static str {
    match scope {
        OomScope::Node => "node",
        OomScope::Kubepods => "kubepods",
        OomScope::Qos => "qos",
        OomScope::Pod => "pod",
        OomScope::Container => "container",
        OomScope::Cgroup => "cgroup",
    }
}

fn component_word(component: Component) -> &'static str {
    match component {
        Component::Anon => "anon",
        Component::Shmem => "shmem",
        Component::File => "file",
        Component::Kernel => "kernel",
    }
}

fn component_phrase(component: Component) -> &'static str {
    match component {
        Component::Anon => "anonymous memory",
        Component::Shmem => "shmem/tmpfs",
        Component::File => "page cache",
        Component::Kernel => "kernel memory",
    }
}

/// "namespace/pod/container" where known, else the ids from the path.
fn workload(report: &OomReport) -> String {
    let short = |id: &Option<String>, n: usize| {
        id.as_deref()
            .map(|id| id.chars().take(n).collect::<String>())
    };
    match (&report.namespace, &report.pod, &report.container) {
        (Some(ns), Some(pod), Some(container)) => format!("{ns}/{pod}/{container}"),
        (Some(ns), Some(pod), None) => format!("{ns}/{pod}"),
        _ => match (short(&report.pod_uid, 8), short(&report.container_id, 12)) {
            (Some(pod), Some(container)) => format!("pod {pod}… / {container}"),
            (Some(pod), None) => format!("pod {pod}…"),
            (None, Some(container)) => container,
            (None, None) => "-".into(),
        },
    }
}
