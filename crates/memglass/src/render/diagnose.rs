//! `memglass diagnose` output: findings for a person, or memglass.diagnose/v1 for scripts.

use std::io::Write;
use std::time::SystemTime;

use memglass_analyse::diagnose::{Document, Evidence, Finding, Value, SCHEMA};

use crate::render::human::bytes;

pub fn json(
    out: &mut impl Write,
    findings: &[Finding],
    taken_at: SystemTime,
) -> anyhow::Result<()> {
    let document = Document {
        schema: SCHEMA,
        taken_at: humantime::format_rfc3339_seconds(taken_at).to_string(),
        findings,
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    Ok(())
}

/// Each finding as a short block: severity, kind and subject; the sentence; the figures;
/// what to do.
pub fn text(out: &mut impl Write, findings: &[Finding], looked_at: &str) -> anyhow::Result<()> {
    if findings.is_empty() {
        writeln!(out, "No findings ({looked_at} looked at).")?;
        return Ok(());
    }
    for (i, f) in findings.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{:<8}  {}  {}",
            f.severity.as_str().to_uppercase(),
            f.kind.as_str(),
            f.subject_name()
        )?;
        if let Some(path) = f.cgroup.as_deref().filter(|p| *p != f.subject_name()) {
            writeln!(out, "          cgroup {path}")?;
        }
        writeln!(out, "  {}", f.summary)?;
        for e in &f.evidence {
            writeln!(out, "    {:<28} {:>12}  {}", e.name, value(e), e.source)?;
        }
        if !f.remedy.text.is_empty() {
            writeln!(out, "  → {}", f.remedy.text)?;
        }
        for s in &f.remedy.set {
            let target = s
                .target
                .as_deref()
                .map(|t| format!("  ({t})"))
                .unwrap_or_default();
            writeln!(out, "      set {} = {}{target}", s.name, s.quantity)?;
        }
        if let Some(command) = &f.remedy.command {
            writeln!(out, "      run {command}")?;
        }
    }
    let count = |s: &str| findings.iter().filter(|f| f.severity.as_str() == s).count();
    writeln!(
        out,
        "\n{} finding(s): {} critical, {} warning, {} info.",
        findings.len(),
        count("critical"),
        count("warning"),
        count("info")
    )?;
    Ok(())
}

fn value(e: &Evidence) -> String {
    match (&e.value, e.unit) {
        (Value::Integer(v), "bytes") => bytes(Some(*v)),
        (Value::Integer(v), "seconds") => {
            humantime::format_duration(std::time::Duration::from_secs(*v)).to_string()
        }
        (Value::Integer(v), _) => v.to_string(),
        (Value::Float(v), "percent") => format!("{v:.1}%"),
        (Value::Float(v), "bytes_per_second") => format!("{}/s", bytes(Some(v.max(0.0) as u64))),
        (Value::Float(v), _) => format!("{v}"),
        (Value::Text(t), _) => t.clone(),
    }
}
