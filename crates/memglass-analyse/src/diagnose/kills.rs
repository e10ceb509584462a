//! `oom_killed`: recent kills, one finding per victim cgroup and scope (a crash-looping
//! container is one finding with a count, not a page of them).

use std::collections::BTreeMap;

use memglass_identify::CgroupKind;

use super::{mib, Evidence, Finding, Index, Inputs, Kind, Remedy, Setting, Severity, SubjectKind};
use crate::oom::{Component, OomReport, OomScope};
use crate::sizing;

/// One OOM kill, as the kernel log (or, when the log lost it, a counter) told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentKill {
    /// Unix seconds, when known.
    pub time: Option<i64>,
    /// The victim's cgroup (task_memcg).
    pub cgroup: Option<String>,
    /// Whose limit was hit (oom_memcg); None for a node OOM.
    pub oom_memcg: Option<String>,
    /// node, kubepods, qos, pod, container or cgroup.
    pub scope: String,
    /// Victim's namespace, pod and container names, when known.
    pub namespace: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
    /// Container name.
    pub container: Option<String>,
    /// Pod UID from the victim's path.
    pub pod_uid: Option<String>,
    /// The killed process's name (kernel log only).
    pub comm: Option<String>,
    /// Its anonymous RSS (kernel log only).
    pub anon_rss: Option<u64>,
    /// What filled the memory under the hit limit (anon, shmem, file, kernel).
    pub cause: Option<String>,
    /// The hit limit, bytes.
    pub limit: Option<u64>,
    /// The usage at the kill, bytes.
    pub usage: Option<u64>,
    /// Found from a counter only: the log lost the report.
    pub from_counter: bool,
}

impl RecentKill {
    /// A kill from the kernel log, explained; `time` in Unix seconds when known.
    pub fn from_report(report: &OomReport, time: Option<i64>) -> RecentKill {
        let scope = match report.scope {
            OomScope::Node => "node",
            OomScope::Kubepods => "kubepods",
            OomScope::Qos => "qos",
            OomScope::Pod => "pod",
            OomScope::Container => "container",
            OomScope::Cgroup => "cgroup",
        };
        let cause = report.dominant.map(|c| match c {
            Component::Anon => "anon",
            Component::Shmem => "shmem",
            Component::File => "file",
            Component::Kernel => "kernel",
        });
        RecentKill {
            time,
            cgroup: report.kill.task_memcg.clone(),
            oom_memcg: report.kill.oom_memcg.clone(),
            scope: scope.into(),
            namespace: report.namespace.clone(),
            pod: report.pod.clone(),
            container: report.container.clone(),
            pod_uid: report.pod_uid.clone(),
            comm: report.kill.victim.comm.clone(),
            anon_rss: report.kill.victim.anon_rss,
            cause: cause.map(str::to_owned),
            limit: report.limit_hit.as_ref().map(|l| l.limit),
            usage: report.limit_hit.as_ref().map(|l| l.usage),
            from_counter: false,
        }
    }
}

pub(super) fn check(inputs: &Inputs<'_>, index: &Index<'_>, findings: &mut Vec<Finding>) {
    let mut groups: BTreeMap<(String, String), Vec<&RecentKill>> = BTreeMap::new();
    for kill in inputs.kills {
        let who = kill
            .cgroup
            .clone()
            .or_else(|| kill.pod_uid.clone())
            .unwrap_or_default();
        groups
            .entry((who, kill.scope.clone()))
            .or_default()
            .push(kill);
    }
    for kills in groups.into_values() {
        let Some(last) = kills.iter().max_by_key(|k| k.time.unwrap_or(i64::MIN)) else {
            continue;
        };
        findings.push(finding(inputs, index, last, kills.len()));
    }
}

fn finding(inputs: &Inputs<'_>, index: &Index<'_>, kill: &RecentKill, count: usize) -> Finding {
    let victim = kill
        .cgroup
        .as_deref()
        .and_then(|path| index.get(path).copied());
    let hit = kill
        .oom_memcg
        .as_deref()
        .and_then(|path| index.get(path).copied());
    let mut f = match victim {
        Some(cgroup) => Finding::about(Kind::OomKilled, Severity::Critical, cgroup),
        None => {
            let mut f = Finding::about_node(Kind::OomKilled, Severity::Critical);
            f.subject = if kill.container.is_some() {
                SubjectKind::Container
            } else if kill.pod_uid.is_some() {
                SubjectKind::Pod
            } else {
                SubjectKind::Cgroup
            };
            f.cgroup = kill.cgroup.clone();
            f.pod_uid = kill.pod_uid.clone();
            f
        }
    };
    // The kill's own names win: the cgroup may be a new container's by now.
    f.namespace = kill.namespace.clone().or(f.namespace);
    f.pod = kill.pod.clone().or(f.pod);
    f.container = kill.container.clone().or(f.container);
    let whose = match kill.scope.as_str() {
        "node" => "the node ran out of memory (no cgroup limit)".to_owned(),
        "kubepods" => "the pods together reached node allocatable (the kubepods limit)".into(),
        "qos" => "its QoS class's cgroup reached its limit".into(),
        "pod" => "its pod's limit was reached".into(),
        "container" => "its container's own limit was reached".into(),
        _ => format!(
            "the limit of {} was reached",
            kill.oom_memcg.as_deref().unwrap_or("a cgroup")
        ),
    };
    let what = kill
        .cause
        .as_deref()
        .map(|c| format!(", mostly {}", cause_words(c)))
        .unwrap_or_default();
    let times = if count > 1 {
        format!("{count} times, last ")
    } else {
        String::new()
    };
    let process = kill
        .comm
        .as_deref()
        .map(|c| format!("{c} was "))
        .unwrap_or_default();
    f.summary = format!(
        "{process}OOM-killed {times}because {whose}{what}{}",
        if kill.from_counter {
            " (counted by the kernel; its report is no longer in the log)"
        } else {
            ""
        }
    );
    f.evidence.push(Evidence::text(
        "scope",
        &kill.scope,
        "oom_memcg of the kernel's OOM report, classified by its path",
    ));
    if let Some(memcg) = &kill.oom_memcg {
        f.evidence
            .push(Evidence::text("oom_memcg", memcg, "kernel OOM report"));
    }
    f.evidence.push(Evidence::count(
        "kills",
        count as u64,
        if kill.from_counter {
            "memory.events oom_kill / memory.oom_control oom_kill"
        } else {
            "kernel log (/dev/kmsg)"
        },
    ));
    if let Some(limit) = kill.limit {
        f.evidence.push(Evidence::bytes(
            "limit",
            limit,
            "kernel OOM report: the hit counter's limit",
        ));
    }
    if let Some(usage) = kill.usage {
        f.evidence.push(Evidence::bytes(
            "usage_at_kill",
            usage,
            "kernel OOM report: the hit counter's usage",
        ));
    }
    if let Some(cause) = &kill.cause {
        f.evidence.push(Evidence::text("dominated", cause, "Memory cgroup stats of the OOM report (else the node's counters, else the victim's RSS)"));
    }
    if let Some(rss) = kill.anon_rss {
        f.evidence.push(Evidence::bytes(
            "victim_anon_rss",
            rss,
            "kernel OOM report: anon-rss",
        ));
    }
    let measured = hit.or(victim).map(|c| sizing::measure(&c.memory));
    if let Some(peak) = measured.and_then(|m| m.peak) {
        f.evidence.push(Evidence::bytes(
            "peak_now",
            peak,
            "memory.peak / memory.max_usage_in_bytes of the limited cgroup",
        ));
    }
    f.remedy = remedy(inputs, kill, hit.or(victim));
    f
}

fn cause_words(cause: &str) -> &'static str {
    match cause {
        "anon" => "anonymous memory (heap)",
        "shmem" => "tmpfs / shared memory",
        "file" => "page cache",
        "kernel" => "kernel memory",
        _ => "unknown memory",
    }
}

fn remedy(
    inputs: &Inputs<'_>,
    kill: &RecentKill,
    limited: Option<&crate::cgroup::CgroupReport>,
) -> Remedy {
    let leaking = inputs.histories.iter().any(|h| {
        Some(h.cgroup.as_str()) == kill.cgroup.as_deref()
            && super::leak::trend(h, inputs.settings.now).is_some_and(|t| t.steady)
    });
    match (kill.scope.as_str(), kill.cause.as_deref()) {
        _ if leaking => Remedy {
            text: "Its working set grows steadily (see the leak finding): a larger limit only delays the next kill; find what the process keeps allocating.".into(),
            ..Remedy::default()
        },
        (_, Some("shmem")) => Remedy {
            text: "tmpfs or shared memory filled the limit and cannot be reclaimed without swap: set a sizeLimit on emptyDir volumes with medium Memory, clean files in /dev/shm, or raise the limit.".into(),
            ..Remedy::default()
        },
        ("node", _) => Remedy {
            text: "No cgroup limit stopped it: the node itself ran out. Set memory limits on pods, reserve memory for the system (kubelet --system-reserved / --kube-reserved), and keep Σ limits near allocatable.".into(),
            ..Remedy::default()
        },
        ("kubepods", _) => Remedy {
            text: "The pods together filled node allocatable before kubelet evicted anyone: lower the pods' limits (Σ limits over allocatable), or raise kubelet's --eviction-hard memory.available so eviction comes first.".into(),
            ..Remedy::default()
        },
        _ => {
            let target = limited.filter(|c| matches!(c.kind, CgroupKind::Pod | CgroupKind::Container));
            let peak = limited
                .and_then(|c| c.memory.peak)
                .or(kill.usage)
                .unwrap_or(0)
                .max(kill.limit.unwrap_or(0));
            // At a kill the peak is the limit: the sizing rule's headroom over it.
            let limit = sizing::suggest(&sizing::Measured {
                working_set: Some(peak),
                peak: Some(peak),
                peak_working_set: Some(peak),
            })
            .map(|s| s.limit);
            match limit {
                Some(limit) if limit > 0 => Remedy {
                    text: format!(
                        "Raise the memory limit to about {} (the peak × 1.3), or make the process use less: it needed more than {}.",
                        mib(limit),
                        mib(kill.limit.unwrap_or(peak))
                    ),
                    set: vec![Setting::new(
                        "resources.limits.memory",
                        target.and_then(super::requests::spec_target),
                        limit,
                    )],
                    command: None,
                },
                _ => Remedy {
                    text: "Raise the memory limit, or make the process use less.".into(),
                    ..Remedy::default()
                },
            }
        }
    }
}
