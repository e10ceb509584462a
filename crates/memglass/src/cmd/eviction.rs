//! `memglass eviction`: who kubelet would evict next under memory pressure, and why.

use std::io::Write;
use std::time::SystemTime;

use clap::Args;
use memglass_analyse::eviction::{self, Margin, Threshold};

use crate::cli::{IdentityArgs, SourceArgs};
use crate::cmd::snapshot::{take_with_directory, warn_about_gaps};
use crate::render;

#[derive(Debug, Clone, Args)]
pub struct EvictionArgs {
    /// kubelet's hard eviction threshold for memory.available (and, as kubelet copies it,
    /// allocatableMemory.available): a quantity (100Mi, 1Gi, 500M) or a percentage of the
    /// signal's capacity (5%).
    #[arg(long, default_value = "100Mi", value_name = "QUANTITY|PERCENT", value_parser = parse_threshold)]
    pub threshold: Threshold,
    /// Emit the memglass.eviction/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

/// `100Mi` → bytes, `5%` → a percentage, as kubelet's `--eviction-hard` reads them
/// (`parseThresholdStatement`): `0%` and `100%` mean no threshold, other percentages must lie in
/// [0%, 100%] ([`Threshold::parse_percentage`]), and a quantity must be positive.
pub fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let text = text.trim();
    if text.ends_with('%') {
        return Threshold::parse_percentage(text);
    }
    match memglass_kube::parse_memory(text) {
        Ok(0) => Err(format!(
            "an eviction threshold must be positive, got {text:?}"
        )),
        Ok(bytes) => Ok(Threshold::Bytes(bytes)),
        Err(e) => Err(format!(
            "expected a quantity like 100Mi or a percentage like 5%: {e}"
        )),
    }
}

/// `20%` (of the threshold, ≥ 0) or a quantity (`50Mi`): how near its threshold a signal
/// counts as near.
pub fn parse_margin(text: &str) -> Result<Margin, String> {
    let text = text.trim();
    if let Some(percent) = text.strip_suffix('%') {
        return match percent.trim().parse::<f64>() {
            Ok(p) if (0.0..=10_000.0).contains(&p) => Ok(Margin::PercentOfThreshold(p)),
            _ => Err(format!("expected a percentage in [0, 10000], got {text:?}")),
        };
    }
    memglass_kube::parse_memory(text)
        .map(Margin::Bytes)
        .map_err(|e| format!("expected a quantity like 50Mi or a percentage like 20%: {e}"))
}

pub fn run(
    sources: &SourceArgs,
    identity_args: &IdentityArgs,
    args: &EvictionArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let taken_at = SystemTime::now();
    let (snapshot, directory) = take_with_directory(sources, identity_args)?;
    warn_about_gaps(&snapshot);
    let report = eviction::analyse(&snapshot, &directory, args.threshold);
    if !report.pods.is_empty() && !report.pods.iter().any(|p| p.requests_known) {
        note_requests_sources("no pod's request or priority is known (counted as 0)");
    }
    if args.json {
        render::eviction::json(out, &report, taken_at)
    } else {
        render::eviction::table(out, &report)
    }
}

/// Requests, limits, priorities and allocatable only come from the pods' and the node's
/// specs: say so once, on stderr.
pub fn note_requests_sources(missing: &str) {
    eprintln!(
        "memglass: note: {missing}: requests, limits and priorities come from --pods, \
         allocatable from --node (kubectl get ... -o json), or both from the Kubernetes API (--kube)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_like_kubelets() {
        assert_eq!(parse_threshold("100Mi"), Ok(Threshold::Bytes(100 << 20)));
        assert_eq!(parse_threshold("500M"), Ok(Threshold::Bytes(500_000_000)));
        assert_eq!(parse_threshold("5%"), Ok(Threshold::Percent(5.0)));
        assert_eq!(parse_threshold("7.5%"), Ok(Threshold::Percent(7.5)));
        assert_eq!(parse_threshold("0%"), Ok(Threshold::Disabled));
        assert_eq!(parse_threshold("100%"), Ok(Threshold::Disabled));
        assert_eq!(parse_threshold("100.0%"), Ok(Threshold::Percent(100.0)));
        assert!(parse_threshold("101%").is_err());
        assert!(parse_threshold("-15%").is_err());
        assert!(parse_threshold("0").is_err(), "a quantity must be positive");
        assert!(parse_threshold("-150Mi").is_err());
        assert!(parse_threshold("lots").is_err());
    }

    #[test]
    fn margins_parse() {
        const MIB: u64 = 1 << 20;
        assert_eq!(parse_margin("20%"), Ok(Margin::PercentOfThreshold(20.0)));
        assert_eq!(parse_margin("0%"), Ok(Margin::PercentOfThreshold(0.0)));
        assert_eq!(parse_margin("50Mi"), Ok(Margin::Bytes(50 * MIB)));
        assert!(parse_margin("-5%").is_err());
        assert!(parse_margin("lots").is_err());
    }
}
