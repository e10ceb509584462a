//! Ranking a cgroup's files by how much page cache they hold.

use std::collections::HashSet;

use memglass_kernel::filecache::CachedFile;

use crate::cgroup::parent_path;
use crate::CgroupReport;

/// Largest cached first; files under `min_cached` bytes dropped unless `top` is `None`
/// (everything); at most `top` files.
pub fn rank_files(files: Vec<CachedFile>, top: Option<usize>, min_cached: u64) -> Vec<CachedFile> {
    // Sort positions, not the files: a file is a few hundred bytes, and a `--path` scan
    // can rank a hundred thousand of them.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        let (a, b) = (&files[a], &files[b]);
        b.cache
            .cached
            .cmp(&a.cache.cached)
            .then_with(|| a.candidate.container_path.cmp(&b.candidate.container_path))
    });
    if let Some(top) = top {
        order.retain(|&i| files[i].cache.cached >= min_cached);
        order.truncate(top);
    }
    let mut slots: Vec<Option<CachedFile>> = files.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The files behind one cgroup's page cache, as the snapshot lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheHolder {
    /// The cgroup's path.
    pub cgroup: String,
    /// The largest files by cached bytes (ranked by [`rank_files`]).
    pub files: Vec<CachedFile>,
    /// What could not be looked at (processes' fds, walks stopped by the budget).
    pub warnings: Vec<String>,
}

impl CacheHolder {
    /// Σ cached bytes of the listed files. Without `--exact` part of a file's cache can
    /// be charged to another cgroup, so this can exceed the cgroup's own `file`.
    pub fn files_cached(&self) -> u64 {
        self.files.iter().map(|f| f.cache.cached).sum()
    }
}

/// Leaf cgroups (no child cgroup below them), not the root, by page cache held
/// (memory.stat `file`, v1 `total_cache`), largest first; none without page cache.
pub fn cache_holders(cgroups: &[CgroupReport]) -> Vec<&CgroupReport> {
    let parents: HashSet<&str> = cgroups
        .iter()
        .filter_map(|c| parent_path(&c.path))
        .collect();
    let mut leaves: Vec<&CgroupReport> = cgroups
        .iter()
        .filter(|c| !c.is_root() && !parents.contains(c.path.as_str()))
        .filter(|c| c.memory.file.unwrap_or(0) > 0)
        .collect();
    leaves.sort_by(|a, b| b.memory.file.cmp(&a.memory.file).then(a.path.cmp(&b.path)));
    leaves
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 6.12, cgroup v2, a kubepods tree (fixtures/hosts/README.md).
    fn recorded() -> crate::Snapshot {
        let host = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/hosts/v2-debian-6.12.95+deb12-amd64");
        let roots = memglass_kernel::Roots {
            proc: host.join("proc"),
            cgroup: Some(host.join("sys/fs/cgroup")),
        };
        let sample = memglass_kernel::collect(&roots).unwrap();
        let identities: Vec<_> = sample
            .cgroups
            .iter()
            .map(|c| memglass_identify::identify(&c.path))
            .collect();
        crate::snapshot(&sample, &identities, &memglass_identify::Directory::new())
    }

    #[test]
    fn cache_holders_are_leaves_by_page_cache() {
        let snapshot = recorded();
        let holders = cache_holders(&snapshot.cgroups);
        // One container holds 12 MiB; its pod, QoS and kubepods parents hold the same.
        assert_eq!(holders.len(), 1, "{holders:?}");
        assert!(holders[0].path.ends_with(".scope"), "{}", holders[0].path);
        for holder in &holders {
            let below = format!("{}/", holder.path);
            assert!(
                !snapshot.cgroups.iter().any(|c| c.path.starts_with(&below)),
                "{} has children",
                holder.path
            );
            assert!(holder.memory.file.unwrap() > 0);
        }
        let files: Vec<u64> = holders.iter().map(|h| h.memory.file.unwrap()).collect();
        assert!(files.windows(2).all(|w| w[0] >= w[1]), "{files:?}");
        // Parents hold at least their children's cache but are never listed.
        let kubepods = snapshot
            .cgroups
            .iter()
            .find(|c| c.path == "/kubepods.slice")
            .unwrap();
        assert!(kubepods.memory.file >= holders.iter().map(|h| h.memory.file).min().unwrap());
        assert!(holders
            .iter()
            .all(|h| h.path != "/kubepods.slice" && !h.is_root()));
    }
}
