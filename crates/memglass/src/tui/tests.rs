//! The screen rendered into ratatui's TestBackend from snapshots of real cgroups: real
//! workloads in fresh test cgroups (removed on drop), read by the same path as
//! `memglass snapshot`. Needs root, a memory cgroup hierarchy and the built
//! `memglass-workload` helper.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use memglass_testkit::{args, assert_close, RemoveOnDrop, TestCgroup, Workload, MIB};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;

use super::app::{App, Sample};
use super::rows::Mode;
use crate::cli::{IdentityArgs, SourceArgs};

const WIDTH: u16 = 160;
const HEIGHT: u16 = 60;

/// A sample of this machine now, without asking any container runtime.
fn sample() -> Sample {
    let sources = SourceArgs {
        cgroup_root: None,
        proc_root: "/proc".into(),
    };
    let identity = IdentityArgs {
        cri_socket: None,
        no_cri: true,
        pods: None,
        node: None,
        kube: false,
        node_name: None,
    };
    let taken_at = Instant::now();
    let snapshot = crate::cmd::snapshot::take(&sources, &identity).unwrap();
    Sample {
        snapshot,
        taken_at,
        took: taken_at.elapsed(),
        warnings: Vec::new(),
        findings: Vec::new(),
    }
}

/// An app on the cgroup list, with one sample in.
fn app_with(sample: Sample) -> App {
    let mut app = App::new(Duration::from_secs(2));
    app.set_mode(Mode::Cgroups);
    app.on_sample(sample);
    app
}

/// The screen as text, one string per line (every symbol used is one column wide).
fn render(app: &mut App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    terminal
        .draw(|frame| super::draw::draw(frame, app))
        .unwrap();
    let buffer = terminal.backend().buffer();
    (0..HEIGHT)
        .map(|y| (0..WIDTH).map(|x| buffer[(x, y)].symbol()).collect())
        .collect()
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::from(code));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// Index of the line whose name column is exactly `name`.
fn line_of(screen: &[String], name: &str) -> Option<usize> {
    screen
        .iter()
        .position(|line| line.split_whitespace().next() == Some(name))
}

/// The figure in `column` of `line`: cells are right-aligned under their header title.
fn figure(screen: &[String], line: usize, column: &str) -> u64 {
    let header = screen
        .iter()
        .find(|l| l.starts_with("NAME "))
        .expect("table header");
    let chars: Vec<char> = header.chars().collect();
    let start = header[..header.find(column).unwrap()].chars().count();
    let end = (start..chars.len())
        .find(|&i| chars[i] == ' ')
        .unwrap_or(chars.len());
    let row: String = screen[line].chars().take(end).collect();
    parse_size(row.split_whitespace().last().unwrap())
}

/// "64.0M" → bytes (the table's compact sizes).
fn parse_size(text: &str) -> u64 {
    let (digits, scale) = match text.chars().last().unwrap() {
        'K' => (&text[..text.len() - 1], 1u64 << 10),
        'M' => (&text[..text.len() - 1], 1 << 20),
        'G' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    (digits.parse::<f64>().unwrap() * scale as f64) as u64
}

#[test]
fn workload_cgroup_shows_with_its_anon_and_detail() {
    let cg = TestCgroup::new();
    let _workload = Workload::start(&cg.dir, &args(&[("--anon", "64M".into())]));
    let mut app = app_with(sample());
    // Only our cgroup, whatever else the machine runs.
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, &cg.path);
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app);
    let line = line_of(&screen, &cg.path).unwrap_or_else(|| panic!("{}", screen.join("\n")));
    assert_close(figure(&screen, line, "ANON"), 64 * MIB, "ANON column");
    assert_close(figure(&screen, line, "WS "), 64 * MIB, "WS column");
    assert!(screen[0].starts_with("memglass top · node"));
    assert!(screen.iter().any(|l| l.starts_with("MEM [")), "node bar");
    assert!(screen.iter().any(|l| l.contains("OOM kills")));
    assert!(screen.iter().any(|l| l.starts_with("q quit")), "help line");

    // Enter: every figure with its source, and the gap between the working sets.
    key(&mut app, KeyCode::Enter);
    let detail = render(&mut app).join("\n");
    let anon_source = if cg.is_v2() {
        "memory.stat anon"
    } else {
        "memory.stat total_rss"
    };
    let anon_line = detail
        .lines()
        .find(|l| l.starts_with("anon "))
        .unwrap_or_else(|| panic!("{detail}"))
        .trim_end();
    assert!(anon_line.ends_with(anon_source), "{anon_line}");
    assert!(anon_line.contains(" MiB"), "{anon_line}");
    assert!(detail.contains("WHY THE TWO WORKING SETS DIFFER"));
    assert!(detail.contains("= usage − inactive_file"));
    assert!(detail.contains("press f to list them"));
    key(&mut app, KeyCode::Esc);
    assert!(
        line_of(&render(&mut app), &cg.path).is_some(),
        "Esc goes back"
    );
}

#[test]
fn sort_key_reorders_rows_and_filter_hides_others() {
    let cg = TestCgroup::new();
    let (anon_dir, anon_path) = cg.child("anon");
    let (shmem_dir, shmem_path) = cg.child("shmem");
    let tmpfs = format!("/dev/shm/{}-top", cg.path.trim_start_matches('/'));
    let _remove = RemoveOnDrop(tmpfs.clone().into());
    let _anon = Workload::start(&anon_dir, &args(&[("--anon", "48M".into())]));
    let _shmem = Workload::start(
        &shmem_dir,
        &args(&[("--tmpfs", format!("{tmpfs}:40M")), ("--anon", "8M".into())]),
    );
    let mut app = app_with(sample());
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, &cg.path);
    key(&mut app, KeyCode::Enter);

    key(&mut app, KeyCode::Char('a'));
    let screen = render(&mut app);
    let (a, s) = (line_of(&screen, &anon_path), line_of(&screen, &shmem_path));
    assert!(a.unwrap() < s.unwrap(), "by anon:\n{}", screen.join("\n"));
    assert!(screen.iter().any(|l| l.contains("sorted by anon ▼")));
    assert!(screen.iter().any(|l| l.contains("ANON▼")));

    key(&mut app, KeyCode::Char('s'));
    let screen = render(&mut app);
    let (a, s) = (line_of(&screen, &anon_path), line_of(&screen, &shmem_path));
    assert!(s.unwrap() < a.unwrap(), "by shmem:\n{}", screen.join("\n"));
    assert_close(
        figure(&screen, s.unwrap(), "SHMEM"),
        40 * MIB,
        "SHMEM column",
    );

    // The same key again turns the order round.
    key(&mut app, KeyCode::Char('s'));
    let screen = render(&mut app);
    let (a, s) = (line_of(&screen, &anon_path), line_of(&screen, &shmem_path));
    assert!(a.unwrap() < s.unwrap(), "by shmem, ascending");

    // A narrower filter hides the sibling and the parent.
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "/shm");
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app);
    assert!(line_of(&screen, &shmem_path).is_some());
    assert!(
        line_of(&screen, &anon_path).is_none(),
        "{}",
        screen.join("\n")
    );
    assert!(line_of(&screen, &cg.path).is_none());
    assert!(screen.iter().any(|l| l.contains("CGROUPS (1)")));
}

#[test]
fn pods_list_their_containers_beneath() {
    let cg = TestCgroup::new();
    let uid = "0f1e2d3c-0000-4000-8000-00000000a1b2";
    let pod = format!("kubepods/burstable/pod{uid}");
    let (small_dir, _) = cg.child(&format!("{pod}/{}", "a".repeat(64)));
    let (large_dir, _) = cg.child(&format!("{pod}/{}", "b".repeat(64)));
    let _small = Workload::start(&small_dir, &args(&[("--anon", "16M".into())]));
    let _large = Workload::start(&large_dir, &args(&[("--anon", "40M".into())]));
    let mut app = app_with(sample());
    app.set_mode(Mode::Pods);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, uid);
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app);
    let pod_line = screen
        .iter()
        .position(|l| l.contains(&format!("/pod{uid} ")))
        .unwrap_or_else(|| panic!("{}", screen.join("\n")));
    // Containers (named by their id: no runtime here) follow, largest first.
    assert!(screen[pod_line + 1].starts_with(&format!("  └ {}", "b".repeat(24))));
    assert!(screen[pod_line + 2].starts_with(&format!("  └ {}", "a".repeat(24))));
    assert_close(
        figure(&screen, pod_line, "ANON"),
        56 * MIB,
        "the pod's anon",
    );
    assert_close(
        figure(&screen, pod_line + 2, "ANON"),
        16 * MIB,
        "a container's",
    );
}

#[test]
fn growth_per_refresh_is_shown() {
    let cg = TestCgroup::new();
    let _first = Workload::start(&cg.dir, &args(&[("--anon", "8M".into())]));
    let before = sample();
    let _second = Workload::start(&cg.dir, &args(&[("--anon", "32M".into())]));
    let mut after = sample();
    // One second apart by construction, so the rate is the growth itself.
    after.taken_at = before.taken_at + Duration::from_secs(1);
    let mut app = app_with(before);
    app.on_sample(after);
    let rate = app.rate(&cg.path).unwrap();
    assert_close(rate as u64, 32 * MIB, "growth per second");
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, &cg.path);
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app);
    let line = line_of(&screen, &cg.path).unwrap();
    assert!(screen[line].contains("▲3"), "{}", screen[line]);
    // The detail view has the change since the last refresh next to each figure.
    key(&mut app, KeyCode::Enter);
    let detail = render(&mut app).join("\n");
    let anon = detail.lines().find(|l| l.starts_with("anon ")).unwrap();
    assert!(anon.contains("+3"), "{anon}");
}
