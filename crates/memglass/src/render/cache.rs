//! `memglass cache` output: a table for people, JSON for scripts.

use std::io::Write;

use memglass_kernel::filecache::CachedFile;
use memglass_kernel::pagecache::Method;
use serde::Serialize;

use crate::cmd::cache::Target;
use crate::render::human::bytes;

/// One file, as `memglass cache --json` and the snapshot's `cache_holders` give it.
#[derive(Serialize)]
pub struct FileJson<'a> {
    path: &'a str,
    host_path: Option<&'a str>,
    size: u64,
    cached: u64,
    charged: Option<u64>,
    dirty: Option<u64>,
    writeback: Option<u64>,
    evicted: Option<u64>,
    recently_evicted: Option<u64>,
    deleted: bool,
    found_by: memglass_kernel::filecache::FoundBy,
    /// Where the figures come from: cachestat or mincore.
    method: Method,
}

impl<'a> FileJson<'a> {
    pub fn new(f: &'a CachedFile) -> FileJson<'a> {
        FileJson {
            path: &f.candidate.container_path,
            host_path: f.candidate.host_path.as_deref(),
            size: f.cache.size,
            cached: f.cache.cached,
            charged: f.charged,
            dirty: f.cache.dirty,
            writeback: f.cache.writeback,
            evicted: f.cache.evicted,
            recently_evicted: f.cache.recently_evicted,
            deleted: f.candidate.deleted,
            found_by: f.candidate.found_by,
            method: f.cache.method,
        }
    }
}

#[derive(Serialize)]
struct Document<'a> {
    cgroup: Option<&'a str>,
    path: Option<String>,
    method: Method,
    /// The cgroup's own page-cache figures from memory.stat, for comparison.
    cgroup_file: Option<u64>,
    cgroup_shmem: Option<u64>,
    cgroup_file_dirty: Option<u64>,
    files: Vec<FileJson<'a>>,
}

pub fn json(
    out: &mut impl Write,
    target: &Target,
    files: &[CachedFile],
    method: Method,
) -> anyhow::Result<()> {
    // Thousands of entries: one buffer, not stdout's line buffer.
    let mut out = std::io::BufWriter::with_capacity(256 << 10, out);
    let memory = target.cgroup_report.as_ref().map(|c| &c.memory);
    let document = Document {
        cgroup: target.cgroup.as_deref(),
        path: target.path.as_ref().map(|p| p.display().to_string()),
        method,
        cgroup_file: memory.and_then(|m| m.file),
        cgroup_shmem: memory.and_then(|m| m.shmem),
        cgroup_file_dirty: memory.and_then(|m| m.file_dirty),
        files: files.iter().map(FileJson::new).collect(),
    };
    serde_json::to_writer(&mut out, &document)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

pub fn table(
    out: &mut impl Write,
    target: &Target,
    files: &[CachedFile],
    method: Method,
    exact: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
    match (&target.cgroup, &target.cgroup_report) {
        (Some(path), Some(report)) => writeln!(
            out,
            "page cache of {path}: file {} (shmem {}, dirty {}) per memory.stat; per file via {}",
            bytes(report.memory.file),
            bytes(report.memory.shmem),
            bytes(report.memory.file_dirty),
            method_name(method),
        )?,
        _ => writeln!(
            out,
            "page cache of files below {} via {}",
            target
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            method_name(method)
        )?,
    }
    let total: u64 = files.iter().map(|f| f.cache.cached).sum();
    writeln!(out, "listed files hold {} of cache\n", bytes(Some(total)))?;
    writeln!(
        out,
        "{:>10} {:>10} {:>10} {:>10} {:>10}  {:<9} PATH (host path)",
        "CACHED",
        if exact { "CHARGED" } else { "" },
        "DIRTY",
        "WRITEBACK",
        "SIZE",
        "FOUND BY"
    )?;
    for file in files {
        let c = &file.cache;
        let mut path = file.candidate.container_path.clone();
        if file.candidate.deleted {
            path.push_str(" (deleted)");
        }
        if let Some(host) = &file.candidate.host_path {
            if *host != file.candidate.container_path {
                path.push_str(&format!("  ({host})"));
            }
        }
        let found_by = serde_json::to_value(file.candidate.found_by)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        writeln!(
            out,
            "{:>10} {:>10} {:>10} {:>10} {:>10}  {:<9} {path}",
            bytes(Some(c.cached)),
            if exact {
                bytes(file.charged)
            } else {
                String::new()
            },
            bytes(c.dirty),
            bytes(c.writeback),
            bytes(Some(c.size)),
            found_by,
        )?;
    }
    out.flush()?;
    Ok(())
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Cachestat => "cachestat(2)",
        Method::Mincore => "mincore(2) (no dirty/writeback figures on this kernel)",
    }
}
