//! Node-wide page census attributed to cgroups: each cgroup's own pages, its subtree's
//! (comparable with the hierarchical memory.stat), and pages charged to cgroups that no
//! longer exist (dying cgroups, e.g. left by deleted pods), which are never dropped.

use std::collections::HashMap;

use memglass_kernel::kpage::{Census, PageCounts};

use crate::cgroup::CgroupReport;

/// Bytes by kind (pages × page size).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PageBytes {
    /// Everything charged.
    pub total: u64,
    /// Anonymous.
    pub anon: u64,
    /// Page cache.
    pub file: u64,
    /// tmpfs / shared memory.
    pub shmem: u64,
    /// Other charged pages.
    pub other: u64,
    /// Dirty.
    pub dirty: u64,
    /// Under writeback.
    pub writeback: u64,
    /// Active LRU.
    pub active: u64,
    /// Unevictable.
    pub unevictable: u64,
    /// In huge pages.
    pub huge: u64,
}

impl PageBytes {
    fn from_counts(c: &PageCounts, page_size: u64) -> PageBytes {
        let b = |pages: u64| pages.saturating_mul(page_size);
        PageBytes {
            total: b(c.total),
            anon: b(c.anon),
            file: b(c.file),
            shmem: b(c.shmem),
            other: b(c.other),
            dirty: b(c.dirty),
            writeback: b(c.writeback),
            active: b(c.active),
            unevictable: b(c.unevictable),
            huge: b(c.huge),
        }
    }

    fn add(&mut self, o: &PageBytes) {
        self.total += o.total;
        self.anon += o.anon;
        self.file += o.file;
        self.shmem += o.shmem;
        self.other += o.other;
        self.dirty += o.dirty;
        self.writeback += o.writeback;
        self.active += o.active;
        self.unevictable += o.unevictable;
        self.huge += o.huge;
    }
}

/// One live cgroup's pages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CgroupPages {
    /// Cgroup path.
    pub path: String,
    /// Directory inode.
    pub inode: u64,
    /// Pages charged to this cgroup itself.
    pub own: PageBytes,
    /// Pages charged to it and every cgroup below it (what memory.stat counts).
    pub subtree: PageBytes,
    /// Of `own`, user memory (anon, file, shmem) left by deleted descendants: the kernel
    /// reports a dying cgroup's pages as its nearest live ancestor's. v1: own minus the
    /// local `rss + cache`; v2: all of own when no process lives in this cgroup.
    pub dying_descendants: u64,
}

/// A cgroup that no longer exists but still has pages charged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DyingCgroup {
    /// Its directory inode (the name is gone with the directory).
    pub inode: u64,
    /// Pages still charged to it.
    pub pages: PageBytes,
}

/// The census, attributed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PageReport {
    /// Live cgroups, in snapshot order.
    pub cgroups: Vec<CgroupPages>,
    /// Cgroups that are gone but still hold memory, largest first.
    pub dying: Vec<DyingCgroup>,
    /// Pages charged to no cgroup (kernel allocations, free lists excluded).
    pub uncharged: PageBytes,
    /// Page frames scanned.
    pub frames_scanned: u64,
    /// 1 = every frame; N = one chunk in N, scaled up.
    pub sample_every: u64,
}

/// Attribute `census` to the live `cgroups` (parents before children); `has_processes`
/// says which cgroups have processes of their own.
pub fn attribute(
    census: &Census,
    cgroups: &[CgroupReport],
    has_processes: &dyn Fn(&str) -> bool,
    page_size: u64,
) -> PageReport {
    let bytes = |ino: u64| {
        census
            .by_cgroup
            .get(&ino)
            .map(|c| PageBytes::from_counts(c, page_size))
            .unwrap_or_default()
    };
    let mut rows: Vec<CgroupPages> = cgroups
        .iter()
        .map(|c| {
            let own = bytes(c.inode);
            CgroupPages {
                path: c.path.clone(),
                inode: c.inode,
                own,
                subtree: own,
                dying_descendants: dying_below(c, &own, has_processes),
            }
        })
        .collect();
    let index: HashMap<&str, usize> = cgroups
        .iter()
        .enumerate()
        .map(|(i, c)| (c.path.as_str(), i))
        .collect();
    for i in (0..rows.len()).rev() {
        let parent = crate::cgroup::parent_path(&rows[i].path).and_then(|p| index.get(p).copied());
        if let Some(parent) = parent {
            let child = rows[i].subtree;
            rows[parent].subtree.add(&child);
        }
    }
    let live: std::collections::HashSet<u64> = cgroups.iter().map(|c| c.inode).collect();
    let mut dying: Vec<DyingCgroup> = census
        .by_cgroup
        .iter()
        .filter(|(ino, _)| **ino != 0 && !live.contains(ino))
        .map(|(&inode, counts)| DyingCgroup {
            inode,
            pages: PageBytes::from_counts(counts, page_size),
        })
        .collect();
    dying.sort_by_key(|d| std::cmp::Reverse(d.pages.total));
    PageReport {
        cgroups: rows,
        dying,
        uncharged: bytes(0),
        frames_scanned: census.frames_scanned,
        sample_every: census.sample_every,
    }
}

fn dying_below(
    cgroup: &CgroupReport,
    own: &PageBytes,
    has_processes: &dyn Fn(&str) -> bool,
) -> u64 {
    if cgroup.is_root() {
        return 0; // the root's own pages include everything charged to no child
    }
    let user = own.anon + own.file + own.shmem;
    match (
        cgroup.cgroup_version,
        cgroup.stat.get("rss"),
        cgroup.stat.get("cache"),
    ) {
        // v1 keeps this cgroup's own charges in its local counters.
        (1, Some(rss), Some(cache)) => user.saturating_sub(rss.saturating_add(cache)),
        _ if has_processes(&cgroup.path) => 0,
        _ => user,
    }
}
