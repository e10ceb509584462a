//! Where the memory controller lives, found from /proc/self/mountinfo.
//!
//! Three layouts exist in the wild, and none may be assumed:
//! - pure cgroup v2: one `cgroup2` mount whose `cgroup.controllers` lists `memory`;
//! - pure cgroup v1: a `cgroup` mount with the `memory` super option;
//! - hybrid (systemd's old default, and this build machine): v1 controllers, including
//!   memory, plus a `cgroup2` mount (usually `/sys/fs/cgroup/unified`) without memory.
//!
//! A v1 memory mount wins when present, because in hybrid mode the v2 mount cannot have
//! the memory controller (a controller is bound to one hierarchy at a time).

use std::path::{Path, PathBuf};

use crate::dir::Dir;
use crate::error::{Error, Result};
use crate::mounts::Mount;

/// cgroup API version of the memory hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CgroupVersion {
    /// Legacy controller hierarchies (`memory.usage_in_bytes`, `total_*` stat keys).
    V1,
    /// The unified hierarchy (`memory.current`, `memory.max`).
    V2,
}

impl CgroupVersion {
    /// 1 or 2, as the JSON contract spells it.
    pub fn number(self) -> u8 {
        match self {
            CgroupVersion::V1 => 1,
            CgroupVersion::V2 => 2,
        }
    }
}

/// The memory controller's hierarchy: where it is mounted and which API it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryHierarchy {
    /// API version.
    pub version: CgroupVersion,
    /// Directory of the hierarchy's root cgroup as visible here (the mount point).
    pub mount_point: PathBuf,
    /// The cgroup path that mount point shows, relative to the hierarchy's true root
    /// ("/" on a host; a container sees its own cgroup as its root).
    pub mount_root: String,
}

/// The mount's root as a cgroup path. Inside a cgroup namespace (a container's, on cgroup
/// v2) mountinfo shows roots relative to the namespace's own cgroup, so the host's
/// /sys/fs/cgroup mounted into the container reads `/../../..`: a root made only of `..`
/// is an ancestor of the namespace, and a cgroup filesystem mounted from the host is its
/// hierarchy's root, so the paths are the host's.
fn cgroup_root_of(mount: &Mount) -> String {
    let only_up = mount
        .root
        .split('/')
        .filter(|c| !c.is_empty())
        .all(|c| c == "..");
    if only_up {
        "/".to_owned()
    } else {
        mount.root.clone()
    }
}

/// Find the memory hierarchy from mountinfo text. `controllers_of` answers which
/// controllers a cgroup2 mount point has (its root `cgroup.controllers`), so this
/// function stays testable on recorded mountinfo.
pub fn find_memory_hierarchy(
    mountinfo: &str,
    controllers_of: impl Fn(&Path) -> Option<String>,
) -> Option<MemoryHierarchy> {
    let mounts: Vec<Mount> = crate::mounts::parse(mountinfo)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .collect();
    let v1 = mounts.iter().find(|mount| {
        mount.fstype == "cgroup" && mount.super_options.split(',').any(|o| o == "memory")
    });
    if let Some(mount) = v1 {
        return Some(MemoryHierarchy {
            version: CgroupVersion::V1,
            mount_point: PathBuf::from(&mount.mount_point),
            mount_root: cgroup_root_of(mount),
        });
    }
    mounts
        .iter()
        .filter(|mount| mount.fstype == "cgroup2")
        .find(|mount| {
            controllers_of(Path::new(&mount.mount_point))
                .is_some_and(|list| list.split_ascii_whitespace().any(|c| c == "memory"))
        })
        .map(|mount| MemoryHierarchy {
            version: CgroupVersion::V2,
            mount_point: PathBuf::from(&mount.mount_point),
            mount_root: cgroup_root_of(mount),
        })
}

/// Find the memory hierarchy of this machine from `<proc>/self/mountinfo`.
pub fn detect(proc_root: &Path) -> Result<MemoryHierarchy> {
    let path = proc_root.join("self/mountinfo");
    let mut buf = Vec::new();
    let text = crate::dir::read_path(&path, &mut buf)?;
    let controllers_of =
        |mount: &Path| std::fs::read_to_string(mount.join("cgroup.controllers")).ok();
    find_memory_hierarchy(text, controllers_of).ok_or_else(|| Error::Unsupported {
        path,
        reason: "no cgroup v1 memory mount and no cgroup2 mount with the memory controller".into(),
    })
}

/// Where `dir`, a directory of a live cgroup filesystem, sits in its hierarchy, in the
/// form the kernel prints cgroup paths (`oom_memcg=`, `task_memcg=`): the mount's root
/// joined with the directory's place under the mount point. None when no cgroup mount of
/// `mountinfo` holds `dir` (a recorded tree). `dir` must be absolute and canonical.
pub fn kernel_path_in(mountinfo: &str, dir: &Path) -> Option<String> {
    crate::mounts::parse(mountinfo)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .filter_map(|m| {
            let below = dir.strip_prefix(&m.mount_point).ok()?;
            Some((m.mount_point.len(), cgroup_root_of(&m), below.to_path_buf()))
        })
        .max_by_key(|(depth, _, _)| *depth)
        .map(|(_, root, below)| {
            let mut path = root.trim_end_matches('/').to_owned();
            for part in below.iter() {
                path.push('/');
                path.push_str(&part.to_string_lossy());
            }
            if path.is_empty() {
                "/".to_owned()
            } else {
                path
            }
        })
}

/// [`kernel_path_in`] this machine's `<proc>/self/mountinfo` for `dir` (made canonical).
pub fn kernel_path(proc_root: &Path, dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mountinfo = std::fs::read_to_string(proc_root.join("self/mountinfo")).ok()?;
    kernel_path_in(&mountinfo, &dir)
}

/// Describe a directory given with `--cgroup-root`: tell v1 from v2 by what its root
/// `memory.stat` holds (v1 prints hierarchical `total_*` keys, v2 prints `anon`), so a
/// recorded tree needs nothing but the files memglass reads.
pub fn at_directory(dir: &Path) -> Result<MemoryHierarchy> {
    let handle = Dir::open(dir)?;
    let mut buf = Vec::new();
    let stat = handle
        .read_optional("memory.stat", &mut buf)?
        .unwrap_or_default();
    let has_key = |key: &str| stat.lines().any(|line| line.split(' ').next() == Some(key));
    let version = if has_key("total_rss") || has_key("total_cache") {
        CgroupVersion::V1
    } else if has_key("anon")
        || handle
            .read_optional("cgroup.controllers", &mut Vec::new())?
            .is_some()
    {
        CgroupVersion::V2
    } else {
        return Err(Error::Unsupported {
            path: dir.to_path_buf(),
            reason: "not the root of a memory cgroup hierarchy (no v1 or v2 memory.stat)".into(),
        });
    };
    Ok(MemoryHierarchy {
        version,
        mount_point: dir.to_path_buf(),
        mount_root: "/".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded on the build machine (Linux 6.18, Debian 12 userland), 2026-11-25:
    /// hybrid mode, memory on v1, cgroup2 at /sys/fs/cgroup/unified without memory.
    const HYBRID: &str =
        include_str!("../../../../fixtures/hosts/v1-hybrid-6.18/proc/self/mountinfo");

    #[test]
    fn hybrid_prefers_v1_memory() {
        let found = find_memory_hierarchy(HYBRID, |_| Some("hugetlb".into())).unwrap();
        assert_eq!(found.version, CgroupVersion::V1);
        assert_eq!(found.mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(found.mount_root, "/");
    }

    #[test]
    fn pure_v2_needs_memory_in_controllers() {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let found =
            find_memory_hierarchy(text, |_| Some("cpuset cpu io memory hugetlb pids".into()))
                .unwrap();
        assert_eq!(found.version, CgroupVersion::V2);
        assert_eq!(found.mount_point, PathBuf::from("/sys/fs/cgroup"));
        assert!(find_memory_hierarchy(text, |_| Some("cpu io".into())).is_none());
        assert!(find_memory_hierarchy(text, |_| None).is_none());
    }

    #[test]
    fn container_view_keeps_mount_root_and_escapes() {
        let text = "1 0 0:26 /kubepods/pod1 /sys/fs/cgroup\\040x ro - cgroup cgroup rw,memory\n";
        let found = find_memory_hierarchy(text, |_| None).unwrap();
        assert_eq!(found.mount_root, "/kubepods/pod1");
        assert_eq!(found.mount_point, PathBuf::from("/sys/fs/cgroup x"));
    }

    /// This build machine's mountinfo (Linux 6.18, hybrid: v1 memory, cgroup2 unified).
    #[test]
    fn a_live_subtree_has_its_kernel_path() {
        let text = "35 25 0:30 / /sys/fs/cgroup rw - tmpfs tmpfs ro,mode=755\n\
                    38 35 0:33 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
                    39 35 0:34 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    51 27 254:1 / /var/tmp rw - ext4 /dev/vda rw\n";
        let at = |dir: &str| kernel_path_in(text, Path::new(dir));
        assert_eq!(at("/sys/fs/cgroup/memory").as_deref(), Some("/"));
        assert_eq!(
            at("/sys/fs/cgroup/memory/memglass-1/node-a").as_deref(),
            Some("/memglass-1/node-a")
        );
        assert_eq!(at("/sys/fs/cgroup/unified/x").as_deref(), Some("/x"));
        assert_eq!(at("/var/tmp/recorded"), None, "a recorded tree");
        // A mount of a cgroup that is not the hierarchy's root (a container's view).
        let text = "41 31 0:38 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            kernel_path_in(text, Path::new("/sys/fs/cgroup/c1")).as_deref(),
            Some("/kubepods/pod1/c1")
        );
    }

    /// The host's cgroup2 mount seen from a child cgroup namespace (`unshare -C` in
    /// /memglass-x/a/b of /sys/fs/cgroup/unified on the build machine, Linux 6.18): the
    /// root reads `/../../..`, and the host's paths are what memglass must print.
    #[test]
    fn host_hierarchy_seen_from_a_cgroup_namespace() {
        let text = "41 31 0:38 /../../.. /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let found = find_memory_hierarchy(text, |_| Some("memory".into())).unwrap();
        assert_eq!(found.mount_root, "/");
        let text = "41 31 0:38 /../kubepods /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";
        let found = find_memory_hierarchy(text, |_| Some("memory".into())).unwrap();
        assert_eq!(
            found.mount_root, "/../kubepods",
            "not a root: kept as it is"
        );
    }

    #[test]
    fn garbage_is_ignored() {
        assert!(find_memory_hierarchy("nonsense\n - \n\n", |_| None).is_none());
    }
}
