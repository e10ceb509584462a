//! How much of a file is in the page cache, without reading it.
//!
//! cachestat(2) (Linux 6.5+) answers in one syscall with dirty, writeback and eviction
//! counts; older kernels fall back to mincore(2) over a read-only mapping that is never
//! touched (so no page is read in or marked accessed), which knows only residency.
//! [`Prober`] remembers which of the two this kernel has.

mod cachestat;
mod mincore;

use std::cell::Cell;
use std::os::fd::AsFd;

/// How the figures of a [`FileCache`] were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// cachestat(2): cached, dirty, writeback, evicted.
    Cachestat,
    /// mincore(2): cached only.
    Mincore,
}

/// Page-cache figures of one file, in bytes. `None`: this method cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FileCache {
    /// File size.
    pub size: u64,
    /// Bytes of the file in the page cache.
    pub cached: u64,
    /// Cached bytes waiting to be written back.
    pub dirty: Option<u64>,
    /// Cached bytes being written back.
    pub writeback: Option<u64>,
    /// Bytes evicted from the cache (shadow entries still present).
    pub evicted: Option<u64>,
    /// Evicted recently enough that reading them again counts as a refault.
    pub recently_evicted: Option<u64>,
    /// Where the figures came from.
    pub method: Method,
}

/// Measures files with the best method this kernel offers.
#[derive(Debug, Default)]
pub struct Prober {
    /// Set once cachestat(2) answered ENOSYS.
    no_cachestat: Cell<bool>,
    page_size: u64,
}

impl Prober {
    /// A prober; `page_size` converts page counts to bytes.
    pub fn new(page_size: u64) -> Prober {
        Prober {
            no_cachestat: Cell::new(false),
            page_size,
        }
    }

    /// Force the mincore fallback (to compare both methods on a kernel with cachestat).
    pub fn without_cachestat(page_size: u64) -> Prober {
        Prober {
            no_cachestat: Cell::new(true),
            page_size,
        }
    }

    /// Measure the open file `file` of `size` bytes.
    pub fn measure(&self, file: impl AsFd, size: u64) -> std::io::Result<FileCache> {
        let fd = file.as_fd();
        if !self.no_cachestat.get() {
            match cachestat::whole_file(fd) {
                Ok(stat) => {
                    let bytes = |pages: u64| pages.saturating_mul(self.page_size);
                    return Ok(FileCache {
                        size,
                        cached: bytes(stat.nr_cache).min(round_up(size, self.page_size)),
                        dirty: Some(bytes(stat.nr_dirty)),
                        writeback: Some(bytes(stat.nr_writeback)),
                        evicted: Some(bytes(stat.nr_evicted)),
                        recently_evicted: Some(bytes(stat.nr_recently_evicted)),
                        method: Method::Cachestat,
                    });
                }
                Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => {
                    self.no_cachestat.set(true)
                }
                Err(error) => return Err(error),
            }
        }
        let resident_pages = mincore::resident_pages(fd, size, self.page_size)?;
        Ok(FileCache {
            size,
            cached: resident_pages.saturating_mul(self.page_size),
            dirty: None,
            writeback: None,
            evicted: None,
            recently_evicted: None,
            method: Method::Mincore,
        })
    }

    /// The page size figures are converted with.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Which method the next measurement will use.
    pub fn method(&self) -> Method {
        if self.no_cachestat.get() {
            Method::Mincore
        } else {
            Method::Cachestat
        }
    }
}

fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to.max(1)).saturating_mul(to.max(1))
}

pub(crate) use mincore::Mapping;
