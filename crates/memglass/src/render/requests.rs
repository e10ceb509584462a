//! `memglass requests` output: the `memglass.requests/v1` JSON document and the table.

use std::io::Write;
use std::time::SystemTime;

use memglass_analyse::sizing::{
    self, ContainerSizing, NodeSizing, PodSizing, SizingReport, Suggestion, Verdict,
};
use serde::Serialize;

use crate::render::human::bytes;

/// Schema name and version; fields may be added, never renamed.
pub const REQUESTS_SCHEMA: &str = "memglass.requests/v1";

/// What a peak covers, said wherever suggestions are shown.
const HISTORY: &str =
    "peaks are since each cgroup was created (the container's start): a short history; \
                       check a longer one (memglass agent) before trusting the suggestions";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    taken_at: String,
    node: &'a NodeSizing,
    rule: Rule,
    pods: &'a [PodSizing],
}

/// The sizing rule's constants, so scripts can see what the suggestions mean.
#[derive(Serialize)]
struct Rule {
    request: &'static str,
    limit: &'static str,
    request_headroom_percent: u64,
    limit_peak_percent: u64,
    under_request_margin_percent: u64,
    over_request_factor: u64,
    over_request_min_bytes: u64,
    near_limit_percent: u64,
    history: &'static str,
}

fn rule() -> Rule {
    Rule {
        request: "peak working set × 1.15, rounded up to a MiB",
        limit: "max(peak usage × 1.3, suggested request), rounded up to a MiB",
        request_headroom_percent: sizing::REQUEST_HEADROOM_PERCENT,
        limit_peak_percent: sizing::LIMIT_PEAK_PERCENT,
        under_request_margin_percent: sizing::UNDER_REQUEST_MARGIN_PERCENT,
        over_request_factor: sizing::OVER_REQUEST_FACTOR,
        over_request_min_bytes: sizing::OVER_REQUEST_MIN_BYTES,
        near_limit_percent: sizing::NEAR_LIMIT_PERCENT,
        history: HISTORY,
    }
}

pub fn json(
    out: &mut impl Write,
    report: &SizingReport,
    taken_at: SystemTime,
) -> anyhow::Result<()> {
    let document = Document {
        schema: REQUESTS_SCHEMA,
        taken_at: humantime::format_rfc3339_seconds(taken_at).to_string(),
        node: &report.node,
        rule: rule(),
        pods: &report.pods,
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    Ok(())
}

fn percent_of(ratio: Option<f64>) -> String {
    ratio
        .map(|r| format!(" ({:.0}% of allocatable)", r * 100.0))
        .unwrap_or_default()
}

pub fn table(out: &mut impl Write, report: &SizingReport) -> anyhow::Result<()> {
    let n = &report.node;
    writeln!(
        out,
        "NODE {}  allocatable {} (capacity {})  — the scheduler places a pod when its memory request fits in allocatable − Σ requests; real usage plays no part",
        n.name.as_deref().unwrap_or("(name unknown)"),
        bytes(n.allocatable),
        bytes(n.capacity),
    )?;
    writeln!(
        out,
        "  Σ requests   {}{}",
        bytes(Some(n.requests)),
        percent_of(n.requests_over_allocatable)
    )?;
    match n.room {
        Some(room) if room >= 0 => writeln!(
            out,
            "  room left    {}: a pod requesting more stays Pending (\"Insufficient memory\")",
            bytes(Some(room.unsigned_abs()))
        )?,
        Some(room) => writeln!(
            out,
            "  room left    none: requests exceed allocatable by {}",
            bytes(Some(room.unsigned_abs()))
        )?,
        None => writeln!(
            out,
            "  room left    unknown (allocatable comes from --node or the API)"
        )?,
    }
    writeln!(
        out,
        "  Σ limits     {}{}{}",
        bytes(Some(n.limits)),
        percent_of(n.limits_over_allocatable),
        if n.pods_without_limit > 0 {
            format!(
                "; {} pods have no limit (unbounded, not counted)",
                n.pods_without_limit
            )
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "  Σ working set {} (what the pods really use now)",
        bytes(Some(n.working_set))
    )?;
    writeln!(
        out,
        "  {} pods{}",
        n.pods,
        if n.pods_without_requests_data > 0 {
            format!(
                ", {} without requests data (not in --pods or the API: no verdict)",
                n.pods_without_requests_data
            )
        } else {
            String::new()
        }
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<50} {:<10} {:>10} {:>10} {:>11} {:>10} {:>10}  {:<32} SUGGESTED (request / limit)",
        "POD / CONTAINER", "QOS", "REQUEST", "LIMIT", "WORKING_SET", "PEAK", "PEAK_WS", "VERDICT"
    )?;
    for pod in &report.pods {
        let name = match (&pod.namespace, &pod.pod) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            _ => format!("pod {}", pod.pod_uid),
        };
        row(
            out,
            &name,
            pod.qos_class.map(|q| q.as_str()).unwrap_or("-"),
            pod.request,
            pod.limit,
            &pod.measured,
            &verdict_text(&pod.verdicts, pod.requests_known),
            pod.suggested,
        )?;
        for c in pod.containers.iter().filter(|c| !c.sandbox) {
            row(
                out,
                &format!("  └ {}", container_name(c)),
                "",
                c.request,
                c.limit,
                &c.measured,
                &verdict_text(&c.verdicts, c.requests_known),
                c.suggested,
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "Suggested request = peak working set × 1.15; limit = max(peak usage × 1.3, request); both rounded up to a MiB. PEAK_WS estimates the working-set peak (peak usage − inactive_file now, at least the working set now)."
    )?;
    writeln!(out, "Note: {HISTORY}.")?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn row(
    out: &mut impl Write,
    name: &str,
    qos: &str,
    request: Option<u64>,
    limit: Option<u64>,
    measured: &sizing::Measured,
    verdict: &str,
    suggested: Option<Suggestion>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<50} {:<10} {:>10} {:>10} {:>11} {:>10} {:>10}  {:<32} {}",
        name,
        qos,
        bytes(request),
        bytes(limit),
        bytes(measured.working_set),
        bytes(measured.peak),
        bytes(measured.peak_working_set),
        verdict,
        suggested
            .map(|s| format!("{} / {}", bytes(Some(s.request)), bytes(Some(s.limit))))
            .unwrap_or_else(|| "-".into()),
    )
}

fn container_name(c: &ContainerSizing) -> String {
    c.container.clone().unwrap_or_else(|| {
        c.container_id
            .as_deref()
            .map(|id| id.chars().take(12).collect())
            .unwrap_or_else(|| c.cgroup.clone())
    })
}

fn verdict_text(verdicts: &[Verdict], known: bool) -> String {
    if !known {
        return "(requests unknown)".into();
    }
    verdicts
        .iter()
        .map(|v| match v {
            Verdict::OverRequested => "over-requested",
            Verdict::UnderRequested => "under-requested",
            Verdict::NoRequest => "no request",
            Verdict::NoLimit => "no limit",
            Verdict::NearLimit => "near its limit",
            Verdict::Fits => "fits",
        })
        .collect::<Vec<_>>()
        .join(", ")
}
