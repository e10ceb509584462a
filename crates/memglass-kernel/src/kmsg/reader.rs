//! `/dev/kmsg`, the kernel's log ring buffer (Documentation/ABI/testing/dev-kmsg).
//!
//! Each `read()` returns exactly one record, and fails with `EINVAL` if the buffer is too
//! small for it, so the buffer holds the largest record the kernel can make. `EPIPE` means
//! the kernel overwrote records this reader had not read yet: the next `read()` continues
//! with the oldest record still there, so an overrun is reported (a [`Next::Overrun`]) and
//! reading goes on. The descriptor is non-blocking: [`Next::Empty`] says the reader has
//! caught up; followers poll.
//!
//! Reading needs CAP_SYSLOG when `kernel.dmesg_restrict` is 1.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{Mode, OFlags, SeekFrom};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::kmsg::record::KmsgRecord;

/// The kernel log device.
pub const DEV_KMSG: &str = "/dev/kmsg";

/// Printk records are at most 1 KiB of text (8 KiB on some configs) plus the dictionary;
/// 64 KiB leaves room for every kernel and for several records when reading a file.
const BUF_SIZE: usize = 64 << 10;

/// Where a new reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest record still in the ring buffer (history).
    Beginning,
    /// After the newest record: only what the kernel writes from now on.
    End,
}

/// What one call to [`KmsgReader::read_next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A record.
    Record(KmsgRecord),
    /// Records were overwritten before they were read; reading continues after the gap.
    Overrun,
    /// A record that could not be parsed (kept as text for the caller to report).
    Malformed(String),
    /// No record is waiting.
    Empty,
}

/// A non-blocking reader of `/dev/kmsg` (or of a file of records, one per line).
#[derive(Debug)]
pub struct KmsgReader {
    fd: OwnedFd,
    path: PathBuf,
    buf: Vec<u8>,
    queued: VecDeque<Vec<u8>>,
}

impl KmsgReader {
    /// Open `path` (normally [`DEV_KMSG`]) for reading from `start`.
    pub fn open(path: &Path, start: Start) -> Result<KmsgReader> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| Error::from_io(path, errno.into()))?;
        if start == Start::End {
            rustix::fs::seek(&fd, SeekFrom::End(0))
                .map_err(|errno| Error::from_io(path, errno.into()))?;
        }
        Ok(KmsgReader {
            fd,
            path: path.to_path_buf(),
            buf: vec![0; BUF_SIZE],
            queued: VecDeque::new(),
        })
    }

    /// The path this reader was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next record, an overrun, or [`Next::Empty`] when nothing is waiting.
    pub fn read_next(&mut self) -> Result<Next> {
        if let Some(raw) = self.queued.pop_front() {
            return Ok(parse(&raw));
        }
        loop {
            match rustix::io::read(&self.fd, &mut self.buf) {
                Ok(0) => return Ok(Next::Empty),
                Ok(read) => {
                    // /dev/kmsg gives one record per read; a regular file gives many.
                    self.queued.extend(split_records(&self.buf[..read]));
                    return Ok(self
                        .queued
                        .pop_front()
                        .map_or(Next::Empty, |raw| parse(&raw)));
                }
                Err(Errno::PIPE) => return Ok(Next::Overrun),
                Err(Errno::AGAIN) => return Ok(Next::Empty),
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(Error::from_io(&self.path, errno.into())),
            }
        }
    }
}

fn parse(raw: &[u8]) -> Next {
    match KmsgRecord::parse(raw) {
        Ok(record) => Next::Record(record),
        Err(error) => Next::Malformed(error.0),
    }
}

/// Split a buffer into records: a record starts on a line that does not begin with a
/// space (continuation lines of the dictionary do).
pub fn split_records(buf: &[u8]) -> Vec<Vec<u8>> {
    let mut records: Vec<Vec<u8>> = Vec::new();
    for line in buf.split_inclusive(|&b| b == b'\n') {
        match records.last_mut() {
            Some(record) if line.first() == Some(&b' ') => record.extend_from_slice(line),
            _ if line.iter().all(|b| b.is_ascii_whitespace()) => {}
            _ => records.push(line.to_vec()),
        }
    }
    records
}

/// Time since boot from `<proc_root>/uptime`, to put wall-clock times on records. It counts
/// suspend, which the printk clock does not: on a machine that slept, times drift by that
/// long (as `dmesg -T`'s do).
pub fn read_uptime(proc_root: &Path, buf: &mut Vec<u8>) -> Result<Duration> {
    let path = proc_root.join("uptime");
    let text = crate::dir::read_path(&path, buf)?;
    text.split_whitespace()
        .next()
        .and_then(|secs| secs.parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Error::malformed(&path, "expected seconds since boot"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_records_keeping_dictionary_lines() {
        let records = split_records(b"6,1,2,-;a\n SUBSYSTEM=x\n4,2,3,-;b\n\n4,3,4,-;c");
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], b"6,1,2,-;a\n SUBSYSTEM=x\n");
        assert_eq!(records[2], b"4,3,4,-;c");
    }

    #[test]
    fn reads_a_recorded_file_then_reports_empty() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/hosts/v1-hybrid-6.18/dev/kmsg.txt");
        let mut reader = KmsgReader::open(&path, Start::Beginning).unwrap();
        let mut seqs = Vec::new();
        loop {
            match reader.read_next().unwrap() {
                Next::Record(record) => seqs.push(record.seq),
                Next::Empty => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seqs.first(), Some(&419));
        assert_eq!(seqs.last(), Some(&497));
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn uptime() {
        let dir = std::env::temp_dir().join(format!("memglass-uptime-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("uptime"), "1217.59 1747.22\n").unwrap();
        let mut buf = Vec::new();
        let uptime = read_uptime(&dir, &mut buf).unwrap();
        assert_eq!(uptime.as_millis(), 1_217_590);
        std::fs::write(dir.join("uptime"), "nonsense\n").unwrap();
        assert!(read_uptime(&dir, &mut buf).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The live device, when this user may read it: history, then caught up.
    #[test]
    fn live_dev_kmsg_if_readable() {
        let Ok(mut reader) = KmsgReader::open(Path::new(DEV_KMSG), Start::Beginning) else {
            return; // no privilege (dmesg_restrict) or no device: nothing to check here
        };
        let mut records = 0;
        for _ in 0..1_000_000 {
            match reader.read_next().unwrap() {
                Next::Record(_) => records += 1,
                Next::Overrun | Next::Malformed(_) => {}
                Next::Empty => break,
            }
        }
        assert!(records > 0, "a booted kernel has logged something");
        let mut tail = KmsgReader::open(Path::new(DEV_KMSG), Start::End).unwrap();
        assert!(matches!(
            tail.read_next().unwrap(),
            Next::Empty | Next::Record(_)
        ));
    }
}
