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
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::gap::Gap;
use crate::kpage;
use crate::pagecache::{FileCache, Mapping, Method, Prober};

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

/// Find the candidate files of these processes (a file can be found more than once:
/// [`measure`] keeps the first). Processes that exit meanwhile
/// are skipped; what cannot be read is returned as gaps.
pub fn discover(proc_root: &Path, pids: &[u32], budget: Budget) -> (Vec<Candidate>, Vec<Gap>) {
    let mut found = Vec::new();
    let mut gaps = Vec::new();
    let own_mnt_ns = std::fs::read_link(proc_root.join("self/ns/mnt")).ok();
    let mut walked_ns = HashSet::new();
    let mut walked = 0_usize;
    for &pid in pids {
        let proc_pid = proc_root.join(pid.to_string());
        // An fd or mapping can name a device (opening /dev/watchdog has effects): only
        // regular files go on. Duplicates are left to `measure`, which stats every file.
        let add = |candidate: Candidate, found: &mut Vec<Candidate>| {
            if std::fs::metadata(&candidate.open).is_ok_and(|m| m.is_file()) {
                found.push(candidate);
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
                walk_files(&dir, &mut |file: PathBuf, rel: &str| {
                    walked += 1;
                    // A regular file by its directory entry: no stat needed.
                    found.push(Candidate {
                        host_path: host_base.as_ref().map(|base| join(base, rel)),
                        container_path: join(&prefix, rel),
                        deleted: false,
                        found_by,
                        open: file,
                    });
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

/// Find and measure the files that can hold the page cache of the cgroup at directory
/// `dir` (its processes' and its descendants'): [`cgroup_pids`], [`discover`],
/// [`measure`].
pub fn scan_cgroup(
    proc_root: &Path,
    dir: &Path,
    budget: Budget,
    prober: &Prober,
) -> (Vec<CachedFile>, Vec<Gap>) {
    let pids = cgroup_pids(dir);
    let (candidates, gaps) = discover(proc_root, &pids, budget);
    (measure(candidates, prober), gaps)
}

/// Every regular file below directory `dir` (`memglass cache --path`), staying on its
/// filesystem and not following symlinks, handed to `found` in batches as the walk goes
/// (so that [`measure_as_found`] measures them meanwhile).
pub fn files_below(dir: &Path, found: &mut dyn FnMut(Vec<Candidate>)) {
    const BATCH: usize = 128;
    let base = dir.display().to_string();
    let mut batch = Vec::with_capacity(BATCH);
    walk_files(dir, &mut |file: PathBuf, rel: &str| {
        let path = join(&base, rel);
        batch.push(Candidate {
            container_path: path.clone(),
            host_path: Some(path),
            deleted: false,
            found_by: FoundBy::Mount,
            open: file,
        });
        if batch.len() == BATCH {
            found(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
        }
        true
    });
    found(batch);
}

/// Measure every candidate on all CPUs, keeping their order. Candidates that are not
/// regular files, or that name a file already measured (same device and inode), or that
/// vanish meanwhile are skipped.
pub fn measure(candidates: Vec<Candidate>, prober: &Prober) -> Vec<CachedFile> {
    const BATCH: usize = 128;
    if candidates.len() <= BATCH {
        // Not worth a thread (a process's fds and maps are usually a few dozen files).
        return first_of_each(vec![measure_batch(candidates, prober, &mut None)]);
    }
    measure_as_found(
        |found| {
            let mut rest = candidates;
            while rest.len() > BATCH {
                let tail = rest.split_off(BATCH);
                found(std::mem::replace(&mut rest, tail));
            }
            found(rest);
        },
        prober,
    )
}

/// Measure files while `find` is still finding them: `find` runs on this thread and
/// hands batches to one worker thread per CPU. The result is as [`measure`]'s.
///
/// Each file costs one `openat` relative to its directory (kept open while the
/// following candidates are in the same directory, so the kernel looks up one name,
/// not the whole path), one `fstat`, one cachestat (or mincore) and one `close`.
pub fn measure_as_found(
    find: impl FnOnce(&mut dyn FnMut(Vec<Candidate>)),
    prober: &Prober,
) -> Vec<CachedFile> {
    // mincore needs an mmap and munmap per file, which take the process's mmap lock:
    // more threads only wait for each other (measured: no faster, more CPU).
    let threads = match prober.method() {
        Method::Cachestat => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Method::Mincore => 1,
    };
    let mut batches: Vec<(usize, Vec<Measured>)> = Vec::new();
    if threads == 1 {
        let mut dir = None;
        find(&mut |batch| {
            let measured = measure_batch(batch, prober, &mut dir);
            batches.push((batches.len(), measured));
        });
    } else {
        let method = prober.method();
        let page_size = prober.page_size();
        let (sender, receiver) = std::sync::mpsc::channel::<(usize, Vec<Candidate>)>();
        let receiver = std::sync::Mutex::new(receiver);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        // Each thread has its own prober (it remembers the fallback).
                        let prober = match method {
                            Method::Cachestat => Prober::new(page_size),
                            Method::Mincore => Prober::without_cachestat(page_size),
                        };
                        let mut dir = None;
                        let mut done = Vec::new();
                        loop {
                            // The lock is held while waiting: the other workers queue on
                            // it, and the one that holds it takes the next batch.
                            let next = match receiver.lock() {
                                Ok(receiver) => receiver.recv(),
                                Err(_) => break,
                            };
                            let Ok((index, batch)) = next else {
                                break; // the finder is done
                            };
                            done.push((index, measure_batch(batch, &prober, &mut dir)));
                        }
                        done
                    })
                })
                .collect();
            let mut index = 0;
            find(&mut |batch| {
                if !batch.is_empty() && sender.send((index, batch)).is_ok() {
                    index += 1;
                }
            });
            drop(sender);
            for worker in workers {
                batches.extend(worker.join().unwrap_or_default());
            }
        });
    }
    batches.sort_unstable_by_key(|(index, _)| *index);
    first_of_each(batches.into_iter().map(|(_, measured)| measured).collect())
}

/// The files of `batches` in order, each file (device and inode) once: the first time
/// it was found.
fn first_of_each(batches: Vec<Vec<Measured>>) -> Vec<CachedFile> {
    let mut seen = HashSet::new();
    batches
        .into_iter()
        .flatten()
        .filter(|m| seen.insert((m.dev, m.ino)))
        .map(|m| m.file)
        .collect()
}

/// A measured file and its identity, for removing files found twice.
struct Measured {
    dev: u64,
    ino: u64,
    file: CachedFile,
}

/// Measure candidates in order on this thread; `dir` keeps the last directory open
/// from one batch to the next.
fn measure_batch(
    candidates: Vec<Candidate>,
    prober: &Prober,
    dir: &mut Option<(PathBuf, OwnedFd)>,
) -> Vec<Measured> {
    let mut measured = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let (Some(parent), Some(name)) = (candidate.open.parent(), candidate.open.file_name())
        else {
            continue;
        };
        // Compared as bytes: cheaper than `Path`'s component-wise equality.
        if dir
            .as_ref()
            .is_none_or(|(path, _)| path.as_os_str() != parent.as_os_str())
        {
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            *dir = rustix::fs::open(parent, flags, Mode::empty())
                .ok()
                .map(|fd| (parent.to_path_buf(), fd));
        }
        let Some((_, dir_fd)) = dir.as_ref() else {
            continue;
        };
        // Symlinks are followed: /proc/PID/fd/N and map_files entries are links. Never
        // block on a FIFO that an fd link may name.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let Ok(file) = rustix::fs::openat(dir_fd, name, flags, Mode::empty()) else {
            continue;
        };
        let Ok(stat) = rustix::fs::fstat(&file) else {
            continue;
        };
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            continue;
        }
        let Ok(cache) = prober.measure(&file, stat.st_size.max(0) as u64) else {
            continue;
        };
        measured.push(Measured {
            dev: stat.st_dev,
            ino: stat.st_ino,
            file: CachedFile {
                candidate,
                cache,
                charged: None,
            },
        });
    }
    measured
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
    let mut joined = String::with_capacity(base.len() + 1 + rel.len());
    joined.push_str(base);
    if !rel.is_empty() {
        if !base.is_empty() && !base.ends_with('/') {
            joined.push('/');
        }
        joined.push_str(rel);
    }
    joined
}

/// Walk regular files below `dir` (not following symlinks, staying on its filesystem),
/// calling `visit(path, relative)` until it returns false.
fn walk_files(dir: &Path, visit: &mut dyn FnMut(PathBuf, &str) -> bool) {
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
            let child_rel = join(&rel, &entry.file_name().to_string_lossy());
            if kind.is_dir() {
                if entry.metadata().is_ok_and(|m| m.dev() == root_dev) {
                    pending.push((entry.path(), child_rel));
                }
            } else if kind.is_file() && !visit(entry.path(), &child_rel) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(open: PathBuf) -> Candidate {
        Candidate {
            container_path: open.display().to_string(),
            host_path: None,
            deleted: false,
            found_by: FoundBy::OpenFd,
            open,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("memglass-filecache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn walk_hands_over_every_file_in_batches_and_measure_keeps_their_order() {
        let dir = scratch("walk");
        let mut written = Vec::new();
        for d in 0..3 {
            std::fs::create_dir_all(dir.join(format!("d{d}/deeper"))).unwrap();
            for f in 0..150 {
                let path = dir.join(format!("d{d}/deeper/f{f}"));
                std::fs::write(&path, vec![7_u8; 4096 * (f % 3 + 1)]).unwrap();
                written.push(path);
            }
        }
        std::os::unix::fs::symlink(&written[0], dir.join("link")).unwrap();
        let mut batches = Vec::new();
        files_below(&dir, &mut |batch| batches.push(batch));
        assert!(batches.len() > 1, "450 files come in batches");
        let found: Vec<Candidate> = batches.concat();
        assert_eq!(
            found.len(),
            written.len(),
            "every file once, the symlink not followed"
        );

        let prober = Prober::new(4096);
        let measured = measure(found.clone(), &prober);
        let paths: Vec<&PathBuf> = measured.iter().map(|f| &f.candidate.open).collect();
        let expected: Vec<&PathBuf> = found.iter().map(|c| &c.open).collect();
        assert_eq!(paths, expected);
        for file in &measured {
            let len = std::fs::metadata(&file.candidate.open).unwrap().len();
            assert_eq!(file.cache.size, len);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn measure_keeps_the_first_of_a_file_found_twice_and_skips_non_files() {
        let dir = scratch("dedup");
        let file = dir.join("data");
        std::fs::write(&file, vec![1_u8; 8192]).unwrap();
        let hardlink = dir.join("same-inode");
        std::fs::hard_link(&file, &hardlink).unwrap();
        let opened = File::open(&file).unwrap();
        let fd_link = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&opened)
        ));
        let candidates = vec![
            candidate(fd_link.clone()),
            candidate(dir.clone()),
            candidate(hardlink),
            candidate(file.clone()),
            candidate(dir.join("gone")),
        ];
        let prober = Prober::new(4096);
        let measured = measure(candidates, &prober);
        assert_eq!(measured.len(), 1, "one file, found three ways");
        assert_eq!(
            measured[0].candidate.open, fd_link,
            "through the fd link, found first"
        );
        assert_eq!(measured[0].cache.size, 8192);
        drop(opened);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
