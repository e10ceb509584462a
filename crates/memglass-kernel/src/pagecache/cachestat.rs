//! cachestat(2), Linux 6.5+. Not in the libc crate yet; the number is 451 on every
//! architecture (new syscalls share one number table since 5.1).

use std::os::fd::{AsRawFd, BorrowedFd};

const SYS_CACHESTAT: libc::c_long = 451;

#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// The kernel's `struct cachestat`: page counts.
#[repr(C)]
#[derive(Debug, Default)]
pub(super) struct Cachestat {
    pub nr_cache: u64,
    pub nr_dirty: u64,
    pub nr_writeback: u64,
    pub nr_evicted: u64,
    pub nr_recently_evicted: u64,
}

/// Page-cache state of the whole file (`len` 0 means "to the end").
pub(super) fn whole_file(fd: BorrowedFd<'_>) -> std::io::Result<Cachestat> {
    let range = CachestatRange { off: 0, len: 0 };
    let mut stat = Cachestat::default();
    // SAFETY: both pointers are to live, correctly laid-out structs for the duration
    // of the call; flags must be 0.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd.as_raw_fd(),
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0_u32,
        )
    };
    if rc == 0 {
        Ok(stat)
    } else {
        Err(std::io::Error::last_os_error())
    }
}
