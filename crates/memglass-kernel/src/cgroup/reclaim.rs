//! cgroup v2 `memory.reclaim` (Linux 5.19+): ask the kernel to reclaim memory from one
//! cgroup (and its descendants) now, as if it were over its limit.
//!
//! The file takes `<bytes> [swappiness=<0..200>]`. The `swappiness=` argument came later
//! (6.11 upstream; distribution kernels may have it earlier or not at all). With
//! `swappiness=0` memcg reclaim scans only the file LRUs (the classic LRU's
//! `SCAN_FILE` for cgroup reclaim, MGLRU's file-only isolation), so anonymous memory is
//! never pushed to swap. [`ReclaimFile::swappiness_supported`] finds out whether the
//! running kernel takes the argument by asking it, with a zero-byte request (see there).
//!
//! A write blocks until the kernel has reclaimed the bytes asked for or has given up:
//! after its retries it fails with EAGAIN, which is a result (less was reclaimable), not
//! a failure; [`Written::Short`] says so. A pending signal ends it with EINTR.
//! Callers bound the time by asking for chunks.

use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::cgroup::{normalize, v2, CgroupMemory, Limit};
use crate::dir::Dir;
use crate::error::Error as ReadError;
use crate::parse;

/// The file.
pub const FILE: &str = "memory.reclaim";

/// `statfs` magic of cgroup2 (`CGROUP2_SUPER_MAGIC`, include/uapi/linux/magic.h).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
/// `statfs` magic of a cgroup v1 hierarchy (`CGROUP_SUPER_MAGIC`).
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;

/// Why a reclaim could not be asked for. Every variant names the cgroup directory or file.
#[derive(Debug, thiserror::Error)]
pub enum ReclaimError {
    /// The directory is a cgroup v1 memory cgroup: v1 has no `memory.reclaim`.
    #[error("{path}: cgroup v1 has no memory.reclaim (proactive reclaim needs cgroup v2)")]
    CgroupV1 {
        /// The cgroup directory.
        path: PathBuf,
    },
    /// The directory is not on a cgroup filesystem at all (e.g. a recorded tree).
    #[error("{path}: not a live cgroup v2 directory (a recorded tree cannot be reclaimed)")]
    NotCgroup {
        /// The directory.
        path: PathBuf,
    },
    /// cgroup v2, but no `memory.reclaim`: a kernel before 5.19, or no memory controller
    /// in this cgroup.
    #[error("{path}: no memory.reclaim here (needs Linux 5.19+ and the memory controller on this cgroup)")]
    NoReclaimFile {
        /// The cgroup directory.
        path: PathBuf,
    },
    /// The kernel rejected the text written (EINVAL).
    #[error("{path}: the kernel rejected {written:?} (EINVAL)")]
    Rejected {
        /// The file.
        path: PathBuf,
        /// What was written.
        written: String,
    },
    /// A signal arrived while the kernel was reclaiming (EINTR).
    #[error("{path}: interrupted by a signal")]
    Interrupted {
        /// The file.
        path: PathBuf,
    },
    /// Opening, writing or reading failed otherwise (vanished, permission, I/O).
    #[error(transparent)]
    Io(#[from] ReadError),
}

/// How one write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The kernel reclaimed at least the bytes asked for.
    Full,
    /// The kernel gave up before (EAGAIN): it reclaimed something, possibly nothing, but
    /// less than asked.
    Short,
}

/// One cgroup v2 directory whose `memory.reclaim` is written, opened once.
#[derive(Debug)]
pub struct ReclaimFile {
    dir: Dir,
}

impl ReclaimFile {
    /// Open the cgroup directory `path` and check that it is a live cgroup v2 directory
    /// with a `memory.reclaim` file (by the filesystem's magic number, so a recorded tree
    /// or a v1 hierarchy is told apart from the real thing).
    pub fn open(path: &Path) -> Result<ReclaimFile, ReclaimError> {
        let dir = Dir::open(path)?;
        let magic = rustix::fs::fstatfs(dir.as_fd())
            .map_err(|errno| ReadError::from_io(path, errno.into()))?
            .f_type as u64;
        match magic {
            CGROUP2_SUPER_MAGIC => {}
            CGROUP_SUPER_MAGIC => {
                return Err(ReclaimError::CgroupV1 {
                    path: path.to_path_buf(),
                })
            }
            _ => {
                return Err(ReclaimError::NotCgroup {
                    path: path.to_path_buf(),
                })
            }
        }
        match rustix::fs::accessat(
            dir.as_fd(),
            FILE,
            rustix::fs::Access::EXISTS,
            rustix::fs::AtFlags::empty(),
        ) {
            Ok(()) => Ok(ReclaimFile { dir }),
            Err(Errno::NOENT) => Err(ReclaimError::NoReclaimFile {
                path: path.to_path_buf(),
            }),
            Err(errno) => Err(ReadError::from_io(&path.join(FILE), errno.into()).into()),
        }
    }

    /// The cgroup directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Whether this kernel takes `swappiness=` in `memory.reclaim`, asked without
    /// reclaiming anything: `0 swappiness=0` (zero bytes) is accepted by kernels that
    /// parse the argument and rejected with EINVAL by those that do not (they want a bare
    /// number); a bare `0` must then be accepted, or the EINVAL had another cause and is
    /// returned. Asking the kernel rather than comparing version numbers keeps it right
    /// on distribution kernels that backport (or leave out) the argument.
    pub fn swappiness_supported(&self) -> Result<bool, ReclaimError> {
        match self.write_text("0 swappiness=0") {
            Ok(_) => Ok(true),
            Err(ReclaimError::Rejected { .. }) => self.write_text("0").map(|_| false),
            Err(other) => Err(other),
        }
    }

    /// Ask the kernel to reclaim `bytes` (rounded down to whole pages by the kernel), with
    /// `swappiness` when given (only where [`Self::swappiness_supported`]). One write: it
    /// blocks until the kernel is done or gives up.
    pub fn reclaim(&self, bytes: u64, swappiness: Option<u8>) -> Result<Written, ReclaimError> {
        let text = match swappiness {
            Some(value) => format!("{bytes} swappiness={value}"),
            None => bytes.to_string(),
        };
        self.write_text(&text)
    }

    fn write_text(&self, text: &str) -> Result<Written, ReclaimError> {
        let path = self.dir.path().join(FILE);
        let fd = rustix::fs::openat(
            self.dir.as_fd(),
            FILE,
            OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| ReadError::from_io(&path, errno.into()))?;
        // kernfs takes the whole text in one write; a short write would be a kernel bug.
        match rustix::io::write(&fd, text.as_bytes()) {
            Ok(_) => Ok(Written::Full),
            Err(Errno::AGAIN) => Ok(Written::Short),
            Err(Errno::INVAL) => Err(ReclaimError::Rejected {
                path,
                written: text.to_owned(),
            }),
            Err(Errno::INTR) => Err(ReclaimError::Interrupted { path }),
            Err(errno) => Err(ReadError::from_io(&path, errno.into()).into()),
        }
    }

    /// `memory.current` now (what one write's effect is measured by).
    pub fn current(&self) -> Result<u64, ReclaimError> {
        let mut buf = Vec::new();
        let path = self.dir.path().join("memory.current");
        let text = self.dir.read("memory.current", &mut buf)?;
        parse::u64_or_max(text)
            .ok()
            .flatten()
            .ok_or_else(|| ReadError::malformed(&path, "not a number").into())
    }

    /// This cgroup's memory figures now (`memory.stat`, `memory.current`,
    /// `memory.swap.current`, …), normalised as a snapshot reads them.
    pub fn memory(&self) -> Result<CgroupMemory, ReclaimError> {
        let mut buf = Vec::with_capacity(8 << 10);
        match v2::read(&self.dir, false, &mut buf)? {
            Some(files) => Ok(normalize::from_v2(files)),
            None => Err(ReadError::Vanished {
                path: self.dir.path().join("memory.stat"),
            }
            .into()),
        }
    }
}

/// The first cgroup, from `path` up to (not including) the root of the hierarchy mounted
/// at `mount_point`, whose `memory.swap.max` is 0: none of its memory can go to swap.
/// `None` when every level allows swap, or the kernel does not account swap per cgroup
/// (no `memory.swap.max`). `path` is relative to the mount point ("/a/b").
pub fn swap_forbidden_at(mount_point: &Path, path: &str) -> Result<Option<String>, ReadError> {
    let mut current = path.trim_end_matches('/').to_owned();
    let mut buf = Vec::new();
    while !current.is_empty() && current != "/" {
        let dir = mount_point.join(current.trim_start_matches('/'));
        let file = dir.join("memory.swap.max");
        match crate::dir::read_path(&file, &mut buf) {
            Ok(text) => {
                let value =
                    parse::u64_or_max(text).map_err(|e| ReadError::malformed(&file, e.0))?;
                if Limit::from_v2(value) == Limit::Bytes(0) {
                    return Ok(Some(current));
                }
            }
            Err(ReadError::Vanished { .. }) => {}
            Err(other) => return Err(other),
        }
        current = match current.rfind('/') {
            Some(index) => current[..index].to_owned(),
            None => String::new(),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_is_not_a_cgroup() {
        let dir = std::env::temp_dir();
        match ReclaimFile::open(&dir) {
            Err(ReclaimError::NotCgroup { path }) => assert_eq!(path, dir),
            other => panic!("expected NotCgroup, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_it() {
        let error = ReclaimFile::open(Path::new("/nonexistent/memglass-reclaim")).unwrap_err();
        assert!(matches!(error, ReclaimError::Io(_)), "{error:?}");
        assert!(error.to_string().contains("/nonexistent/memglass-reclaim"));
    }

    #[test]
    fn swap_max_zero_is_found_at_any_level() {
        let root = std::env::temp_dir().join(format!("memglass-swapmax-{}", std::process::id()));
        let leaf = root.join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(root.join("a/b/memory.swap.max"), "max\n").unwrap();
        std::fs::write(root.join("a/memory.swap.max"), "0\n").unwrap();
        assert_eq!(
            swap_forbidden_at(&root, "/a/b").unwrap().as_deref(),
            Some("/a")
        );
        std::fs::write(root.join("a/memory.swap.max"), "max\n").unwrap();
        assert_eq!(swap_forbidden_at(&root, "/a/b").unwrap(), None);
        std::fs::write(root.join("a/b/memory.swap.max"), "0\n").unwrap();
        assert_eq!(
            swap_forbidden_at(&root, "/a/b/").unwrap().as_deref(),
            Some("/a/b")
        );
        std::fs::write(root.join("a/b/memory.swap.max"), "lots\n").unwrap();
        assert!(swap_forbidden_at(&root, "/a/b").is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
