//! Kernel log overruns (PRODUCT.md §7): the log is flooded so that the agent's reader gets
//! EPIPE while real OOM kills happen. Every kill is still counted once (from its report, or
//! from the counters with a note that its report was lost), the overruns are in
//! /api/v1/health and /metrics, and a restart neither loses nor repeats a kill.
//!
//! Only in the cgroup v2 guests of ci/v2/run (`MEMGLASS_GUEST=1`): their kernel log is their
//! own. The build machine's log is shared with the machine, so there nothing is flooded and
//! only the counters' presence is checked.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent_support::*;
use memglass_testkit::{oom_kill_in, Scratch, TestCgroup};

/// Kills while the log is flooded, kills after, and one while the agent is down.
const FLOODED_KILLS: usize = 4;
const QUIET_KILLS: usize = 2;

fn in_v2_guest() -> bool {
    std::env::var("MEMGLASS_GUEST").as_deref() == Ok("1")
}

#[test]
fn kills_are_counted_once_through_kernel_log_overruns_and_a_restart() {
    if !in_v2_guest() {
        host_only_checks_the_counters_exist();
        return;
    }
    let cg = TestCgroup::new();
    assert!(cg.is_v2(), "the v2 guest has cgroup v2");
    let _devkmsg = DevKmsgUnlimited::set();
    let ring = ring_buffer_bytes();

    // Three containers of 24 MiB under a subtree that is the agent's node: only our kills.
    let containers: Vec<(PathBuf, String)> = (0..3)
        .map(|i| {
            let (dir, _, path, _) = pod_tree(&cg, 0x0e1 + i);
            cg.write(&dir, "memory.max", &(24 * MIB).to_string());
            let relative = path.strip_prefix(&cg.path).unwrap().to_owned();
            (dir, relative)
        })
        .collect();
    let db = Scratch::new();
    let db_file = db.dir.join("h.db");
    let root = cg.dir.display().to_string();
    let agent_args = ["--cgroup-root", root.as_str()];
    let agent = Agent::start(&db_file, &agent_args);
    assert!(agent.get("/api/v1/health").json()["oom_source"]
        .as_str()
        .unwrap()
        .starts_with("kernel log"));
    agent.wait_collections(2);

    // Flooded: the ring buffer is overwritten many times a second, so the reports of
    // most kills are gone before the agent's next read.
    let flood = Flood::start();
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..FLOODED_KILLS {
        oom_kill_in(&containers[i % containers.len()].0);
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let flooded = flood.stop();
    // Then quiet: these reports are read.
    for i in 0..QUIET_KILLS {
        oom_kill_in(&containers[i % containers.len()].0);
    }
    let made = FLOODED_KILLS + QUIET_KILLS;
    assert_eq!(kernel_counted(&containers), made as u64);

    let ours = |agent: &Agent| our_events(agent, &containers);
    let total = |events: &[serde_json::Value]| -> u64 {
        events.iter().map(|e| e["kills"].as_u64().unwrap()).sum()
    };
    agent.wait_for(|a| total(&ours(a)) >= made as u64);
    // Long enough for any counted kill to give up on its report, and for a late report.
    std::thread::sleep(Duration::from_secs(
        oom_wait_seconds() + 3, // REPORT_WAIT_SECONDS and a few collections
    ));
    let events = ours(&agent);
    let health = agent.get("/api/v1/health").json();
    let figures = Figures::of(&events, &health);
    let report = format!(
        "ring buffer {ring} bytes; flood: {} lines ({} bytes); kills made {made}, counted {} \
         ({} from the kernel log, {} from counters with the report lost, {} late reports); \
         overruns {}, records lost {}, oom_reports_lost {}",
        flooded.0,
        flooded.1,
        total(&events),
        figures.from_log,
        figures.from_counters,
        figures.late,
        figures.overruns,
        figures.records_lost,
        figures.reports_lost,
    );
    println!("kernel log overrun: {report}");
    assert_eq!(total(&events), made as u64, "{report}\n{events:#?}");
    for (dir, path) in &containers {
        let counted: u64 = events
            .iter()
            .filter(|e| e["cgroup"] == path.as_str())
            .map(|e| e["kills"].as_u64().unwrap())
            .sum();
        assert_eq!(counted, oom_kills(dir), "{path}: {report}\n{events:#?}");
    }
    for event in &events {
        match (event["source"].as_str().unwrap(), event["kills"].as_u64()) {
            ("kernel_log", Some(1)) => assert!(event["pid"].as_u64().is_some(), "{event}"),
            ("kernel_log", Some(0)) => assert!(
                event["note"].as_str().unwrap().contains("already counted"),
                "{event}"
            ),
            ("cgroup_counters", Some(_)) => {
                let note = event["note"].as_str().unwrap_or_default();
                assert!(note.contains("report was lost"), "{event}");
                assert_eq!(event["scope"], "container", "{event}");
                assert_eq!(event["oom_memcg"], event["cgroup"], "{event}");
            }
            _ => panic!("unexpected event {event}"),
        }
    }
    assert!(
        figures.from_counters >= 1,
        "the flood lost no report: {report}"
    );
    assert!(
        figures.from_log >= QUIET_KILLS as u64,
        "the quiet kills' reports: {report}"
    );
    assert!(
        figures.overruns >= 1 && figures.records_lost > 0,
        "{report}"
    );
    // The health counter is the node's (the agent watches the whole guest, where earlier
    // tests killed too); our containers' lost reports are among them.
    assert!(figures.reports_lost >= figures.from_counters, "{report}");
    // The same in /metrics (rendered at the last collection: nothing moved since).
    let m = parse_metrics(&agent.get("/metrics").body);
    let agent_counter = |name: &str| {
        m.iter()
            .find(|((n, _), _)| n == name)
            .map(|(_, v)| *v as u64)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(
        agent_counter("memglass_agent_kmsg_overruns_total"),
        figures.overruns
    );
    assert_eq!(
        agent_counter("memglass_agent_kmsg_records_lost_total"),
        figures.records_lost
    );
    assert_eq!(
        agent_counter("memglass_agent_oom_reports_lost_total"),
        figures.reports_lost
    );
    let metric_kills: f64 = m
        .iter()
        .filter(|((n, l), _)| {
            n == "memglass_oom_kills_total"
                && containers.iter().any(|(_, p)| l.get("cgroup") == Some(p))
        })
        .map(|(_, v)| *v)
        .sum();
    assert_eq!(metric_kills as u64, made as u64, "memglass_oom_kills_total");

    // Restart: kill -9, one more kill while the agent is down, then the same database.
    let before: Vec<(i64, u64)> = events
        .iter()
        .map(|e| (e["id"].as_i64().unwrap(), e["kills"].as_u64().unwrap()))
        .collect();
    agent.kill9();
    oom_kill_in(&containers[2].0);
    // The agent counts kills from its start on (2 s of slack): this one is history.
    std::thread::sleep(Duration::from_secs(3));
    let agent = Agent::start(&db_file, &agent_args);
    agent.wait_for(|a| total(&ours(a)) > made as u64);
    std::thread::sleep(Duration::from_secs(oom_wait_seconds() + 3));
    let after = ours(&agent);
    let (old, new): (Vec<_>, Vec<_>) = after
        .iter()
        .partition(|e| before.iter().any(|(id, _)| e["id"].as_i64() == Some(*id)));
    let old: Vec<(i64, u64)> = old
        .iter()
        .map(|e| (e["id"].as_i64().unwrap(), e["kills"].as_u64().unwrap()))
        .collect();
    let mut sorted_before = before.clone();
    sorted_before.sort_unstable();
    let mut sorted_old = old;
    sorted_old.sort_unstable();
    assert_eq!(
        sorted_old, sorted_before,
        "events changed across the restart"
    );
    assert_eq!(new.len(), 1, "after the restart: {new:#?}");
    assert_eq!(new[0]["source"], "kernel_log", "{}", new[0]);
    assert_eq!(new[0]["kills"], 1, "{}", new[0]);
    assert_eq!(new[0]["cgroup"], containers[2].1.as_str());
    assert_eq!(total(&after), kernel_counted(&containers));
    let m = parse_metrics(&agent.get("/metrics").body);
    assert!(
        m.iter().all(|((n, l), _)| n != "memglass_oom_kills_total"
            || !containers.iter().any(|(_, p)| l.get("cgroup") == Some(p))),
        "a kill from before the restart was counted again"
    );
    println!(
        "kernel log overrun, after the restart: {} events, {} kills (kernel: {}), overruns {}",
        after.len(),
        total(&after),
        kernel_counted(&containers),
        agent.get("/api/v1/health").json()["kmsg_overruns"]
    );
    if let Some(out) = std::env::var_os("MEMGLASS_GUEST_OUT") {
        let _ = std::fs::write(
            Path::new(&out).join("kmsg-overrun.txt"),
            format!(
                "{report}\nafter the restart: {} events, {} kills counted, {} made\n",
                after.len(),
                total(&after),
                kernel_counted(&containers)
            ),
        );
    }
}

/// On the build machine: the counters are exposed (nothing is flooded there).
fn host_only_checks_the_counters_exist() {
    println!(
        "kernel log overrun: not in a ci/v2 guest (MEMGLASS_GUEST unset); the host's kernel \
         log is shared with the machine and is not flooded: only the counters are checked"
    );
    let db = Scratch::new();
    let agent = Agent::start(&db.dir.join("h.db"), &[]);
    let health = agent.get("/api/v1/health").json();
    for key in ["kmsg_overruns", "kmsg_records_lost", "oom_reports_lost"] {
        assert!(health[key].as_u64().is_some(), "{key}: {health}");
    }
    let m = parse_metrics(&agent.get("/metrics").body);
    for name in [
        "memglass_agent_kmsg_overruns_total",
        "memglass_agent_kmsg_records_lost_total",
        "memglass_agent_oom_reports_lost_total",
    ] {
        assert!(m.keys().any(|(n, _)| n == name), "{name} missing");
    }
}

/// How long a counted kill waits for its report (memglass-agent's REPORT_WAIT_SECONDS,
/// and its three collections of 1 s).
fn oom_wait_seconds() -> u64 {
    5
}

/// The events of our containers (paths relative to the agent's root).
fn our_events(agent: &Agent, containers: &[(PathBuf, String)]) -> Vec<serde_json::Value> {
    agent.get("/api/v1/oom").json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            containers
                .iter()
                .any(|(_, p)| e["cgroup"].as_str() == Some(p.as_str()))
        })
        .cloned()
        .collect()
}

/// The kernel's own count of kills in a container (memory.events.local oom_kill).
fn oom_kills(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("memory.events.local")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

fn kernel_counted(containers: &[(PathBuf, String)]) -> u64 {
    containers.iter().map(|(dir, _)| oom_kills(dir)).sum()
}

struct Figures {
    from_log: u64,
    from_counters: u64,
    late: u64,
    overruns: u64,
    records_lost: u64,
    reports_lost: u64,
}

impl Figures {
    fn of(events: &[serde_json::Value], health: &serde_json::Value) -> Figures {
        let kills = |source: &str| -> u64 {
            events
                .iter()
                .filter(|e| e["source"] == source)
                .map(|e| e["kills"].as_u64().unwrap())
                .sum()
        };
        Figures {
            from_log: kills("kernel_log"),
            from_counters: kills("cgroup_counters"),
            late: events
                .iter()
                .filter(|e| e["source"] == "kernel_log" && e["kills"] == 0)
                .count() as u64,
            overruns: health["kmsg_overruns"].as_u64().unwrap(),
            records_lost: health["kmsg_records_lost"].as_u64().unwrap(),
            reports_lost: health["oom_reports_lost"].as_u64().unwrap(),
        }
    }
}

/// The kernel's log buffer size (syslog(2) SYSLOG_ACTION_SIZE_BUFFER).
fn ring_buffer_bytes() -> i32 {
    // SAFETY: action 10 only returns the size; no buffer is passed.
    let size = unsafe { libc::klogctl(10, std::ptr::null_mut(), 0) };
    assert!(size > 0, "syslog(SIZE_BUFFER): {size}");
    size
}

/// `kernel.printk_devkmsg` = on while the test runs (writes to /dev/kmsg are otherwise
/// rate-limited to 10 per 5 s per open file), restored on drop. Guest only.
struct DevKmsgUnlimited(String);

const PRINTK_DEVKMSG: &str = "/proc/sys/kernel/printk_devkmsg";

impl DevKmsgUnlimited {
    fn set() -> DevKmsgUnlimited {
        let old = std::fs::read_to_string(PRINTK_DEVKMSG).unwrap();
        std::fs::write(PRINTK_DEVKMSG, "on\n").unwrap();
        DevKmsgUnlimited(old.trim().to_owned())
    }
}

impl Drop for DevKmsgUnlimited {
    fn drop(&mut self) {
        let _ = std::fs::write(PRINTK_DEVKMSG, format!("{}\n", self.0));
    }
}

/// A thread writing records to /dev/kmsg as fast as it can (guest only), until stopped.
struct Flood {
    stop: Arc<AtomicBool>,
    lines: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Flood {
    fn start() -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let lines = Arc::new(AtomicU64::new(0));
        let (stop2, lines2) = (Arc::clone(&stop), Arc::clone(&lines));
        let thread = std::thread::spawn(move || {
            let mut kmsg = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/kmsg")
                .unwrap();
            let filler = "x".repeat(400);
            let mut bytes = 0;
            let started = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                let n = lines2.fetch_add(1, Ordering::Relaxed);
                let line = format!("memglass-flood {n} {filler}\n");
                kmsg.write_all(line.as_bytes()).unwrap();
                bytes += line.len() as u64;
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "flood ran away"
                );
            }
            bytes
        });
        Flood {
            stop,
            lines,
            thread: Some(thread),
        }
    }

    /// Stop; (lines, bytes) written.
    fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let bytes = self.thread.take().unwrap().join().unwrap();
        (self.lines.load(Ordering::Relaxed), bytes)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
