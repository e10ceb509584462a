//! OOM reports → one [`OomKill`] per report. Pure: lines in, events out.
//!
//! A report runs from `<comm> invoked oom-killer:` through the cgroup counters and
//! `Memory cgroup stats for` dump (memcg OOMs) or `Mem-Info:` (global ones), the task
//! table, the `oom-kill:` summary (4.19+), to `Killed process` and, later, `oom_reaper:`.
//! The wording changed many times since 3.10 (see [`line`]); every part is optional, so a
//! report whose head was overwritten, or that `grep` cut down, still gives the event it
//! can. A report without any kill line gives none (the kernel found nothing to kill, or the
//! log lost it: counters in memory.events and /proc/vmstat still count those).
//!
//! Reports are serialised by the kernel's oom_lock, but other messages interleave with
//! them and logs get cut: a report is closed when the next one starts, when a line of a new
//! report's body follows a finished kill, or when more than [`STALE_USEC`] pass.

mod kill;
mod line;
mod report;
#[cfg(test)]
mod tests;

pub use kill::{
    Constraint, MemcgStats, OomKill, Reaped, Selected, TaskRow, Trigger, UsageCounter, Victim,
};

use crate::kmsg::{LogLine, LogTime};
use report::Report;

/// Lines of one report are written within milliseconds; after this long a new kill or
/// report body starts a new report even without its header.
pub const STALE_USEC: u64 = 30_000_000;

/// Feeds log lines in order and hands back each OOM report's event once it is complete.
#[derive(Debug, Default)]
pub struct OomAssembler {
    current: Option<Report>,
    /// Reports that ended without any kill line.
    pub reports_without_kill: usize,
}

/// All OOM kills in `lines`.
pub fn parse_lines<'l>(lines: impl IntoIterator<Item = &'l LogLine>) -> Vec<OomKill> {
    let mut assembler = OomAssembler::default();
    let mut kills: Vec<OomKill> = lines
        .into_iter()
        .filter_map(|line| assembler.push(line))
        .collect();
    kills.extend(assembler.finish());
    kills
}

impl OomAssembler {
    /// A new assembler.
    pub fn new() -> OomAssembler {
        OomAssembler::default()
    }

    /// Feed one line; returns the previous report's event when this line closed it.
    pub fn push(&mut self, line: &LogLine) -> Option<OomKill> {
        let text = line.text.trim();
        if text.is_empty() {
            return None;
        }
        if let Some(trigger) = line::trigger(text) {
            let closed = self.close();
            let report = self.start(line);
            report.trigger = Some(trigger);
            return closed;
        }
        if text.starts_with("Out of memory and no killable process") {
            if let Some(report) = self.current.take() {
                self.reports_without_kill += usize::from(report.victim_pid().is_none());
            }
            return None;
        }
        if let Some((pid, reaped)) = line::reaped(text) {
            let report = self.current.as_mut()?;
            let ours = report.victim.as_ref().map(|v| v.pid) == Some(pid)
                || report.group_kills.iter().any(|v| v.pid == pid);
            if ours && report.reaped.is_none() {
                report.reaped = Some(reaped);
            }
            return None;
        }
        let kind = Kind::of(text, self.current.as_ref());
        if kind == Kind::Other {
            if let Some(report) = self.current.as_mut() {
                report.other_line(text);
            }
            return None;
        }
        let stale = self.current.as_ref().is_some_and(|r| {
            elapsed_usec(&r.last_time, &line.time).is_some_and(|usec| usec > STALE_USEC)
        });
        let finished = self.current.as_ref().is_some_and(|r| {
            let group_kill = kind == Kind::Killed && r.oom_group.is_some();
            (r.victim.is_some() && kind != Kind::OomGroup && !group_kill)
                || (kind == Kind::Summary && r.summary_victim.is_some())
        });
        let closed = if stale || finished {
            self.close()
        } else {
            None
        };
        let report = match self.current.as_mut() {
            Some(report) => report,
            None => self.start(line),
        };
        report.last_time = line.time;
        report.body_line(text, line);
        closed
    }

    /// The event of a report in progress if it already has its kill (for followers whose
    /// log went quiet: its oom_reaper line may never come).
    pub fn flush_completed(&mut self) -> Option<OomKill> {
        if self.current.as_ref().is_some_and(|r| r.victim.is_some()) {
            return self.close();
        }
        None
    }

    /// When the last line of the report in progress was written, if that report already
    /// has its kill: a follower flushes it once this is long enough ago, whatever other
    /// messages keep the log busy meanwhile.
    pub fn completed_at(&self) -> Option<LogTime> {
        self.current
            .as_ref()
            .filter(|r| r.victim.is_some())
            .map(|r| r.last_time)
    }

    /// End of input: the last report's event, if it had a kill.
    pub fn finish(&mut self) -> Option<OomKill> {
        self.close()
    }

    fn start(&mut self, line: &LogLine) -> &mut Report {
        self.current.insert(Report::starting_at(line.time))
    }

    fn close(&mut self) -> Option<OomKill> {
        let report = self.current.take()?;
        let kill = report.into_kill();
        self.reports_without_kill += usize::from(kill.is_none());
        kill
    }
}

/// The kinds of line that belong to a report's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TaskIn,
    Counter,
    StatsHeader,
    MemInfo,
    TasksState,
    TaskHeader,
    Summary,
    Selected,
    Killed,
    OomGroup,
    Other,
}

impl Kind {
    fn of(text: &str, report: Option<&Report>) -> Kind {
        let in_report = report.is_some();
        if text.starts_with("oom-kill:") {
            Kind::Summary
        } else if text.contains("Killed process ") {
            Kind::Killed
        } else if line::selected(text).is_some() {
            Kind::Selected
        } else if line::task_in(text).is_some() {
            Kind::TaskIn
        } else if line::oom_group(text).is_some() && in_report {
            Kind::OomGroup
        } else if text.starts_with("Memory cgroup stats for ") {
            Kind::StatsHeader
        } else if line::usage_counter(text).is_some() {
            Kind::Counter
        } else if text == "Mem-Info:" && in_report {
            Kind::MemInfo
        } else if text.starts_with("Tasks state (memory values in pages)") {
            Kind::TasksState
        } else if line::task_header(text).is_some() {
            Kind::TaskHeader
        } else {
            Kind::Other
        }
    }
}

/// Microseconds from `from` to `to`, when both carry the same kind of clock.
fn elapsed_usec(from: &LogTime, to: &LogTime) -> Option<u64> {
    match (from.boot_usec, to.boot_usec, from.wall, to.wall) {
        (Some(a), Some(b), _, _) => b.checked_sub(a),
        (_, _, Some(a), Some(b)) => u64::try_from(b.unix_usec.checked_sub(a.unix_usec)?).ok(),
        _ => None,
    }
}
