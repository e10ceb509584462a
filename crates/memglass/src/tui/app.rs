//! The state of `memglass top` and what each key does to it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use memglass_analyse::{CgroupReport, MemoryReport, Snapshot};
use memglass_kernel::filecache::CachedFile;
use memglass_kernel::pagecache::Method;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::rows::{self, Column, Mode, Rates, Row, Sort};

/// What the screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Table,
    /// One cgroup in detail, scrolled down by `scroll` lines.
    Detail {
        path: String,
        scroll: u16,
    },
}

/// The cached files of one cgroup, measured on demand.
#[derive(Debug, Clone, Default)]
pub enum Files {
    #[default]
    NotAsked,
    Measuring {
        path: String,
    },
    Ready {
        path: String,
        files: Vec<CachedFile>,
        method: Method,
    },
    Failed {
        path: String,
        message: String,
    },
}

/// What the caller must do after a key (the state cannot reach the kernel itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Take a snapshot now rather than at the next interval.
    Refresh,
    /// Measure the page cache of this cgroup's files (in the background).
    MeasureFiles {
        path: String,
    },
}

/// One sample as the sampler hands it over.
#[derive(Debug)]
pub struct Sample {
    pub snapshot: Snapshot,
    /// When collection started (rates divide by the time between two of these).
    pub taken_at: Instant,
    /// How long collection took.
    pub took: Duration,
    /// Why names or figures are missing (from the runtime, the API, the kernel).
    pub warnings: Vec<String>,
    /// `memglass diagnose`'s findings for this sample (the detail view shows a cgroup's).
    pub findings: Vec<memglass_analyse::diagnose::Finding>,
}

#[derive(Debug)]
pub struct App {
    pub interval: Duration,
    current: Option<Sample>,
    previous: Option<Sample>,
    /// Each cgroup's figures when this run first saw it, for the change since start.
    first_seen: HashMap<String, MemoryReport>,
    node_oom_kill_at_start: Option<u64>,
    rates: Rates,
    /// Set by the sampler when the last collection failed; the last good sample stays.
    pub error: Option<String>,
    pub mode: Mode,
    /// The mode was chosen (Tab, or by a test) before the first sample could choose it.
    mode_chosen: bool,
    pub sort: Sort,
    pub filter: String,
    pub editing_filter: bool,
    rows: Vec<Row>,
    selected: usize,
    /// Follows the selected cgroup when rows move between refreshes.
    selected_path: Option<String>,
    pub view: View,
    pub files: Files,
    /// Table rows that fit on the screen (set while drawing), for PgUp/PgDn.
    pub page: usize,
    /// The first row shown, kept between draws so the view scrolls only when it must.
    pub table_offset: usize,
}

impl App {
    pub fn new(interval: Duration) -> App {
        App {
            interval,
            current: None,
            previous: None,
            first_seen: HashMap::new(),
            node_oom_kill_at_start: None,
            rates: Rates::new(),
            error: None,
            mode: Mode::Pods,
            mode_chosen: false,
            sort: Sort::default(),
            filter: String::new(),
            editing_filter: false,
            rows: Vec::new(),
            selected: 0,
            selected_path: None,
            view: View::Table,
            files: Files::NotAsked,
            page: 20,
            table_offset: 0,
        }
    }

    /// Take in a new sample: growth rates against the previous one, rows rebuilt.
    pub fn on_sample(&mut self, sample: Sample) {
        let snapshot = &sample.snapshot;
        if self.current.is_none() {
            self.node_oom_kill_at_start = snapshot.node.oom_kill;
            // A node without pods (a plain host) starts on its cgroups instead of nothing;
            // decided once, so the view never flips under the person's eyes.
            if !self.mode_chosen && snapshot.pods.is_empty() {
                self.mode = Mode::Cgroups;
            }
        }
        self.rates = match &self.current {
            Some(last) => rates(last, &sample),
            None => Rates::new(),
        };
        self.first_seen
            .retain(|path, _| snapshot.cgroups.iter().any(|c| &c.path == path));
        for cgroup in &snapshot.cgroups {
            if !self.first_seen.contains_key(&cgroup.path) {
                self.first_seen
                    .insert(cgroup.path.clone(), cgroup.memory.clone());
            }
        }
        self.error = None;
        self.previous = self.current.replace(sample);
        self.rebuild();
    }

    /// Show `mode` from now on, whatever the snapshots hold.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode_chosen = true;
        self.mode = mode;
        self.rebuild();
    }

    /// The newest sample.
    pub fn sample(&self) -> Option<&Sample> {
        self.current.as_ref()
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.current.as_ref().map(|s| &s.snapshot)
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn rate(&self, path: &str) -> Option<f64> {
        self.rates.get(path).copied()
    }

    /// The cgroup in the previous sample, for the change per refresh.
    pub fn previous(&self, path: &str) -> Option<&CgroupReport> {
        let previous = &self.previous.as_ref()?.snapshot;
        previous.cgroups.iter().find(|c| c.path == path)
    }

    /// The cgroup's figures when this run first saw it.
    pub fn first_seen(&self, path: &str) -> Option<&MemoryReport> {
        self.first_seen.get(path)
    }

    /// OOM kills on the node since `memglass top` started.
    pub fn node_oom_kills_since_start(&self) -> Option<u64> {
        let now = self.snapshot()?.node.oom_kill?;
        Some(now.saturating_sub(self.node_oom_kill_at_start?))
    }

    pub fn on_files(&mut self, files: Files) {
        self.files = files;
    }

    /// Apply a key; returns what the caller has to do.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.editing_filter {
            self.edit_filter(key.code);
            return Action::None;
        }
        match &self.view {
            View::Table => self.table_key(key.code),
            View::Detail { .. } => self.detail_key(key.code),
        }
    }

    fn edit_filter(&mut self, code: KeyCode) {
        match code {
            KeyCode::Enter => self.editing_filter = false,
            KeyCode::Esc => {
                self.editing_filter = false;
                self.filter.clear();
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            KeyCode::Up | KeyCode::Down | KeyCode::PageUp | KeyCode::PageDown => {
                self.move_selection(code);
                return;
            }
            _ => return,
        }
        self.rebuild();
    }

    fn table_key(&mut self, code: KeyCode) -> Action {
        match code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc if self.filter.is_empty() => return Action::Quit,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Char('/') => self.editing_filter = true,
            KeyCode::Char('r') => return Action::Refresh,
            KeyCode::Tab | KeyCode::Char('t') => {
                let other = match self.mode {
                    Mode::Pods => Mode::Cgroups,
                    Mode::Cgroups => Mode::Pods,
                };
                self.set_mode(other);
                return Action::None;
            }
            KeyCode::Char('i') => self.sort.descending = !self.sort.descending,
            KeyCode::Char('<') => self.shift_sort(-1),
            KeyCode::Char('>') => self.shift_sort(1),
            KeyCode::Enter | KeyCode::Char('f') => {
                let Some(path) = self.selected_path.clone() else {
                    return Action::None;
                };
                self.view = View::Detail {
                    path: path.clone(),
                    scroll: 0,
                };
                if code == KeyCode::Char('f') {
                    return self.measure_files(path);
                }
                return Action::None;
            }
            KeyCode::Char(c) if Column::for_key(c).is_some() => {
                let column = Column::for_key(c).unwrap_or(Column::WsKubelet);
                self.sort = if self.sort.column == column {
                    Sort {
                        column,
                        descending: !self.sort.descending,
                    }
                } else {
                    Sort {
                        column,
                        descending: column.descending_by_default(),
                    }
                };
            }
            other => {
                self.move_selection(other);
                return Action::None;
            }
        }
        self.rebuild();
        Action::None
    }

    fn detail_key(&mut self, code: KeyCode) -> Action {
        let View::Detail { path, scroll } = &mut self.view else {
            return Action::None;
        };
        match code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace | KeyCode::Left => {
                self.view = View::Table;
            }
            KeyCode::Char('f') => {
                let path = path.clone();
                return self.measure_files(path);
            }
            KeyCode::Char('r') => return Action::Refresh,
            KeyCode::Down | KeyCode::Char('j') => *scroll = scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
            KeyCode::PageDown => *scroll = scroll.saturating_add(self.page as u16),
            KeyCode::PageUp => *scroll = scroll.saturating_sub(self.page as u16),
            KeyCode::Home => *scroll = 0,
            _ => {}
        }
        Action::None
    }

    fn measure_files(&mut self, path: String) -> Action {
        if let Files::Measuring { .. } = self.files {
            return Action::None; // one measurement at a time
        }
        self.files = Files::Measuring { path: path.clone() };
        Action::MeasureFiles { path }
    }

    fn shift_sort(&mut self, by: isize) {
        let columns = Column::ALL;
        let at = columns
            .iter()
            .position(|&c| c == self.sort.column)
            .unwrap_or(0) as isize;
        let column = columns[(at + by).rem_euclid(columns.len() as isize) as usize];
        self.sort = Sort {
            column,
            descending: column.descending_by_default(),
        };
    }

    fn move_selection(&mut self, code: KeyCode) {
        let last = self.rows.len().saturating_sub(1);
        let page = self.page.max(1);
        self.selected = match code {
            KeyCode::Up | KeyCode::Char('k') => self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => (self.selected + 1).min(last),
            KeyCode::PageUp => self.selected.saturating_sub(page),
            KeyCode::PageDown => (self.selected + page).min(last),
            KeyCode::Home => 0,
            KeyCode::End | KeyCode::Char('G') => last,
            _ => return,
        };
        self.remember_selection();
    }

    /// Rows again after a new sample, sort or filter; the selection follows its cgroup.
    fn rebuild(&mut self) {
        let Some(sample) = &self.current else {
            return;
        };
        let snapshot = &sample.snapshot;
        self.rows = rows::build(snapshot, self.mode, self.sort, &self.filter, &self.rates);
        let found = self.selected_path.as_deref().and_then(|path| {
            self.rows
                .iter()
                .position(|r| snapshot.cgroups[r.index].path == path)
        });
        self.selected = found.unwrap_or(self.selected.min(self.rows.len().saturating_sub(1)));
        self.remember_selection();
    }

    fn remember_selection(&mut self) {
        self.selected_path = self
            .rows
            .get(self.selected)
            .zip(self.snapshot())
            .map(|(row, snapshot)| snapshot.cgroups[row.index].path.clone());
    }
}

/// Growth of kubelet's working set per second, for cgroups in both samples.
fn rates(last: &Sample, now: &Sample) -> Rates {
    let seconds = now.taken_at.duration_since(last.taken_at).as_secs_f64();
    if seconds <= 0.0 {
        return Rates::new();
    }
    let before: HashMap<&str, u64> = last
        .snapshot
        .cgroups
        .iter()
        .filter_map(|c| Some((c.path.as_str(), c.memory.working_set_kubelet?)))
        .collect();
    now.snapshot
        .cgroups
        .iter()
        .filter_map(|c| {
            let then = *before.get(c.path.as_str())?;
            let now = c.memory.working_set_kubelet?;
            Some((c.path.clone(), (now as f64 - then as f64) / seconds))
        })
        .collect()
}
