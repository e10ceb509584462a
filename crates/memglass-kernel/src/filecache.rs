//! Which files can hold a cgroup's page cache, and how much of each is cached.
//!
//! Candidates come from the cgroup's processes (and those of its descendants):
//! - their open file descriptors, including deleted files still open;
//! - their file mappings (/proc/PID/maps), including deleted ones;
//! - for processes in another mount namespace (containers): the root filesystem's
//!   overlay upper directory and every other mount (volumes, emptyDir, /dev/shm),
//!   walked through /proc/PID/root, up to a file budget.
//!
//! Files are deduplicated by (device, inode) and opened through /proc/PID/fd or
//! /proc/PID/map_files where that is the only way in (deleted files). Measuring never
//! reads file data; [`charged`] (for `--exact`) does touch resident pages, see there.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::gap::Gap;
use crate::kpage;
use crate::pagecache::{FileCache, Mapping, Prober};

/// How a file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// An open file descriptor of a process.
    OpenFd,
    /// A file mapping of a process.
    Mapped,
    /// The container's root filesystem (overlay upper directory).
    Rootfs,
    /// A mount inside the container (volume, emptyDir, /dev/shm).
    Mount,
}

/// A file that may hold the cgroup's cache, before measuring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The path as the cgroup's processes see it.
    pub container_path: String,
    /// The path on the host, where it can be told.
    pub host_path: Option<String>,
    /// Unlinked but still open or mapped.
    pub deleted: bool,
    /// How it was found.
    pub found_by: FoundBy,
    /// What to open to reach it from here.
    pub open: PathBuf,
}

/// A measured file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    /// Where it was found and how to name it.
    pub candidate: Candidate,
    /// Page-cache figures.
    pub cache: FileCache,
    /// Bytes of its cache charged to the cgroup asked about (`--exact`), else `None`.
    pub charged: Option<u64>,
}

/// Limits of one discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Stop walking mounts after this many files.
    pub max_walked_files: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_walked_files: 200_000,
        }
    }
}

/// PIDs of the processes in cgroup directory `dir` and every cgroup below it.
pub fn cgroup_pids(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            pending.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// True when processes live in cgroup directory `dir` itself (not only below it).
pub fn has_own_processes(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|procs| !procs.trim().is_empty())
}

/// Find the candidate files of these processes. Processes that exit meanwhile are
/// skipped; what cannot be read is returned as gaps.
pub fn discover(proc_root: &Path, pids: &[u32], budget: Budget) -> (Vec<Candidate>, Vec<Gap>) {
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut found = Vec::new();
    let mut gaps = Vec::new();
    let own_mnt_ns = std::fs::read_link(proc_root.join("self/ns/mnt")).ok();
    let mut walked_ns = HashSet::new();
    let mut walked = 0_usize;
    for &pid in pids {
        let proc_pid = proc_root.join(pid.to_string());
        let mut add = |candidate: Candidate, found: &mut Vec<Candidate>| {
            if let Ok(meta) = std::fs::metadata(&candidate.open) {
                if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                    found.push(candidate);
                }
            }
        };
        // Open file descriptors.
        if let Ok(entries) = std::fs::read_dir(proc_pid.join("fd")) {
            for entry in entries.flatten() {
                let Ok(target) = std::fs::read_link(entry.path()) else {
                    continue;
                };
                let target = target.to_string_lossy().into_owned();
                if !target.starts_with('/') {
                    continue; // sockets, pipes, anon inodes
                }
                let (path, deleted) = strip_deleted(&target);
                let candidate = Candidate {
                    container_path: path.to_owned(),
                    host_path: None,
                    deleted,
                    found_by: FoundBy::OpenFd,
                    open: entry.path(),
                };
                add(candidate, &mut found);
            }
        } else if proc_pid.exists() {
            gaps.push(Gap {
                source: "filecache",
                path: proc_pid.join("fd"),
                kind: crate::GapKind::PermissionDenied,
                message: format!("{}: cannot list open files", proc_pid.join("fd").display()),
            });
        }
        // File mappings.
        if let Ok(maps) = std::fs::read_to_string(proc_pid.join("maps")) {
            for line in maps.lines() {
                let mut fields = line.splitn(6, ' ');
                let range = fields.next().unwrap_or_default();
                let Some(pathname) = fields.nth(4).map(str::trim_start) else {
                    continue;
                };
                if !pathname.starts_with('/') {
                    continue;
                }
                let (path, deleted) = strip_deleted(pathname);
                add(
                    Candidate {
                        container_path: path.to_owned(),
                        host_path: None,
                        deleted,
                        found_by: FoundBy::Mapped,
                        open: proc_pid.join("map_files").join(range),
                    },
                    &mut found,
                );
            }
        }
        // A container: walk its root filesystem's upper layer and its other mounts.
        let ns = std::fs::read_link(proc_pid.join("ns/mnt")).ok();
        if ns.is_some() && ns != own_mnt_ns && walked_ns.insert(ns) {
            let mounts = crate::mounts::of_process(&proc_pid);
            let host_mounts = crate::mounts::of_process(&proc_root.join("self"));
            for mount in mounts.iter().filter(|m| m.is_content()) {
                let (dir, prefix, found_by) =
                    match (mount.mount_point.as_str(), mount.overlay_upper()) {
                        ("/", Some(upper)) => {
                            (PathBuf::from(upper), "/".to_owned(), FoundBy::Rootfs)
                        }
                        ("/", None) => continue,
                        (point, _) => (
                            proc_pid.join("root").join(point.trim_start_matches('/')),
                            point.to_owned(),
                            FoundBy::Mount,
                        ),
                    };
                let host_base = match found_by {
                    FoundBy::Rootfs => Some(dir.display().to_string()),
                    _ => mount.host_path(&host_mounts),
                };
                walk_files(&dir, &mut |file: &Path, rel: &str| {
                    walked += 1;
                    let container_path = join(&prefix, rel);
                    add(
                        Candidate {
                            host_path: host_base.as_ref().map(|base| join(base, rel)),
                            container_path,
                            deleted: false,
                            found_by,
                            open: file.to_path_buf(),
                        },
                        &mut found,
                    );
                    walked < budget.max_walked_files
                });
            }
            if walked >= budget.max_walked_files {
                gaps.push(Gap {
                    source: "filecache",
                    path: proc_pid.join("root"),
                    kind: crate::GapKind::Unsupported,
                    message: format!("stopped walking the container's mounts after {walked} files"),
                });
            }
        }
    }
    // Files the processes see at the host's own paths: host path = container path.
    for candidate in &mut found {
        if candidate.host_path.is_none()
            && own_mnt_ns.is_some()
            && candidate.found_by != FoundBy::Mount
        {
            let pid_ns = candidate
                .open
                .ancestors()
                .find(|p| p.parent() == Some(proc_root))
                .and_then(|p| std::fs::read_link(p.join("ns/mnt")).ok());
            if pid_ns == own_mnt_ns {
                candidate.host_path = Some(candidate.container_path.clone());
            }
        }
    }
    (found, gaps)
}

/// Measure every candidate, on all CPUs (each file is one open, fstat and cachestat);
/// files that vanish meanwhile are skipped. Keeps the candidates' order.
pub fn measure(candidates: Vec<Candidate>, prober: &Prober) -> Vec<CachedFile> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || candidates.len() < 256 {
        return candidates
            .into_iter()
            .filter_map(|c| measure_one(c, prober))
            .collect();
    }
    let chunk = candidates.len().div_ceil(threads);
    let mut chunks: Vec<Vec<Candidate>> = Vec::with_capacity(threads);
    let mut rest = candidates;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    let method = prober.method();
    let page_size = prober.page_size();
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    // Each thread has its own prober: the fallback decision is per kernel.
                    let prober = match method {
                        crate::pagecache::Method::Cachestat => Prober::new(page_size),
                        crate::pagecache::Method::Mincore => Prober::without_cachestat(page_size),
                    };
                    chunk
                        .into_iter()
                        .filter_map(|c| measure_one(c, &prober))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

fn measure_one(candidate: Candidate, prober: &Prober) -> Option<CachedFile> {
    let file = File::open(&candidate.open).ok()?;
    let size = file.metadata().ok()?.len();
    let cache = prober.measure(&file, size).ok()?;
    Some(CachedFile {
        candidate,
        cache,
        charged: None,
    })
}

/// Bytes of `file`'s cache charged to the memory cgroup with inode `cgroup_inode`.
///
/// Maps the file read-only, asks mincore which pages are resident, reads one byte of
/// each resident page so that it appears in our page table, then looks the pages' frame
/// numbers up in /proc/self/pagemap and their cgroups in /proc/kpagecgroup (root only).
/// Reading marks those pages accessed, which can keep them in the cache a little longer.
pub fn charged(
    proc_root: &Path,
    file: &CachedFile,
    cgroup_inode: u64,
    page_size: u64,
) -> crate::Result<u64> {
    const WINDOW: u64 = 256 << 20;
    let opened = File::open(&file.candidate.open)
        .map_err(|e| crate::Error::from_io(&file.candidate.open, e))?;
    let size = file.cache.size;
    let mut charged_pages = 0;
    let mut offset = 0;
    while offset < size {
        let len = (size - offset).min(WINDOW) as usize;
        let mapping = Mapping::new(std::os::fd::AsFd::as_fd(&opened), offset, len)
            .map_err(|e| crate::Error::from_io(&file.candidate.open, e))?;
        let resident = mapping
            .residency(page_size)
            .map_err(|e| crate::Error::from_io(&file.candidate.open, e))?;
        let indexes: Vec<usize> = (0..resident.len())
            .filter(|&i| resident[i] & 1 == 1)
            .collect();
        for &i in &indexes {
            std::hint::black_box(mapping.touch(i, page_size));
        }
        let pfns = kpage::pagemap_pfns(proc_root, mapping.addr(), resident.len(), page_size)?;
        let present: Vec<u64> = indexes.iter().filter_map(|&i| pfns[i]).collect();
        charged_pages += kpage::cgroups_of(proc_root, &present)?
            .into_iter()
            .filter(|&ino| ino == cgroup_inode)
            .count() as u64;
        offset += WINDOW;
    }
    Ok(charged_pages * page_size)
}

fn strip_deleted(path: &str) -> (&str, bool) {
    match path.strip_suffix(" (deleted)") {
        Some(path) => (path, true),
        None => (path, false),
    }
}

fn join(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        base.to_owned()
    } else if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// Walk regular files below `dir` (not following symlinks, staying on its filesystem),
/// calling `visit(path, relative)` until it returns false.
fn walk_files(dir: &Path, visit: &mut dyn FnMut(&Path, &str) -> bool) {
    let Ok(root_dev) = std::fs::metadata(dir).map(|m| m.dev()) else {
        return;
    };
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((dir, rel)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if kind.is_dir() {
                if entry.metadata().is_ok_and(|m| m.dev() == root_dev) {
                    pending.push((entry.path(), child_rel));
                }
            } else if kind.is_file() && !visit(&entry.path(), &child_rel) {
                return;
            }
        }
    }
}
