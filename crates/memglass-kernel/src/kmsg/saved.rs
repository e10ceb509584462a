//! Kernel logs saved as text, line by line, whatever wrote them:
//!
//! | writer | line |
//! |---|---|
//! | `dmesg` | `[  620.099291] text` (also `[  386.5][  T709] text` with caller ids) |
//! | `dmesg -T` | `[Mon Nov 25 07:50:37 2024] text` |
//! | `dmesg -r`, `-x` | `<4>[  620.09] text`, `kern  :warn  : [  620.09] text` |
//! | `journalctl -k` (`short`, `short-precise`) | `Nov 25 07:50:37[.123456] host kernel: text` |
//! | `journalctl -k -o short-iso[-precise]`, rsyslog RFC 3339 | `2024-11-25T07:50:37[.123456]+00:00 host kernel: text` |
//! | `journalctl -k -o short-monotonic` | `[  620.099291] host kernel: text` |
//! | /var/log/syslog, kern.log, messages | `Nov 25 07:50:37 host kernel: [  620.09] text` |
//! | /dev/kmsg records | `4,420,620099291,-;text` |
//!
//! Syslog lines of other programs are skipped. rsyslog's `#012` (an escaped newline) splits a
//! line; lines with no prefix (the journal's indented continuation lines, or a report pasted
//! without timestamps) take the time of the line before. Traditional syslog prints no year
//! and no zone: the year is a hint from the caller, and such times have no UTC offset.

use crate::kmsg::record::KmsgRecord;
use crate::kmsg::{LogLine, LogTime, WallTime};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parser state for one saved log, fed a line at a time.
#[derive(Debug, Clone)]
pub struct SavedLog {
    year: i32,
    last_month: u32,
    last_time: LogTime,
    skipping: bool,
    /// Some line printed no year (syslog, journal `short`): `year` was assumed.
    yearless: bool,
}

/// Slack for year-less local times, which carry no zone: up to a day after the anchor is
/// still "not in the future".
const ZONE_SLACK_SECS: i64 = 86_400;

/// Parse a whole saved log, dating lines that print no year in the most recent year that
/// puts none of them after `anchor` (Unix seconds: the file's modification time, else now),
/// so a December line read in the next January is last year's, and a `Dec 16` line read on
/// 7 December is last year's too, not nine days in the future. Returns the lines and the
/// year assumed for the first year-less line (`None` when every line carries its own year).
pub fn parse_anchored(text: &str, anchor: i64) -> (Vec<LogLine>, Option<i32>) {
    let year = civil_year(anchor.div_euclid(86_400));
    let mut last = None;
    // The log may span a new year (the year counts up at December → January): try this
    // year, then the ones before.
    for candidate in [year, year - 1, year - 2] {
        let mut log = SavedLog::new(candidate);
        let mut lines = Vec::new();
        for line in text.lines() {
            log.push(line, &mut lines);
        }
        if !log.yearless {
            return (lines, None);
        }
        let latest = lines
            .iter()
            .filter_map(|l| l.time.wall)
            .map(|w| w.unix_usec.div_euclid(1_000_000))
            .max();
        if latest.is_none_or(|t| t <= anchor.saturating_add(ZONE_SLACK_SECS)) {
            return (lines, Some(candidate));
        }
        last = Some((lines, candidate));
    }
    match last {
        Some((lines, year)) => (lines, Some(year)),
        None => (Vec::new(), None),
    }
}

/// The proleptic Gregorian year of a day counted from 1970-01-01 (inverse of
/// [`days_from_civil`], H. Hinnant's algorithm).
fn civil_year(days: i64) -> i32 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month_from_march = mp < 10;
    let year = yoe + era * 400 + i64::from(!month_from_march);
    i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX })
}

/// Parse a whole saved log. `year` is used where the log prints none (syslog, journal).
pub fn parse(text: &str, year: i32) -> Vec<LogLine> {
    let mut log = SavedLog::new(year);
    let mut lines = Vec::new();
    for line in text.lines() {
        log.push(line, &mut lines);
    }
    lines
}

impl SavedLog {
    /// A parser that dates year-less lines in `year` (moving to the next year when the
    /// months wrap around).
    pub fn new(year: i32) -> SavedLog {
        SavedLog {
            year,
            last_month: 0,
            last_time: LogTime::default(),
            skipping: false,
            yearless: false,
        }
    }

    /// Parse one saved line, appending the kernel log lines it holds to `out`.
    pub fn push(&mut self, line: &str, out: &mut Vec<LogLine>) {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return;
        }
        if let Some(record) = kmsg_record(line) {
            self.skipping = false;
            self.last_time = LogTime {
                boot_usec: Some(record.usec),
                wall: None,
            };
            if record.continues_previous {
                if let Some(last) = out.last_mut() {
                    last.text.push_str(&record.text);
                    return;
                }
            }
            out.extend(record.lines());
            return;
        }
        let line = strip_priority(line);
        let line = strip_facility_level(line);
        if let Some((wall, rest)) = iso_time(line).or_else(|| self.bsd_time(line)) {
            let Some(message) = kernel_message(rest) else {
                self.skipping = true;
                return;
            };
            let (boot_usec, message) = match bracket(message) {
                Some((Bracket::Boot(usec), text)) => (Some(usec), text),
                _ => (None, message),
            };
            self.skipping = false;
            self.last_time = LogTime {
                boot_usec,
                wall: Some(wall),
            };
            for (i, part) in message.split("#012").enumerate() {
                let text = if i == 0 { part.trim_start() } else { part };
                out.push(self.line(text));
            }
            return;
        }
        if let Some((stamp, mut text)) = bracket(line) {
            self.skipping = false;
            self.last_time = match stamp {
                Bracket::Boot(usec) => LogTime {
                    boot_usec: Some(usec),
                    wall: None,
                },
                Bracket::Wall(wall) => LogTime {
                    boot_usec: None,
                    wall: Some(wall),
                },
                Bracket::Unknown => LogTime::default(),
            };
            if let Some((Bracket::Unknown, after_caller)) = caller_id(text) {
                text = after_caller;
            }
            // journalctl -o short-monotonic: "[  620.09] host kernel: text".
            if let Some(message) = kernel_message(text).filter(|_| is_host_kernel(text)) {
                text = message;
            }
            out.push(self.line(text));
            return;
        }
        if !self.skipping {
            out.push(self.line(line));
        }
    }

    fn line(&self, text: &str) -> LogLine {
        LogLine {
            time: self.last_time,
            seq: None,
            text: text.to_owned(),
        }
    }

    /// `Mmm dd HH:MM:SS[.ffffff] rest` (syslog, journal short/short-precise).
    fn bsd_time<'l>(&mut self, line: &'l str) -> Option<(WallTime, &'l str)> {
        let month = MONTHS.iter().position(|m| line.starts_with(m))? as u32 + 1;
        let rest = line.get(3..)?.strip_prefix(' ')?.trim_start();
        let (day, rest) = rest.split_once(' ')?;
        let day: u32 = day.parse().ok()?;
        let (clock, rest) = rest.split_once(' ')?;
        let (seconds, micros) = clock_seconds(clock)?;
        if self.last_month >= 10 && month <= 2 {
            self.year += 1; // December → January
        }
        self.last_month = month;
        self.yearless = true;
        let days = days_from_civil(self.year, month, day)?;
        Some((wall(days, seconds, micros, None), rest))
    }
}

/// A `/dev/kmsg` record line: `digits,digits,digits,flags…;text`.
fn kmsg_record(line: &str) -> Option<KmsgRecord> {
    let (prefix, _) = line.split_once(';')?;
    let mut fields = prefix.split(',');
    let numeric =
        |f: Option<&str>| f.is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if !(numeric(fields.next()) && numeric(fields.next()) && numeric(fields.next())) {
        return None;
    }
    KmsgRecord::parse(line.as_bytes()).ok()
}

/// `<4>` (syslog priority, as `dmesg -r` prints it).
fn strip_priority(line: &str) -> &str {
    line.strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .filter(|(digits, _)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .map_or(line, |(_, rest)| rest)
}

/// `kern  :warn  : ` (`dmesg -x`).
fn strip_facility_level(line: &str) -> &str {
    let word = |w: &str| !w.trim().is_empty() && w.trim().bytes().all(|b| b.is_ascii_lowercase());
    let mut parts = line.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(facility), Some(level), Some(rest))
            if word(facility) && word(level) && rest.starts_with(' ') && facility.len() <= 8 =>
        {
            rest.trim_start()
        }
        _ => line,
    }
}

/// After a syslog timestamp: `host kernel: text` → `text`; `None` for another program.
fn kernel_message(rest: &str) -> Option<&str> {
    let (_host, rest) = rest.trim_start().split_once(' ')?;
    rest.strip_prefix("kernel:")
        .map(|text| text.strip_prefix(' ').unwrap_or(text))
}

fn is_host_kernel(text: &str) -> bool {
    text.split_once(' ')
        .is_some_and(|(host, rest)| !host.is_empty() && rest.starts_with("kernel:"))
}

enum Bracket {
    Boot(u64),
    Wall(WallTime),
    Unknown,
}

/// A leading `[…] `: seconds since boot, a `dmesg -T` date, or (localised dates) unknown.
/// Brackets without a `.` or `:` inside (task table rows, call traces) are not prefixes.
fn bracket(line: &str) -> Option<(Bracket, &str)> {
    let inner_end = line.strip_prefix('[')?.find(']')? + 1;
    let inner = line[1..inner_end].trim();
    let rest = line[inner_end + 1..]
        .strip_prefix(' ')
        .unwrap_or(&line[inner_end + 1..]);
    if let Some((secs, frac)) = inner.split_once('.') {
        if let (Ok(secs), true) = (
            secs.parse::<u64>(),
            frac.bytes().all(|b| b.is_ascii_digit()),
        ) {
            let micros: u64 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
            return Some((
                Bracket::Boot(secs.saturating_mul(1_000_000).saturating_add(micros)),
                rest,
            ));
        }
    }
    if !inner.contains(':') {
        return None;
    }
    Some((ctime(inner).map_or(Bracket::Unknown, Bracket::Wall), rest))
}

/// `[  T709]` or `[ C3]`: the printk caller id of kernels with CONFIG_PRINTK_CALLER.
fn caller_id(text: &str) -> Option<(Bracket, &str)> {
    let inner_end = text.strip_prefix('[')?.find(']')? + 1;
    let inner = text[1..inner_end].trim();
    let id = inner
        .strip_prefix('T')
        .or_else(|| inner.strip_prefix('C'))?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (Bracket::Unknown, text[inner_end + 1..].trim_start()))
}

/// `Mon Nov 25 07:50:37 2024` (`dmesg -T`, local time).
fn ctime(text: &str) -> Option<WallTime> {
    let mut words = text.split_whitespace();
    let _weekday = words.next()?;
    let month = MONTHS
        .iter()
        .position(|m| Some(*m) == words.clone().next())? as u32
        + 1;
    words.next();
    let day: u32 = words.next()?.parse().ok()?;
    let (seconds, micros) = clock_seconds(words.next()?)?;
    let year: i32 = words.next()?.parse().ok()?;
    Some(wall(
        days_from_civil(year, month, day)?,
        seconds,
        micros,
        None,
    ))
}

/// `YYYY-MM-DDTHH:MM:SS[.f][Z|±HH:MM|±HHMM] rest`.
fn iso_time(line: &str) -> Option<(WallTime, &str)> {
    let (stamp, rest) = line.split_once(' ')?;
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.splitn(3, '-');
    let year: i32 = ymd.next()?.parse().ok()?;
    let month: u32 = ymd.next()?.parse().ok()?;
    let day: u32 = ymd.next()?.parse().ok()?;
    let zone_at = time.find(['Z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let (seconds, micros) = clock_seconds(clock)?;
    let offset = match zone {
        "" => None,
        "Z" => Some(0),
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
            let hours: i32 = digits.get(..2)?.parse().ok()?;
            let minutes: i32 = digits.get(2..4).map_or(Some(0), |m| m.parse().ok())?;
            Some(sign * (hours * 3600 + minutes * 60))
        }
    };
    Some((
        wall(days_from_civil(year, month, day)?, seconds, micros, offset),
        rest,
    ))
}

/// `HH:MM:SS[.ffffff]` → (seconds of the day, microseconds).
fn clock_seconds(clock: &str) -> Option<(i64, i64)> {
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next()?.parse().ok()?;
    let in_range = (0..=23).contains(&h) && (0..=59).contains(&m) && (0..=60).contains(&s);
    if !in_range || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = format!("{frac:0<6}").get(..6)?.parse().ok()?;
    Some((h * 3600 + m * 60 + s, micros))
}

fn wall(days: i64, seconds: i64, micros: i64, offset: Option<i32>) -> WallTime {
    let local = days.saturating_mul(86_400).saturating_add(seconds);
    let utc = local.saturating_sub(i64::from(offset.unwrap_or(0)));
    WallTime {
        unix_usec: utc.saturating_mul(1_000_000).saturating_add(micros),
        utc_offset_secs: offset,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> LogLine {
        let lines = parse(line, 2024);
        assert_eq!(lines.len(), 1, "{line}: {lines:?}");
        lines.into_iter().next().unwrap()
    }

    const NOV_25_2024_07_50_37: i64 = 1_732_521_037;

    #[test]
    fn every_prefix() {
        let usec = |line: &str| one(line).time.boot_usec;
        let unix = |line: &str| one(line).time.wall.map(|w| w.unix_usec / 1_000_000);
        let text = |line: &str| one(line).text;
        for line in [
            "[  620.099291] memory: usage 1kB",
            "<6>[  620.099291] memory: usage 1kB",
            "kern  :info  : [  620.099291] memory: usage 1kB",
            "[  620.099291][  T709] memory: usage 1kB",
            "[  620.099291] host-1 kernel: memory: usage 1kB",
            "6,447,620099291,-;memory: usage 1kB",
        ] {
            assert_eq!(usec(line), Some(620_099_291), "{line}");
            assert_eq!(text(line), "memory: usage 1kB", "{line}");
        }
        for line in [
            "[Mon Nov 25 07:50:37 2024] memory: usage 1kB",
            "Nov 25 07:50:37 node-1 kernel: memory: usage 1kB",
            "Nov 25 07:50:37.123456 node-1 kernel: memory: usage 1kB",
            "2024-11-25T07:50:37+0000 node-1 kernel: memory: usage 1kB",
            "2024-11-25T09:50:37.000001+02:00 node-1 kernel: memory: usage 1kB",
            "2024-11-25T07:50:37Z node-1 kernel: memory: usage 1kB",
        ] {
            assert_eq!(unix(line), Some(NOV_25_2024_07_50_37), "{line}");
            assert_eq!(text(line), "memory: usage 1kB", "{line}");
        }
        let syslog = one("Dec  7 00:20:58 node kernel: [5193605.506735] memory: usage 1kB");
        assert_eq!(syslog.time.boot_usec, Some(5_193_605_506_735));
        assert!(syslog
            .time
            .wall
            .is_some_and(|w| w.utc_offset_secs.is_none()));
        assert_eq!(syslog.text, "memory: usage 1kB");
    }

    #[test]
    fn other_programs_and_their_continuations_are_skipped() {
        let lines = parse(
            "Nov 25 07:50:37 node systemd[1]: Started something.\n\
             \x20                                      continued\n\
             Nov 25 07:50:38 node kernel: active_anon:1 inactive_anon:2#012 active_file:3\n\
             \x20                                      indented continuation\n",
            2024,
        );
        let texts: Vec<&str> = lines.iter().map(|l| l.text.trim()).collect();
        assert_eq!(
            texts,
            [
                "active_anon:1 inactive_anon:2",
                "active_file:3",
                "indented continuation"
            ]
        );
        assert!(lines.iter().all(|l| l.time == lines[0].time));
    }

    #[test]
    fn plain_text_and_task_rows_are_not_prefixes() {
        let lines = parse(
            "[ 1381]     0  1381   530382 gunpowder-memho\n[<ffffffff8137ad47>] dump_stack\n",
            2024,
        );
        assert_eq!(
            lines[0].text,
            "[ 1381]     0  1381   530382 gunpowder-memho"
        );
        assert_eq!(lines[1].text, "[<ffffffff8137ad47>] dump_stack");
        assert!(lines.iter().all(|l| l.time == LogTime::default()));
        // A localised dmesg -T date is still a prefix, of unknown time.
        assert_eq!(
            one("[四 3月 18 18:47:12 2021] Task in /x").text,
            "Task in /x"
        );
    }

    #[test]
    fn years_wrap_and_calendar() {
        let lines = parse(
            "Dec 31 23:59:59 h kernel: a\nJan  1 00:00:00 h kernel: b\n",
            2023,
        );
        let t = |i: usize| lines[i].time.wall.unwrap().unix_usec / 1_000_000;
        assert_eq!(t(1) - t(0), 1);
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(2024, 13, 1), None);
        for (y, m, d) in [
            (1970, 1, 1),
            (2024, 2, 29),
            (2026, 12, 7),
            (1969, 12, 31),
            (2100, 3, 1),
        ] {
            assert_eq!(
                civil_year(days_from_civil(y, m, d).unwrap()),
                y,
                "{y}-{m}-{d}"
            );
        }
    }

    /// Unix seconds of a UTC date and time.
    fn at(y: i32, mo: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, mo, d).unwrap() * 86_400 + h * 3600
    }

    #[test]
    fn year_less_lines_are_never_dated_after_the_anchor() {
        // The seeds' AKS line, read on 7 December 2026: 16 December is last year's.
        let aks = "Dec 16 09:37:31 aks-node kernel: [ 1.0] oom-kill:constraint=CONSTRAINT_MEMCG\n";
        let (lines, year) = parse_anchored(aks, at(2026, 12, 7, 12));
        assert_eq!(year, Some(2025));
        assert_eq!(
            lines[0].time.wall.unwrap().unix_usec / 1_000_000,
            at(2025, 12, 16, 9) + 37 * 60 + 31
        );
        // Read on 20 December, the same line is this year's.
        assert_eq!(parse_anchored(aks, at(2026, 12, 20, 0)).1, Some(2026));
        // A log across New Year read in January: December is last year's, January this one's.
        let wrap = "Dec 31 23:59:59 h kernel: a\nJan  1 00:00:01 h kernel: b\n";
        let (lines, year) = parse_anchored(wrap, at(2027, 1, 2, 0));
        assert_eq!(year, Some(2026));
        assert_eq!(
            lines[1].time.wall.unwrap().unix_usec / 1_000_000,
            at(2027, 1, 1, 0) + 1
        );
        // Up to a day after the anchor still counts as now (a zone the log did not print).
        assert_eq!(parse_anchored(aks, at(2026, 12, 15, 12)).1, Some(2026));
        // Lines that carry their year are left alone.
        let iso = "2024-11-25T07:50:37+00:00 h kernel: x\n";
        assert_eq!(parse_anchored(iso, at(2020, 1, 1, 0)).1, None);
    }

    #[test]
    fn negative_clock_fields_are_not_times() {
        // Found by fuzzing (memglass-fuzz, saved-log): a syslog line whose hour was
        // i64::MIN passed `h > 23` and overflowed `h * 3600`.
        for line in [
            "Sep 22 -9223372036854775808:22:28 mgr9 kernel: Out of memory: Kill process 4402 (mysqld)",
            "Sep 22 -1:22:28 mgr9 kernel: x",
            "Sep 22 01:-5:28 mgr9 kernel: x",
            "2024-11-25T07:50:-1Z node-1 kernel: x",
        ] {
            assert!(parse(line, 2024).iter().all(|l| l.time.wall.is_none()), "{line}");
        }
    }
}
