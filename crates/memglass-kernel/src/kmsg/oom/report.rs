//! One report being assembled from its lines, and the [`OomKill`] it becomes.

use crate::cgroup::KeyedValues;
use crate::kmsg::oom::{
    line, Constraint, MemcgStats, OomKill, Reaped, Selected, TaskRow, Trigger, UsageCounter, Victim,
};
use crate::kmsg::{LogLine, LogTime};

/// Bounds on what one report may accumulate (hostile or corrupt input).
const MAX_TASKS: usize = 1 << 16;
const MAX_STAT_BLOCKS: usize = 4096;
const MAX_STAT_KEYS: usize = 1024;

/// A report being assembled.
#[derive(Debug, Default)]
pub(super) struct Report {
    pub(super) last_time: LogTime,
    kill_time: Option<(LogTime, Option<u64>)>,
    pub(super) trigger: Option<Trigger>,
    constraint: Option<Constraint>,
    constraint_printed: bool,
    nodemask: Option<String>,
    cpuset: Option<String>,
    mems_allowed: Option<String>,
    global_oom: bool,
    oom_memcg: Option<String>,
    task_memcg: Option<String>,
    pub(super) summary_victim: Option<(u32, Option<String>, Option<u32>)>,
    pub(super) victim: Option<Victim>,
    selected: Option<Selected>,
    pub(super) oom_group: Option<String>,
    pub(super) group_kills: Vec<Victim>,
    message: Option<String>,
    counters: Vec<UsageCounter>,
    stat_blocks: Vec<StatBlock>,
    mem_info: Vec<(String, u64)>,
    nodes: Vec<(String, u64)>,
    zones: Vec<(String, u64)>,
    task_columns: Option<Vec<String>>,
    tasks: Vec<TaskRow>,
    pub(super) reaped: Option<Reaped>,
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

impl Report {
    /// A report whose first line was written at `time`.
    pub(super) fn starting_at(time: LogTime) -> Report {
        Report {
            last_time: time,
            ..Report::default()
        }
    }

    pub(super) fn victim_pid(&self) -> Option<u32> {
        self.victim
            .as_ref()
            .map(|v| v.pid)
            .or(self.summary_victim.as_ref().map(|s| s.0))
            .or(self.selected.as_ref().map(|s| s.pid))
    }

    pub(super) fn body_line(&mut self, text: &str, line: &LogLine) {
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
    pub(super) fn other_line(&mut self, text: &str) {
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

    pub(super) fn into_kill(self) -> Option<OomKill> {
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
