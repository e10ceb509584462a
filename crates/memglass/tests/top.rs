//! `memglass top` end to end: the built binary in a real terminal (a detached tmux
//! session of a fixed size, on a tmux server of its own), real workloads in fresh test
//! cgroups, keys sent as a person types them, the screen read back with capture-pane.
//! Needs root, a memory cgroup hierarchy and tmux (ci/test installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use memglass_testkit::{args, assert_close, memglass_bin, RemoveOnDrop, TestCgroup, Workload, MIB};

/// A tmux server and session of this test alone, killed on drop (only ours: its own
/// socket, its own session name).
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Run `command` in a 160×48 terminal; when it ends, the shell prints its exit code and
    /// whether the terminal is back in cooked mode, then waits to be read.
    fn start(name: &str, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("memglass-test-{}-{name}", std::process::id()),
            session: format!("memglass-top-{}-{name}", std::process::id()),
        };
        let script = format!(
            "{command}; echo \"memglass exited $?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?icanon'; exec sleep 600"
        );
        let output = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            "160",
            "-y",
            "48",
            "sh",
            "-c",
            &script,
        ]);
        assert!(
            output.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tmux
    }

    fn run(&self, arguments: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(arguments)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux (apt-get install tmux)")
    }

    fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Type keys (tmux key names: "Enter", "Escape", or literal text with `literal`).
    fn keys(&self, keys: &[&str]) {
        let mut arguments = vec!["send-keys", "-t", self.session.as_str()];
        arguments.extend(keys);
        assert!(self.run(&arguments).status.success());
    }

    fn literal(&self, text: &str) {
        assert!(self
            .run(&["send-keys", "-t", &self.session, "-l", text])
            .status
            .success());
    }

    /// A tmux format of the pane, e.g. "#{alternate_on}".
    fn format(&self, format: &str) -> String {
        let output = self.run(&["display-message", "-p", "-t", &self.session, format]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Wait until `ready` accepts the screen; returns that screen.
    #[track_caller]
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-session", "-t", &self.session]);
    }
}

/// The line of the table whose name column is `name`.
fn row<'a>(screen: &'a str, name: &str) -> Option<(usize, &'a str)> {
    screen
        .lines()
        .enumerate()
        .find(|(_, line)| line.split_whitespace().next() == Some(name))
}

/// The figure of `line` under header `column` (cells are right-aligned under their title).
fn figure(screen: &str, line: &str, column: &str) -> Option<u64> {
    let header = screen.lines().find(|l| l.starts_with("NAME "))?;
    let chars: Vec<char> = header.chars().collect();
    let start = header[..header.find(column)?].chars().count();
    let end = (start..chars.len())
        .find(|&i| chars[i] == ' ')
        .unwrap_or(chars.len());
    let cell: String = line.chars().take(end).collect();
    let text = cell.split_whitespace().last()?;
    let (digits, scale) = match text.chars().last()? {
        'K' => (&text[..text.len() - 1], 1u64 << 10),
        'M' => (&text[..text.len() - 1], 1 << 20),
        'G' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    Some((digits.parse::<f64>().ok()? * scale as f64) as u64)
}

fn within(actual: Option<u64>, expected: u64) -> bool {
    actual.is_some_and(|a| a.abs_diff(expected) <= (expected / 50).max(2 * MIB))
}

#[test]
fn a_person_sorts_filters_opens_a_cgroup_and_quits() {
    let cg = TestCgroup::new();
    let (anon_dir, anon_path) = cg.child("anon");
    let (shmem_dir, shmem_path) = cg.child("shmem");
    let tmpfs = format!("/dev/shm/{}-top-e2e", cg.path.trim_start_matches('/'));
    let _remove = RemoveOnDrop(tmpfs.clone().into());
    let _anon = Workload::start(&anon_dir, &args(&[("--anon", "48M".into())]));
    let _shmem = Workload::start(
        &shmem_dir,
        &args(&[("--tmpfs", format!("{tmpfs}:40M")), ("--anon", "8M".into())]),
    );
    let command = format!("{} --no-cri top --interval 500ms", memglass_bin().display());
    let tmux = Tmux::start("main", &command);
    // It starts on pods when the node has some (other tests' kubepods trees): Tab.
    let screen = tmux.wait_for("the first sample", |screen| screen.contains("NAME "));
    if screen.contains("PODS and their containers") {
        tmux.keys(&["Tab"]);
    }

    let screen = tmux.wait_for("the workload's cgroup with its anon", |screen| {
        row(screen, &anon_path)
            .is_some_and(|(_, line)| within(figure(screen, line, "ANON"), 48 * MIB))
    });
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "top runs on the alternate screen"
    );
    assert!(screen.starts_with("memglass top · node"), "{screen}");
    assert!(screen.contains("MEM ["), "node bar");
    assert!(screen.contains("memory_available"), "kubelet's signal");
    assert!(screen.contains("OOM kills"));
    assert!(screen.contains("q quit"), "help line");
    let (_, line) = row(&screen, &anon_path).unwrap();
    assert_close(
        figure(&screen, line, "ANON").unwrap(),
        48 * MIB,
        "ANON on screen",
    );

    // Sort keys: by anon the anon cgroup leads, by shmem the tmpfs one.
    let order = |screen: &str| {
        let a = row(screen, &anon_path).map(|(i, _)| i);
        let s = row(screen, &shmem_path).map(|(i, _)| i);
        a.zip(s)
    };
    tmux.literal("a");
    tmux.wait_for("sorted by anon", |screen| {
        screen.contains("sorted by anon ▼") && order(screen).is_some_and(|(a, s)| a < s)
    });
    tmux.literal("s");
    let screen = tmux.wait_for("sorted by shmem", |screen| {
        screen.contains("sorted by shmem ▼") && order(screen).is_some_and(|(a, s)| s < a)
    });
    let (_, line) = row(&screen, &shmem_path).unwrap();
    assert_close(
        figure(&screen, line, "SHMEM").unwrap(),
        40 * MIB,
        "SHMEM on screen",
    );

    // `/` filter: only the anon cgroup stays.
    tmux.literal("/");
    tmux.literal(&anon_path);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the filter", |screen| {
        screen.contains("CGROUPS (1)") && row(screen, &shmem_path).is_none()
    });
    assert!(row(&screen, &anon_path).is_some(), "{screen}");
    assert!(row(&screen, &cg.path).is_none(), "{screen}");

    // Enter: the detail view, every figure with its source.
    tmux.keys(&["Enter"]);
    let source = if cg.is_v2() {
        "memory.stat anon"
    } else {
        "memory.stat total_rss"
    };
    let screen = tmux.wait_for("the detail view", |screen| {
        screen.contains("WHY THE TWO WORKING SETS DIFFER") && screen.contains(source)
    });
    assert!(
        screen.contains(&format!(" {anon_path} ")),
        "titled by its path"
    );
    assert!(screen.contains("working_set_kubelet"));

    // f: its cached files, measured in the background (the helper's own binary is mapped).
    tmux.literal("f");
    tmux.wait_for("the cached files", |screen| {
        screen.contains("largest files")
    });

    // Back to the table, then quit: exit 0, the terminal restored (normal screen, cooked mode).
    tmux.keys(&["Escape"]);
    tmux.wait_for("the table again", |screen| {
        row(screen, &anon_path).is_some()
    });
    tmux.literal("q");
    let screen = tmux.wait_for("memglass to exit and stty to report", |screen| {
        screen.contains("memglass exited") && screen.lines().any(|l| l.ends_with("icanon"))
    });
    assert!(screen.contains("memglass exited 0"), "{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "0", "alternate screen left");
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor shown again");
    let stty = screen
        .lines()
        .find(|l| l.ends_with("icanon"))
        .unwrap_or_default();
    assert_eq!(stty, "icanon", "raw mode switched off:\n{screen}");
}

#[test]
fn sigterm_restores_the_terminal() {
    let command = format!("{} --no-cri top", memglass_bin().display());
    let tmux = Tmux::start("term", &command);
    tmux.wait_for("the first sample", |screen| screen.contains("NAME "));
    // The pane runs `sh -c`, whose child is memglass: ours, ended by its PID.
    let shell: u32 = tmux.format("#{pane_pid}").parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: kill(2) on a process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let screen = tmux.wait_for("memglass to exit", |screen| {
        screen.contains("memglass exited")
    });
    assert!(screen.contains("memglass exited 0"), "{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "0");
}

#[test]
fn a_terminal_that_goes_away_ends_it() {
    let command = format!("{} --no-cri top", memglass_bin().display());
    let tmux = Tmux::start("hangup", &command);
    tmux.wait_for("the first sample", |screen| screen.contains("NAME "));
    let shell: u32 = tmux.format("#{pane_pid}").parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // The terminal hangs up (an ssh session dropped, a tmux server killed): reads of it
    // return end-of-file from then on, and memglass must notice and end.
    tmux.run(&["kill-server"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.contains(") Z "));
    if alive {
        // SAFETY: kill(2) on the process this test started, so that it does not outlive it.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(
        !alive,
        "memglass top (PID {pid}) kept running after its terminal hung up"
    );
}

#[test]
fn without_a_terminal_it_says_so_in_one_line() {
    let output = Command::new(memglass_bin())
        .arg("top")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "memglass top needs a terminal; use memglass snapshot --json for scripts\n"
    );
    assert!(output.stdout.is_empty());
}

/// Not a timed test: what one refresh costs at the default interval with 100 pod and
/// container cgroups. Run with
/// `MEMGLASS_BIN=target/release/memglass cargo test -p memglass --test top -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: prints CPU per refresh and RSS"]
fn cost_per_refresh() {
    let root = TestCgroup::new();
    memglass_testkit::tree::kubepods_tree(&root, 100);
    let command = format!("{} --no-cri top", memglass_bin().display());
    let tmux = Tmux::start("cost", &command);
    tmux.wait_for("the first sample", |screen| screen.contains("NAME "));
    let shell: u32 = tmux.format("#{pane_pid}").parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let pid: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let cpu_ms = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks * 1000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64
    };
    let seconds = 60;
    let before = cpu_ms();
    std::thread::sleep(Duration::from_secs(seconds));
    let used = cpu_ms() - before;
    let refreshes = seconds / 2;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    };
    let screen = tmux.screen();
    println!(
        "{}\ncpu: {used} ms in {seconds} s = {:.1} ms per refresh ({refreshes} refreshes at 2 s, idle ticks included); RSS {} kB, peak {} kB",
        screen.lines().next().unwrap_or_default(),
        used as f64 / refreshes as f64,
        field("VmRSS:"),
        field("VmHWM:"),
    );
    tmux.literal("q");
}

/// `memglass top --kube` gets the API's pods through the same watch as the agent: a pod
/// created on the node while top runs shows up under its name.
#[test]
fn top_names_a_pod_created_while_it_runs() {
    use memglass_testkit::fake_api::{derived_pod, FakeApi};
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/kube/kubeadm-1.28-containerd/"
    );
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{fixtures}{name}")).unwrap())
            .unwrap()
    };
    let pods = read("pods.json");
    let api = FakeApi::start(&pods, &read("node.json"));
    let cg = TestCgroup::new();
    let uid = format!("00000001-7777-4222-8333-{:012x}", std::process::id());
    let id = format!("{:056x}00000009", std::process::id());
    let (dir, _) = cg.child(&format!("kubepods/besteffort/pod{uid}/{id}"));
    let _workload = Workload::start(&dir, &args(&[("--anon", "16M".into())]));
    let kubeconfig = api.kubeconfig(&std::env::temp_dir());
    let _remove = RemoveOnDrop(kubeconfig.clone());
    let command = format!(
        "KUBECONFIG={} {} --no-cri --kube --node-name k8s-controller-01 --cgroup-root {} top --interval 500ms",
        kubeconfig.display(),
        memglass_bin().display(),
        cg.dir.display()
    );
    let tmux = Tmux::start("kube", &command);
    tmux.wait_for("the first sample", |screen| screen.contains("NAME "));
    let proxy = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == "kube-proxy-p4jmn")
        .unwrap();
    api.add_pod(derived_pod(proxy, "kube-proxy-top", &uid, &id));
    tmux.wait_for("the new pod's name", |screen| {
        screen.contains("kube-proxy-top")
    });
}

#[test]
fn the_detail_view_shows_the_cgroups_findings() {
    let cg = TestCgroup::new();
    let uid = format!("00000002-7777-4222-8333-{:012x}", std::process::id());
    let id = format!("{:056x}0000000a", std::process::id());
    let (dir, _) = cg.child(&format!("kubepods/burstable/pod{uid}/{id}"));
    // 60 MiB of anon under a 64 MiB limit: near_limit.
    cg.write(
        &dir,
        if cg.is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
        &(64 * MIB).to_string(),
    );
    let _workload = Workload::start(&dir, &args(&[("--anon", "60M".into())]));
    let command = format!(
        "{} --no-cri --cgroup-root {} top --interval 500ms",
        memglass_bin().display(),
        cg.dir.display()
    );
    let tmux = Tmux::start("findings", &command);
    let screen = tmux.wait_for("the first sample", |screen| screen.contains("NAME "));
    if screen.contains("PODS and their containers") {
        tmux.keys(&["Tab"]);
    }
    tmux.literal("/");
    tmux.literal(&id);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the container alone", |screen| {
        screen.contains("CGROUPS (1)")
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("its findings", |screen| {
        screen.contains("FINDINGS (memglass diagnose)") && screen.contains("WARNING near_limit")
    });
    assert!(screen.contains("set memory.high"), "{screen}");
}
