//! Snapshot of 1,000 real memory cgroups: memglass against a floor that only reads the
//! same files into a buffer (PRODUCT.md §6: CPU within 1.3× of the floor).
//!
//! ```text
//! cargo bench -p memglass --bench snapshot            (root; a few seconds)
//! cargo bench -p memglass --bench snapshot -- 2000 30 (cgroups, runs)
//! ```
//!
//! Builds a kubepods-like tree under this run's own prefix: pods of 4 containers, each
//! container charged 64 KiB of tmpfs by a helper that visits them in turn (tmpfs stays
//! charged after it exits). Both sides run as separate processes, timed with wait4(2)'s
//! rusage: memglass as `memglass snapshot --json > /dev/null`, the floor as this
//! executable re-run with `--floor`, walking the whole hierarchy and reading every
//! file memglass reads (the readers' own file lists) with plain std::fs. Everything is
//! removed afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: fail loudly

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use memglass_testkit::tree::{charge_tmpfs, count_cgroups, kubepods_tree};
use memglass_testkit::{memory_mount, RemoveOnDrop, TestCgroup};

mod support;
use support::{figure, measure, Run};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--floor") {
        floor(Path::new(&args[1]), args[2] == "2");
        return;
    }
    let cgroups: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);

    let root = TestCgroup::new();
    let started = Instant::now();
    let containers = kubepods_tree(&root, cgroups);
    let shm = format!("/dev/shm/{}", root.path.trim_start_matches('/'));
    std::fs::create_dir_all(&shm).unwrap();
    let _remove_shm = RemoveOnDrop(shm.clone().into());
    charge_tmpfs(&containers, &shm);
    let (mount, v2) = memory_mount();
    let total = count_cgroups(&mount);
    println!(
        "tree: {cgroups} cgroups of ours ({} containers × 64 KiB tmpfs), {total} memory cgroups on the machine, built in {:.1} s",
        containers.len(),
        started.elapsed().as_secs_f64()
    );

    let memglass = env!("CARGO_BIN_EXE_memglass");
    let exe = std::env::current_exe().unwrap();
    let mount_arg = mount.display().to_string();
    let version = if v2 { "2" } else { "1" };
    // Warm up both (dentries, page cache of the binaries), then alternate runs.
    measure(Command::new(memglass).args(["snapshot", "--json"]));
    measure(Command::new(&exe).args(["--floor", &mount_arg, version]));
    let (mut ours, mut floor_runs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(measure(Command::new(memglass).args(["snapshot", "--json"])));
        floor_runs.push(measure(
            Command::new(&exe).args(["--floor", &mount_arg, version]),
        ));
    }
    report("memglass snapshot --json", &ours);
    report("floor (walk + read the same files)", &floor_runs);
    let median = |runs: &[Run], f: fn(&Run) -> Duration| {
        let mut values: Vec<Duration> = runs.iter().map(f).collect();
        values.sort();
        values[values.len() / 2]
    };
    let ratio = |f: fn(&Run) -> Duration| {
        median(&ours, f).as_secs_f64() / median(&floor_runs, f).as_secs_f64()
    };
    let (cpu_ratio, wall_ratio) = (ratio(|r| r.cpu), ratio(|r| r.wall));
    println!(
        "ratio memglass/floor (medians): cpu {cpu_ratio:.2}×, wall {wall_ratio:.2}× (goal: cpu ≤ 1.30×)"
    );
    let ms = |runs: &[Run], f: fn(&Run) -> Duration| median(runs, f).as_secs_f64() * 1e3;
    figure(
        "snapshot",
        &format!("snapshot --json CPU vs floor, {total} cgroups"),
        &format!("{cpu_ratio:.2}×"),
        "≤ 1.30×",
        &format!(
            "floor (walk + read the same files) {:.1} ms CPU; memglass {:.1} ms",
            ms(&floor_runs, |r| r.cpu),
            ms(&ours, |r| r.cpu)
        ),
        Some(cpu_ratio <= 1.30),
    );
    figure(
        "snapshot",
        &format!("snapshot --json wall, {total} cgroups"),
        &format!("{:.1} ms", ms(&ours, |r| r.wall)),
        "-",
        &format!(
            "floor {:.1} ms wall ({wall_ratio:.2}×)",
            ms(&floor_runs, |r| r.wall)
        ),
        None,
    );
    let rss = ours.iter().map(|r| r.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    let floor_rss = floor_runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    figure(
        "snapshot",
        &format!("snapshot --json peak RSS, {total} cgroups"),
        &format!("{rss:.1} MiB"),
        "-",
        &format!("floor {floor_rss:.1} MiB"),
        None,
    );
}

fn report(name: &str, runs: &[Run]) {
    let stats = |f: &dyn Fn(&Run) -> Duration| {
        let mut v: Vec<f64> = runs.iter().map(|r| f(r).as_secs_f64() * 1e3).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (wall, wall_min, wall_max) = stats(&|r| r.wall);
    let (cpu, cpu_min, cpu_max) = stats(&|r| r.cpu);
    let rss = runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);
    println!(
        "{name:<38} wall {wall:6.1} ms (min {wall_min:.1}, max {wall_max:.1})  cpu {cpu:6.1} ms (min {cpu_min:.1}, max {cpu_max:.1})  peak RSS {:.1} MiB  [{} runs]",
        rss as f64 / 1024.0,
        runs.len()
    );
}

/// The floor: walk the hierarchy and read every file memglass reads, nothing else.
fn floor(mount: &Path, v2: bool) {
    let files: &[&str] = if v2 {
        &memglass_kernel::cgroup::v2::FILES
    } else {
        &memglass_kernel::cgroup::v1::FILES
    };
    let mut buf = Vec::with_capacity(16 << 10);
    let mut bytes = 0;
    for proc_file in ["/proc/meminfo", "/proc/vmstat", "/proc/self/mountinfo"] {
        bytes += read_into(Path::new(proc_file), &mut buf);
    }
    let mut pending = vec![mount.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for name in files {
            bytes += read_into(&dir.join(name), &mut buf);
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(entry.path());
                }
            }
        }
    }
    std::hint::black_box(bytes);
}

fn read_into(path: &Path, buf: &mut Vec<u8>) -> usize {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(buf))
        .unwrap_or(0)
}
