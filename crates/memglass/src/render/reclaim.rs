//! `memglass reclaim` output: the `memglass.reclaim/v1` JSON document and a short
//! before/after table.

use std::io::Write;

use memglass_kernel::cgroup::CgroupMemory;
use serde::Serialize;

use crate::cmd::reclaim::{Outcome, SwapGuard, CHUNK};
use crate::render::human::bytes;

/// Schema name and version; fields may be added, never renamed.
pub const RECLAIM_SCHEMA: &str = "memglass.reclaim/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    taken_at: String,
    cgroup: &'a str,
    kind: &'static str,
    pod_uid: Option<&'a str>,
    container_id: Option<&'a str>,
    namespace: Option<&'a str>,
    pod: Option<&'a str>,
    container: Option<&'a str>,
    requested: u64,
    reclaimed: u64,
    reclaimed_source: &'static str,
    complete: bool,
    stop: &'static str,
    reason: String,
    swappiness_zero: bool,
    swap_guard: &'static str,
    swap_max_zero_at: Option<&'a str>,
    writes: u32,
    chunk: u64,
    elapsed_seconds: f64,
    timeout_seconds: f64,
    before: Figures,
    after: Figures,
}

/// The figures compared before and after (bytes; null where the kernel has no such
/// counter).
#[derive(Serialize)]
struct Figures {
    usage: Option<u64>,
    anon: Option<u64>,
    active_anon: Option<u64>,
    inactive_anon: Option<u64>,
    file: Option<u64>,
    active_file: Option<u64>,
    inactive_file: Option<u64>,
    shmem: Option<u64>,
    file_mapped: Option<u64>,
    file_dirty: Option<u64>,
    swap: Option<u64>,
}

impl Figures {
    fn of(m: &CgroupMemory) -> Figures {
        Figures {
            usage: m.usage,
            anon: m.anon,
            active_anon: m.active_anon,
            inactive_anon: m.inactive_anon,
            file: m.file,
            active_file: m.active_file,
            inactive_file: m.inactive_file,
            shmem: m.shmem,
            file_mapped: m.file_mapped,
            file_dirty: m.file_dirty,
            swap: m.swap,
        }
    }
}

/// The document as a JSON value (the agent's answer is the same document).
pub fn document(outcome: &Outcome) -> anyhow::Result<serde_json::Value> {
    let t = &outcome.target;
    let document = Document {
        schema: RECLAIM_SCHEMA,
        taken_at: humantime::format_rfc3339_seconds(outcome.started_at).to_string(),
        cgroup: &t.path,
        kind: t.kind.as_str(),
        pod_uid: t.pod_uid.as_deref(),
        container_id: t.container_id.as_deref(),
        namespace: t.namespace.as_deref(),
        pod: t.pod.as_deref(),
        container: t.container.as_deref(),
        requested: outcome.requested,
        reclaimed: outcome.reclaimed,
        reclaimed_source: outcome.reclaimed_source.as_str(),
        complete: outcome.complete(),
        stop: outcome.stop.as_str(),
        reason: outcome.reason(),
        swappiness_zero: outcome.swap_guard == SwapGuard::SwappinessZero,
        swap_guard: outcome.swap_guard.as_str(),
        swap_max_zero_at: match &outcome.swap_guard {
            SwapGuard::SwapMaxZero(at) => Some(at),
            _ => None,
        },
        writes: outcome.writes,
        chunk: CHUNK,
        elapsed_seconds: outcome.elapsed.as_secs_f64(),
        timeout_seconds: outcome.timeout.as_secs_f64(),
        before: Figures::of(&outcome.before),
        after: Figures::of(&outcome.after),
    };
    Ok(serde_json::to_value(document)?)
}

pub fn json(out: &mut impl Write, outcome: &Outcome) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, &document(outcome)?)?;
    writeln!(out)?;
    Ok(())
}

pub fn table(out: &mut impl Write, outcome: &Outcome) -> anyhow::Result<()> {
    let t = &outcome.target;
    let who = match (&t.namespace, &t.pod, &t.container) {
        (Some(ns), Some(pod), Some(c)) => format!(" ({ns}/{pod}, container {c})"),
        (Some(ns), Some(pod), None) => format!(" ({ns}/{pod})"),
        _ => String::new(),
    };
    writeln!(out, "RECLAIM {} {}{who}", t.kind.as_str(), t.path)?;
    writeln!(
        out,
        "requested {}, reclaimed {} in {:.2} s ({} write{} of at most {}): {}",
        bytes(Some(outcome.requested)),
        bytes(Some(outcome.reclaimed)),
        outcome.elapsed.as_secs_f64(),
        outcome.writes,
        if outcome.writes == 1 { "" } else { "s" },
        bytes(Some(CHUNK)),
        if outcome.complete() {
            "complete".to_owned()
        } else {
            outcome.reason()
        }
    )?;
    let guard = match &outcome.swap_guard {
        SwapGuard::SwappinessZero => "swappiness=0 on every write".to_owned(),
        SwapGuard::SwapMaxZero(at) => format!("memory.swap.max is 0 at {at}"),
        SwapGuard::NoSwap => "the node has no swap (SwapTotal 0)".to_owned(),
    };
    writeln!(out, "anonymous memory kept out of swap: {guard}")?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<16} {:>12} {:>12} {:>13}",
        "", "BEFORE", "AFTER", "CHANGE"
    )?;
    let (b, a) = (&outcome.before, &outcome.after);
    let rows: [(&str, Option<u64>, Option<u64>); 9] = [
        ("usage", b.usage, a.usage),
        ("anon", b.anon, a.anon),
        ("file", b.file, a.file),
        ("  active_file", b.active_file, a.active_file),
        ("  inactive_file", b.inactive_file, a.inactive_file),
        ("  shmem", b.shmem, a.shmem),
        ("  file_dirty", b.file_dirty, a.file_dirty),
        ("  file_mapped", b.file_mapped, a.file_mapped),
        ("swap", b.swap, a.swap),
    ];
    for (name, before, after) in rows {
        let change = match (before, after) {
            (Some(before), Some(after)) => change(before, after),
            _ => "-".to_owned(),
        };
        writeln!(
            out,
            "{name:<16} {:>12} {:>12} {change:>13}",
            bytes(before),
            bytes(after)
        )?;
    }
    Ok(())
}

fn change(before: u64, after: u64) -> String {
    if after >= before {
        format!("+{}", bytes(Some(after - before)))
    } else {
        format!("−{}", bytes(Some(before - after)))
    }
}
