//! mincore(2) over a read-only shared mapping that is never touched: residency without
//! faulting anything in. Large files are mapped a window at a time.

use std::os::fd::{AsRawFd, BorrowedFd};

/// Map at most this much of a file at once (bounds virtual memory, not RSS).
const WINDOW: u64 = 1 << 30;

/// A read-only shared mapping of part of a file, unmapped on drop.
pub(crate) struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    /// Map `len` bytes of `fd` from `offset` (page-aligned), PROT_READ, MAP_SHARED.
    pub(crate) fn new(fd: BorrowedFd<'_>, offset: u64, len: usize) -> std::io::Result<Mapping> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: a fresh mapping chosen by the kernel; nothing aliases it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping { addr, len })
    }

    /// Residency of each page (bit 0 of each byte).
    pub(crate) fn residency(&self, page_size: u64) -> std::io::Result<Vec<u8>> {
        let pages = (self.len as u64).div_ceil(page_size) as usize;
        let mut vec = vec![0_u8; pages];
        // SAFETY: the range is our mapping; `vec` has one byte per page.
        let rc = unsafe { libc::mincore(self.addr, self.len, vec.as_mut_ptr()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(vec)
    }

    /// Start address (for /proc/self/pagemap lookups).
    pub(crate) fn addr(&self) -> usize {
        self.addr as usize
    }

    /// Read one byte of page `index`, faulting it into our page table (it must already
    /// be resident, or this reads it from disk).
    pub(crate) fn touch(&self, index: usize, page_size: u64) -> u8 {
        let offset = index.saturating_mul(page_size as usize);
        if offset >= self.len {
            return 0;
        }
        // SAFETY: offset < len, inside our readable mapping.
        unsafe { (self.addr as *const u8).add(offset).read_volatile() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what mmap returned.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

/// Resident pages of a file of `size` bytes.
pub(super) fn resident_pages(
    fd: BorrowedFd<'_>,
    size: u64,
    page_size: u64,
) -> std::io::Result<u64> {
    let mut resident = 0;
    let mut offset = 0;
    while offset < size {
        let len = (size - offset).min(WINDOW) as usize;
        let mapping = Mapping::new(fd, offset, len)?;
        resident += mapping
            .residency(page_size)?
            .iter()
            .filter(|b| *b & 1 == 1)
            .count() as u64;
        offset += WINDOW;
    }
    Ok(resident)
}
