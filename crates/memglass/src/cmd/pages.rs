//! `memglass pages`: every physical page counted by memory cgroup and kind.

use std::io::Write;

use anyhow::Context;

use crate::cli::{IdentityArgs, PagesArgs, SourceArgs};
use crate::render;

pub fn run(
    sources: &SourceArgs,
    identity: &IdentityArgs,
    args: &PagesArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let snapshot = crate::cmd::snapshot::take(sources, identity)?;
    let started = std::time::Instant::now();
    let census = memglass_kernel::kpage::census(&sources.proc_root, args.sample)
        .context("cannot scan page frames (needs root: CAP_SYS_ADMIN)")?;
    let elapsed = started.elapsed();
    let page_size = rustix::param::page_size() as u64;
    let roots = memglass_kernel::Roots {
        proc: sources.proc_root.clone(),
        cgroup: sources.cgroup_root.clone(),
    };
    let mount = roots.memory_hierarchy()?.mount_point;
    let has_processes = |path: &str| {
        memglass_kernel::filecache::has_own_processes(&mount.join(path.trim_start_matches('/')))
    };
    let report =
        memglass_analyse::pages::attribute(&census, &snapshot.cgroups, &has_processes, page_size);
    if args.json {
        render::pages::json(out, &report, elapsed)
    } else {
        render::pages::table(out, &report, &snapshot, args.top, elapsed)
    }
}
