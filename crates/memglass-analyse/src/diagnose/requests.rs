//! Limits, requests, eviction and scheduling: `near_limit`, `eviction_next`,
//! `exceeds_request`, `pending_no_room`, and the sizing verdicts (`over_requested`,
//! `under_requested`, `no_limit`, `no_request`) with the values to set.

use memglass_identify::{CgroupKind, PodInfo, QosClass};

use super::{
    memory_qos, mib, percent, Evidence, Finding, Index, Inputs, Kind, Remedy, Setting, Severity,
    SubjectKind,
};
use crate::cgroup::CgroupReport;
use crate::eviction::{RankedPod, Signal, SignalReport};
use crate::sizing::{ContainerSizing, PodSizing, Verdict};

/// `near_limit` above this share of the limit (kubelet's working set).
pub const NEAR_LIMIT_PERCENT: f64 = 90.0;
/// Pods listed as holding room a Pending pod needs, at most.
const HOLDERS_LISTED: usize = 5;

pub(super) fn check(inputs: &Inputs<'_>, index: &Index<'_>, findings: &mut Vec<Finding>) {
    near_limit(inputs, findings);
    let near = near_signals(inputs);
    eviction_next(inputs, index, &near, findings);
    exceeds_request(inputs, index, !near.is_empty(), findings);
    pending(inputs, findings);
    verdicts(inputs, index, findings);
}

fn cgroup<'a>(index: &Index<'a>, path: Option<&str>) -> Option<&'a CgroupReport> {
    index.get(path?).copied()
}

/// Containers and pods whose working set is above 90% of their limit.
fn near_limit(inputs: &Inputs<'_>, findings: &mut Vec<Finding>) {
    for c in inputs
        .snapshot
        .cgroups
        .iter()
        .filter(|c| matches!(c.kind, CgroupKind::Pod | CgroupKind::Container))
    {
        let (Some(limit), Some(ws)) = (c.memory.limit, c.memory.working_set_kubelet) else {
            continue;
        };
        let share = percent(ws, limit);
        if share <= NEAR_LIMIT_PERCENT {
            continue;
        }
        let mut f = Finding::about(Kind::NearLimit, Severity::Warning, c);
        f.summary = format!(
            "Working set {} is {share:.0}% of the {} limit: the next growth is an OOM kill.",
            mib(ws),
            mib(limit)
        );
        f.evidence = vec![
            Evidence::bytes(
                "working_set_kubelet",
                ws,
                "memory usage − memory.stat inactive_file",
            ),
            Evidence::bytes("limit", limit, "memory.max / memory.limit_in_bytes"),
            Evidence::percent("of_limit", share, "working_set_kubelet / limit"),
        ];
        if let Some(anon) = c.memory.anon {
            f.evidence
                .push(Evidence::bytes("anon", anon, "memory.stat anon / rss"));
        }
        if let Some(active_file) = c.memory.active_file {
            f.evidence.push(Evidence::bytes(
                "active_file",
                active_file,
                "memory.stat active_file",
            ));
        }
        let peak = crate::sizing::measure(&c.memory);
        let new_limit = crate::sizing::suggest(&peak).map(|s| s.limit.max(limit));
        let mut set = Vec::new();
        let mut text = String::new();
        if let Some(new_limit) = new_limit.filter(|&l| l > limit) {
            text = format!("Raise the limit to {} (peak × 1.3)", mib(new_limit));
            set.push(Setting::new(
                "resources.limits.memory",
                spec_target(c),
                new_limit,
            ));
        }
        let request = request_of(c);
        let guaranteed = c.qos_class == Some(QosClass::Guaranteed);
        if let Some(qos) = memory_qos(request, Some(limit), None, &inputs.settings)
            .filter(|_| !guaranteed && c.kind == CgroupKind::Container)
        {
            text.push_str(if text.is_empty() { "S" } else { "; or s" });
            text.push_str(&format!(
                "et memory QoS (KEP-2570) so the kernel reclaims and throttles at {} before the limit kills",
                mib(qos.high)
            ));
            set.push(Setting::new("memory.high", Some(c.path.clone()), qos.high));
            set.push(Setting::new("memory.min", Some(c.path.clone()), qos.min));
        }
        if text.is_empty() {
            text = "Raise the limit, or find what grows.".into();
        } else {
            text.push('.');
        }
        f.remedy = Remedy {
            text,
            set,
            command: None,
        };
        findings.push(f);
    }
}

fn request_of(c: &CgroupReport) -> Option<u64> {
    let facts = c.workload.as_ref()?;
    match c.kind {
        CgroupKind::Container => facts.container_memory_request,
        _ => facts.pod_memory_request,
    }
}

/// Signals within the margin of their threshold, or past it.
fn near_signals<'a>(inputs: &Inputs<'a>) -> Vec<&'a SignalReport> {
    inputs
        .eviction
        .signals
        .iter()
        .filter(|s| s.near(inputs.settings.eviction_margin))
        .collect()
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::MemoryAvailable => "memory.available",
        Signal::AllocatableMemoryAvailable => "allocatableMemory.available",
    }
}

fn pod_finding(kind: Kind, severity: Severity, index: &Index<'_>, pod: &RankedPod) -> Finding {
    match cgroup(index, pod.cgroup.as_deref()) {
        Some(c) => {
            let mut f = Finding::about(kind, severity, c);
            f.namespace = pod.namespace.clone().or(f.namespace);
            f.pod = pod.pod.clone().or(f.pod);
            f
        }
        None => {
            let mut f = Finding::about_node(kind, severity);
            f.subject = SubjectKind::Pod;
            f.namespace = pod.namespace.clone();
            f.pod = pod.pod.clone();
            f.pod_uid = Some(pod.pod_uid.clone());
            f
        }
    }
}

fn eviction_next(
    inputs: &Inputs<'_>,
    index: &Index<'_>,
    near: &[&SignalReport],
    findings: &mut Vec<Finding>,
) {
    let Some(signal) = near.iter().min_by_key(|s| s.margin) else {
        return;
    };
    let Some(pod) = inputs
        .eviction
        .next
        .and_then(|i| inputs.eviction.pods.get(i))
    else {
        return;
    };
    let severity = if signal.met {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut f = pod_finding(Kind::EvictionNext, severity, index, pod);
    let name = signal_name(signal.signal);
    let why = match (pod.exceeds_request, pod.request) {
        (Some(true), Some(r)) if r > 0 => {
            format!("its working set is above its {} request", mib(r))
        }
        (Some(true), _) => "it has no memory request".into(),
        _ => "it is the largest over its request among the lowest priority".into(),
    };
    f.summary = if signal.met {
        format!(
            "{name} is {} under kubelet's {} threshold: kubelet is evicting, and this pod goes first because {why}.",
            mib(signal.threshold.saturating_sub(signal.available)),
            mib(signal.threshold)
        )
    } else {
        format!(
            "{name} is {} from kubelet's {} threshold; when it is crossed this pod is evicted first because {why}.",
            mib(signal.available.saturating_sub(signal.threshold)),
            mib(signal.threshold)
        )
    };
    let source = match signal.signal {
        Signal::MemoryAvailable => "MemTotal − (root usage − inactive_file)",
        Signal::AllocatableMemoryAvailable => {
            "kubepods limit (or allocatable) − (kubepods usage − inactive_file)"
        }
    };
    f.evidence = vec![
        Evidence::text("signal", name, "kubelet eviction signal"),
        Evidence::bytes("available", signal.available, source),
        Evidence::bytes(
            "threshold",
            signal.threshold,
            "kubelet --eviction-hard (memglass --eviction-threshold)",
        ),
        Evidence::bytes("capacity", signal.capacity, source),
        Evidence::count("rank", pod.rank as u64, "kubelet rankMemoryPressure"),
        Evidence::text(
            "priority",
            pod.priority.to_string(),
            "spec.priority (unset = 0)",
        ),
    ];
    if let Some(ws) = pod.working_set {
        f.evidence.push(Evidence::bytes(
            "working_set_kubelet",
            ws,
            "pod cgroup usage − inactive_file",
        ));
    }
    if let Some(request) = pod.request {
        f.evidence.push(Evidence::bytes(
            "request",
            request,
            "Σ spec.containers[].resources.requests.memory",
        ));
    }
    let mut set = Vec::new();
    if let (Some(ws), true) = (pod.working_set, pod.exceeds_request == Some(true)) {
        let request = ws.div_ceil(1 << 20) << 20;
        set.push(Setting::new(
            "resources.requests.memory",
            named(pod.namespace.as_deref(), pod.pod.as_deref()),
            request,
        ));
    }
    f.remedy = Remedy {
        text: "Raise the pod's memory request to at least its working set (pods within their request are evicted last), give it a higher priority class, or free memory on the node.".into(),
        set,
        command: Some("memglass eviction".into()),
    };
    findings.push(f);
}

fn named(namespace: Option<&str>, pod: Option<&str>) -> Option<String> {
    Some(format!("{}/{}", namespace?, pod?))
}

fn exceeds_request(
    inputs: &Inputs<'_>,
    index: &Index<'_>,
    pressure_near: bool,
    findings: &mut Vec<Finding>,
) {
    let next = inputs.eviction.next;
    for (i, pod) in inputs.eviction.pods.iter().enumerate() {
        let (Some(true), Some(request), Some(ws)) =
            (pod.exceeds_request, pod.request, pod.working_set)
        else {
            continue;
        };
        // The pod named by eviction_next already says so; BestEffort pods get no_request.
        if request == 0 || !pod.requests_known || (pressure_near && next == Some(i)) {
            continue;
        }
        let severity = if pressure_near {
            Severity::Warning
        } else {
            Severity::Info
        };
        let mut f = pod_finding(Kind::ExceedsRequest, severity, index, pod);
        f.summary = format!(
            "Working set {} is above the {} request: under memory pressure kubelet evicts such pods first.",
            mib(ws),
            mib(request)
        );
        f.evidence = vec![
            Evidence::bytes(
                "working_set_kubelet",
                ws,
                "pod cgroup usage − inactive_file",
            ),
            Evidence::bytes(
                "request",
                request,
                "Σ spec.containers[].resources.requests.memory",
            ),
            Evidence::count(
                "eviction_rank",
                pod.rank as u64,
                "kubelet rankMemoryPressure",
            ),
        ];
        let suggested = inputs
            .sizing
            .pods
            .iter()
            .find(|p| p.pod_uid == pod.pod_uid)
            .and_then(|p| p.suggested)
            .map(|s| s.request)
            .unwrap_or(ws);
        f.remedy = Remedy {
            text: format!(
                "Raise the memory request to {} (peak working set × 1.15).",
                mib(suggested)
            ),
            set: vec![Setting::new(
                "resources.requests.memory",
                named(pod.namespace.as_deref(), pod.pod.as_deref()),
                suggested,
            )],
            command: None,
        };
        findings.push(f);
    }
}

/// Pending pods (bound to this node, or in `--pods` without a node) that request more
/// memory than allocatable − Σ requests of the node's pods.
fn pending(inputs: &Inputs<'_>, findings: &mut Vec<Finding>) {
    let Some(allocatable) = inputs
        .snapshot
        .kubernetes_node
        .as_ref()
        .and_then(|n| n.allocatable_memory)
    else {
        return;
    };
    let node_name = inputs
        .snapshot
        .kubernetes_node
        .as_ref()
        .map(|n| n.name.as_str());
    let mut pending: Vec<&PodInfo> = inputs
        .directory
        .pods()
        .filter(|p| p.phase.as_deref() == Some("Pending"))
        .filter(|p| p.node_name.is_none() || p.node_name.as_deref() == node_name)
        .collect();
    pending.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for pod in pending {
        let request = pod.memory_request.unwrap_or(0);
        let requested: u64 = inputs
            .sizing
            .pods
            .iter()
            .filter(|p| p.requests_known && !p.pod_uid.eq_ignore_ascii_case(&pod.uid))
            .filter_map(|p| p.request)
            .fold(0, u64::saturating_add);
        let room = allocatable.saturating_sub(requested);
        if request == 0 || request <= room {
            continue;
        }
        let mut f = Finding::about_node(Kind::PendingNoRoom, Severity::Critical);
        f.subject = SubjectKind::Pod;
        f.namespace = Some(pod.namespace.clone()).filter(|n| !n.is_empty());
        f.pod = Some(pod.name.clone()).filter(|n| !n.is_empty());
        f.pod_uid = Some(pod.uid.clone());
        f.summary = format!(
            "Requests {} of memory but the node has {} left of its {} allocatable (the scheduler's \"Insufficient memory\").",
            mib(request),
            mib(room),
            mib(allocatable)
        );
        f.evidence = vec![
            Evidence::bytes(
                "request",
                request,
                "the pod's memory request as the scheduler counts it (PodRequests)",
            ),
            Evidence::bytes("allocatable", allocatable, "Node status.allocatable.memory"),
            Evidence::bytes(
                "requested",
                requested,
                "Σ memory requests of this node's non-terminated pods",
            ),
            Evidence::bytes("room", room, "allocatable − requested"),
        ];
        let mut holders: Vec<(&PodSizing, u64, u64)> = inputs
            .sizing
            .pods
            .iter()
            .filter(|p| p.verdicts.contains(&Verdict::OverRequested))
            .filter_map(|p| {
                let request = p.request?;
                let suggested = p.suggested?.request;
                (request > suggested).then_some((p, request, suggested))
            })
            .collect();
        holders.sort_by_key(|(_, request, suggested)| std::cmp::Reverse(request - suggested));
        let freed: u64 = holders.iter().map(|(_, r, s)| r - s).sum();
        let mut set = Vec::new();
        for (p, request, suggested) in holders.iter().take(HOLDERS_LISTED) {
            let who = named(p.namespace.as_deref(), p.pod.as_deref())
                .unwrap_or_else(|| format!("pod {}", p.pod_uid));
            f.evidence.push(Evidence::bytes(
                &format!("over_requested:{who}"),
                request - suggested,
                format!(
                    "requests {}, peak working set × 1.15 is {}",
                    mib(*request),
                    mib(*suggested)
                ),
            ));
            set.push(Setting::new(
                "resources.requests.memory",
                Some(who),
                *suggested,
            ));
        }
        let text = if holders.is_empty() {
            "No pod here requests much more than it uses: free room by moving pods, or schedule it on a larger node (memglass cluster pending shows which nodes fit).".to_owned()
        } else if room.saturating_add(freed) >= request {
            format!(
                "Over-requested pods hold {} they do not use; lowering their requests to their peak × 1.15 makes room.",
                mib(freed)
            )
        } else {
            format!(
                "Over-requested pods hold {} they do not use, not enough on its own: lower their requests and move pods, or use a larger node.",
                mib(freed)
            )
        };
        f.remedy = Remedy {
            text,
            set,
            command: Some("memglass cluster pending".into()),
        };
        findings.push(f);
    }
}

/// The sizing verdicts, per container where the container's own request and limit are
/// known (the values to set are the container's), else per pod.
fn verdicts(inputs: &Inputs<'_>, index: &Index<'_>, findings: &mut Vec<Finding>) {
    let allocatable = inputs
        .snapshot
        .kubernetes_node
        .as_ref()
        .and_then(|n| n.allocatable_memory);
    for pod in &inputs.sizing.pods {
        let containers: Vec<&ContainerSizing> =
            pod.containers.iter().filter(|c| c.requests_known).collect();
        if containers.is_empty() {
            if let Some(c) = cgroup(index, pod.cgroup.as_deref()) {
                for verdict in &pod.verdicts {
                    let sizing = Sized {
                        request: pod.request,
                        limit: pod.limit,
                        measured: pod.measured,
                        suggested: pod.suggested,
                    };
                    if let Some(f) = verdict_finding(*verdict, c, &sizing, allocatable, inputs) {
                        findings.push(f);
                    }
                }
            }
            continue;
        }
        for container in containers {
            let Some(c) = cgroup(index, Some(&container.cgroup)) else {
                continue;
            };
            let sizing = Sized {
                request: container.request,
                limit: container.limit,
                measured: container.measured,
                suggested: container.suggested,
            };
            for verdict in &container.verdicts {
                if let Some(f) = verdict_finding(*verdict, c, &sizing, allocatable, inputs) {
                    findings.push(f);
                }
            }
        }
    }
}

/// A pod's or container's sizing figures.
struct Sized {
    request: Option<u64>,
    limit: Option<u64>,
    measured: crate::sizing::Measured,
    suggested: Option<crate::sizing::Suggestion>,
}

fn verdict_finding(
    verdict: Verdict,
    c: &CgroupReport,
    sizing: &Sized,
    allocatable: Option<u64>,
    inputs: &Inputs<'_>,
) -> Option<Finding> {
    let (kind, severity) = match verdict {
        Verdict::OverRequested => (Kind::OverRequested, Severity::Info),
        Verdict::UnderRequested => (Kind::UnderRequested, Severity::Warning),
        Verdict::NoRequest => (Kind::NoRequest, Severity::Warning),
        Verdict::NoLimit => (Kind::NoLimit, Severity::Info),
        // near_limit is judged on the working set now (above); fits is no finding.
        Verdict::NearLimit | Verdict::Fits => return None,
    };
    let mut f = Finding::about(kind, severity, c);
    let peak = sizing.measured.peak_working_set;
    let suggested = sizing.suggested;
    let target = spec_target(c);
    f.evidence.push(Evidence::bytes(
        "working_set_kubelet",
        sizing.measured.working_set.unwrap_or(0),
        "usage − memory.stat inactive_file",
    ));
    if let Some(peak) = peak {
        f.evidence.push(Evidence::bytes(
            "peak_working_set",
            peak,
            "max(working set, memory.peak − inactive_file)",
        ));
    }
    if let Some(request) = sizing.request {
        f.evidence.push(Evidence::bytes(
            "request",
            request,
            "resources.requests.memory",
        ));
    }
    if let Some(limit) = sizing.limit {
        f.evidence
            .push(Evidence::bytes("limit", limit, "resources.limits.memory"));
    }
    let peak_text = mib(peak.unwrap_or(0));
    match kind {
        Kind::OverRequested => {
            let s = suggested?;
            f.summary = format!(
                "Requests {} but its working set peaked at {}: the rest is held from the scheduler for nothing.",
                mib(sizing.request.unwrap_or(0)),
                peak_text
            );
            f.remedy = request_remedy(s.request, target, "Lower the request to");
        }
        Kind::UnderRequested => {
            let s = suggested?;
            f.summary = format!(
                "Uses more than its {} request (working set peaked at {}): kubelet evicts it first under pressure, and the scheduler over-packs the node.",
                mib(sizing.request.unwrap_or(0)),
                peak_text
            );
            f.remedy = request_remedy(s.request, target, "Raise the request to");
        }
        Kind::NoRequest => {
            f.summary = format!(
                "Has no memory request yet uses {}: it counts 0 against allocatable and is among the first evicted.",
                mib(sizing.measured.working_set.unwrap_or(0))
            );
            f.remedy = match suggested {
                Some(s) => request_remedy(s.request, target, "Set a request of"),
                None => Remedy {
                    text: "Set a memory request.".into(),
                    ..Remedy::default()
                },
            };
        }
        Kind::NoLimit => {
            f.summary = format!(
                "Has no memory limit (peak working set {peak_text}): it can grow until the node runs short and takes others down with it."
            );
            let mut remedy = match suggested {
                Some(s) => Remedy {
                    text: format!("Set a limit of {} (peak × 1.3).", mib(s.limit)),
                    set: vec![Setting::new("resources.limits.memory", target, s.limit)],
                    command: None,
                },
                None => Remedy {
                    text: "Set a memory limit.".into(),
                    ..Remedy::default()
                },
            };
            if c.kind == CgroupKind::Container {
                if let Some(qos) = memory_qos(sizing.request, None, allocatable, &inputs.settings) {
                    remedy.text.push_str(&format!(
                        " Without a limit, memory QoS (KEP-2570) would throttle it at {} (from node allocatable).",
                        mib(qos.high)
                    ));
                    remedy
                        .set
                        .push(Setting::new("memory.high", Some(c.path.clone()), qos.high));
                }
            }
            f.remedy = remedy;
        }
        _ => return None,
    }
    Some(f)
}

fn request_remedy(bytes: u64, target: Option<String>, verb: &str) -> Remedy {
    Remedy {
        text: format!("{verb} {} (peak working set × 1.15).", mib(bytes)),
        set: vec![Setting::new("resources.requests.memory", target, bytes)],
        command: None,
    }
}

/// `namespace/pod/container` (or `namespace/pod`) of a named cgroup.
pub(super) fn spec_target(cgroup: &CgroupReport) -> Option<String> {
    match (&cgroup.namespace, &cgroup.pod, &cgroup.container) {
        (Some(ns), Some(pod), Some(c)) => Some(format!("{ns}/{pod}/{c}")),
        (Some(ns), Some(pod), None) => Some(format!("{ns}/{pod}")),
        _ => None,
    }
}
