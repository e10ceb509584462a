//! The agent's history on disk, and reading it back (docs/benchmarks.md): bytes per
//! cgroup per collection, a pod's 24 h history, the cost of writing and sealing.
//!
//! ```text
//! ci/bench history                                         (root; about 10 minutes)
//! cargo bench -p memglass-agent --bench history -- [CGROUPS] [HOURS] [BUSY_PERCENT]
//! ```
//!
//! The figures come from the kernel: a kubepods-like tree of CGROUPS (1,500) real memory
//! cgroups under this run's own prefix (pods of four containers, 64 KiB of tmpfs each),
//! BUSY_PERCENT (10) of the containers running a workload whose anonymous memory grows by
//! 64 KiB a second, recorded in 400 collections taken back to back. The recording is then
//! written as HOURS (24) of history at one collection every 10 s (played forwards, then
//! backwards, so that no figure jumps), through the agent's own writer with its defaults
//! (head sealed every 30 collections, retention raw 1 d and minutes 7 d, `--db-max-size`
//! 1 GiB's log settings), into a fresh file. Everything is removed afterwards.
//!
//! Prints FIGURE lines for `ci/bench all` (format in ci/bench). `MEMGLASS_HISTORY_KEEP=FILE`
//! keeps a copy of the database written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: fail loudly

use std::path::Path;
use std::time::{Duration, Instant};

use memglass_agent::store::{Resolution, Store, Writer};
use memglass_agent::Retention;
use memglass_analyse::Snapshot;
use memglass_testkit::tree::{charge_tmpfs, kubepods_tree};
use memglass_testkit::{RemoveOnDrop, Scratch, TestCgroup, Workload};

/// The figures the history keeps of one cgroup (None where the kernel has none).
type Figures = [Option<u64>; 12];

const RECORDED: usize = 400;
const INTERVAL: i64 = 10;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let cgroups: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1500);
    let hours: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(24);
    let busy_percent: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);

    let root = TestCgroup::new();
    let containers = kubepods_tree(&root, cgroups);
    let shm = format!("/dev/shm/{}", root.path.trim_start_matches('/'));
    std::fs::create_dir_all(&shm).unwrap();
    let _remove_shm = RemoveOnDrop(shm.clone().into());
    charge_tmpfs(&containers, &shm);
    let busy = containers.len() * busy_percent / 100;
    let workloads: Vec<Workload> = containers
        .iter()
        .step_by((containers.len() / busy.max(1)).max(1))
        .take(busy)
        .map(|dir| {
            Workload::start(
                dir,
                &[
                    "--anon".into(),
                    "1M".into(),
                    "--grow".into(),
                    "64K:256M".into(),
                ],
            )
        })
        .collect();

    // The recording: real collections of the subtree, back to back.
    let roots = memglass_kernel::Roots {
        proc: "/proc".into(),
        cgroup: Some(root.dir.clone()),
    };
    let started = Instant::now();
    let template = snapshot(&roots);
    let mut recording: Vec<Vec<Figures>> = Vec::with_capacity(RECORDED);
    for _ in 0..RECORDED {
        let s = snapshot(&roots);
        if s.cgroups.len() != template.cgroups.len() {
            continue;
        }
        recording.push(s.cgroups.iter().map(figures).collect());
    }
    drop(workloads);
    let recorded_in = started.elapsed();
    let moving = (0..template.cgroups.len())
        .filter(|&k| recording.iter().any(|c| c[k] != recording[0][k]))
        .count();
    println!(
        "recorded: {} collections of {} cgroups in {:.1} s ({} busy containers; {} cgroups have a figure that moved)",
        recording.len(),
        template.cgroups.len(),
        recorded_in.as_secs_f64(),
        busy,
        moving
    );

    // A day of history at 10 s from the recording.
    let scratch = Scratch::new();
    let db = scratch.dir.join("history.db");
    let mut writer = Writer::open(&db)
        .unwrap()
        .with_max_bytes(Some(1 << 30))
        .unwrap();
    let retention = Retention::default();
    let collections = hours * 3600 / INTERVAL;
    let start = 1_800_000_000 - collections * INTERVAL;
    let mut snapshot = template.clone();
    let mut write_times = Vec::with_capacity(collections as usize);
    let mut hourly = Vec::new();
    let wrote = Instant::now();
    for i in 0..collections {
        let t = start + i * INTERVAL;
        let cycle = recording.len() * 2;
        let k = i as usize % cycle;
        let frame = &recording[if k < recording.len() {
            k
        } else {
            cycle - 1 - k
        }];
        for (cgroup, f) in snapshot.cgroups.iter_mut().zip(frame) {
            apply(cgroup, f);
        }
        let one = Instant::now();
        writer.write(t, &snapshot).unwrap();
        writer.prune(t, &retention).unwrap();
        writer.enforce_max_bytes().unwrap();
        write_times.push(one.elapsed());
        if (i + 1) % (3600 / INTERVAL) == 0 {
            hourly.push((i + 1, size_on_disk(&db)));
        }
    }
    let wrote = wrote.elapsed();
    let bytes = size_on_disk(&db);
    let samples = (collections as u64) * template.cgroups.len() as u64;
    let per_sample = bytes as f64 / samples as f64;
    let per_day_1000 = per_sample * 1000.0 * 8640.0 / (1 << 20) as f64;
    println!(
        "history: {hours} h at {INTERVAL} s = {collections} collections of {} cgroups written in {:.0} s; {} on disk (database and log) = {per_sample:.2} bytes per cgroup per collection; 1,000 cgroups at 10 s: {per_day_1000:.1} MiB a day",
        template.cgroups.len(),
        wrote.as_secs_f64(),
        mib(bytes)
    );
    for (n, size) in hourly
        .iter()
        .filter(|(n, _)| [360, 2160, 4320, 8640].contains(n))
    {
        println!(
            "  after {:>2} h: {} ({:.2} bytes per cgroup per collection)",
            n / 360,
            mib(*size),
            *size as f64 / (*n as f64 * template.cgroups.len() as f64)
        );
    }
    write_times.sort();
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "write per collection (with seals every 30 and retention): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(pct(&write_times, 0.5)),
        ms(pct(&write_times, 0.99)),
        ms(*write_times.last().unwrap())
    );
    let breakdown = breakdown(&db);
    println!("on disk: {breakdown}");
    drop(writer);
    if let Some(keep) = std::env::var_os("MEMGLASS_HISTORY_KEEP") {
        std::fs::copy(&db, &keep).unwrap();
    }

    // Reading a pod's day back, as the API does: the store, then JSON.
    let store = Store::open(&db).unwrap();
    let now = start + (collections - 1) * INTERVAL;
    let pods: Vec<&str> = template
        .cgroups
        .iter()
        .filter(|c| c.kind.as_str() == "pod")
        .map(|c| c.path.as_str())
        .take(100)
        .collect();
    let reads = |resolution: Resolution| {
        let mut times = Vec::new();
        let mut points = 0;
        let mut json = 0;
        for pod in &pods {
            let t = Instant::now();
            let history = store.history(pod, now - 86_400, now, resolution).unwrap();
            let body = serde_json::to_vec(&history).unwrap();
            times.push(t.elapsed());
            points = history.len();
            json = body.len();
        }
        times.sort();
        (pct(&times, 0.5), pct(&times, 0.99), points, json)
    };
    let (raw50, raw99, raw_points, raw_json) = reads(Resolution::Raw);
    let (min50, min99, min_points, min_json) = reads(Resolution::Minute);
    println!(
        "a pod's 24 h ({} pods): raw {raw_points} points, {} KiB of JSON: p50 {:.1} ms, p99 {:.1} ms; one-minute {min_points} points, {} KiB: p50 {:.1} ms, p99 {:.1} ms",
        pods.len(),
        raw_json / 1024,
        ms(raw50),
        ms(raw99),
        min_json / 1024,
        ms(min50),
        ms(min99)
    );

    let met = |ok: bool| if ok { "met" } else { "missed" };
    figure(
        "history on disk",
        &format!(
            "{per_sample:.2} B per cgroup per collection ({} for {hours} h of {} cgroups)",
            mib(bytes),
            template.cgroups.len()
        ),
        "≤ 5 B",
        "row per sample (before): ~158 B",
        met(per_sample <= 5.0),
    );
    figure(
        "history per day, 1,000 cgroups at 10 s",
        &format!("{per_day_1000:.1} MiB"),
        "< 45 MiB",
        "Prometheus TSDB 1.3–2 B/sample: 11–16 MiB per figure",
        met(per_day_1000 < 45.0),
    );
    // What `/api/v1/cgroup?range=24h` serves: one-minute points (raw beyond 6 h only when
    // asked for with `resolution=raw`).
    figure(
        "a pod's 24 h history as range=24h serves it (one-minute; store + JSON), p99",
        &format!("{:.1} ms ({min_points} points)", ms(min99)),
        "< 20 ms",
        &format!("p50 {:.1} ms", ms(min50)),
        met(min99 < Duration::from_millis(20)),
    );
    figure(
        "a pod's 24 h raw history (resolution=raw; store + JSON), p99",
        &format!(
            "{:.1} ms ({raw_points} points, {} KiB)",
            ms(raw99),
            raw_json / 1024
        ),
        "-",
        &format!("p50 {:.1} ms", ms(raw50)),
        "-",
    );
    figure(
        "history write per collection, p99",
        &format!(
            "{:.1} ms ({} cgroups)",
            ms(pct(&write_times, 0.99)),
            template.cgroups.len()
        ),
        "-",
        &format!("p50 {:.1} ms", ms(pct(&write_times, 0.5))),
        "-",
    );
}

fn snapshot(roots: &memglass_kernel::Roots) -> Snapshot {
    let sample = memglass_kernel::collect(roots).unwrap();
    let identities: Vec<_> = sample
        .cgroups
        .iter()
        .map(|c| memglass_identify::identify(&c.path))
        .collect();
    memglass_analyse::snapshot(&sample, &identities, &memglass_identify::Directory::new())
}

fn figures(c: &memglass_analyse::cgroup::CgroupReport) -> Figures {
    let m = &c.memory;
    [
        m.usage,
        m.limit,
        m.anon,
        m.active_anon,
        m.inactive_anon,
        m.file,
        m.active_file,
        m.inactive_file,
        m.shmem,
        m.file_dirty,
        m.kernel,
        c.events.oom_kill,
    ]
}

fn apply(c: &mut memglass_analyse::cgroup::CgroupReport, f: &Figures) {
    let m = &mut c.memory;
    [
        m.usage,
        m.limit,
        m.anon,
        m.active_anon,
        m.inactive_anon,
        m.file,
        m.active_file,
        m.inactive_file,
        m.shmem,
        m.file_dirty,
        m.kernel,
        c.events.oom_kill,
    ] = *f;
}

fn size_on_disk(db: &Path) -> u64 {
    let wal = format!("{}-wal", db.display());
    [db, Path::new(&wal)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// What the file holds: blocks per resolution (their compressed bytes), the head, the
/// rest, the log.
fn breakdown(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let q = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0) };
    let page = q("PRAGMA page_size");
    let wal = std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
    format!(
        "{} pages of {page} B ({} free); raw blocks {} ({} blocks, {} samples), one-minute blocks {} ({} blocks), head {} rows; log {}",
        q("PRAGMA page_count"),
        q("PRAGMA freelist_count"),
        mib(q("SELECT sum(length(data)) FROM blocks WHERE res = 0") as u64),
        q("SELECT count(*) FROM blocks WHERE res = 0"),
        q("SELECT sum(n) FROM blocks WHERE res = 0"),
        mib(q("SELECT sum(length(data)) FROM blocks WHERE res = 1") as u64),
        q("SELECT count(*) FROM blocks WHERE res = 1"),
        q("SELECT count(*) FROM head"),
        mib(wal)
    )
}

fn figure(name: &str, value: &str, goal: &str, anchor: &str, verdict: &str) {
    println!("FIGURE\thistory\t{name}\t{value}\t{goal}\t{anchor}\t{verdict}");
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
