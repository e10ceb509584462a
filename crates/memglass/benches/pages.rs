//! Node-wide page census: `memglass pages --json` against a floor that only reads
//! /proc/kpageflags and /proc/kpagecgroup, in the same chunks (64 Ki frames = 512 KiB from
//! each file, alternately), into a buffer (PRODUCT.md §6: within 1.1× of the plain read;
//! under 1 s per 25 GiB of page frames).
//!
//! ```text
//! ci/bench pages                       (root; reads only; about a minute)
//! cargo bench -p memglass --bench pages -- 10   (runs)
//! ```
//!
//! Both run as separate processes timed with wait4(2), alternately, after one warm-up each.
//! memglass's own figure of the scan (`scan_seconds` of its JSON) is also reported: the
//! whole command also takes a snapshot of every cgroup and attributes the pages to them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: fail loudly

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;
use support::{figure, measure, Run};

/// As memglass_kernel::kpage reads: 64 Ki frames (8 bytes each) per read.
const CHUNK: u64 = 64 << 10;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--floor") {
        floor();
        return;
    }
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(7);
    let memglass = env!("CARGO_BIN_EXE_memglass");
    let exe = std::env::current_exe().unwrap();
    let frames = std::fs::metadata("/proc/kpageflags").map_or(0, |m| m.len()) / 8;
    // The size reported for /proc/kpageflags is 0 on most kernels: count by reading.
    let frames = if frames > 0 { frames } else { count_frames() };
    let page = 4096.0;
    let span_gib = frames as f64 * page / (1u64 << 30) as f64;
    println!("page frames: {frames} ({span_gib:.1} GiB of PFN space)");

    let pages_cmd = || {
        let mut c = Command::new(memglass);
        c.args(["--no-cri", "pages", "--json"]);
        c
    };
    measure(&mut pages_cmd());
    measure(Command::new(&exe).arg("--floor"));
    let (mut ours, mut floor_runs, mut scans) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(measure(&mut pages_cmd()));
        floor_runs.push(measure(Command::new(&exe).arg("--floor")));
    }
    for _ in 0..3 {
        let out = pages_cmd().stderr(Stdio::null()).output().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        scans.push(Duration::from_secs_f64(
            doc["scan_seconds"].as_f64().unwrap_or(0.0),
        ));
    }
    scans.sort();
    let median = |runs: &[Run], f: fn(&Run) -> Duration| {
        let mut v: Vec<Duration> = runs.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    let (wall, cpu) = (median(&ours, |r| r.wall), median(&ours, |r| r.cpu));
    let (fwall, fcpu) = (
        median(&floor_runs, |r| r.wall),
        median(&floor_runs, |r| r.cpu),
    );
    let scan = scans[scans.len() / 2];
    let ms = support::ms;
    println!(
        "memglass pages --json: wall {:.0} ms, cpu {:.0} ms (scan alone {:.0} ms) [{runs} runs, medians]",
        ms(wall),
        ms(cpu),
        ms(scan)
    );
    println!(
        "floor (read both files in 512 KiB chunks): wall {:.0} ms, cpu {:.0} ms",
        ms(fwall),
        ms(fcpu)
    );
    let per_25 = |d: Duration| d.as_secs_f64() * 25.0 / span_gib;
    let ratio = wall.as_secs_f64() / fwall.as_secs_f64();
    let scan_ratio = scan.as_secs_f64() / fwall.as_secs_f64();
    figure(
        "pages",
        &format!("memglass pages wall per 25 GiB of page frames ({span_gib:.1} GiB scanned)"),
        &format!("{:.2} s", per_25(wall)),
        "< 1 s",
        &format!("plain read {:.2} s per 25 GiB", per_25(fwall)),
        Some(per_25(wall) < 1.0),
    );
    figure(
        "pages",
        "memglass pages wall vs plain read of kpageflags + kpagecgroup",
        &format!("{ratio:.2}×"),
        "≤ 1.1×",
        &format!(
            "plain read {:.0} ms; memglass {:.0} ms, of which the scan {:.0} ms ({scan_ratio:.2}×)",
            ms(fwall),
            ms(wall),
            ms(scan)
        ),
        Some(ratio <= 1.1),
    );
    figure(
        "pages",
        "memglass pages CPU vs plain read",
        &format!("{:.0} ms", ms(cpu)),
        "-",
        &format!("plain read {:.0} ms CPU", ms(fcpu)),
        None,
    );
}

/// The floor: read both files whole, chunk by chunk, into two buffers; nothing else.
fn floor() {
    let flags = File::open("/proc/kpageflags").unwrap();
    let cgroups = File::open("/proc/kpagecgroup").unwrap();
    let mut a = vec![0_u8; (CHUNK * 8) as usize];
    let mut b = vec![0_u8; (CHUNK * 8) as usize];
    let mut offset = 0;
    let mut sum = 0_u64;
    loop {
        let n = read_full_at(&flags, &mut a, offset);
        if n == 0 {
            break;
        }
        let m = read_full_at(&cgroups, &mut b[..n], offset);
        sum = sum.wrapping_add(a[n - 1] as u64 + b[m.max(1) - 1] as u64);
        offset += n as u64;
    }
    std::hint::black_box(sum);
}

fn count_frames() -> u64 {
    let flags = File::open("/proc/kpageflags").unwrap();
    let mut a = vec![0_u8; (CHUNK * 8) as usize];
    let mut offset = 0;
    loop {
        let n = read_full_at(&flags, &mut a, offset);
        if n == 0 {
            return offset / 8;
        }
        offset += n as u64;
    }
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    done
}
