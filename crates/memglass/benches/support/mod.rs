//! The figure line every benchmark prints (the format is documented at the top of ci/bench):
//! `FIGURE<TAB>benchmark<TAB>figure<TAB>value<TAB>goal<TAB>anchor<TAB>met|missed|-`.
#![allow(dead_code)] // each bench uses a part

/// Print one figure line. `met`: None when the figure has no goal.
pub fn figure(bench: &str, name: &str, value: &str, goal: &str, anchor: &str, met: Option<bool>) {
    let status = match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "-",
    };
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    println!(
        "FIGURE\t{}\t{}\t{}\t{}\t{}\t{status}",
        clean(bench),
        clean(name),
        clean(value),
        clean(if goal.is_empty() { "-" } else { goal }),
        clean(if anchor.is_empty() { "-" } else { anchor }),
    );
}

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const MIB: f64 = 1048576.0;

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The value at quantile `q` (0..=1) of sorted values (nearest rank).
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> T {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// One run of a child process: wall time, user + system CPU, peak RSS (wait4 rusage).
pub struct Run {
    pub wall: Duration,
    pub cpu: Duration,
    pub max_rss_kib: i64,
}

#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
pub fn measure(command: &mut Command) -> Run {
    let started = Instant::now();
    let child = command.stdout(Stdio::null()).spawn().unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data; we wait for our own child, which std has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "run failed"
    );
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Run {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    }
}
