//! One `/dev/kmsg` record (Documentation/ABI/testing/dev-kmsg):
//!
//! ```text
//! prio,seq,usec,flags[,more];text\n
//!  KEY=value\n            (dictionary continuation lines, each starting with a space)
//! ```
//!
//! `prio` is `facility << 3 | level`; `flags` is `-` for a whole record, `c` for the start
//! and `+` for the continuation of a fragmented line (kernels before 4.9 split `pr_cont`
//! output this way). The kernel escapes bytes outside printable ASCII, and the backslash
//! itself, as `\xNN`; a record can therefore hold several lines (6.1 prints the whole
//! memory.stat dump of an OOM report as one record with `\x0a` between lines).

use crate::kmsg::{LogLine, LogTime};
use crate::parse::ParseError;

/// A parsed `/dev/kmsg` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsgRecord {
    /// Syslog facility (0 = kernel).
    pub facility: u8,
    /// Syslog level (0 = emergency … 7 = debug).
    pub level: u8,
    /// Sequence number; a gap between consecutive records means records were lost.
    pub seq: u64,
    /// Microseconds since boot (printk clock).
    pub usec: u64,
    /// Whether this record continues the previous one's line (`+` flag).
    pub continues_previous: bool,
    /// The message with `\xNN` escapes undone; may contain newlines.
    pub text: String,
    /// Dictionary `KEY=value` pairs from the continuation lines (`SUBSYSTEM`, `DEVICE`,
    /// `CALLER`...), in order.
    pub dict: Vec<(String, String)>,
}

impl KmsgRecord {
    /// Parse one record exactly as `read()` returned it (a trailing newline is optional).
    pub fn parse(raw: &[u8]) -> Result<KmsgRecord, ParseError> {
        let raw = String::from_utf8_lossy(raw);
        let raw = raw.strip_suffix('\n').unwrap_or(&raw);
        let (first, dict_lines) = match raw.split_once('\n') {
            Some((first, rest)) => (first, Some(rest)),
            None => (raw, None),
        };
        let (prefix, message) = first
            .split_once(';')
            .ok_or_else(|| ParseError(format!("no ';' in record {first:?}")))?;
        let mut fields = prefix.split(',');
        let number = |field: Option<&str>, what: &str| -> Result<u64, ParseError> {
            field
                .and_then(|f| f.trim().parse().ok())
                .ok_or_else(|| ParseError(format!("bad {what} in record prefix {prefix:?}")))
        };
        let prio = number(fields.next(), "priority")?;
        let seq = number(fields.next(), "sequence number")?;
        let usec = number(fields.next(), "timestamp")?;
        let flags = fields.next().unwrap_or("-");
        let dict = dict_lines
            .into_iter()
            .flat_map(str::lines)
            .filter_map(|line| line.strip_prefix(' '))
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), unescape(value)))
            .collect();
        Ok(KmsgRecord {
            facility: u8::try_from((prio >> 3) & 0xff).unwrap_or(u8::MAX),
            level: (prio & 7) as u8,
            seq,
            usec,
            continues_previous: flags.contains('+'),
            text: unescape(message),
            dict,
        })
    }

    /// The record's text as log lines (one per embedded newline), stamped with its time
    /// and sequence number.
    pub fn lines(&self) -> impl Iterator<Item = LogLine> + '_ {
        self.text.split('\n').map(move |text| LogLine {
            time: LogTime {
                boot_usec: Some(self.usec),
                wall: None,
            },
            seq: Some(self.seq),
            text: text.to_owned(),
        })
    }
}

/// Undo the kernel's `\xNN` escapes; anything malformed is kept as it is.
pub fn unescape(text: &str) -> String {
    if !text.contains("\\x") {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = bytes
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_record() {
        let record = KmsgRecord::parse(
            b"3,497,620100039,-;Memory cgroup out of memory: Killed process 11298 (memglass-worklo)\n",
        )
        .unwrap();
        assert_eq!((record.facility, record.level), (0, 3));
        assert_eq!((record.seq, record.usec), (497, 620100039));
        assert!(!record.continues_previous);
        assert!(record.text.starts_with("Memory cgroup out of memory"));
        assert!(record.dict.is_empty());
    }

    #[test]
    fn escapes_and_embedded_newlines() {
        // As 6.1 prints the memory.stat dump of an OOM report: one record.
        let record =
            KmsgRecord::parse(b"6,439,5574380,-;anon 33234944\\x0afile 0\\x0aback\\x5cslash")
                .unwrap();
        let lines: Vec<String> = record.lines().map(|l| l.text).collect();
        assert_eq!(lines, ["anon 33234944", "file 0", "back\\slash"]);
        assert!(record.lines().all(|l| l.seq == Some(439)));
    }

    #[test]
    fn dictionary_and_continuation_flags() {
        let record = KmsgRecord::parse(
            b"14,1000,12345,+,extra;usb 1-1: new device\n SUBSYSTEM=usb\n DEVICE=c189:1\n",
        )
        .unwrap();
        assert_eq!(record.facility, 1);
        assert!(record.continues_previous);
        assert_eq!(
            record.dict,
            [
                ("SUBSYSTEM".to_owned(), "usb".to_owned()),
                ("DEVICE".to_owned(), "c189:1".to_owned())
            ]
        );
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        for raw in [
            &b""[..],
            b"no semicolon",
            b"x,1,2,-;text",
            b"4,,2,-;t",
            b";",
        ] {
            assert!(KmsgRecord::parse(raw).is_err(), "{raw:?}");
        }
        assert_eq!(unescape("\\x"), "\\x");
        assert_eq!(unescape("\\xZZ\\x4"), "\\xZZ\\x4");
        assert_eq!(unescape("\\xff"), "\u{fffd}");
    }
}
