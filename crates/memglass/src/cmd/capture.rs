//! `memglass capture`: record the files memglass reads, plus a MANIFEST.toml saying where
//! they came from.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Context;
use memglass_kernel::Roots;

use crate::cli::{CaptureArgs, SourceArgs};

pub fn run(sources: &SourceArgs, args: &CaptureArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let roots = Roots {
        proc: sources.proc_root.clone(),
        cgroup: sources.cgroup_root.clone(),
    };
    let capture = memglass_kernel::capture::capture(&roots, &args.out, &args.only)
        .with_context(|| format!("cannot record into {}", args.out.display()))?;
    let release =
        std::fs::read_to_string(sources.proc_root.join("sys/kernel/osrelease")).unwrap_or_default();
    let version = std::fs::read_to_string(sources.proc_root.join("version")).unwrap_or_default();
    let manifest = format!(
        "# Recorded by `memglass capture` (memglass {}).\n\
         kernel = {:?}\nkernel_release = {:?}\narch = {:?}\npage_size = {}\n\
         cgroup_version = {}\ncgroup_mount = {:?}\ncaptured = {:?}\nonly = {:?}\n",
        env!("CARGO_PKG_VERSION"),
        version.trim(),
        release.trim(),
        std::env::consts::ARCH,
        rustix::param::page_size(),
        capture.hierarchy.version.number(),
        capture.hierarchy.mount_point.display().to_string(),
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        args.only,
    );
    let manifest_path = args.out.join("MANIFEST.toml");
    std::fs::write(&manifest_path, manifest)
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    writeln!(
        out,
        "recorded {} cgroups ({} files) into {}\nreplay: memglass --proc-root {} --cgroup-root {}",
        capture.cgroups,
        capture.files,
        args.out.display(),
        args.out.join("proc").display(),
        capture.cgroup_root.display()
    )?;
    Ok(())
}
