//! The main screen: node header, the table (or a cgroup's detail), the help line.

use memglass_analyse::{CgroupReport, NodeReport};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TableRow, Table, TableState};
use ratatui::Frame;

use super::app::{App, View};
use super::format::{rate, size};
use super::rows::{label, limit_percent, Column, Mode};
use crate::render::human::{bytes, shorten};

/// Draw everything. Takes `&mut App` to record how many rows fit (PgUp/PgDn).
pub fn draw(frame: &mut Frame, app: &mut App) {
    let [header, body, status, help] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(2),
    ])
    .areas(frame.area());
    draw_header(frame, header, app);
    match app.view.clone() {
        View::Table => draw_table(frame, body, app),
        View::Detail { path, scroll } => super::detail::draw(frame, body, app, &path, scroll),
    }
    draw_status(frame, status, app);
    draw_help(frame, help, app);
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let Some(sample) = app.sample() else {
        let text = format!("memglass top · every {:?} · reading…", app.interval);
        frame.render_widget(Paragraph::new(text), area);
        return;
    };
    let snapshot = &sample.snapshot;
    let node = &snapshot.node;
    let b = |v: u64| bytes(Some(v));
    let title = Line::from(vec![
        "memglass top".bold(),
        Span::raw(format!(
            " · node {} · cgroup v{} · {} cgroups, {} pods · every {} · sampled in {} ms",
            b(node.mem_total),
            snapshot.cgroup_version,
            snapshot.cgroups.len(),
            snapshot.pods.len(),
            humantime::format_duration(app.interval),
            sample.took.as_millis(),
        )),
    ]);
    let width = usize::from(area.width.saturating_sub(2)).clamp(10, 48);
    let mut bar = vec![Span::raw("MEM ")];
    bar.extend(node_bar(node, width));
    bar.push(Span::raw(format!(
        " application {} · kernel {} (alloc_page {}) · free {}",
        b(node.application),
        b(node.kernel),
        b(node.alloc_page),
        b(node.mem_free),
    )));
    let oom = match (node.oom_kill, app.node_oom_kills_since_start()) {
        (Some(total), Some(new)) if new > 0 => Span::styled(
            format!("OOM kills {total} since boot, +{new} since start"),
            red(),
        ),
        (Some(total), _) => Span::raw(format!("OOM kills {total} since boot, +0 since start")),
        (None, _) => Span::raw("OOM kills unknown (no /proc/vmstat oom_kill)"),
    };
    let signal = Line::from(vec![
        Span::raw(format!(
            "MemAvailable {} · memory_available {} (kubelet: MemTotal − root ws_kubelet; evicts below 100Mi) · ",
            bytes(node.mem_available),
            bytes(node.memory_available),
        )),
        oom,
    ]);
    frame.render_widget(Paragraph::new(vec![title, Line::from(bar), signal]), area);
}

/// MemTotal as a bar: application █, named kernel memory ▒, alloc_page ▓, free ░.
fn node_bar(node: &NodeReport, width: usize) -> Vec<Span<'static>> {
    let total = node.mem_total.max(1) as f64;
    let cells = |bytes: u64| ((bytes as f64 / total) * width as f64).round() as usize;
    let application = cells(node.application).min(width);
    let kernel = cells(node.kernel_named).min(width - application);
    let alloc_page = cells(node.alloc_page).min(width - application - kernel);
    let free = width - application - kernel - alloc_page;
    vec![
        Span::raw("["),
        Span::styled("█".repeat(application), Style::new().fg(Color::Green)),
        Span::styled("▒".repeat(kernel), Style::new().fg(Color::Yellow)),
        Span::styled("▓".repeat(alloc_page), Style::new().fg(Color::Magenta)),
        Span::styled("░".repeat(free), Style::new().fg(Color::DarkGray)),
        Span::raw("]"),
    ]
}

fn draw_table(frame: &mut Frame, area: Rect, app: &mut App) {
    let Some(snapshot) = app.snapshot() else {
        return;
    };
    let what = match app.mode {
        Mode::Pods => "PODS and their containers",
        Mode::Cgroups => "CGROUPS",
    };
    let arrow = if app.sort.descending { "▼" } else { "▲" };
    let mut title = format!(
        " {what} ({}) · sorted by {} {arrow}",
        app.rows().len(),
        app.sort.column.title().to_lowercase(),
    );
    if !app.filter.is_empty() {
        title.push_str(&format!(" · filter \"{}\"", app.filter));
    }
    let header = TableRow::new(Column::ALL.map(|column| {
        let mut text = column.title().to_string();
        if column == app.sort.column {
            text.push_str(arrow);
        }
        let cell = Cell::from(align(column, text));
        if column == app.sort.column {
            cell.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            cell
        }
    }))
    .style(Style::new().bold());
    let widths = Column::ALL.map(|column| match column {
        Column::Name => 0, // the rest
        Column::WsKubelet => 11,
        Column::Growth => 9,
        Column::LimitPercent => 5,
        Column::OomKill => 4,
        _ => 7,
    });
    let fixed: u16 = widths.iter().sum::<u16>() + widths.len() as u16 - 1;
    let name_width = usize::from(area.width.saturating_sub(fixed)).max(8);
    let rows: Vec<TableRow> = app
        .rows()
        .iter()
        .map(|&row| {
            let cgroup = &snapshot.cgroups[row.index];
            let growth = app.rate(&cgroup.path);
            let name = shorten(&label(cgroup, row), name_width);
            TableRow::new(Column::ALL.map(|column| cell(cgroup, column, name.clone(), growth)))
        })
        .collect();
    let empty = rows.is_empty();
    let widths = widths.map(|width| match width {
        0 => Constraint::Fill(1),
        width => Constraint::Length(width),
    });
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::new().borders(Borders::TOP).title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    // Block top line and header row.
    app.page = usize::from(area.height.saturating_sub(2)).max(1);
    let mut state = TableState::default().with_selected(Some(app.selected()));
    *state.offset_mut() = app.table_offset;
    frame.render_stateful_widget(table, area, &mut state);
    app.table_offset = state.offset();
    if empty && app.mode == Mode::Pods && app.filter.is_empty() {
        let hint = Rect {
            y: area.y + 2,
            height: 1,
            ..area
        };
        frame.render_widget(
            Paragraph::new("no pod cgroups on this node: Tab lists every cgroup"),
            hint,
        );
    }
}

fn cell(
    cgroup: &CgroupReport,
    column: Column,
    label: String,
    growth: Option<f64>,
) -> Cell<'static> {
    let m = &cgroup.memory;
    let text = match column {
        Column::Name => label,
        Column::WsKubelet => size(m.working_set_kubelet),
        Column::Growth => rate(growth),
        Column::WorkingSet => size(m.working_set),
        Column::Anon => size(m.anon),
        Column::File => size(m.file),
        Column::Shmem => size(m.shmem),
        Column::Dirty => size(m.file_dirty),
        Column::Kernel => size(m.kernel),
        Column::Limit => size(m.limit),
        Column::LimitPercent => limit_percent(cgroup).map_or("-".into(), |p| format!("{p:.0}%")),
        Column::OomKill => cgroup.events.oom_kill.map_or("-".into(), |n| n.to_string()),
    };
    let style = match column {
        Column::Growth if growth.is_some_and(|g| g > 0.0) => red(),
        Column::Growth => Style::new().fg(Color::Green),
        Column::LimitPercent if limit_percent(cgroup).is_some_and(|p| p >= 90.0) => red(),
        Column::OomKill if cgroup.events.oom_kill.is_some_and(|n| n > 0) => red(),
        _ => Style::new(),
    };
    Cell::from(align(column, text)).style(style)
}

/// Figures right-aligned, names left.
fn align(column: Column, text: String) -> Line<'static> {
    match column {
        Column::Name => Line::from(text),
        _ => Line::from(text).right_aligned(),
    }
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let line = if app.editing_filter {
        Line::from(vec![
            "/".bold(),
            Span::raw(app.filter.clone()),
            "█".slow_blink(),
            Span::raw("   Enter keep · Esc clear").dark_gray(),
        ])
    } else if let Some(error) = &app.error {
        Line::styled(format!("last refresh failed: {error}"), red())
    } else if let Some(warning) = app.sample().and_then(|s| s.warnings.first()) {
        Line::styled(
            format!("warning: {warning}"),
            Style::new().fg(Color::Yellow),
        )
    } else if let Some(gap) = app.snapshot().and_then(|s| s.gaps.first()) {
        let count = app.snapshot().map_or(0, |s| s.gaps.len());
        let text = format!("{count} figure(s) could not be read, e.g. {}", gap.message);
        Line::styled(text, Style::new().fg(Color::Yellow))
    } else {
        Line::from(
            "ws_kubelet = usage − inactive_file (evictions, kubectl top) · ws = anon + active_file · ΔWS_KUB per second since the last refresh",
        )
        .dark_gray()
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_help(frame: &mut Frame, area: Rect, app: &App) {
    let text: &[&str] = match app.view {
        View::Table => &[
            "q quit · ↑↓ jk PgUp PgDn Home End move · Enter detail · f files · / filter · Tab pods/cgroups · r refresh",
            "sort: w ws_kubelet · g growth · W ws · a anon · c file · s shmem · d dirty · K kernel · l limit · % %lim · o oom · n name · < > · i invert",
        ],
        View::Detail { .. } => &[
            "q quit · Esc/Enter back · f list cached files · ↑↓ jk PgUp PgDn Home scroll · r refresh",
        ],
    };
    let lines: Vec<Line> = text.iter().map(|t| Line::from(*t).reversed()).collect();
    frame.render_widget(Paragraph::new(lines), area);
}

pub(super) fn red() -> Style {
    Style::new().fg(Color::Red)
}
