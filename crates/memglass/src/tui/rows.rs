//! The table's rows: which cgroups, in which order, under which filter.

use std::cmp::Ordering;
use std::collections::HashMap;

use memglass_analyse::{CgroupReport, Snapshot};
use memglass_identify::CgroupKind;

/// What the table lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pod cgroups, each with its containers indented beneath.
    Pods,
    /// Every cgroup but the root, flat.
    Cgroups,
}

/// A column of the table; every one can be the sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    WsKubelet,
    Growth,
    WorkingSet,
    Anon,
    File,
    Shmem,
    Dirty,
    Kernel,
    Limit,
    LimitPercent,
    OomKill,
}

impl Column {
    /// Left to right.
    pub const ALL: [Column; 12] = [
        Column::Name,
        Column::WsKubelet,
        Column::Growth,
        Column::WorkingSet,
        Column::Anon,
        Column::File,
        Column::Shmem,
        Column::Dirty,
        Column::Kernel,
        Column::Limit,
        Column::LimitPercent,
        Column::OomKill,
    ];

    /// The header cell.
    pub fn title(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::WsKubelet => "WS_KUBELET",
            Column::Growth => "ΔWS_KUB",
            Column::WorkingSet => "WS",
            Column::Anon => "ANON",
            Column::File => "FILE",
            Column::Shmem => "SHMEM",
            Column::Dirty => "DIRTY",
            Column::Kernel => "KERNEL",
            Column::Limit => "LIMIT",
            Column::LimitPercent => "%LIM",
            Column::OomKill => "OOM",
        }
    }

    /// The key that sorts by this column (mnemonic; `k` moves, so kernel is `K`).
    pub fn key(self) -> char {
        match self {
            Column::Name => 'n',
            Column::WsKubelet => 'w',
            Column::Growth => 'g',
            Column::WorkingSet => 'W',
            Column::Anon => 'a',
            Column::File => 'c',
            Column::Shmem => 's',
            Column::Dirty => 'd',
            Column::Kernel => 'K',
            Column::Limit => 'l',
            Column::LimitPercent => '%',
            Column::OomKill => 'o',
        }
    }

    /// The column sorted by `key`, if any.
    pub fn for_key(key: char) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.key() == key)
    }

    /// Names read A→Z; figures largest first.
    pub fn descending_by_default(self) -> bool {
        self != Column::Name
    }
}

/// Sort key and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: Column,
    pub descending: bool,
}

impl Default for Sort {
    /// kubelet's working set: the figure evictions and `kubectl top` use.
    fn default() -> Sort {
        Sort {
            column: Column::WsKubelet,
            descending: true,
        }
    }
}

/// One table row: a cgroup of the snapshot and its indentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Index into `Snapshot::cgroups`.
    pub index: usize,
    /// 0 for pods and cgroups, 1 for a container under its pod.
    pub depth: u8,
}

/// Growth of kubelet's working set in bytes per second between the last two samples,
/// by cgroup path.
pub type Rates = HashMap<String, f64>;

/// The rows to show: `mode`'s cgroups matching `filter` (case-insensitive, any of path,
/// namespace, pod, container name), sorted by `sort`; in pod mode a pod's containers
/// follow it, sorted the same way, and a pod stays when only a container matches.
pub fn build(snapshot: &Snapshot, mode: Mode, sort: Sort, filter: &str, rates: &Rates) -> Vec<Row> {
    let filter = filter.to_lowercase();
    let matches = |c: &CgroupReport| filter.is_empty() || haystack(c).contains(&filter);
    let compare = |a: &usize, b: &usize| {
        let (a, b) = (&snapshot.cgroups[*a], &snapshot.cgroups[*b]);
        compare(a, b, sort, rates).then_with(|| a.path.cmp(&b.path))
    };
    match mode {
        Mode::Cgroups => {
            let mut indexes: Vec<usize> = (0..snapshot.cgroups.len())
                .filter(|&i| !snapshot.cgroups[i].is_root() && matches(&snapshot.cgroups[i]))
                .collect();
            indexes.sort_by(compare);
            indexes
                .into_iter()
                .map(|index| Row { index, depth: 0 })
                .collect()
        }
        Mode::Pods => {
            let by_path: HashMap<&str, usize> = snapshot
                .cgroups
                .iter()
                .enumerate()
                .map(|(i, c)| (c.path.as_str(), i))
                .collect();
            let mut pods: Vec<(usize, Vec<usize>)> = snapshot
                .pods
                .iter()
                .filter_map(|pod| {
                    let index = *by_path.get(pod.path.as_str())?;
                    let mut containers: Vec<usize> = pod
                        .containers
                        .iter()
                        .filter_map(|path| by_path.get(path.as_str()).copied())
                        .collect();
                    if !matches(&snapshot.cgroups[index]) {
                        containers.retain(|&i| matches(&snapshot.cgroups[i]));
                        if containers.is_empty() {
                            return None;
                        }
                    }
                    containers.sort_by(compare);
                    Some((index, containers))
                })
                .collect();
            pods.sort_by(|a, b| compare(&a.0, &b.0));
            pods.into_iter()
                .flat_map(|(pod, containers)| {
                    std::iter::once(Row {
                        index: pod,
                        depth: 0,
                    })
                    .chain(containers.into_iter().map(|index| Row { index, depth: 1 }))
                })
                .collect()
        }
    }
}

/// The name column: names where the runtime or API gave them, else the path (pods and
/// cgroups) or the container id (containers).
pub fn label(cgroup: &CgroupReport, row: Row) -> String {
    if row.depth > 0 {
        let name = cgroup.container.clone().unwrap_or_else(|| {
            let id = cgroup.container_id.as_deref();
            let last = cgroup.path.rsplit('/').next().unwrap_or_default();
            id.unwrap_or(last).chars().take(24).collect()
        });
        return format!("  └ {name}");
    }
    match (&cgroup.namespace, &cgroup.pod) {
        (Some(namespace), Some(pod)) if cgroup.kind == CgroupKind::Pod => {
            format!("{namespace}/{pod}")
        }
        _ => cgroup.path.clone(),
    }
}

/// Usage as a share of the hard limit, percent: at 100 the kernel reclaims, then OOM-kills.
pub fn limit_percent(cgroup: &CgroupReport) -> Option<f64> {
    let limit = cgroup.memory.limit.filter(|&l| l > 0)?;
    Some(cgroup.memory.usage? as f64 * 100.0 / limit as f64)
}

fn haystack(cgroup: &CgroupReport) -> String {
    let names = [&cgroup.namespace, &cgroup.pod, &cgroup.container];
    let mut text = cgroup.path.to_lowercase();
    for name in names.into_iter().flatten() {
        text.push(' ');
        text.push_str(&name.to_lowercase());
    }
    text
}

/// Unknown figures sort after known ones whichever the direction.
fn compare(a: &CgroupReport, b: &CgroupReport, sort: Sort, rates: &Rates) -> Ordering {
    if sort.column == Column::Name {
        let order = label(a, Row { index: 0, depth: 0 }).cmp(&label(b, Row { index: 0, depth: 0 }));
        return if sort.descending {
            order.reverse()
        } else {
            order
        };
    }
    let (a, b) = (value(a, sort.column, rates), value(b, sort.column, rates));
    match (a, b) {
        (Some(a), Some(b)) => {
            let order = a.total_cmp(&b);
            if sort.descending {
                order.reverse()
            } else {
                order
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn value(cgroup: &CgroupReport, column: Column, rates: &Rates) -> Option<f64> {
    let m = &cgroup.memory;
    let bytes = |v: Option<u64>| v.map(|v| v as f64);
    match column {
        Column::Name => None,
        Column::WsKubelet => bytes(m.working_set_kubelet),
        Column::Growth => rates.get(&cgroup.path).copied(),
        Column::WorkingSet => bytes(m.working_set),
        Column::Anon => bytes(m.anon),
        Column::File => bytes(m.file),
        Column::Shmem => bytes(m.shmem),
        Column::Dirty => bytes(m.file_dirty),
        Column::Kernel => bytes(m.kernel),
        Column::Limit => bytes(m.limit),
        Column::LimitPercent => limit_percent(cgroup),
        Column::OomKill => bytes(cgroup.events.oom_kill),
    }
}
