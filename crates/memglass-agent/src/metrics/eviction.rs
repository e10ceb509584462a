//! `/metrics` families of kubelet's eviction view and of the request/limit sizing
//! (docs/metrics.md, "Eviction" and "Requests and limits"), from the reports the collector
//! computed with `memglass eviction`'s and `memglass requests`' analyses.
//!
//! Cardinality: one series per signal, per pod and per container, except the verdicts,
//! which have one series per verdict a pod or container has now (at most six, a fixed
//! set; usually one or two).

use std::collections::HashMap;

use memglass_analyse::eviction::{EvictionReport, Signal};
use memglass_analyse::sizing::{
    self, ContainerSizing, PodSizing, SizingReport, Suggestion, Verdict,
};

use super::encode::{labels, Encoder, Kind};

/// The label sets of the cgroups of the report, by path (pods and containers take the
/// labels of their cgroup, so they join the `memglass_cgroup_*` series one to one).
pub type LabelsByPath<'a> = HashMap<&'a str, &'a str>;

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::MemoryAvailable => "memory.available",
        Signal::AllocatableMemoryAvailable => "allocatableMemory.available",
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::OverRequested => "over_requested",
        Verdict::UnderRequested => "under_requested",
        Verdict::NoRequest => "no_request",
        Verdict::NoLimit => "no_limit",
        Verdict::NearLimit => "near_limit",
        Verdict::Fits => "fits",
    }
}

/// The labels of a pod: its cgroup's, or (a pod bound here without a cgroup yet) its
/// names with `container` and `cgroup` empty.
fn pod_labels(
    by_path: &LabelsByPath<'_>,
    cgroup: Option<&str>,
    namespace: Option<&str>,
    pod: Option<&str>,
) -> String {
    match cgroup.and_then(|path| by_path.get(path)) {
        Some(labels) => (*labels).to_owned(),
        None => labels(&[
            ("namespace", namespace.unwrap_or("")),
            ("pod", pod.unwrap_or("")),
            ("container", ""),
            ("cgroup", cgroup.unwrap_or("")),
        ]),
    }
}

/// One label set per pod, `None` for a repeat: two pods without a cgroup (bound here,
/// not started) that share a namespace and name would otherwise make duplicate series.
fn unique(sets: impl Iterator<Item = String>) -> Vec<Option<String>> {
    let mut seen = std::collections::HashSet::new();
    sets.map(|set| seen.insert(set.clone()).then_some(set))
        .collect()
}

/// The signals and the ranking.
pub fn write_eviction(e: &mut Encoder<'_>, report: &EvictionReport, by_path: &LabelsByPath<'_>) {
    let signal_labels: Vec<String> = report
        .signals
        .iter()
        .map(|s| labels(&[("signal", signal_name(s.signal)), ("cgroup", &s.cgroup)]))
        .collect();
    let signals = report.signals.iter().zip(&signal_labels);
    e.family(
        "memglass_eviction_signal_available_bytes",
        Kind::Gauge,
        "kubelet's eviction signal: capacity - working set of the cgroup (memory.available: MemTotal and the root; allocatableMemory.available: the kubepods limit or node allocatable and kubepods).",
    );
    for (s, l) in signals.clone() {
        e.sample(l, None, s.available);
    }
    e.family(
        "memglass_eviction_signal_threshold_bytes",
        Kind::Gauge,
        "The hard eviction threshold of the signal (--eviction-threshold; kubelet evicts when available < threshold).",
    );
    for (s, l) in signals.clone() {
        e.sample(l, None, s.threshold);
    }
    e.family(
        "memglass_eviction_signal_capacity_bytes",
        Kind::Gauge,
        "What the signal's available is taken from (MemTotal, the kubepods limit or node allocatable).",
    );
    for (s, l) in signals {
        e.sample(l, None, s.capacity);
    }

    let pod_label_sets = unique(report.pods.iter().map(|p| {
        pod_labels(
            by_path,
            p.cgroup.as_deref(),
            p.namespace.as_deref(),
            p.pod.as_deref(),
        )
    }));
    let pods = report
        .pods
        .iter()
        .enumerate()
        .zip(&pod_label_sets)
        .filter_map(|((index, p), l)| l.as_deref().map(|l| (index, p, l)));
    e.family(
        "memglass_pod_eviction_rank",
        Kind::Gauge,
        "The pod's place in kubelet's eviction order (1 = first): working set above request first, then lower priority, then larger working set - request.",
    );
    for (_, p, l) in pods.clone() {
        e.sample(l, None, p.rank);
    }
    e.family(
        "memglass_pod_eviction_evictable",
        Kind::Gauge,
        "1 when kubelet may evict the pod, 0 for critical, static and mirror pods (they keep their rank).",
    );
    for (_, p, l) in pods.clone() {
        e.sample(l, None, u8::from(p.evictable));
    }
    e.family(
        "memglass_pod_eviction_next",
        Kind::Gauge,
        "1 for the pod kubelet would evict next (the first evictable one in its order), else 0.",
    );
    for (index, _, l) in pods.clone() {
        e.sample(l, None, u8::from(report.next == Some(index)));
    }
    e.family(
        "memglass_pod_memory_exceeds_request",
        Kind::Gauge,
        "1 when the pod's working set (usage - inactive_file) exceeds its memory request (none counts 0); absent without stats.",
    );
    for (_, p, l) in pods.clone() {
        if let Some(exceeds) = p.exceeds_request {
            e.sample(l, None, u8::from(exceeds));
        }
    }
    e.family(
        "memglass_pod_memory_usage_over_request_bytes",
        Kind::Gauge,
        "The pod's working set - its memory request (signed; kubelet's last ranking key); absent without stats.",
    );
    for (_, p, l) in pods.clone() {
        if let Some(over) = p.usage_over_request {
            e.sample(l, None, over);
        }
    }
    e.family(
        "memglass_pod_priority",
        Kind::Gauge,
        "The priority kubelet ranks the pod by (spec.priority; 0 when unset or unknown).",
    );
    for (_, p, l) in pods {
        e.sample(l, None, p.priority);
    }
}

/// Requests, limits, verdicts and suggestions of the pods and their containers, and the
/// node's scheduling sums.
/// Containers' figures only with `containers` (the `container_sizing` family).
pub fn write_sizing(
    e: &mut Encoder<'_>,
    report: &SizingReport,
    by_path: &LabelsByPath<'_>,
    containers: bool,
) {
    let node = &report.node;
    e.family(
        "memglass_node_allocatable_memory_bytes",
        Kind::Gauge,
        "The node's allocatable memory (status.allocatable.memory from --node or the API): what the scheduler fills with requests.",
    );
    if let Some(allocatable) = node.allocatable {
        e.sample("", None, allocatable);
    }
    e.family(
        "memglass_node_memory_requests_bytes",
        Kind::Gauge,
        "Sum of the memory requests of this node's pods whose requests are known (the scheduler's view).",
    );
    e.sample("", None, node.requests);
    e.family(
        "memglass_node_memory_limits_bytes",
        Kind::Gauge,
        "Sum of the memory limits of this node's pods that have one (overcommit when above allocatable).",
    );
    e.sample("", None, node.limits);

    let pod_label_sets = unique(report.pods.iter().map(|p| {
        pod_labels(
            by_path,
            p.cgroup.as_deref(),
            p.namespace.as_deref(),
            p.pod.as_deref(),
        )
    }));
    let pods: Vec<_> = report
        .pods
        .iter()
        .zip(&pod_label_sets)
        .filter_map(|(p, l)| l.as_deref().map(|l| (p, l)))
        .collect();
    // Containers with a cgroup, not the sandbox (it has no spec, no suggestion).
    let with_containers = containers;
    let containers: Vec<_> = report
        .pods
        .iter()
        .filter(|_| with_containers)
        .flat_map(|p| p.containers.iter().map(move |c| (p, c)))
        .filter(|(_, c)| !c.sandbox)
        .filter_map(|(_, c)| by_path.get(c.cgroup.as_str()).map(|l| (c, *l)))
        .collect();

    let request_rule = format!(
        "= peak working set + {}%, rounded up to a MiB (memglass requests)",
        sizing::REQUEST_HEADROOM_PERCENT
    );
    let limit_rule = format!(
        "= max(peak usage x {}%, suggested request), rounded up to a MiB (memglass requests)",
        sizing::LIMIT_PEAK_PERCENT
    );
    // (name suffix, what, pod help, container help, the figure): pods and containers
    // carry the same four figures.
    let figures: [(&str, &str, &str, &str, FigureOf); 4] = [
        (
            "memory_request_bytes",
            "memory request",
            "(its effective request, from --pods or the API; absent when none or unknown)",
            "(from --pods or the API; absent when none or unknown)",
            |f| f.request.filter(|_| f.known),
        ),
        (
            "memory_limit_bytes",
            "memory limit in the spec",
            "(a pod has one when every container does; absent when none or unknown)",
            "(from --pods or the API; absent when none or unknown)",
            |f| f.limit.filter(|_| f.known),
        ),
        (
            "memory_suggested_request_bytes",
            "suggested memory request",
            &request_rule,
            &request_rule,
            |f| f.suggested.map(|s| s.request),
        ),
        (
            "memory_suggested_limit_bytes",
            "suggested memory limit",
            &limit_rule,
            &limit_rule,
            |f| f.suggested.map(|s| s.limit),
        ),
    ];
    for (suffix, what, pod_how, container_how, figure) in figures {
        e.family(
            &format!("memglass_pod_{suffix}"),
            Kind::Gauge,
            &format!("The pod's {what} {pod_how}."),
        );
        for (p, l) in &pods {
            if let Some(value) = figure(Figures::of_pod(p)) {
                e.sample(l, None, value);
            }
        }
        e.family(
            &format!("memglass_container_{suffix}"),
            Kind::Gauge,
            &format!("The container's {what} {container_how}."),
        );
        for (c, l) in &containers {
            if let Some(value) = figure(Figures::of_container(c)) {
                e.sample(l, None, value);
            }
        }
    }

    e.family(
        "memglass_pod_memory_sizing_verdict",
        Kind::Gauge,
        "1 for each verdict the pod's request and limit get against what was measured (over_requested, under_requested, no_request, no_limit, near_limit, fits); none when its requests are unknown.",
    );
    for (p, l) in &pods {
        for verdict in &p.verdicts {
            e.sample(l, Some(("verdict", verdict_name(*verdict))), 1);
        }
    }
    e.family(
        "memglass_container_memory_sizing_verdict",
        Kind::Gauge,
        "1 for each verdict the container's request and limit get against what was measured.",
    );
    for (c, l) in &containers {
        for verdict in &c.verdicts {
            e.sample(l, Some(("verdict", verdict_name(*verdict))), 1);
        }
    }
}

/// Picks one figure out of a pod's or a container's [`Figures`].
type FigureOf = fn(Figures) -> Option<u64>;

/// The request/limit figures a pod and a container both have.
#[derive(Clone, Copy)]
struct Figures {
    known: bool,
    request: Option<u64>,
    limit: Option<u64>,
    suggested: Option<Suggestion>,
}

impl Figures {
    fn of_pod(p: &PodSizing) -> Figures {
        Figures {
            known: p.requests_known,
            request: p.request,
            limit: p.limit,
            suggested: p.suggested,
        }
    }

    fn of_container(c: &ContainerSizing) -> Figures {
        Figures {
            known: c.requests_known,
            request: c.request,
            limit: c.limit,
            suggested: c.suggested,
        }
    }
}
