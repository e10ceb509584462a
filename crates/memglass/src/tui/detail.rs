//! One cgroup in detail: every figure with the kernel file it came from, the gap between
//! the two working sets taken apart, events, pressure, and its cached files on demand.

use memglass_analyse::{CgroupReport, MemoryReport};
use memglass_kernel::cgroup::UsageSource;
use ratatui::layout::Rect;
use ratatui::style::Stylize;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::app::App;
use super::draw::red;
use super::format::change;
use crate::render::human::bytes;

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, path: &str, scroll: u16) {
    app.page = usize::from(area.height.saturating_sub(1)).max(1);
    let Some(cgroup) = app
        .snapshot()
        .and_then(|s| s.cgroups.iter().find(|c| c.path == path))
    else {
        let text = format!("{path} is gone (the cgroup was removed) · Esc back");
        frame.render_widget(Paragraph::new(text), area);
        return;
    };
    let mut lines = identity(cgroup);
    lines.push(Line::default());
    let found = findings(app, path);
    if !found.is_empty() {
        lines.extend(found);
        lines.push(Line::default());
    }
    lines.extend(figures(app, cgroup));
    lines.push(Line::default());
    lines.extend(gap(&cgroup.memory));
    lines.push(Line::default());
    lines.extend(events(cgroup));
    lines.extend(pressure(cgroup));
    lines.push(Line::default());
    lines.extend(super::files::section(app, cgroup));
    let block = Block::new()
        .borders(Borders::TOP)
        .title(format!(" {path} "));
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}

fn identity(c: &CgroupReport) -> Vec<Line<'static>> {
    let names = [&c.namespace, &c.pod, &c.container]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("/");
    let mut text = format!("kind {} · cgroup v{}", c.kind.as_str(), c.cgroup_version);
    for (what, value) in [
        ("workload", Some(names).filter(|n| !n.is_empty())),
        ("pod uid", c.pod_uid.clone()),
        (
            "container id",
            c.container_id
                .as_ref()
                .map(|id| id.chars().take(12).collect()),
        ),
        ("qos", c.qos_class.map(|q| format!("{q:?}"))),
    ] {
        if let Some(value) = value {
            text.push_str(&format!(" · {what} {value}"));
        }
    }
    let mut lines = vec![Line::from(text)];
    if let Some(w) = &c.workload {
        lines.push(Line::from(format!(
            "requests: container {} pod {} · limits: container {} pod {} · priority {} · owner {}",
            bytes(w.container_memory_request),
            bytes(w.pod_memory_request),
            bytes(w.container_memory_limit),
            bytes(w.pod_memory_limit),
            w.priority.map_or("-".into(), |p| p.to_string()),
            w.owner.as_deref().unwrap_or("-"),
        )));
    }
    lines
}

/// Each figure, its change since the last refresh and since `top` started, its source.
fn figures(app: &App, c: &CgroupReport) -> Vec<Line<'static>> {
    let v2 = c.cgroup_version == 2;
    let m = &c.memory;
    let previous = app.previous(&c.path).map(|p| &p.memory);
    let first = app.first_seen(&c.path);
    let mut lines = vec![Line::from(format!(
        "{:<20} {:>12} {:>10} {:>12}  {}",
        "FIGURE", "BYTES", "Δ REFRESH", "Δ SINCE START", "SOURCE"
    ))
    .bold()];
    for (name, get, v1_source, v2_source) in FIGURES {
        let value = get(m);
        let source = match name {
            "usage" => usage_source(m.usage_source),
            _ if v2 => v2_source,
            _ => v1_source,
        };
        if source.is_empty() {
            continue; // not a figure of this cgroup version
        }
        let shown = match (value, name.contains("limit") || LIMITS.contains(&name)) {
            (None, true) => "none".to_string(),
            _ => bytes(value),
        };
        let delta = |then: Option<&MemoryReport>| match (value, then.and_then(get)) {
            (Some(now), Some(then)) => change(i128::from(now) - i128::from(then)),
            _ => String::new(),
        };
        let line = Line::from(format!(
            "{name:<20} {shown:>12} {:>10} {:>12}  {source}",
            delta(previous),
            delta(first),
        ));
        lines.push(if name.starts_with("working_set") {
            line.bold()
        } else {
            line
        });
    }
    lines
}

type Getter = fn(&MemoryReport) -> Option<u64>;

const LIMITS: [&str; 3] = ["high", "low", "min"];

/// Figure, how to get it, its v1 source, its v2 source (docs/json-format.md; empty: the
/// version has no such figure).
const FIGURES: [(&str, Getter, &str, &str); 22] = [
    ("usage", |m| m.usage, "", ""),
    ("limit", |m| m.limit, "memory.limit_in_bytes", "memory.max"),
    ("high", |m| m.high, "", "memory.high"),
    ("low", |m| m.low, "", "memory.low"),
    ("min", |m| m.min, "", "memory.min"),
    (
        "soft_limit",
        |m| m.soft_limit,
        "memory.soft_limit_in_bytes",
        "",
    ),
    (
        "peak",
        |m| m.peak,
        "memory.max_usage_in_bytes",
        "memory.peak",
    ),
    (
        "anon",
        |m| m.anon,
        "memory.stat total_rss",
        "memory.stat anon",
    ),
    (
        "active_anon",
        |m| m.active_anon,
        "memory.stat total_active_anon",
        "memory.stat active_anon",
    ),
    (
        "inactive_anon",
        |m| m.inactive_anon,
        "memory.stat total_inactive_anon",
        "memory.stat inactive_anon",
    ),
    (
        "file",
        |m| m.file,
        "memory.stat total_cache",
        "memory.stat file",
    ),
    (
        "active_file",
        |m| m.active_file,
        "memory.stat total_active_file",
        "memory.stat active_file",
    ),
    (
        "inactive_file",
        |m| m.inactive_file,
        "memory.stat total_inactive_file",
        "memory.stat inactive_file",
    ),
    (
        "shmem",
        |m| m.shmem,
        "memory.stat total_shmem",
        "memory.stat shmem",
    ),
    (
        "file_mapped",
        |m| m.file_mapped,
        "memory.stat total_mapped_file",
        "memory.stat file_mapped",
    ),
    (
        "file_dirty",
        |m| m.file_dirty,
        "memory.stat total_dirty",
        "memory.stat file_dirty",
    ),
    (
        "file_writeback",
        |m| m.file_writeback,
        "memory.stat total_writeback",
        "memory.stat file_writeback",
    ),
    (
        "kernel",
        |m| m.kernel,
        "memory.kmem.usage_in_bytes + memory.kmem.tcp.usage_in_bytes",
        "memory.stat kernel (its parts before 5.18)",
    ),
    (
        "swap",
        |m| m.swap,
        "memory.stat total_swap",
        "memory.swap.current",
    ),
    (
        "unevictable",
        |m| m.unevictable,
        "memory.stat total_unevictable",
        "memory.stat unevictable",
    ),
    (
        "working_set",
        |m| m.working_set,
        "= inactive_anon + active_anon + active_file (the seeds')",
        "= inactive_anon + active_anon + active_file (the seeds')",
    ),
    (
        "working_set_kubelet",
        |m| m.working_set_kubelet,
        "= usage − inactive_file (kubelet, kubectl top)",
        "= usage − inactive_file (kubelet, kubectl top)",
    ),
];

fn usage_source(source: UsageSource) -> &'static str {
    match source {
        UsageSource::MemoryCurrent => "memory.current",
        UsageSource::UsageInBytes => "memory.usage_in_bytes",
        UsageSource::StatAnonPlusFile => {
            "memory.stat anon + file (the v2 root has no memory.current)"
        }
    }
}

/// ws_kubelet − ws: usage counts kernel memory and unevictable pages, which no LRU list
/// of the seeds' sum holds; what is left is the usage counter's batching.
fn gap(m: &MemoryReport) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from("WHY THE TWO WORKING SETS DIFFER").bold()];
    let (Some(kubelet), Some(seeds)) = (m.working_set_kubelet, m.working_set) else {
        lines.push(Line::from(
            "  one of the working sets is unknown for this cgroup",
        ));
        return lines;
    };
    let gap = i128::from(kubelet) - i128::from(seeds);
    let kernel = m.kernel.unwrap_or(0);
    let unevictable = m.unevictable.unwrap_or(0);
    let rest = gap - i128::from(kernel) - i128::from(unevictable);
    lines.extend([
        Line::from(format!(
            "  ws_kubelet {} − ws {} = {}",
            bytes(Some(kubelet)),
            bytes(Some(seeds)),
            change(gap)
        )),
        Line::from(format!(
            "    kernel      {:>12}  slab, stacks, page tables, sockets: in usage, on no LRU list",
            bytes(m.kernel)
        )),
        Line::from(format!(
            "    unevictable {:>12}  mlocked and ramfs pages: in usage, not in ws's lists",
            bytes(m.unevictable)
        )),
        Line::from(format!(
            "    rest        {:>12}  usage counter batching (per-CPU charge caches) and pages in flight",
            change(rest)
        )),
        Line::from(format!(
            "  inactive page cache {} is in neither: usage counts it, both subtract or omit it; the kernel reclaims it first",
            bytes(m.inactive_file)
        )),
    ]);
    lines
}

/// The findings about this cgroup and those below it (`memglass diagnose`), each with what
/// to do.
fn findings(app: &App, path: &str) -> Vec<Line<'static>> {
    use memglass_analyse::diagnose::Severity;
    let Some(sample) = app.sample() else {
        return Vec::new();
    };
    let mine: Vec<_> = sample.findings.iter().filter(|f| f.within(path)).collect();
    if mine.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![Line::from("FINDINGS (memglass diagnose)").bold()];
    for f in mine {
        let head = format!(
            "  {} {}{}",
            f.severity.as_str().to_uppercase(),
            f.kind.as_str(),
            if f.cgroup.as_deref() == Some(path) {
                String::new()
            } else {
                format!(" · {}", f.subject_name())
            }
        );
        lines.push(match f.severity {
            Severity::Critical => Line::styled(head, red()),
            _ => Line::from(head).bold(),
        });
        lines.push(Line::from(format!("    {}", f.summary)));
        if !f.remedy.text.is_empty() {
            lines.push(Line::from(format!("    → {}", f.remedy.text)));
        }
        for s in &f.remedy.set {
            lines.push(Line::from(format!("      set {} = {}", s.name, s.quantity)));
        }
    }
    lines
}

fn events(c: &CgroupReport) -> Vec<Line<'static>> {
    let count = |n: Option<u64>| n.map_or("-".into(), |n| n.to_string());
    let e = &c.events;
    let mut lines = vec![Line::from("EVENTS").bold()];
    if c.cgroup_version == 2 {
        lines.push(Line::from(format!(
            "  memory.events: low {} high {} max {} oom {} oom_kill {} oom_group_kill {}",
            count(e.low),
            count(e.high),
            count(e.max),
            count(e.oom),
            count(e.oom_kill),
            count(e.oom_group_kill)
        )));
        if let Some(local) = &c.events_local {
            lines.push(Line::from(format!(
                "  memory.events.local (this cgroup alone): max {} oom {} oom_kill {}",
                count(local.max),
                count(local.oom),
                count(local.oom_kill)
            )));
        }
    } else {
        let local = c.events_local.and_then(|l| l.oom_kill);
        lines.push(Line::from(format!(
            "  memory.failcnt {} (times usage hit the limit) · oom_kill {} (memory.oom_control; with its descendants' kills, summed by memglass) · {} in this cgroup alone",
            count(e.failcnt),
            count(e.oom_kill),
            count(local)
        )));
    }
    if e.oom_kill.is_some_and(|n| n > 0) {
        lines.push(Line::styled(
            "  processes were OOM-killed here: `memglass oom` shows who and why",
            red(),
        ));
    }
    lines
}

fn pressure(c: &CgroupReport) -> Vec<Line<'static>> {
    let Some(p) = &c.pressure else {
        let why = if c.cgroup_version == 1 {
            "cgroup v1 has no per-cgroup pressure (PSI)"
        } else {
            "memory.pressure unreadable (kernel without PSI?)"
        };
        return vec![Line::from(format!("PRESSURE  {why}")).bold()];
    };
    let line = |what: &str, l: &memglass_kernel::parse::PressureLine| {
        Line::from(format!(
            "  {what:<4} avg10 {:>6.2}%  avg60 {:>6.2}%  avg300 {:>6.2}%  total {} ms stalled",
            l.avg10,
            l.avg60,
            l.avg300,
            l.total_usec / 1000
        ))
    };
    let mut lines =
        vec![
            Line::from("PRESSURE  memory.pressure (share of time tasks waited for memory)").bold(),
        ];
    lines.push(line("some", &p.some));
    if let Some(full) = &p.full {
        lines.push(line("full", full));
    }
    lines
}
