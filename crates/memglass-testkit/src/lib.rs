//! Test support for memglass's real-kernel tiers (host cgroup v1, guest cgroup v2).
//!
//! - [`TestCgroup`]: a real memory cgroup under this run's unique prefix
//!   (`/memglass-test-<pid>-<n>`), removed on drop, even when the test panics.
//! - [`Workload`]: the `memglass-workload` helper running inside such a cgroup, killed
//!   (by its PID, which we started) on drop.
//! - [`Scratch`]: a directory for test files on a disk-backed filesystem, removed on drop.
//! - [`fake_api::FakeApi`]: a stand-in Kubernetes API server on 127.0.0.1 (list, watch,
//!   events) serving recorded objects, which can go away and come back on the same port.
//!
//! Binaries are found through `MEMGLASS_BIN`, `MEMGLASS_WORKLOAD_BIN` and
//! `MEMGLASS_SCRATCH` when set (the v2 tier runs the suite inside a guest), otherwise next
//! to the test executable's target directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

pub mod fake_api;
pub mod tree;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Memory hierarchy of this machine: (mount point, is_v2), from /proc/self/mountinfo.
pub fn memory_mount() -> (PathBuf, bool) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or_default();
        let options = right.nth(1).unwrap_or_default();
        if fstype == "cgroup" && options.split(',').any(|o| o == "memory") {
            return (PathBuf::from(mount_point), false);
        }
        if fstype == "cgroup2" && v2.is_none() {
            let controllers =
                std::fs::read_to_string(Path::new(mount_point).join("cgroup.controllers"))
                    .unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "memory") {
                v2 = Some(PathBuf::from(mount_point));
            }
        }
    }
    (
        v2.expect("no memory cgroup hierarchy on this machine (need root and a memory controller)"),
        true,
    )
}

static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// A real memory cgroup created by this test run, removed (with its descendants) on drop.
#[derive(Debug)]
pub struct TestCgroup {
    /// Directory in the cgroup filesystem.
    pub dir: PathBuf,
    /// Path relative to the hierarchy root, as memglass and the kernel print it.
    pub path: String,
    mount: PathBuf,
    v2: bool,
}

impl TestCgroup {
    /// A fresh top-level cgroup `/memglass-test-<pid>-<n>` (unique per process and call).
    pub fn new() -> TestCgroup {
        let (mount, v2) = memory_mount();
        let name = format!(
            "memglass-test-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        let cgroup = TestCgroup {
            dir: mount.join(&name),
            path: format!("/{name}"),
            mount,
            v2,
        };
        std::fs::create_dir(&cgroup.dir)
            .unwrap_or_else(|e| panic!("create {}: {e} (tests need root)", cgroup.dir.display()));
        cgroup
    }

    /// True on cgroup v2.
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// Create a descendant `relative` ("a/b/c"), with every level in between. Returns its
    /// directory and its hierarchy path. It is removed with this cgroup.
    pub fn child(&self, relative: &str) -> (PathBuf, String) {
        let mut dir = self.dir.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            // v2 "no internal processes": only a cgroup that will have children gets
            // +memory in subtree_control, so leaves can still take the workload.
            self.enable_memory_below(&dir);
            dir.push(part);
            if !dir.exists() {
                std::fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            }
        }
        let path = format!("/{}", dir.strip_prefix(&self.mount).unwrap().display());
        (dir, path)
    }

    /// Write a control file of this cgroup or a descendant.
    pub fn write(&self, dir: &Path, file: &str, value: &str) {
        let target = dir.join(file);
        assert!(
            target.starts_with(&self.dir),
            "tests only write to their own cgroups"
        );
        std::fs::write(&target, value)
            .unwrap_or_else(|e| panic!("write {}: {e}", target.display()));
    }

    /// v2: let children of `dir` (one of ours) have the memory controller.
    fn enable_memory_below(&self, dir: &Path) {
        if self.v2 {
            std::fs::write(dir.join("cgroup.subtree_control"), "+memory")
                .unwrap_or_else(|e| panic!("enable memory below {}: {e}", dir.display()));
        }
    }
}

impl Default for TestCgroup {
    fn default() -> Self {
        TestCgroup::new()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        remove_tree(&self.dir);
        // A container runtime given a cgroup parent under our prefix (runc with the
        // cgroupfs driver) creates it in every hierarchy: remove ours there too.
        let name = self.path.trim_start_matches('/');
        for mount in cgroup_mounts() {
            let dir = mount.join(name);
            if mount != self.mount && dir.exists() {
                remove_tree(&dir);
            }
        }
    }
}

/// Mount points of every cgroup filesystem (v1 hierarchies and cgroup2).
fn cgroup_mounts() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mount_point = left.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

/// Remove a cgroup directory tree of ours, deepest first. Processes still inside (only
/// ever our own workloads) were killed by their [`Workload`] guards before this runs.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    // A killed task leaves its cgroup a moment later: retry briefly.
    for _ in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    eprintln!("warning: could not remove test cgroup {}", dir.display());
}

/// `memglass-workload` running inside a cgroup; killed and reaped on drop.
#[derive(Debug)]
pub struct Workload {
    child: Child,
    /// Its PID.
    pub pid: u32,
}

impl Workload {
    /// Start the workload in cgroup directory `dir` with `actions` and wait until it is
    /// ready (all memory touched).
    pub fn start(dir: &Path, actions: &[String]) -> Workload {
        let mut child = Command::new(workload_bin())
            .arg("--cgroup")
            .arg(dir)
            .args(actions)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", workload_bin().display()));
        let pid = child.id();
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read workload stdout");
        if !line.starts_with("ready") {
            let _ = child.kill();
            let output = child.wait_with_output().expect("wait workload");
            panic!(
                "workload failed to start: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Workload { child, pid }
    }

    /// Wait for the workload to end by itself (e.g. OOM-killed); returns its exit status.
    pub fn wait(mut self) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        self.child.wait().expect("wait workload")
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory for test files on a disk-backed filesystem (page cache, dirty pages),
/// removed on drop, which also frees the files' page cache.
#[derive(Debug)]
pub struct Scratch {
    /// The directory.
    pub dir: PathBuf,
}

impl Scratch {
    /// A fresh scratch directory under `MEMGLASS_SCRATCH` or the system temp dir.
    pub fn new() -> Scratch {
        let base =
            std::env::var_os("MEMGLASS_SCRATCH").map_or_else(std::env::temp_dir, PathBuf::from);
        let dir = base.join(format!(
            "memglass-test-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Scratch { dir }
    }

    /// A path inside the scratch directory.
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The memglass binary: `MEMGLASS_BIN`, else `target/<profile>/memglass`.
pub fn memglass_bin() -> PathBuf {
    env_or_target("MEMGLASS_BIN", "memglass")
}

/// The workload helper: `MEMGLASS_WORKLOAD_BIN`, else `target/<profile>/memglass-workload`.
pub fn workload_bin() -> PathBuf {
    env_or_target("MEMGLASS_WORKLOAD_BIN", "memglass-workload")
}

fn env_or_target(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    // Test executables live in target/<profile>/deps/; binaries one level up.
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` or set {var}",
        path.display()
    );
    path
}

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// Within 2% or 2 MiB of what the workload did, whichever is looser (the tolerance every
/// real-kernel test uses).
#[track_caller]
pub fn assert_close(actual: u64, expected: u64, what: &str) {
    let tolerance = (expected / 50).max(2 * MIB);
    assert!(
        actual.abs_diff(expected) <= tolerance,
        "{what}: memglass says {actual} bytes ({:.1} MiB), the workload made {expected} ({:.1} MiB)",
        actual as f64 / MIB as f64,
        expected as f64 / MIB as f64
    );
}

/// `[("--anon", "8M")]` → `["--anon", "8M"]`: workload arguments.
pub fn args(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(flag, value)| [flag.to_string(), value.clone()])
        .collect()
}

/// A file or directory tree of ours (tmpfs files, scratch trees), removed on drop.
#[derive(Debug)]
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Run the workload in the cgroup `dir` with 64 MiB of anonymous memory, more than the
/// small limit the test set there, and check that the kernel OOM-killed it.
pub fn oom_kill_in(dir: &Path) {
    let status = std::process::Command::new(workload_bin())
        .arg("--cgroup")
        .arg(dir)
        .args(["--anon", "64M"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run memglass-workload");
    assert!(
        !status.success(),
        "the workload in {} should have been OOM-killed",
        dir.display()
    );
}
