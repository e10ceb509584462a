//! `memglass cluster …` output: the `memglass.cluster-{top,oom,eviction,pending}/v1` JSON
//! documents (docs/json-format.md) and the tables.

use std::io::Write;

use memglass_cluster::eviction::NodeEviction;
use memglass_cluster::oom::Kills;
use memglass_cluster::top::{By, TopPod};
use memglass_kube::schedule::PendingPod;
use serde::Serialize;

use crate::render::human::bytes;

/// Schema names and versions; fields may be added, never renamed.
pub const TOP_SCHEMA: &str = "memglass.cluster-top/v1";
pub const OOM_SCHEMA: &str = "memglass.cluster-oom/v1";
pub const EVICTION_SCHEMA: &str = "memglass.cluster-eviction/v1";
pub const PENDING_SCHEMA: &str = "memglass.cluster-pending/v1";

fn write_json(out: &mut impl Write, document: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, document)?;
    writeln!(out)?;
    Ok(())
}

#[derive(Serialize)]
struct TopDocument<'a> {
    schema: &'static str,
    by: String,
    pods: &'a [TopPod],
}

pub fn top_json(out: &mut impl Write, by: &By, pods: &[TopPod]) -> anyhow::Result<()> {
    write_json(
        out,
        &TopDocument {
            schema: TOP_SCHEMA,
            by: by.to_string(),
            pods,
        },
    )
}

pub fn top_table(out: &mut impl Write, by: &By, pods: &[TopPod], url: &str) -> anyhow::Result<()> {
    if pods.is_empty() {
        writeln!(out, "no pod cgroups with {by} in {url}")?;
        return Ok(());
    }
    writeln!(
        out,
        "PODS BY {}  (pod cgroups of every node; ws = anon + active_file, ws_kubelet = usage − inactive_file)",
        by.to_string().to_uppercase()
    )?;
    writeln!(
        out,
        "{:<24} {:<48} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "NODE",
        "POD",
        by.to_string().to_uppercase(),
        "WS",
        "WS_KUBELET",
        "USAGE",
        "LIMIT"
    )?;
    for p in pods {
        writeln!(
            out,
            "{:<24} {:<48} {:>11} {:>11} {:>11} {:>11} {:>11}",
            p.node,
            format!("{}/{}", p.namespace, p.pod),
            bytes(Some(p.value)),
            bytes(p.working_set),
            bytes(p.working_set_kubelet),
            bytes(p.usage),
            p.limit.map_or_else(|| "none".into(), |l| bytes(Some(l))),
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct OomDocument<'a> {
    schema: &'static str,
    since: String,
    kills: &'a [Kills],
}

pub fn oom_json(out: &mut impl Write, since: &str, kills: &[Kills]) -> anyhow::Result<()> {
    write_json(
        out,
        &OomDocument {
            schema: OOM_SCHEMA,
            since: since.to_owned(),
            kills,
        },
    )
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

pub fn oom_table(out: &mut impl Write, since: &str, kills: &[Kills]) -> anyhow::Result<()> {
    if kills.is_empty() {
        writeln!(out, "no OOM kills in the last {since}")?;
        return Ok(());
    }
    writeln!(
        out,
        "OOM KILLS IN THE LAST {since}  (scope: whose limit was hit; cause: what filled it)"
    )?;
    writeln!(
        out,
        "{:>5}  {:<24} {:<48} {:<24} {:<10} {:<8}",
        "KILLS", "NODE", "POD", "CONTAINER", "SCOPE", "CAUSE"
    )?;
    for k in kills {
        let pod = if k.pod.is_empty() {
            format!("cgroup {}", or_dash(&k.cgroup))
        } else {
            format!("{}/{}", k.namespace, k.pod)
        };
        writeln!(
            out,
            "{:>5}  {:<24} {:<48} {:<24} {:<10} {:<8}",
            k.count,
            k.node,
            pod,
            or_dash(&k.container),
            or_dash(&k.scope),
            or_dash(&k.cause)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct EvictionDocument<'a> {
    schema: &'static str,
    nodes: &'a [NodeEviction],
}

pub fn eviction_json(out: &mut impl Write, nodes: &[NodeEviction]) -> anyhow::Result<()> {
    write_json(
        out,
        &EvictionDocument {
            schema: EVICTION_SCHEMA,
            nodes,
        },
    )
}

fn signed(value: i64) -> String {
    let sign = if value < 0 { "−" } else { "" };
    format!("{sign}{}", bytes(Some(value.unsigned_abs())))
}

pub fn eviction_table(out: &mut impl Write, nodes: &[NodeEviction]) -> anyhow::Result<()> {
    if nodes.is_empty() {
        writeln!(
            out,
            "no node exports eviction figures (memglass_eviction_signal_*)"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "NODES BY EVICTION MARGIN  (the tighter of kubelet's signals: available − threshold; kubelet evicts below 0)"
    )?;
    writeln!(
        out,
        "{:<24} {:<28} {:>11} {:>11} {:>11}  NEXT TO GO",
        "NODE", "SIGNAL", "AVAILABLE", "THRESHOLD", "MARGIN"
    )?;
    for n in nodes {
        let next = match &n.next {
            Some(p) if !p.pod.is_empty() => format!("{}/{}", p.namespace, p.pod),
            Some(p) => format!("cgroup {}", or_dash(&p.cgroup)),
            None => "nobody (no evictable pod)".into(),
        };
        writeln!(
            out,
            "{:<24} {:<28} {:>11} {:>11} {:>11}  {}{}",
            n.node,
            n.signal.as_deref().unwrap_or("-"),
            bytes(n.available),
            bytes(n.threshold),
            n.margin.map_or_else(|| "-".into(), signed),
            next,
            if n.margin.is_some_and(|m| m < 0) {
                "  ← kubelet is evicting"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct PendingDocument<'a> {
    schema: &'static str,
    pods: &'a [PendingPod],
}

pub fn pending_json(out: &mut impl Write, pods: &[PendingPod]) -> anyhow::Result<()> {
    write_json(
        out,
        &PendingDocument {
            schema: PENDING_SCHEMA,
            pods,
        },
    )
}

pub fn pending_table(
    out: &mut impl Write,
    pods: &[PendingPod],
    with_usage: bool,
) -> anyhow::Result<()> {
    if pods.is_empty() {
        writeln!(out, "no Pending pods")?;
        return Ok(());
    }
    for (i, p) in pods.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let fitting = p.nodes.iter().filter(|n| n.fits).count();
        writeln!(
            out,
            "PENDING {}/{}  requests memory {} · cpu {}m{} — fits {} of {} nodes",
            p.namespace,
            p.pod,
            bytes(Some(p.request)),
            p.cpu_request_millis,
            p.bound_to
                .as_deref()
                .map(|n| format!(" · bound to {n}"))
                .unwrap_or_default(),
            fitting,
            p.nodes.len()
        )?;
        writeln!(
            out,
            "  {:<24} {:>11} {:>11} {:>11} {:<5}{}  REASONS",
            "NODE",
            "ALLOCATABLE",
            "REQUESTED",
            "FREE",
            "FITS",
            if with_usage { "     UNUSED" } else { "" }
        )?;
        for n in &p.nodes {
            writeln!(
                out,
                "  {:<24} {:>11} {:>11} {:>11} {:<5}{}  {}",
                n.node,
                bytes(n.allocatable),
                bytes(Some(n.requested)),
                n.free.map_or_else(|| "-".into(), signed),
                if n.fits { "yes" } else { "no" },
                if with_usage {
                    format!(" {:>10}", bytes(n.unused_requests))
                } else {
                    String::new()
                },
                if n.reasons.is_empty() {
                    "-".into()
                } else {
                    n.reasons.join("; ")
                }
            )?;
            for s in &n.shrink {
                writeln!(
                    out,
                    "  {:<24} shrink {}/{}: request {} → {} (working set {}) frees {}",
                    "",
                    s.namespace,
                    s.pod,
                    bytes(Some(s.request)),
                    bytes(Some(s.suggested_request)),
                    bytes(s.working_set),
                    bytes(Some(s.frees)),
                )?;
            }
        }
    }
    Ok(())
}
