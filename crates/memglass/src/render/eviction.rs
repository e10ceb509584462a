//! `memglass eviction` output: the `memglass.eviction/v1` JSON document and the table.

use std::io::Write;
use std::time::SystemTime;

use memglass_analyse::eviction::{
    CapacitySource, EvictionReport, Protection, RankedPod, Signal, SignalReport, Threshold,
};
use serde::Serialize;

use crate::render::human::bytes;

/// Schema name and version; fields may be added, never renamed.
pub const EVICTION_SCHEMA: &str = "memglass.eviction/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    taken_at: String,
    threshold: &'a Threshold,
    signals: &'a [SignalReport],
    under_pressure: bool,
    next: Option<Pod<'a>>,
    pods: Vec<Pod<'a>>,
}

#[derive(Serialize)]
struct Pod<'a> {
    #[serde(flatten)]
    pod: &'a RankedPod,
    reason: String,
}

fn pod(pod: &RankedPod) -> Pod<'_> {
    Pod {
        pod,
        reason: reason(pod),
    }
}

pub fn json(
    out: &mut impl Write,
    report: &EvictionReport,
    taken_at: SystemTime,
) -> anyhow::Result<()> {
    let document = Document {
        schema: EVICTION_SCHEMA,
        taken_at: humantime::format_rfc3339_seconds(taken_at).to_string(),
        threshold: &report.threshold,
        signals: &report.signals,
        under_pressure: report.under_pressure,
        next: report.next.and_then(|i| report.pods.get(i)).map(pod),
        pods: report.pods.iter().map(pod).collect(),
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    Ok(())
}

/// One line saying where the pod stands in kubelet's order and why.
pub fn reason(pod: &RankedPod) -> String {
    let mut reason = match (pod.working_set, pod.usage_over_request) {
        (None, _) | (_, None) => {
            "no memory stats (no pod cgroup): kubelet ranks pods without stats first".to_owned()
        }
        (Some(ws), Some(over)) if over > 0 => match pod.request {
            Some(request) if request > 0 => format!(
                "exceeds its request by {}",
                bytes(Some(over.unsigned_abs()))
            ),
            _ => format!(
                "no memory request, so all {} count as excess",
                bytes(Some(ws))
            ),
        },
        (Some(_), Some(over)) => format!(
            "within its request ({} to spare)",
            bytes(Some(over.unsigned_abs()))
        ),
    };
    reason.push_str(&format!("; priority {}", pod.priority));
    if !pod.requests_known {
        reason.push_str(" (request and priority unknown: counted as kubelet's defaults, 0)");
    }
    if let Some(protection) = pod.protected {
        reason.push_str(match protection {
            Protection::CriticalPriority => "; never evicted: critical priority (≥ 2000000000)",
            Protection::StaticPod => "; never evicted: static pod",
            Protection::MirrorPod => "; never evicted: mirror of a static pod",
        });
    }
    reason
}

fn signed(value: i64) -> String {
    let sign = if value < 0 { "−" } else { "" };
    format!("{sign}{}", bytes(Some(value.unsigned_abs())))
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::MemoryAvailable => "memory.available",
        Signal::AllocatableMemoryAvailable => "allocatableMemory.available",
    }
}

pub fn table(out: &mut impl Write, report: &EvictionReport) -> anyhow::Result<()> {
    let threshold = match report.threshold {
        Threshold::Bytes(b) => bytes(Some(b)),
        Threshold::Percent(p) => format!("{p}% of capacity"),
        Threshold::Disabled => "none: 0% and 100% disable it, as in kubelet".into(),
    };
    writeln!(
        out,
        "EVICTION SIGNALS  (available = capacity − working set; kubelet evicts when available < threshold {threshold})"
    )?;
    if report.signals.is_empty() {
        writeln!(
            out,
            "  none could be observed (root usage unknown, no kubepods cgroup)"
        )?;
    }
    for s in &report.signals {
        let source = match s.capacity_source {
            CapacitySource::MemTotal => "MemTotal",
            CapacitySource::KubepodsLimit => "kubepods limit",
            CapacitySource::NodeAllocatable => "node allocatable",
        };
        writeln!(
            out,
            "  {:<28} {:<24} capacity {} ({source}) − working set {} = available {} · threshold {} · margin {}{}",
            signal_name(s.signal),
            s.cgroup,
            bytes(Some(s.capacity)),
            bytes(Some(s.working_set)),
            bytes(Some(s.available)),
            bytes(Some(s.threshold)),
            signed(s.margin),
            if s.met { "  ← MET: kubelet is evicting" } else { "" },
        )?;
    }
    writeln!(out)?;
    match report.next.and_then(|i| report.pods.get(i)) {
        Some(next) => writeln!(
            out,
            "NEXT TO GO{}: {} — {}",
            if report.under_pressure {
                " (now)"
            } else {
                " (when a threshold is crossed)"
            },
            name(next),
            reason(next)
        )?,
        None if report.pods.is_empty() => {
            writeln!(out, "NEXT TO GO: nobody: no pod cgroups on this node")?
        }
        None => writeln!(out, "NEXT TO GO: nobody: every pod is protected")?,
    }
    writeln!(out)?;
    writeln!(
        out,
        "KUBELET'S ORDER  (working set above request first, then lower priority, then larger working set − request)"
    )?;
    writeln!(
        out,
        "{:>4}  {:<48} {:<10} {:>11} {:>10} {:>11} {:>12}  REASON",
        "RANK", "POD", "QOS", "PRIORITY", "REQUEST", "WORKING_SET", "OVER_REQUEST"
    )?;
    for p in &report.pods {
        writeln!(
            out,
            "{:>4}  {:<48} {:<10} {:>11} {:>10} {:>11} {:>12}  {}",
            p.rank,
            name(p),
            p.qos_class.map(|q| q.as_str()).unwrap_or("-"),
            p.priority,
            bytes(p.request),
            bytes(p.working_set),
            p.usage_over_request
                .map(signed)
                .unwrap_or_else(|| "-".into()),
            reason(p),
        )?;
    }
    Ok(())
}

/// namespace/pod, or the UID when the name is unknown.
fn name(pod: &RankedPod) -> String {
    match (&pod.namespace, &pod.pod) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        _ => format!("pod {}", pod.pod_uid),
    }
}
