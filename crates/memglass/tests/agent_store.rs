//! The agent's history under faults, black-box: real `memglass agent` processes on a real
//! cgroup subtree (`--cgroup-root`), real files, checked through the API and with SQLite's
//! own `PRAGMA integrity_check`. Nothing here knows the history's tables beyond "a row is
//! a (cgroup, resolution, time)", so the tests outlive a change of the on-disk format.
//!
//! - `kill -9` at random moments (during the write-heavy start and during collections):
//!   the file opens, passes integrity_check, and no row that was committed is lost.
//!   `MEMGLASS_KILL9_RUNS` (default 10; `ci/store-faults` runs 100) and
//!   `MEMGLASS_KILL9_SEED` repeat it.
//! - A full filesystem (a 3 MiB tmpfs): /metrics and the API keep answering, store errors
//!   are counted and shown in health, writing resumes when space returns.
//! - A corrupt file (garbage, or a database failing quick_check) is moved aside with one
//!   warning, and a fresh history starts.
//! - `--db-max-size` holds: the oldest raw samples go first, OOM events stay.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod agent_support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use agent_support::*;
use memglass_testkit::{memglass_bin, Scratch, TestCgroup};
use rusqlite::{Connection, OpenFlags};

/// A cgroup subtree of `n` empty children `c00`… (a node of its own for the agent).
fn subtree(n: usize) -> TestCgroup {
    let cg = TestCgroup::new();
    for i in 0..n {
        cg.child(&format!("c{i:02}"));
    }
    cg
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A small xorshift generator: reproducible runs from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Open the history read-only (so closing it never checkpoints the log: the next agent
/// finds the file exactly as the killed one left it) and run `PRAGMA integrity_check`.
fn integrity(db: &Path) -> (Connection, String) {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let check = conn.prepare("PRAGMA integrity_check").and_then(|mut s| {
        s.query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()
    });
    let check = check.map_or_else(|e| e.to_string(), |lines| lines.join("; "));
    (conn, check)
}

/// Every stored sample as (cgroup path, resolution, time), read as the agent reads them
/// (the file opened read-only, as the killed agent left it).
fn sample_keys(db: &Path) -> HashSet<(String, i64, i64)> {
    memglass_agent::store::Store::open_read_only(db)
        .and_then(|store| store.sample_keys())
        .unwrap_or_else(|e| panic!("read the history {}: {e}", db.display()))
}

/// Files `<db>.corrupt-*` beside the database.
fn moved_aside(db: &Path) -> Vec<PathBuf> {
    let name = format!("{}.corrupt-", db.file_name().unwrap().to_str().unwrap());
    std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&name) && !n.ends_with("-wal"))
        })
        .collect()
}

/// An agent process we start and `kill -9` ourselves at a moment of our choosing (not
/// waiting for it to listen), with its stderr collected.
struct Raw {
    child: std::process::Child,
    stderr: Arc<Mutex<String>>,
}

impl Raw {
    fn spawn(db: &Path, root: &Path, extra: &[&str]) -> Raw {
        Raw::spawn_every(db, root, "1s", extra)
    }

    fn spawn_every(db: &Path, root: &Path, interval: &str, extra: &[&str]) -> Raw {
        let mut child = Command::new(memglass_bin())
            .args(["--no-cri", "agent", "--listen", "127.0.0.1:0"])
            .args(["--interval", interval, "--db"])
            .arg(db)
            .arg("--cgroup-root")
            .arg(root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Raw { child, stderr }
    }

    /// The address, once it listens (`None` if it exited first or 240 s passed: a debug
    /// build simulating days of history on a busy machine takes minutes).
    fn listening(&mut self) -> Option<std::net::SocketAddr> {
        let deadline = Instant::now() + Duration::from_secs(240);
        while Instant::now() < deadline {
            let text = self.stderr.lock().unwrap().clone();
            if let Some(addr) = text
                .split("http://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse().ok())
            {
                return Some(addr);
            }
            if self.child.try_wait().unwrap().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The address once the first collection is stored and published (panics after 60 s).
    fn serving(&mut self) -> std::net::SocketAddr {
        let addr = self
            .listening()
            .unwrap_or_else(|| panic!("the agent did not start: {}", self.stderr.lock().unwrap()));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = http_get(addr, "/api/v1/health", &[]).json();
            if health["store_rows"].as_u64() >= Some(1) && !health["last_collection"].is_null() {
                break;
            }
            assert!(Instant::now() < deadline, "no collection stored: {health}");
            std::thread::sleep(Duration::from_millis(50));
        }
        addr
    }

    /// `kill -9` (SIGKILL to our child's PID) and reap; false if it had already exited.
    fn kill9(mut self) -> bool {
        let running = self.child.try_wait().unwrap().is_none();
        let _ = self.child.kill();
        let _ = self.child.wait();
        running
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -9` at random moments, `MEMGLASS_KILL9_RUNS` times: half the runs while the agent
/// fills minutes of history as fast as it can (`--simulate-history`: one transaction per
/// collection, back to back, so the kill lands inside a write), half while it collects
/// every second after reading back what it committed through the API. After each kill the
/// file must pass integrity_check and hold every row the file held before (and every
/// sample the API showed); each restart must open it without moving it aside.
#[test]
fn kill_9_at_random_moments_loses_nothing_committed() {
    let runs: u32 = std::env::var("MEMGLASS_KILL9_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("MEMGLASS_KILL9_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| now() as u64 ^ u64::from(std::process::id()))
        | 1;
    let mut rng = Rng(seed);
    let cg = subtree(30);
    let scratch = Scratch::new();
    let db = scratch.dir.join("history.db");
    let mut committed: HashSet<(String, i64, i64)> = HashSet::new();
    let (mut killed, mut writing, mut collecting, mut seen_rows) = (0, 0, 0, 0usize);
    let started = Instant::now();
    for run in 0..runs {
        let simulate = rng.below(2) == 0;
        let minutes = 5 + rng.below(25);
        let span = format!("{minutes}m");
        let extra: Vec<&str> = if simulate {
            vec!["--simulate-history", &span]
        } else {
            vec![]
        };
        let mut agent = Raw::spawn(&db, &cg.dir, &extra);
        let mut seen = None;
        if simulate {
            // Start-up, then the first minutes of back-to-back writes.
            std::thread::sleep(Duration::from_millis(200 + rng.below(2800)));
            writing += 1;
        } else {
            let addr = agent.serving();
            // What the API shows is committed: the newest raw sample of one cgroup.
            let answer = http_get(
                addr,
                "/api/v1/cgroup?path=/c07&range=1h&resolution=raw",
                &[],
            );
            let history = answer.json()["history"]
                .as_array()
                .unwrap_or_else(|| panic!("run {run}: {}", answer.body))
                .iter()
                .filter_map(|p| p["t"].as_i64())
                .max();
            seen = history;
            std::thread::sleep(Duration::from_millis(rng.below(2500)));
            collecting += 1;
        }
        let stderr = agent.stderr.lock().unwrap().clone();
        if agent.kill9() {
            killed += 1;
        }
        assert!(
            !stderr.contains("corrupt"),
            "run {run} (seed {seed}): the agent took a killed history for corrupt: {stderr}"
        );
        assert!(
            moved_aside(&db).is_empty(),
            "run {run} (seed {seed}): a history was moved aside: {stderr}"
        );
        let (conn, check) = integrity(&db);
        assert_eq!(check, "ok", "run {run} (seed {seed}): integrity_check");
        drop(conn);
        let keys = sample_keys(&db);
        let lost: Vec<_> = committed.difference(&keys).take(5).collect();
        assert!(
            lost.is_empty(),
            "run {run} (seed {seed}): {} committed rows lost across kill -9, e.g. {lost:?}",
            committed.difference(&keys).count()
        );
        if let Some(t) = seen {
            seen_rows += 1;
            assert!(
                keys.contains(&("/c07".to_owned(), 0, t)),
                "run {run} (seed {seed}): the sample at {t} the API showed is lost"
            );
        }
        committed = keys;
    }
    // The last file opens in a working agent too.
    let mut last = Raw::spawn(&db, &cg.dir, &[]);
    let addr = last.serving();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(addr, "/api/v1/health", &[]).json()["store_rows"].as_u64() < Some(1) {
        assert!(
            Instant::now() < deadline,
            "no history written after restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    last.kill9();
    eprintln!(
        "kill -9: seed {seed}, {runs} runs ({writing} while filling history, {collecting} while collecting), {killed} killed running, {runs} reopened, {runs} integrity_check ok, 0 committed rows lost ({} rows at the end, {seen_rows} API-seen samples kept), {:.0} s",
        committed.len(),
        started.elapsed().as_secs_f64()
    );
}

/// A tmpfs of `size` mounted on a directory of ours, unmounted and removed on drop (also
/// when the test fails; after the agent using it is gone, which is declared later).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "memglass-test",
            ])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs on {}", dir.display());
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for _ in 0..50 {
            let done = Command::new("umount").arg(&self.0).status();
            if done.is_ok_and(|s| s.success()) {
                let _ = std::fs::remove_dir(&self.0);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Write `path` until the filesystem is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 4096];
    let mut written = 0;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = file.sync_all();
    written
}

/// Poll `check` on the agent (every 200 ms, at most `secs`).
#[track_caller]
fn wait_long(agent: &Agent, secs: u64, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let health = agent.get("/api/v1/health").json();
        if check(&health) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {health}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_full_disk_keeps_serving_counts_store_errors_and_writing_resumes() {
    let cg = subtree(5);
    let scratch = Scratch::new();
    let mount = Tmpfs::mount(scratch.dir.join("full"), "3m");
    let db = mount.0.join("history.db");
    // A small --db-max-size keeps the write-ahead log short, so a full disk shows at once.
    let root = cg.dir.to_str().unwrap().to_owned();
    let agent = Agent::start(&db, &["--cgroup-root", &root, "--db-max-size", "1Mi"]);
    agent.wait_collections(2);
    let health = agent.get("/api/v1/health").json();
    assert_eq!(health["store_errors"], 0, "{health}");
    assert_eq!(health["database"]["failing"], false, "{health}");
    assert_eq!(health["database"]["max_bytes"], 1 << 20, "{health}");

    let filler = mount.0.join("filler");
    let filled = fill(&filler);
    wait_long(&agent, 60, "store errors", |h| {
        h["store_errors"].as_u64() >= Some(1) && h["database"]["failing"] == true
    });
    // A cgroup that appears while nothing can be written: its first writes fail.
    let (_, during) = cg.child("new-while-full");
    let during = during.strip_prefix(&cg.path).unwrap().to_owned();
    let errors = agent.get("/api/v1/health").json()["store_errors"]
        .as_u64()
        .unwrap();
    wait_long(&agent, 30, "more store errors", |h| {
        h["store_errors"].as_u64() >= Some(errors + 2) && h["database"]["failing"] == true
    });
    let health = agent.get("/api/v1/health").json();
    let error = health["database"]["last_error"].as_str().unwrap();
    assert!(error.contains("full"), "{error}");
    assert!(health["database"]["last_error_at"].is_string(), "{health}");
    assert_eq!(health["status"], "ok", "collections go on: {health}");
    // Served from memory meanwhile.
    let before = health["collections"].as_u64().unwrap();
    agent.wait_collections(2);
    let scrape = agent.get("/metrics");
    assert_eq!(scrape.status, 200);
    let m = parse_metrics(&scrape.body);
    let errors = m
        .iter()
        .find(|((n, _), _)| n.starts_with("memglass_agent_store_errors"))
        .map(|(_, v)| *v);
    assert!(errors >= Some(2.0), "store errors on /metrics: {errors:?}");
    assert!(value(&m, "memglass_cgroup_memory_usage_bytes", &during, &[]).is_some());
    let snapshot = agent.get("/api/v1/snapshot");
    assert_eq!(snapshot.status, 200);
    assert!(snapshot.json()["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == during.as_str()));
    let full = agent.get("/api/v1/health").json();
    assert!(full["collections"].as_u64().unwrap() >= before + 2);
    assert_eq!(full["collection_errors"], 0, "{full}");

    // Space returns: the next collection is written.
    std::fs::remove_file(&filler).unwrap();
    let rows_full = full["store_rows"].as_u64().unwrap();
    wait_long(&agent, 30, "writing to resume", |h| {
        h["database"]["failing"] == false && h["store_rows"].as_u64() > Some(rows_full)
    });
    let errors_after = agent.get("/api/v1/health").json()["store_errors"].clone();
    let (_, after) = cg.child("new-after-space");
    let after = after.strip_prefix(&cg.path).unwrap().to_owned();
    agent.wait_collections(3);
    let health = agent.get("/api/v1/health").json();
    assert_eq!(
        health["store_errors"], errors_after,
        "no errors once space is back"
    );
    // Both new cgroups have their own history (a rolled-back write must not leave a
    // cgroup pointing at a series that was never stored).
    for path in [&during, &after] {
        let answer = agent.get(&format!(
            "/api/v1/cgroup?path={path}&range=10m&resolution=raw"
        ));
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let history = answer.json()["history"].as_array().unwrap().len();
        assert!(
            history >= 2,
            "{path}: {history} samples after the disk had room"
        );
    }
    let (conn, check) = integrity(&db);
    assert_eq!(check, "ok");
    drop(conn);
    eprintln!(
        "full disk: {filled} bytes of filler on a 3 MiB tmpfs; {} store errors counted, serving went on; writing resumed ({} rows)",
        health["store_errors"], health["store_rows"]
    );
}

/// Lines of the agent's stderr that mention a corrupt history.
fn corrupt_warnings(agent: &Agent) -> Vec<String> {
    agent
        .stderr
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains("corrupt"))
        .map(str::to_owned)
        .collect()
}

/// The agent ran on `db` and `moved` is the one file moved aside: one warning line naming
/// it, health says so, and a fresh history is written and sound.
fn check_replaced(agent: &Agent, db: &Path, why: &str) -> PathBuf {
    agent.wait_collections(2);
    let warnings = corrupt_warnings(agent);
    assert_eq!(warnings.len(), 1, "one warning: {warnings:?}");
    let moved = moved_aside(db);
    assert_eq!(moved.len(), 1, "{moved:?}");
    let moved = moved.into_iter().next().unwrap();
    let line = &warnings[0];
    assert!(
        line.starts_with("memglass: warning: history database")
            && line.contains(&moved.display().to_string())
            && line.contains(why),
        "{line}"
    );
    let health = agent.get("/api/v1/health").json();
    assert_eq!(
        health["database"]["moved_aside"]["path"],
        moved.display().to_string().as_str(),
        "{health}"
    );
    assert!(health["store_rows"].as_u64() > Some(0), "{health}");
    assert_eq!(health["store_errors"], 0, "{health}");
    let (conn, check) = integrity(db);
    assert_eq!(check, "ok");
    drop(conn);
    assert!(!sample_keys(db).is_empty());
    moved
}

#[test]
fn a_corrupt_database_is_moved_aside_and_a_fresh_one_started() {
    let cg = subtree(20);
    let root = cg.dir.to_str().unwrap().to_owned();

    // Garbage where the database should be.
    let scratch = Scratch::new();
    let db = scratch.dir.join("history.db");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let garbage: Vec<u8> = (0..64 * 1024).map(|_| rng.next() as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    let agent = Agent::start(&db, &["--cgroup-root", &root]);
    let moved = check_replaced(&agent, &db, "not a database");
    assert!(
        std::fs::read(&moved).unwrap() == garbage,
        "the bad file is kept as it was"
    );
    drop(agent);

    // A real history whose pages were damaged: SQLite opens it, quick_check does not pass.
    let scratch = Scratch::new();
    let db = scratch.dir.join("history.db");
    let agent = Agent::start(&db, &["--cgroup-root", &root, "--simulate-history", "20m"]);
    drop(agent); // kill -9
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let len = std::fs::metadata(&db).unwrap().len();
    let pages = len / 4096;
    assert!(pages > 20, "a history of {pages} pages");
    let mut bytes = std::fs::read(&db).unwrap();
    for page in pages / 3..pages / 3 + 4 {
        let at = (page * 4096) as usize;
        for b in &mut bytes[at..at + 4096] {
            *b = rng.next() as u8;
        }
    }
    std::fs::write(&db, &bytes).unwrap();
    let (conn, check) = integrity(&db);
    drop(conn);
    assert_ne!(check, "ok", "the damage is what quick_check finds");
    let agent = Agent::start(&db, &["--cgroup-root", &root]);
    let moved = check_replaced(&agent, &db, "quick_check: ");
    let kept = std::fs::read(&moved).unwrap();
    let differs = kept.iter().zip(&bytes).position(|(a, b)| a != b);
    assert!(
        kept.len() == bytes.len() && differs.is_none(),
        "the bad file is kept as it was: {} bytes, was {}, first change at {differs:?}",
        kept.len(),
        bytes.len()
    );
}

#[test]
fn the_size_cap_prunes_the_oldest_raw_samples_first_and_keeps_oom_events() {
    let cg = subtree(50);
    let (victim, victim_path) = cg.child("victim");
    let victim_path = victim_path.strip_prefix(&cg.path).unwrap().to_owned();
    cg.write(
        &victim,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(32 * MIB).to_string(),
    );
    let root = cg.dir.to_str().unwrap().to_owned();
    let scratch = Scratch::new();
    let db = scratch.dir.join("history.db");
    // An OOM event in the history first.
    {
        let agent = Agent::start(&db, &["--cgroup-root", &root]);
        memglass_testkit::oom_kill_in(&victim);
        agent.wait_for(|a| {
            a.get("/api/v1/oom").json()["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["cgroup"] == victim_path.as_str())
        });
    }
    // Then three days of history at one collection a minute (raw and one-minute samples
    // alike: 52 cgroups × 2 × 4,320, with figures that move, about 1.5 MiB in blocks at a
    // few bytes a sample, plus the head and the log's share) into 1 MiB, while the files
    // are watched.
    let cap: u64 = 1 << 20;
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let largest = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let (watching, largest, db) = (Arc::clone(&watching), Arc::clone(&largest), db.clone());
        std::thread::spawn(move || {
            let wal = PathBuf::from(format!("{}-wal", db.display()));
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let size: u64 = [&db, &wal]
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum();
                largest.fetch_max(size, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut agent = Raw::spawn_every(
        &db,
        &cg.dir,
        "60s",
        &["--db-max-size", "1MiB", "--simulate-history", "3d"],
    );
    let addr = agent.serving();
    let get = |path: &str| http_get(addr, path, &[]);
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    let largest = largest.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        largest <= cap,
        "the database and its log reached {largest} bytes, over the 1 MiB cap"
    );
    let health = get("/api/v1/health").json();
    assert_eq!(health["database"]["max_bytes"], cap, "{health}");
    assert!(
        health["database"]["bytes"].as_u64() <= Some(cap),
        "{health}"
    );
    assert!(
        health["database"]["pruned_rows"].as_u64() > Some(0),
        "{health} {}",
        agent.stderr.lock().unwrap()
    );
    // Oldest raw samples went first; the one-minute averages still reach back 8 hours.
    let times = |res: &str| -> Vec<i64> {
        get(&format!(
            "/api/v1/cgroup?path=/c42&range=9h&resolution={res}"
        ))
        .json()["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["t"].as_i64().unwrap())
            .collect()
    };
    let (raw, minute) = (times("raw"), times("1m"));
    let now = now();
    let oldest_raw = *raw.first().expect("raw samples kept");
    let oldest_minute = *minute.first().expect("one-minute averages kept");
    assert!(
        now - raw.last().unwrap() < 120,
        "the newest samples are kept"
    );
    assert!(
        now - oldest_raw < 7 * 3600,
        "old raw samples were pruned (oldest {} s ago)",
        now - oldest_raw
    );
    assert!(
        now - oldest_minute > 7 * 3600 + 1800,
        "one-minute averages go after raw samples (oldest {} s ago, raw {} s)",
        now - oldest_minute,
        now - oldest_raw
    );
    let events = get("/api/v1/oom?range=1d").json();
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cgroup"] == victim_path.as_str()),
        "OOM events are kept longest: {events}"
    );
    let (conn, check) = integrity(&db);
    assert_eq!(check, "ok");
    drop(conn);
    eprintln!(
        "size cap 1 MiB (3 days at 60 s of 52 cgroups): largest db+wal seen {largest} bytes; {} samples pruned; raw kept from {} s ago, 1m from {} s ago; OOM event kept",
        health["database"]["pruned_rows"],
        now - oldest_raw,
        now - oldest_minute
    );
}

#[test]
fn a_bad_size_cap_is_a_usage_error() {
    for bad in ["10K", "lots", "0"] {
        let out = Command::new(memglass_bin())
            .args(["--no-cri", "agent", "--db-max-size", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--db-max-size {bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--db-max-size"), "{stderr}");
    }
}
