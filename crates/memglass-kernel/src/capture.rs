//! Record the files the readers open, verbatim, into a directory that replays like the
//! live system (`--proc-root OUT/proc --cgroup-root OUT/<mount point>`).
//!
//! The file lists are the readers' own ([`crate::cgroup::v1::FILES`],
//! [`crate::cgroup::v2::FILES`]), so a recording cannot drift from the code.

use std::path::{Path, PathBuf};

use crate::cgroup::{v1, v2, CgroupVersion, MemoryHierarchy};
use crate::error::{Error, Result};
use crate::Roots;

/// /proc files a snapshot reads, relative to the proc root.
pub const PROC_FILES: [&str; 3] = ["meminfo", "vmstat", "self/mountinfo"];

/// What was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The memory hierarchy that was recorded.
    pub hierarchy: MemoryHierarchy,
    /// Where its root now is inside the output directory.
    pub cgroup_root: PathBuf,
    /// Cgroups recorded.
    pub cgroups: usize,
    /// Files written.
    pub files: usize,
}

/// Copy the node's files and those of every memory cgroup whose path starts with one of
/// `only` (all cgroups when empty; the root is always recorded) into `out`.
pub fn capture(roots: &Roots, out: &Path, only: &[String]) -> Result<Capture> {
    let hierarchy = roots.memory_hierarchy()?;
    let mut files = 0;
    for name in PROC_FILES {
        files += copy_if_present(&roots.proc.join(name), &out.join("proc").join(name))?;
    }
    let cgroup_root = out.join(
        hierarchy
            .mount_point
            .strip_prefix("/")
            .unwrap_or(&hierarchy.mount_point),
    );
    let names: &[&str] = match hierarchy.version {
        CgroupVersion::V1 => &v1::FILES,
        CgroupVersion::V2 => &v2::FILES,
    };
    let mut cgroups = 0;
    let mut pending = vec![(hierarchy.mount_point.clone(), String::from("/"))];
    while let Some((dir, path)) = pending.pop() {
        let wanted = path == "/"
            || only.is_empty()
            || only.iter().any(|prefix| path.starts_with(prefix.as_str()));
        let leads_to_wanted = only.iter().any(|prefix| prefix.starts_with(path.as_str()));
        if wanted {
            cgroups += 1;
            let target = cgroup_root.join(path.trim_start_matches('/'));
            for name in names.iter().chain(["cgroup.controllers"].iter()) {
                files += copy_if_present(&dir.join(name), &target.join(name))?;
            }
        }
        if !(wanted || leads_to_wanted) {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::from_io(&dir, e))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let child = if path == "/" {
                    format!("/{name}")
                } else {
                    format!("{path}/{name}")
                };
                pending.push((entry.path(), child));
            }
        }
    }
    Ok(Capture {
        hierarchy,
        cgroup_root,
        cgroups,
        files,
    })
}

/// Copy `from` to `to` (creating directories); a file this kernel lacks is skipped.
fn copy_if_present(from: &Path, to: &Path) -> Result<usize> {
    let content = match std::fs::read(from) {
        Ok(content) => content,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        // PSI disabled: the file exists but cannot be read.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()) => {
            return Ok(0)
        }
        Err(e) => return Err(Error::from_io(from, e)),
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::from_io(parent, e))?;
    }
    std::fs::write(to, content).map_err(|e| Error::from_io(to, e))?;
    Ok(1)
}
