//! `memglass cache`: which files fill a cgroup's page cache.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use memglass_analyse::{filecache::rank_files, CgroupReport};
use memglass_kernel::filecache::{self, Budget};
use memglass_kernel::pagecache::Prober;
use memglass_kernel::Roots;

use crate::cli::{CacheArgs, IdentityArgs, SourceArgs};
use crate::render;

/// What was asked about, for the output.
pub struct Target {
    /// The cgroup path (none for --path).
    pub cgroup: Option<String>,
    /// The cgroup's memory.stat figures for comparison.
    pub cgroup_report: Option<CgroupReport>,
    /// The directory (for --path).
    pub path: Option<PathBuf>,
}

pub fn run(
    sources: &SourceArgs,
    identity: &IdentityArgs,
    args: &CacheArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let page_size = rustix::param::page_size() as u64;
    let prober = if args.mincore {
        Prober::without_cachestat(page_size)
    } else {
        Prober::new(page_size)
    };
    let roots = Roots {
        proc: sources.proc_root.clone(),
        cgroup: sources.cgroup_root.clone(),
    };
    let (target, files) = if let Some(dir) = &args.path {
        let meta =
            std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if !meta.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        let target = Target {
            cgroup: None,
            cgroup_report: None,
            path: Some(dir.clone()),
        };
        let files =
            filecache::measure_as_found(|found| filecache::files_below(dir, found), &prober);
        (target, files)
    } else {
        let snapshot = crate::cmd::snapshot::take(sources, identity)?;
        let report = select(
            &snapshot.cgroups,
            args.cgroup.as_deref(),
            args.pod.as_deref(),
        )?
        .clone();
        let hierarchy = roots
            .memory_hierarchy()
            .context("cannot find the memory cgroup hierarchy")?;
        let dir = hierarchy
            .mount_point
            .join(report.path.trim_start_matches('/'));
        let (files, gaps) = filecache::scan_cgroup(&roots.proc, &dir, Budget::default(), &prober);
        for gap in &gaps {
            eprintln!("memglass: warning: {}", gap.message);
        }
        let target = Target {
            cgroup: Some(report.path.clone()),
            cgroup_report: Some(report),
            path: None,
        };
        (target, files)
    };
    let mut files = rank_files(files, (!args.all).then_some(args.top), args.min_cached);
    if args.exact {
        let report = target
            .cgroup_report
            .as_ref()
            .context("--exact needs --cgroup or --pod (charges belong to cgroups)")?;
        for file in &mut files {
            let charged = filecache::charged(&roots.proc, file, report.inode, page_size)
                .with_context(|| {
                    format!(
                        "cannot measure the charge of {}",
                        file.candidate.container_path
                    )
                })?;
            file.charged = Some(charged);
        }
    }
    if args.json {
        render::cache::json(out, &target, &files, prober.method())
    } else {
        render::cache::table(out, &target, &files, prober.method(), args.exact)
    }
}

/// The cgroup named by `--cgroup PATH` or (without one) `--pod [NAMESPACE/]NAME`; also
/// `memglass diagnose`'s and `memglass reclaim`'s.
pub fn select<'a>(
    cgroups: &'a [CgroupReport],
    cgroup: Option<&str>,
    pod: Option<&str>,
) -> anyhow::Result<&'a CgroupReport> {
    if let Some(path) = cgroup {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        return cgroups
            .iter()
            .find(|c| c.path == path.trim_end_matches('/') || (path == "/" && c.path == "/"))
            .with_context(|| format!("no memory cgroup {path}"));
    }
    let name = pod.unwrap_or_default();
    let (namespace, pod) = match name.split_once('/') {
        Some((ns, pod)) => (Some(ns), pod),
        None => (None, name),
    };
    let matches: Vec<&CgroupReport> = cgroups
        .iter()
        .filter(|c| c.kind == memglass_identify::CgroupKind::Pod && c.pod.as_deref() == Some(pod))
        .filter(|c| namespace.is_none() || c.namespace.as_deref() == namespace)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => bail!("no pod named {name} (names come from the container runtime; is its CRI socket reachable?)"),
        many => bail!(
            "{} pods are named {name}; say namespace/name: {}",
            many.len(),
            many.iter().filter_map(|c| c.namespace.clone()).collect::<Vec<_>>().join(", ")
        ),
    }
}
