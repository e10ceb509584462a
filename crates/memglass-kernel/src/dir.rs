//! A directory opened once, whose files are opened relative to its descriptor.
//!
//! Cgroup files are read through the cgroup directory's fd: a cgroup removed mid-walk
//! then gives ENOENT/ENODEV (→ [`Error::Vanished`]) instead of a path reused by a new
//! cgroup of the same name.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// An open directory and the path it was opened from (for error messages).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Open `path` as a directory (a root given by the user: a missing one is an
    /// ordinary I/O error, not a cgroup that vanished).
    pub fn open(path: &Path) -> Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| match Error::from_io(path, errno.into()) {
            Error::Vanished { path } => Error::Io {
                path,
                error: errno.into(),
            },
            other => other,
        })?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Open the child directory `name`.
    pub fn open_child(&self, name: &str) -> Result<Dir> {
        let path = self.path.join(name);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| Error::from_io(&path, errno.into()))?;
        Ok(Dir { fd, path })
    }

    /// The directory's descriptor.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path this directory was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names and inode numbers of the subdirectories, sorted by name.
    pub fn subdirectories_with_inodes(&self) -> Result<Vec<(String, u64)>> {
        let reader = rustix::fs::Dir::read_from(&self.fd)
            .map_err(|errno| Error::from_io(&self.path, errno.into()))?;
        let mut children = Vec::new();
        for entry in reader {
            let entry = entry.map_err(|errno| Error::from_io(&self.path, errno.into()))?;
            if entry.file_type() != rustix::fs::FileType::Directory {
                continue;
            }
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if let Ok(name) = std::str::from_utf8(name) {
                children.push((name.to_owned(), entry.ino()));
            }
        }
        children.sort_unstable();
        Ok(children)
    }

    /// Read the whole file `name` into `buf` (cleared first) and return it as text.
    /// Loops until EOF: the kernel may hand back a seq_file in short chunks.
    pub fn read<'b>(&self, name: &str, buf: &'b mut Vec<u8>) -> Result<&'b str> {
        let fail = |error: io::Error| Error::from_io(&self.path.join(name), error);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| fail(errno.into()))?;
        read_fd_to_end(fd.as_fd(), buf).map_err(fail)?;
        std::str::from_utf8(buf).map_err(|_| Error::malformed(&self.path.join(name), "not UTF-8"))
    }

    /// Like [`Dir::read`], but a file this kernel does not have is `Ok(None)`.
    pub fn read_optional<'b>(&self, name: &str, buf: &'b mut Vec<u8>) -> Result<Option<&'b str>> {
        match self.read(name, buf) {
            Ok(text) => Ok(Some(text)),
            Err(Error::Vanished { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// Read from `fd` until EOF into `buf` (cleared first).
pub(crate) fn read_fd_to_end(fd: std::os::fd::BorrowedFd<'_>, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        if rustix::io::read(fd, rustix::buffer::spare_capacity(buf))? == 0 {
            return Ok(());
        }
    }
}

/// Read a whole file by path (for /proc files read once per snapshot).
pub fn read_path<'b>(path: &Path, buf: &'b mut Vec<u8>) -> Result<&'b str> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| Error::from_io(path, errno.into()))?;
    read_fd_to_end(fd.as_fd(), buf).map_err(|error| Error::from_io(path, error))?;
    std::str::from_utf8(buf).map_err(|_| Error::malformed(path, "not UTF-8"))
}
