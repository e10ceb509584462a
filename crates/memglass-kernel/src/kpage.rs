//! Physical pages: /proc/kpageflags, /proc/kpagecgroup and /proc/self/pagemap
//! (Documentation/admin-guide/mm/pagemap.rst). All need CAP_SYS_ADMIN; without it the
//! kernel returns zeros for PFNs, which is reported as a permission error here.
//!
//! Each file holds one native-endian u64 per page frame number (PFN). The node-wide
//! [`census`] reads both files in PFN-range chunks and counts pages per memory cgroup,
//! keyed by the cgroup directory's inode (what kpagecgroup reports).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};

/// kpageflags bits (include/uapi/linux/kernel-page-flags.h).
pub mod flags {
    /// Dirty.
    pub const DIRTY: u64 = 1 << 4;
    /// On an LRU list.
    pub const LRU: u64 = 1 << 5;
    /// On the active LRU.
    pub const ACTIVE: u64 = 1 << 6;
    /// A slab page.
    pub const SLAB: u64 = 1 << 7;
    /// Under writeback.
    pub const WRITEBACK: u64 = 1 << 8;
    /// Free, in the buddy allocator.
    pub const BUDDY: u64 = 1 << 10;
    /// Anonymous.
    pub const ANON: u64 = 1 << 12;
    /// Backed by swap (anon and shmem/tmpfs).
    pub const SWAPBACKED: u64 = 1 << 14;
    /// First page of a compound page.
    pub const COMPOUND_HEAD: u64 = 1 << 15;
    /// Other pages of a compound page.
    pub const COMPOUND_TAIL: u64 = 1 << 16;
    /// hugetlbfs page.
    pub const HUGE: u64 = 1 << 17;
    /// On the unevictable list.
    pub const UNEVICTABLE: u64 = 1 << 18;
    /// No struct page for this PFN (a hole).
    pub const NOPAGE: u64 = 1 << 20;
    /// Transparent huge page.
    pub const THP: u64 = 1 << 22;
}

/// What a page holds, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// Anonymous memory.
    Anon,
    /// tmpfs / shared memory (swap-backed, not anonymous).
    Shmem,
    /// Page cache of a file.
    File,
    /// Anything else charged to a cgroup (kernel pages, pages in transit).
    Other,
}

/// Classify one page by its flags.
pub fn kind_of(page_flags: u64) -> PageKind {
    if page_flags & flags::ANON != 0 {
        PageKind::Anon
    } else if page_flags & flags::SWAPBACKED != 0 {
        PageKind::Shmem
    } else if page_flags & (flags::SLAB | flags::BUDDY) == 0 && page_flags & flags::LRU != 0 {
        PageKind::File
    } else {
        PageKind::Other
    }
}

/// Page counts of one memory cgroup (pages, not bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PageCounts {
    /// All pages charged to it.
    pub total: u64,
    /// Anonymous.
    pub anon: u64,
    /// Page cache.
    pub file: u64,
    /// tmpfs / shared memory.
    pub shmem: u64,
    /// Other charged pages (kernel, in transit).
    pub other: u64,
    /// Dirty.
    pub dirty: u64,
    /// Under writeback.
    pub writeback: u64,
    /// On an active LRU.
    pub active: u64,
    /// Unevictable.
    pub unevictable: u64,
    /// Part of a transparent or hugetlb huge page.
    pub huge: u64,
}

impl PageCounts {
    fn add(&mut self, kind: PageKind, page_flags: u64, weight: u64) {
        self.total += weight;
        match kind {
            PageKind::Anon => self.anon += weight,
            PageKind::Shmem => self.shmem += weight,
            PageKind::File => self.file += weight,
            PageKind::Other => self.other += weight,
        }
        let count = |bit: u64| if page_flags & bit != 0 { weight } else { 0 };
        self.dirty += count(flags::DIRTY);
        self.writeback += count(flags::WRITEBACK);
        self.active += count(flags::ACTIVE);
        self.unevictable += count(flags::UNEVICTABLE);
        self.huge += count(flags::THP | flags::HUGE);
    }
}

/// The result of a node-wide page scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Counts per memory cgroup inode (0: pages charged to no cgroup).
    pub by_cgroup: HashMap<u64, PageCounts>,
    /// Page frames examined (after sampling).
    pub frames_scanned: u64,
    /// Every how many chunks one was read (1 = all).
    pub sample_every: u64,
}

/// Frames per read: 64 Ki entries = 512 KiB from each file.
const CHUNK: u64 = 64 << 10;

/// Count every page frame (or one chunk in `sample_every`, scaled up) by memory cgroup
/// and kind. Tail pages of a compound page count for their head's cgroup and kind
/// (older kernels report cgroup 0 and partial flags for tails).
pub fn census(proc_root: &Path, sample_every: u64) -> Result<Census> {
    let open = |name: &str| {
        let path = proc_root.join(name);
        File::open(&path)
            .map_err(|e| Error::from_io(&path, e))
            .map(|f| (f, path))
    };
    let (flags_file, flags_path) = open("kpageflags")?;
    let (cgroup_file, cgroup_path) = open("kpagecgroup")?;
    let sample_every = sample_every.max(1);
    let mut census = Census {
        sample_every,
        ..Census::default()
    };
    let mut flag_buf = vec![0_u8; (CHUNK * 8) as usize];
    let mut cgroup_buf = vec![0_u8; (CHUNK * 8) as usize];
    let mut head: (u64, PageKind, u64) = (0, PageKind::Other, 0); // (cgroup, kind, flags)
    let mut chunk_index = 0_u64;
    loop {
        let start = chunk_index * CHUNK;
        chunk_index += 1;
        if !(chunk_index - 1).is_multiple_of(sample_every) {
            // Still stop at the end of memory when skipping.
            let mut probe = [0_u8; 8];
            if flags_file
                .read_at(&mut probe, start * 8)
                .map_err(|e| Error::from_io(&flags_path, e))?
                == 0
            {
                break;
            }
            continue;
        }
        let read = read_full_at(&flags_file, &mut flag_buf, start * 8)
            .map_err(|e| Error::from_io(&flags_path, e))?;
        if read == 0 {
            break;
        }
        let read_cg = read_full_at(&cgroup_file, &mut cgroup_buf[..read], start * 8)
            .map_err(|e| Error::from_io(&cgroup_path, e))?;
        let frames = read.min(read_cg) / 8;
        for i in 0..frames {
            let page_flags = u64::from_ne_bytes(word(&flag_buf, i));
            // Holes, free buddy blocks (only their first page says BUDDY; the others
            // have no flags at all) and pages with nothing to tell are not memory in use.
            if page_flags == 0 || page_flags & (flags::NOPAGE | flags::BUDDY) != 0 {
                continue;
            }
            let mut cgroup = u64::from_ne_bytes(word(&cgroup_buf, i));
            let (kind, flags_for_counts) = if page_flags & flags::COMPOUND_TAIL != 0 {
                if cgroup == 0 {
                    cgroup = head.0;
                }
                (
                    head.1,
                    head.2 | (page_flags & (flags::DIRTY | flags::WRITEBACK)),
                )
            } else {
                let kind = kind_of(page_flags);
                if page_flags & flags::COMPOUND_HEAD != 0 {
                    head = (cgroup, kind, page_flags);
                }
                (kind, page_flags)
            };
            census
                .by_cgroup
                .entry(cgroup)
                .or_default()
                .add(kind, flags_for_counts, sample_every);
        }
        census.frames_scanned += frames as u64;
        if frames < CHUNK as usize {
            break;
        }
    }
    if census.frames_scanned > 0 && census.by_cgroup.keys().all(|&ino| ino == 0) {
        return Err(Error::PermissionDenied { path: cgroup_path });
    }
    Ok(census)
}

fn word(buf: &[u8], index: usize) -> [u8; 8] {
    let mut word = [0_u8; 8];
    word.copy_from_slice(&buf[index * 8..index * 8 + 8]);
    word
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// PFNs of `pages` pages of our own address space starting at `addr` (page-aligned);
/// `None` where the page is not present in our page tables.
pub fn pagemap_pfns(
    proc_root: &Path,
    addr: usize,
    pages: usize,
    page_size: u64,
) -> Result<Vec<Option<u64>>> {
    const PRESENT: u64 = 1 << 63;
    const PFN_MASK: u64 = (1 << 55) - 1;
    let path = proc_root.join("self/pagemap");
    let file = File::open(&path).map_err(|e| Error::from_io(&path, e))?;
    let mut buf = vec![0_u8; pages * 8];
    let offset = (addr as u64 / page_size) * 8;
    read_full_at(&file, &mut buf, offset).map_err(|e| Error::from_io(&path, e))?;
    let pfns: Vec<Option<u64>> = (0..pages)
        .map(|i| {
            let entry = u64::from_ne_bytes(word(&buf, i));
            (entry & PRESENT != 0).then_some(entry & PFN_MASK)
        })
        .collect();
    if pfns.contains(&Some(0)) && pfns.iter().flatten().all(|&p| p == 0) {
        // Without CAP_SYS_ADMIN the kernel hides PFNs as 0.
        return Err(Error::PermissionDenied { path });
    }
    Ok(pfns)
}

/// The memory cgroup inode charged for each PFN (0 = none).
pub fn cgroups_of(proc_root: &Path, pfns: &[u64]) -> Result<Vec<u64>> {
    let path = proc_root.join("kpagecgroup");
    let file = File::open(&path).map_err(|e| Error::from_io(&path, e))?;
    let mut word_buf = [0_u8; 8];
    pfns.iter()
        .map(|&pfn| {
            file.read_exact_at(&mut word_buf, pfn * 8)
                .map_err(|e| Error::from_io(&path, e))
                .map(|()| u64::from_ne_bytes(word_buf))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            kind_of(flags::ANON | flags::SWAPBACKED | flags::LRU),
            PageKind::Anon
        );
        assert_eq!(kind_of(flags::SWAPBACKED | flags::LRU), PageKind::Shmem);
        assert_eq!(kind_of(flags::LRU | flags::ACTIVE), PageKind::File);
        assert_eq!(kind_of(flags::SLAB), PageKind::Other);
        let mut counts = PageCounts::default();
        counts.add(PageKind::File, flags::LRU | flags::DIRTY, 4);
        assert_eq!(
            (counts.total, counts.file, counts.dirty, counts.active),
            (4, 4, 4, 0)
        );
    }
}
