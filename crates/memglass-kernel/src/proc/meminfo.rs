//! `/proc/meminfo` (Documentation/filesystems/proc.rst, "meminfo").
//!
//! Values are converted from kB (KiB) to bytes. Fields newer than the running kernel are
//! `None` (Percpu: 4.4; Hugetlb: 4.16; SecPageTables: 6.0).

use std::path::Path;

use crate::cgroup::KeyedValues;
use crate::error::{Error, Result};
use crate::parse;

/// The file name under the proc root.
pub const FILE: &str = "meminfo";

/// The node's memory counters, in bytes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MemInfo {
    /// MemTotal: usable RAM (physical minus reserved and the kernel image).
    pub mem_total: u64,
    /// MemFree.
    pub mem_free: u64,
    /// MemAvailable (3.14+): the kernel's estimate of memory available without swapping.
    pub mem_available: Option<u64>,
    /// Buffers: block-device page cache (a part of the file LRUs).
    pub buffers: Option<u64>,
    /// Cached: page cache, including shmem, excluding swap cache.
    pub cached: Option<u64>,
    /// Active(anon).
    pub active_anon: Option<u64>,
    /// Inactive(anon).
    pub inactive_anon: Option<u64>,
    /// Active(file).
    pub active_file: Option<u64>,
    /// Inactive(file).
    pub inactive_file: Option<u64>,
    /// Unevictable LRU.
    pub unevictable: Option<u64>,
    /// Shmem: tmpfs and shared memory (on the anon LRUs).
    pub shmem: Option<u64>,
    /// Dirty.
    pub dirty: Option<u64>,
    /// Writeback.
    pub writeback: Option<u64>,
    /// SReclaimable.
    pub slab_reclaimable: Option<u64>,
    /// SUnreclaim.
    pub slab_unreclaimable: Option<u64>,
    /// KernelStack.
    pub kernel_stack: Option<u64>,
    /// PageTables.
    pub page_tables: Option<u64>,
    /// SecPageTables (6.0+): secondary page tables (KVM, IOMMU).
    pub sec_page_tables: Option<u64>,
    /// VmallocUsed (meaningful again since 4.19; 0 on 4.x kernels before that).
    pub vmalloc_used: Option<u64>,
    /// Percpu.
    pub percpu: Option<u64>,
    /// HugeTLB pages of all sizes (Hugetlb, 4.16+; else HugePages_Total × Hugepagesize).
    pub hugetlb: Option<u64>,
    /// SwapTotal.
    pub swap_total: Option<u64>,
    /// SwapFree.
    pub swap_free: Option<u64>,
    /// Every line as read (bytes where the kernel said kB), for keys not named above.
    pub all: KeyedValues,
}

/// Parse meminfo text. MemTotal and MemFree are required; anything else is optional.
pub fn parse(text: &str) -> std::result::Result<MemInfo, parse::ParseError> {
    let entries = parse::colon_keyed(text)?;
    let all = KeyedValues::from_entries(entries.iter().copied());
    let get = |key: &str| all.get(key);
    let required = |key: &str| get(key).ok_or_else(|| parse::ParseError(format!("no {key} line")));
    let hugetlb = get("Hugetlb").or_else(|| {
        let pages = get("HugePages_Total")?;
        let size = get("Hugepagesize")?;
        Some(pages.saturating_mul(size))
    });
    Ok(MemInfo {
        mem_total: required("MemTotal")?,
        mem_free: required("MemFree")?,
        mem_available: get("MemAvailable"),
        buffers: get("Buffers"),
        cached: get("Cached"),
        active_anon: get("Active(anon)"),
        inactive_anon: get("Inactive(anon)"),
        active_file: get("Active(file)"),
        inactive_file: get("Inactive(file)"),
        unevictable: get("Unevictable"),
        shmem: get("Shmem"),
        dirty: get("Dirty"),
        writeback: get("Writeback"),
        slab_reclaimable: get("SReclaimable"),
        slab_unreclaimable: get("SUnreclaim"),
        kernel_stack: get("KernelStack"),
        page_tables: get("PageTables"),
        sec_page_tables: get("SecPageTables"),
        vmalloc_used: get("VmallocUsed"),
        percpu: get("Percpu"),
        hugetlb,
        swap_total: get("SwapTotal"),
        swap_free: get("SwapFree"),
        all,
    })
}

/// Read `<proc_root>/meminfo`.
pub fn read(proc_root: &Path, buf: &mut Vec<u8>) -> Result<MemInfo> {
    let path = proc_root.join(FILE);
    let text = crate::dir::read_path(&path, buf)?;
    parse(text).map_err(|e| Error::malformed(&path, e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded on the build machine (Linux 6.18.44, x86_64), 2026-11-25.
    const HOST: &str = include_str!("../../../../fixtures/hosts/v1-hybrid-6.18/proc/meminfo");

    #[test]
    fn parses_recorded_meminfo() {
        let info = parse(HOST).unwrap();
        assert!(info.mem_total > 20 << 30);
        assert!(info.mem_free <= info.mem_total);
        assert!(info.mem_available.is_some());
        assert!(info.percpu.is_some() && info.sec_page_tables.is_some());
        assert_eq!(info.hugetlb, Some(0));
        assert_eq!(info.all.get("MemTotal"), Some(info.mem_total));
    }

    #[test]
    fn old_kernel_without_new_fields() {
        let text = "MemTotal: 1000 kB\nMemFree: 10 kB\nHugePages_Total: 2\nHugepagesize: 2048 kB\n";
        let info = parse(text).unwrap();
        assert_eq!(info.mem_total, 1_024_000);
        assert_eq!(info.mem_available, None);
        assert_eq!(info.hugetlb, Some(2 * 2048 * 1024));
        assert!(parse("MemFree: 10 kB\n").is_err());
        assert!(parse("").is_err());
    }
}
