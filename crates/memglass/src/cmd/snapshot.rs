//! `memglass` / `memglass snapshot`: collect, identify, analyse, render.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Context;
use memglass_analyse::Snapshot;
use memglass_kernel::Roots;

use crate::cli::{IdentityArgs, SnapshotArgs, SourceArgs};
use crate::identity;
use crate::render;

/// Take one snapshot of this machine (or of the recorded roots); warnings about names
/// that could not be had go to stderr.
pub fn take(sources: &SourceArgs, identity_args: &IdentityArgs) -> anyhow::Result<Snapshot> {
    let roots = Roots {
        proc: sources.proc_root.clone(),
        cgroup: sources.cgroup_root.clone(),
    };
    let sample = memglass_kernel::collect(&roots).context("cannot read memory statistics")?;
    let identities: Vec<_> = sample
        .cgroups
        .iter()
        .map(|cgroup| memglass_identify::identify(&cgroup.path))
        .collect();
    let gathered = identity::gather(sources, identity_args)?;
    for warning in &gathered.warnings {
        eprintln!("memglass: warning: {warning}");
    }
    Ok(memglass_analyse::snapshot(
        &sample,
        &identities,
        &gathered.directory,
    ))
}

pub fn run(
    sources: &SourceArgs,
    identity_args: &IdentityArgs,
    args: &SnapshotArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let taken_at = SystemTime::now();
    let snapshot = take(sources, identity_args)?;
    warn_about_gaps(&snapshot);
    if args.json {
        render::json::write_snapshot(out, &snapshot, taken_at)?;
    } else {
        render::human::write_snapshot(out, &snapshot, args.top)?;
    }
    Ok(())
}

/// Tell the person once per kind of failure, on stderr, what the figures lack.
fn warn_about_gaps(snapshot: &Snapshot) {
    let mut told = Vec::new();
    for gap in &snapshot.gaps {
        if told.contains(&gap.kind) {
            continue;
        }
        told.push(gap.kind);
        let count = snapshot.gaps.iter().filter(|g| g.kind == gap.kind).count();
        let more = if count > 1 {
            format!(" (and {} more like it)", count - 1)
        } else {
            String::new()
        };
        eprintln!("memglass: warning: {}{more}", gap.message);
    }
}
