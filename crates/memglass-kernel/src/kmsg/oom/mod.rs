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

mod line;
#[cfg(test)]
mod tests;

use crate::cgroup::{KeyedValues, Limit};
use crate::kmsg::{LogLine, LogTime};

/// Lines of one report are written within milliseconds; after this long a new kill or
/// report body starts a new report even without its header.
pub const STALE_USEC: u64 = 30_000_000;
/// Bounds on what one report may accumulate (hostile or corrupt input).
const MAX_TASKS: usize = 1 << 16;
const MAX_STAT_BLOCKS: usize = 4096;
const MAX_STAT_KEYS: usize = 1024;

/// The kernel's `constraint=` (`enum oom_constraint`): what limited the allocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Constraint {
    /// The whole machine (a global OOM).
    #[serde(rename = "CONSTRAINT_NONE")]
    None,
    /// A cpuset's memory nodes.
    #[serde(rename = "CONSTRAINT_CPUSET")]
    Cpuset,
    /// A NUMA memory policy.
    #[serde(rename = "CONSTRAINT_MEMORY_POLICY")]
    MemoryPolicy,
    /// A memory cgroup's limit.
    #[serde(rename = "CONSTRAINT_MEMCG")]
    Memcg,
    /// A value this parser does not know, as printed.
    #[serde(untagged)]
    Other(String),
}

impl Constraint {
    fn parse(text: &str) -> Constraint {
        match text {
            "CONSTRAINT_NONE" => Constraint::None,
            "CONSTRAINT_CPUSET" => Constraint::Cpuset,
            "CONSTRAINT_MEMORY_POLICY" => Constraint::MemoryPolicy,
            "CONSTRAINT_MEMCG" => Constraint::Memcg,
            other => Constraint::Other(other.to_owned()),
        }
    }

    /// The kernel's spelling (`CONSTRAINT_MEMCG`).
    pub fn as_str(&self) -> &str {
        match self {
            Constraint::None => "CONSTRAINT_NONE",
            Constraint::Cpuset => "CONSTRAINT_CPUSET",
            Constraint::MemoryPolicy => "CONSTRAINT_MEMORY_POLICY",
            Constraint::Memcg => "CONSTRAINT_MEMCG",
            Constraint::Other(text) => text,
        }
    }
}

/// The task whose allocation invoked the OOM killer (not necessarily the victim).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trigger {
    /// Its command name.
    pub comm: String,
    /// Its PID (from the `CPU: … PID:` line of the stack dump).
    pub pid: Option<u32>,
    /// The allocation's flags as printed (`0xcc0(GFP_KERNEL)`).
    pub gfp_mask: Option<String>,
    /// log2 of the number of pages asked for.
    pub order: Option<u32>,
    /// Its oom_score_adj.
    pub oom_score_adj: Option<i32>,
}

/// A killed process. Sizes in bytes (the kernel prints kB).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Victim {
    /// PID.
    pub pid: u32,
    /// Command name.
    pub comm: Option<String>,
    /// Owner's UID.
    pub uid: Option<u32>,
    /// Virtual size.
    pub total_vm: Option<u64>,
    /// Resident anonymous memory.
    pub anon_rss: Option<u64>,
    /// Resident file-backed memory.
    pub file_rss: Option<u64>,
    /// Resident shared memory (tmpfs, SysV/POSIX shm) (4.5+).
    pub shmem_rss: Option<u64>,
    /// Page tables (5.3+).
    pub pgtables: Option<u64>,
    /// oom_score_adj (5.4+).
    pub oom_score_adj: Option<i32>,
}

/// The task the killer chose, as printed before 5.0 (`Kill process … score …`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Selected {
    /// PID.
    pub pid: u32,
    /// Command name.
    pub comm: Option<String>,
    /// Its badness score.
    pub score: Option<u64>,
}

/// A `memory:`, `memory+swap:`, `kmem:` or `swap:` line of a memcg OOM report: the OOM
/// cgroup's counter at the time. Bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageCounter {
    /// `memory`, `memory+swap`, `kmem` or `swap`.
    pub name: String,
    /// Usage.
    pub usage: u64,
    /// Limit (the kernel prints "none" as a huge number).
    pub limit: Limit,
    /// Times usage hit the limit.
    pub failcnt: u64,
}

/// One `Memory cgroup stats for PATH` block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemcgStats {
    /// The cgroup.
    pub path: String,
    /// Whether the values are the cgroup's alone (before 5.3: one line per cgroup of the
    /// subtree, `KB` → bytes) or its memory.stat (5.3+: hierarchical, bytes and counts).
    pub local: bool,
    /// The values, keys as printed.
    pub stat: KeyedValues,
}

/// One row of the task table. Memory columns are in pages, as printed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskRow {
    /// PID.
    pub pid: u32,
    /// UID.
    pub uid: Option<u32>,
    /// Thread group id.
    pub tgid: Option<u32>,
    /// Virtual size, pages.
    pub total_vm_pages: Option<u64>,
    /// Resident set, pages.
    pub rss_pages: Option<u64>,
    /// Resident anonymous pages (6.8+).
    pub rss_anon_pages: Option<u64>,
    /// Resident file pages (6.8+).
    pub rss_file_pages: Option<u64>,
    /// Resident shmem pages (6.8+).
    pub rss_shmem_pages: Option<u64>,
    /// Page tables, bytes (4.15+).
    pub pgtables_bytes: Option<u64>,
    /// Swap entries, pages.
    pub swapents_pages: Option<u64>,
    /// oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// Command name.
    pub name: String,
}

/// What the OOM reaper left of the victim. Bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reaped {
    /// Anonymous memory still resident.
    pub anon_rss: Option<u64>,
    /// File memory still resident.
    pub file_rss: Option<u64>,
    /// Shared memory still resident.
    pub shmem_rss: Option<u64>,
}

/// One OOM kill, as its report told it. Optional fields are what this kernel's report (or
/// what survived of it) did not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomKill {
    /// When the victim was killed (the kill line; else the report's last line).
    pub time: LogTime,
    /// `/dev/kmsg` sequence number of that line.
    pub seq: Option<u64>,
    /// Who invoked the killer.
    pub trigger: Option<Trigger>,
    /// The constraint: printed (4.19+) or, before, inferred from the report's wording.
    pub constraint: Option<Constraint>,
    /// True when the kernel printed `constraint=` itself.
    pub constraint_printed: bool,
    /// `nodemask=`, as printed.
    pub nodemask: Option<String>,
    /// The trigger's cpuset.
    pub cpuset: Option<String>,
    /// `mems_allowed=`, as printed.
    pub mems_allowed: Option<String>,
    /// The summary said `global_oom`.
    pub global_oom: bool,
    /// The cgroup whose limit was hit (`oom_memcg=`, `… limit of Y`, or the first stats
    /// block, which every kernel prints for the OOM cgroup first).
    pub oom_memcg: Option<String>,
    /// The victim's cgroup (`task_memcg=`, `Task in X …`).
    pub task_memcg: Option<String>,
    /// The killed process.
    pub victim: Victim,
    /// The task the killer chose, when printed (before 5.0; may differ from the victim).
    pub selected: Option<Selected>,
    /// The cgroup killed as a whole (`memory.oom.group`).
    pub oom_group: Option<String>,
    /// The other processes killed with it (oom.group).
    pub group_kills: Vec<Victim>,
    /// The kill line's message (`Memory cgroup out of memory`, `Out of memory`).
    pub message: Option<String>,
    /// The OOM cgroup's counters.
    pub counters: Vec<UsageCounter>,
    /// The stats dump(s).
    pub memcg_stats: Vec<MemcgStats>,
    /// Global OOMs: the `Mem-Info:` counters, in pages.
    pub mem_info_pages: Option<KeyedValues>,
    /// Global OOMs: the `Node N active_anon:…kB` lines summed over nodes (4.8+; before,
    /// the zone lines summed over zones), bytes.
    pub node_stats: Option<KeyedValues>,
    /// The task table.
    pub tasks: Vec<TaskRow>,
    /// The OOM reaper's line about the victim.
    pub reaped: Option<Reaped>,
}

/// A report being assembled.
#[derive(Debug, Default)]
struct Report {
    last_time: LogTime,
    kill_time: Option<(LogTime, Option<u64>)>,
    trigger: Option<Trigger>,
    constraint: Option<Constraint>,
    constraint_printed: bool,
    nodemask: Option<String>,
    cpuset: Option<String>,
    mems_allowed: Option<String>,
    global_oom: bool,
    oom_memcg: Option<String>,
    task_memcg: Option<String>,
    summary_victim: Option<(u32, Option<String>, Option<u32>)>,
    victim: Option<Victim>,
    selected: Option<Selected>,
    oom_group: Option<String>,
    group_kills: Vec<Victim>,
    message: Option<String>,
    counters: Vec<UsageCounter>,
    stat_blocks: Vec<StatBlock>,
    mem_info: Vec<(String, u64)>,
    nodes: Vec<(String, u64)>,
    zones: Vec<(String, u64)>,
    task_columns: Option<Vec<String>>,
    tasks: Vec<TaskRow>,
    reaped: Option<Reaped>,
    section: Section,
}

/// A `Memory cgroup stats for` block being read.
#[derive(Debug)]
struct StatBlock {
    path: String,
    local: bool,
    entries: Vec<(String, u64)>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Section {
    #[default]
    None,
    Stats,
    MemInfo,
    Tasks,
}

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

    /// End of input: the last report's event, if it had a kill.
    pub fn finish(&mut self) -> Option<OomKill> {
        self.close()
    }

    fn start(&mut self, line: &LogLine) -> &mut Report {
        self.current.insert(Report {
            last_time: line.time,
            ..Report::default()
        })
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

impl Report {
    fn victim_pid(&self) -> Option<u32> {
        self.victim
            .as_ref()
            .map(|v| v.pid)
            .or(self.summary_victim.as_ref().map(|s| s.0))
            .or(self.selected.as_ref().map(|s| s.pid))
    }

    fn body_line(&mut self, text: &str, line: &LogLine) {
        self.section = Section::None;
        if let Some(fields) = line::summary(text) {
            self.summary(&fields);
            self.kill_time.get_or_insert((line.time, line.seq));
        } else if let Some((message, victim)) = line::killed(text) {
            if self.victim.is_none() {
                self.kill_time = Some((line.time, line.seq));
            }
            if !message.is_empty() {
                self.message.get_or_insert_with(|| message.to_owned());
            }
            match &self.victim {
                None => self.victim = Some(victim),
                // oom.group kills list the victim again.
                Some(first) if first.pid == victim.pid => {}
                Some(_) if self.group_kills.iter().any(|v| v.pid == victim.pid) => {}
                Some(_) => self.group_kills.push(victim),
            }
        } else if let Some((message, selected)) = line::selected(text) {
            if !message.is_empty() {
                self.message.get_or_insert_with(|| message.to_owned());
            }
            self.selected.get_or_insert(selected);
        } else if let Some((task, limit)) = line::task_in(text) {
            self.task_memcg = Some(task.trim().to_owned());
            self.oom_memcg = Some(limit.trim().to_owned());
        } else if let Some(group) = line::oom_group(text) {
            self.oom_group = Some(group.to_owned());
        } else if let Some((path, values)) = line::stats_header(text) {
            if self.stat_blocks.len() < MAX_STAT_BLOCKS {
                let local = values.is_some();
                let entries = values.map_or_else(Vec::new, |v| {
                    v.iter().map(|(k, v)| (k.to_owned(), v)).collect()
                });
                self.stat_blocks.push(StatBlock {
                    path,
                    local,
                    entries,
                });
            }
            self.section = Section::Stats;
        } else if let Some(counter) = line::usage_counter(text) {
            self.counters.push(counter);
        } else if text == "Mem-Info:" {
            self.section = Section::MemInfo;
        } else if text.starts_with("Tasks state") {
            self.section = Section::Tasks;
        } else if let Some(columns) = line::task_header(text) {
            self.task_columns = Some(columns);
            self.section = Section::Tasks;
        }
    }

    /// A line that is not a report marker: part of the current section, or noise.
    fn other_line(&mut self, text: &str) {
        match self.section {
            Section::Stats => {
                if let (Some((key, value)), Some(block)) =
                    (line::stat_line(text), self.stat_blocks.last_mut())
                {
                    if !block.local && block.entries.len() < MAX_STAT_KEYS {
                        block.entries.push((key.to_owned(), value));
                    }
                }
            }
            Section::MemInfo => {
                if let Some(entries) = line::node_line(text) {
                    add_all(&mut self.nodes, entries);
                } else if let Some(entries) = line::zone_line(text) {
                    add_all(&mut self.zones, entries);
                } else if let Some(entries) = line::page_counts(text) {
                    if self.nodes.is_empty() {
                        self.mem_info
                            .extend(entries.into_iter().map(|(k, v)| (k.to_owned(), v)));
                    }
                }
            }
            Section::Tasks => {
                let row = self
                    .task_columns
                    .as_deref()
                    .and_then(|columns| line::task_row(text, columns));
                if let Some(row) = row.filter(|_| self.tasks.len() < MAX_TASKS) {
                    self.tasks.push(row);
                }
            }
            Section::None => {
                if let Some(pid) = line::cpu_line_pid(text) {
                    if let Some(trigger) = self.trigger.as_mut() {
                        trigger.pid.get_or_insert(pid);
                    }
                } else if let Some((_, rest)) = text.split_once(" cpuset=") {
                    // Before 4.19: "<comm> cpuset=<name> mems_allowed=<nodes>".
                    if let Some((cpuset, mems)) = rest.split_once(" mems_allowed=") {
                        self.cpuset.get_or_insert_with(|| cpuset.to_owned());
                        self.mems_allowed.get_or_insert_with(|| mems.to_owned());
                    }
                }
            }
        }
    }

    fn summary(&mut self, fields: &[(&'static str, &str)]) {
        let mut pid = None;
        let mut comm = None;
        let mut uid = None;
        for &(key, value) in fields {
            let value = value.to_owned();
            match key {
                "constraint" if !value.is_empty() => {
                    self.constraint = Some(Constraint::parse(&value));
                    self.constraint_printed = true;
                }
                "nodemask" => self.nodemask = Some(value),
                "cpuset" => self.cpuset = Some(value),
                "mems_allowed" => self.mems_allowed = Some(value),
                "oom_memcg" => self.oom_memcg = Some(value),
                "global_oom" => self.global_oom = true,
                "task_memcg" => self.task_memcg = Some(value),
                "task" => comm = Some(value),
                "pid" => pid = line::leading_number(&value),
                "uid" => uid = line::leading_number(&value),
                _ => {}
            }
        }
        if let Some(pid) = pid {
            self.summary_victim = Some((pid, comm, uid));
        }
    }

    fn into_kill(self) -> Option<OomKill> {
        let mut victim = match (self.victim, &self.summary_victim, &self.selected) {
            (Some(victim), _, _) => victim,
            (None, Some((pid, comm, uid)), _) => bare_victim(*pid, comm.clone(), *uid),
            (None, None, Some(selected)) => bare_victim(selected.pid, selected.comm.clone(), None),
            (None, None, None) => return None,
        };
        if let Some((pid, comm, uid)) = &self.summary_victim {
            if *pid == victim.pid {
                victim.comm = victim.comm.or_else(|| comm.clone());
                victim.uid = victim.uid.or(*uid);
            }
        }
        let memcg_report = self.oom_memcg.is_some()
            || !self.counters.is_empty()
            || !self.stat_blocks.is_empty()
            || self.message.as_deref() == Some("Memory cgroup out of memory");
        let constraint = self.constraint.or_else(|| {
            if memcg_report {
                Some(Constraint::Memcg)
            } else if self.global_oom || self.message.as_deref() == Some("Out of memory") {
                Some(Constraint::None)
            } else {
                None
            }
        });
        let oom_memcg = self
            .oom_memcg
            .or_else(|| self.stat_blocks.first().map(|block| block.path.clone()));
        let (time, seq) = self.kill_time.unwrap_or((self.last_time, None));
        Some(OomKill {
            time,
            seq,
            trigger: self.trigger,
            constraint,
            constraint_printed: self.constraint_printed,
            nodemask: self.nodemask,
            cpuset: self.cpuset,
            mems_allowed: self.mems_allowed,
            global_oom: self.global_oom,
            oom_memcg,
            task_memcg: self.task_memcg,
            victim,
            selected: self.selected,
            oom_group: self.oom_group,
            group_kills: self.group_kills,
            message: self.message,
            counters: self.counters,
            memcg_stats: self
                .stat_blocks
                .into_iter()
                .map(|block| MemcgStats {
                    path: block.path,
                    local: block.local,
                    stat: KeyedValues::from_entries(
                        block.entries.iter().map(|(k, v)| (k.as_str(), *v)),
                    ),
                })
                .collect(),
            mem_info_pages: keyed(&self.mem_info),
            // Before 4.8 the LRU sizes were per zone only; their sum is the node's.
            node_stats: keyed(&self.nodes).or_else(|| keyed(&self.zones)),
            tasks: self.tasks,
            reaped: self.reaped,
        })
    }
}

fn bare_victim(pid: u32, comm: Option<String>, uid: Option<u32>) -> Victim {
    Victim {
        pid,
        comm,
        uid,
        total_vm: None,
        anon_rss: None,
        file_rss: None,
        shmem_rss: None,
        pgtables: None,
        oom_score_adj: None,
    }
}

fn keyed(entries: &[(String, u64)]) -> Option<KeyedValues> {
    (!entries.is_empty())
        .then(|| KeyedValues::from_entries(entries.iter().map(|(k, v)| (k.as_str(), *v))))
}

/// Sum `entries` into `totals` by key (one `Node` line per NUMA node).
fn add_all(totals: &mut Vec<(String, u64)>, entries: Vec<(&str, u64)>) {
    for (key, value) in entries {
        match totals.iter_mut().find(|(k, _)| k == key) {
            Some((_, total)) => *total = total.saturating_add(value),
            None => totals.push((key.to_owned(), value)),
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
