//! The kernel log: `/dev/kmsg` records, saved logs (dmesg, journal, syslog), and the OOM
//! reports assembled from them.
//!
//! Every source is reduced to [`LogLine`]s (one line of kernel text and when it was
//! written), so the OOM parser in [`oom`] never knows where its lines came from.
//!
//! - [`record`]: one `/dev/kmsg` record (`prio,seq,usec,flags;text`), escapes undone.
//! - [`reader`]: `/dev/kmsg` itself, non-blocking, surviving ring-buffer overruns.
//! - [`saved`]: text saved by `dmesg`, `dmesg -T`, `journalctl -k` or syslog.
//! - [`oom`]: lines → one [`oom::OomKill`] per OOM report, for every kernel from 3.10 on.

pub mod oom;
pub mod reader;
pub mod record;
pub mod saved;

pub use oom::{OomAssembler, OomKill};
pub use reader::KmsgReader;
pub use record::KmsgRecord;
pub use saved::SavedLog;

/// When a log line was written, as far as its source says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogTime {
    /// Microseconds since boot on the kernel's printk clock (`/dev/kmsg`, plain `dmesg`).
    pub boot_usec: Option<u64>,
    /// Wall-clock time printed by `dmesg -T`, the journal or syslog.
    pub wall: Option<WallTime>,
}

/// A wall-clock time read from a saved log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WallTime {
    /// Microseconds since the Unix epoch. When `utc_offset_secs` is `None` the log printed
    /// local time without a zone, and this counts that local time as if it were UTC.
    pub unix_usec: i64,
    /// The zone's offset from UTC when the log printed one (`Z`, `+02:00`, `+0000`).
    pub utc_offset_secs: Option<i32>,
}

/// One line of kernel log text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was written.
    pub time: LogTime,
    /// The `/dev/kmsg` sequence number of its record (persist it to resume without
    /// duplicates); `None` for saved logs that do not carry it.
    pub seq: Option<u64>,
    /// The text, without the source's prefix (timestamp, host, `kernel:`).
    pub text: String,
}

impl LogLine {
    /// A line with no time or sequence number (plain text pasted from a report).
    pub fn plain(text: impl Into<String>) -> LogLine {
        LogLine {
            time: LogTime::default(),
            seq: None,
            text: text.into(),
        }
    }
}
