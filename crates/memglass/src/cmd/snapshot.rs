//! `memglass` / `memglass snapshot`: collect, identify, analyse, render.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use memglass_analyse::filecache::{self, CacheHolder};
use memglass_analyse::Snapshot;
use memglass_identify::Directory;
use memglass_kernel::filecache::Budget;
use memglass_kernel::pagecache::Prober;
use memglass_kernel::Roots;

use crate::cli::{IdentityArgs, SnapshotArgs, SourceArgs};
use crate::identity;
use crate::render;

/// Take one snapshot of this machine (or of the recorded roots); warnings about names
/// that could not be had go to stderr.
pub fn take(sources: &SourceArgs, identity_args: &IdentityArgs) -> anyhow::Result<Snapshot> {
    Ok(take_with_directory(sources, identity_args)?.0)
}

/// [`take`], and the directory that named the cgroups (`memglass eviction` and
/// `memglass requests` need the pods' specs, not only the names the snapshot carries).
pub fn take_with_directory(
    sources: &SourceArgs,
    identity_args: &IdentityArgs,
) -> anyhow::Result<(Snapshot, Directory)> {
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
    let snapshot = memglass_analyse::snapshot(&sample, &identities, &gathered.directory);
    Ok((snapshot, gathered.directory))
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
    let count = args.cache_holders.unwrap_or(if args.json { 0 } else { 3 });
    let holders = cache_holders(sources, &snapshot, count);
    if args.json {
        render::json::write_snapshot(out, &snapshot, holders.as_deref(), taken_at)?;
    } else {
        render::human::write_snapshot(out, &snapshot, holders.as_deref(), args.top)?;
    }
    Ok(())
}

/// Files listed per cache holder (`memglass cache` lists more).
const FILES_PER_HOLDER: usize = 5;
/// Files smaller in the cache than this are not listed (as in `memglass cache`).
const MIN_CACHED: u64 = 64 << 10;
/// Files walked in a container's mounts per holder: enough for a writable layer and a
/// few volumes, cheap enough for every snapshot (`memglass cache` walks 200,000).
const WALK_BUDGET: usize = 5_000;

/// The files behind the page cache of the `count` largest leaf holders that have
/// processes (a leaf without processes has no files to name). `None` when not looked
/// at: `count` is 0, or the roots are a recording whose PIDs are not this machine's.
fn cache_holders(
    sources: &SourceArgs,
    snapshot: &Snapshot,
    count: usize,
) -> Option<Vec<CacheHolder>> {
    let recorded = sources.cgroup_root.is_some() || sources.proc_root != Path::new("/proc");
    if count == 0 || recorded {
        return None;
    }
    let roots = Roots {
        proc: sources.proc_root.clone(),
        cgroup: None,
    };
    measure_holders(&roots, snapshot, count, FILES_PER_HOLDER)
}

/// The `count` largest leaf page-cache holders of `snapshot` that have processes, each
/// with its `files` largest files (64 KiB or more), measured now. `roots` must be this
/// machine's (a live `--cgroup-root` subtree is); None when the hierarchy is not found.
pub fn measure_holders(
    roots: &Roots,
    snapshot: &Snapshot,
    count: usize,
    files: usize,
) -> Option<Vec<CacheHolder>> {
    let hierarchy = roots.memory_hierarchy().ok()?;
    let prober = Prober::new(rustix::param::page_size() as u64);
    let budget = Budget {
        max_walked_files: WALK_BUDGET,
    };
    let holders = filecache::cache_holders(&snapshot.cgroups)
        .into_iter()
        .map(|cgroup| {
            let dir = hierarchy
                .mount_point
                .join(cgroup.path.trim_start_matches('/'));
            (cgroup, dir)
        })
        .filter(|(_, dir)| memglass_kernel::filecache::has_own_processes(dir))
        .take(count)
        .map(|(cgroup, dir)| {
            let (found, gaps) =
                memglass_kernel::filecache::scan_cgroup(&roots.proc, &dir, budget, &prober);
            CacheHolder {
                cgroup: cgroup.path.clone(),
                files: filecache::rank_files(found, Some(files), MIN_CACHED),
                warnings: gaps.into_iter().map(|g| g.message).collect(),
            }
        })
        .collect();
    Some(holders)
}

/// Tell the person once per kind of failure, on stderr, what the figures lack.
pub fn warn_about_gaps(snapshot: &Snapshot) {
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
