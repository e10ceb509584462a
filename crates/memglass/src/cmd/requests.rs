//! `memglass requests`: why a pod stays Pending, and what to set (requests and limits
//! against node allocatable and the measured peaks).

use std::io::Write;
use std::time::SystemTime;

use clap::Args;
use memglass_analyse::sizing;

use crate::cli::{IdentityArgs, SourceArgs};
use crate::cmd::eviction::note_requests_sources;
use crate::cmd::snapshot::{take_with_directory, warn_about_gaps};
use crate::render;

#[derive(Debug, Clone, Args)]
pub struct RequestsArgs {
    /// Emit the memglass.requests/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

pub fn run(
    sources: &SourceArgs,
    identity_args: &IdentityArgs,
    args: &RequestsArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let taken_at = SystemTime::now();
    let (snapshot, directory) = take_with_directory(sources, identity_args)?;
    warn_about_gaps(&snapshot);
    let report = sizing::analyse(&snapshot, &directory);
    let missing = match (
        report.pods.iter().any(|p| p.requests_known),
        report.node.allocatable.is_some(),
    ) {
        (true, true) => None,
        (false, true) => Some("no pod's requests are known (no verdicts)"),
        (true, false) => Some("the node's allocatable memory is unknown (no room left)"),
        (false, false) => Some("no pod's requests and not the node's allocatable are known"),
    };
    if let Some(missing) = missing {
        note_requests_sources(missing);
    }
    if args.json {
        render::requests::json(out, &report, taken_at)
    } else {
        render::requests::table(out, &report)
    }
}
