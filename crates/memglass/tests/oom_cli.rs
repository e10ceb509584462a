//! `memglass oom --from-file` on the real reports of fixtures/oom: the JSON contract
//! (PRODUCT.md §4), scopes and explanations, the table, --since, stdin and usage errors.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn memglass(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memglass"))
        .arg("--no-cri")
        .args(args)
        .output()
        .unwrap()
}

fn events(name: &str, extra: &[&str]) -> Vec<Value> {
    let file = fixture(name);
    let mut args = vec!["oom", "--json", "--from-file", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = memglass(&args);
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

const CONTRACT: [&str; 18] = [
    "time",
    "pid",
    "comm",
    "constraint",
    "oom_memcg",
    "task_memcg",
    "scope",
    "pod_uid",
    "container_id",
    "namespace",
    "pod",
    "container",
    "anon_rss",
    "file_rss",
    "shmem_rss",
    "explanation",
    "dominant",
    "limit_hit",
];

#[test]
fn every_corpus_report_gives_contract_events() {
    let dir = fixture("oom");
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = format!("oom/{}", entry.unwrap().file_name().to_string_lossy());
        for event in events(&name, &[]) {
            for key in CONTRACT {
                assert!(event.get(key).is_some(), "{name}: no {key} in {event}");
            }
            let scope = event["scope"].as_str().unwrap();
            assert!(
                ["node", "kubepods", "qos", "pod", "container", "cgroup"].contains(&scope),
                "{name}: {scope}"
            );
            assert!(event["explanation"].as_str().unwrap().ends_with('.'));
            total += 1;
        }
    }
    assert!(total >= 20, "{total} events");
}

#[test]
fn scopes_attribution_and_what_dominated() {
    // (file, victim pid, scope, pod_uid, container_id prefix, dominant)
    let cases = [
        (
            "oom/el7-3.10.0-514-pod-kmem-messages.txt",
            12788,
            "pod",
            Some("6c4333b3-a663-11ea-b39f-6c92bf85beda"),
            Some("bbd5e4b5f9c1"),
            "kernel",
        ),
        (
            "oom/aks-5.15-azure-kubepods-oom-group-syslog.txt",
            7788,
            "kubepods",
            Some("a5d8fdd1-1369-469e-8a7d-2c1047529435"),
            Some("9192cb33411f"),
            "anon",
        ),
        (
            "oom/el8-4.18.0-147-container-shmem-dmesg.txt",
            7093,
            "container",
            Some("d63c4bbe-5f18-11ec-bdcd-d094668d7dd6"),
            Some("083afd1a06b8"),
            "shmem",
        ),
        (
            "oom/centos7-3.10.0-693-global-messages.txt",
            4402,
            "node",
            None,
            None,
            "anon",
        ),
        (
            "oom/lkml-5.2-memory-stat-dump.txt",
            210,
            "cgroup",
            None,
            None,
            "kernel",
        ),
        (
            "oom/sles-5.3.18-kubevirt-pod-dmesg-T.txt",
            70870,
            "pod",
            Some("ef91e487-dec5-4613-800b-eb23e1a1617d"),
            Some("100093783c22"),
            "anon",
        ),
        (
            "hosts/v2-debian-6.12.95+deb12-amd64/dev/kmsg.txt",
            199,
            "container",
            Some("8d3c7f0e-5b1a-4f29-9c6e-2a7b4d1e0f93"),
            Some("b7e2d4a9c1f6"),
            "anon",
        ),
    ];
    for (name, pid, scope, pod_uid, container, dominant) in cases {
        let event = events(name, &[]).into_iter().next().unwrap();
        assert_eq!(event["pid"], pid, "{name}");
        assert_eq!(event["scope"], scope, "{name}");
        assert_eq!(event["pod_uid"].as_str(), pod_uid, "{name}");
        assert_eq!(
            event["container_id"].as_str().map(|c| &c[..12]),
            container,
            "{name}"
        );
        assert_eq!(event["dominant"], dominant, "{name}");
        assert!(event["namespace"].is_null() && event["pod"].is_null());
    }
}

#[test]
fn json_details_in_bytes() {
    let aks = events("oom/aks-5.15-azure-kubepods-oom-group-syslog.txt", &[]);
    let e = &aks[0];
    assert_eq!(e["anon_rss"], 7165824u64 * 1024);
    assert_eq!(e["qos_class"], "BestEffort");
    assert_eq!(e["limit_hit"]["counter"], "memory");
    assert_eq!(e["limit_hit"]["limit"], 7464436u64 * 1024);
    assert_eq!(e["also_killed"].as_array().unwrap().len(), 4);
    assert_eq!(e["memcg_stats"][0]["stat"]["anon"], 7601418240u64);
    assert_eq!(e["counters"][1]["name"], "swap");
    assert!(
        e["counters"][1]["limit"].is_null(),
        "the kernel's huge 'no limit' is null"
    );
    assert_eq!(
        e["time"],
        "2026-05-19T18:14:43".replace("2026", &this_year())
    );
    assert_eq!(e["uptime_seconds"], 139.201482);
    // A kmsg recording: boot-relative time only, and the record's sequence number.
    let v1 = events("hosts/v1-hybrid-6.18/dev/kmsg.txt", &[]);
    assert!(v1[0]["time"].is_null());
    assert_eq!(v1[0]["seq"], 497);
    assert_eq!(v1[0]["trigger"]["gfp_mask"], "0xcc0(GFP_KERNEL)");
}

fn this_year() -> String {
    let output = Command::new("date").arg("+%Y").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn since_filters_by_wall_time() {
    let name = "oom/lkml-4.x-and-5.3-rc5-global-syslog.txt";
    assert_eq!(events(name, &[]).len(), 2);
    let year = this_year();
    let later = events(name, &["--since", &format!("{year}-08-01 00:00:00")]);
    let pids: Vec<&Value> = later.iter().map(|e| &e["pid"]).collect();
    assert_eq!(pids, [&Value::from(31357)], "Nov 14 is after Jul 22");
    assert!(events(name, &["--since", "1s"]).is_empty());
    // Logs without wall-clock times cannot be filtered: nothing passes, with a warning.
    let file = fixture("oom/cadvisor-3.13-ubuntu-memcg.txt");
    let output = memglass(&[
        "oom",
        "--json",
        "--since",
        "1h",
        "--from-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "[]");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no wall-clock time"));
}

#[test]
fn table_and_stdin() {
    let text = std::fs::read(fixture("oom/el8-4.18.0-147-container-shmem-dmesg.txt")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_memglass"))
        .args(["--no-cri", "oom", "--from-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.starts_with("OOM KILLS  (3 in -)"), "{table}");
    assert!(table.contains("The container's own limit was hit (memory+swap 34.0 GiB of 34.0 GiB): shmem/tmpfs dominated"), "{table}");
    assert!(table.contains("killed java (pid 281482"), "{table}");
}

#[test]
fn usage_errors_exit_2_and_missing_files_1() {
    let bad = memglass(&["oom", "--since", "yesterday-ish"]);
    assert_eq!(bad.status.code(), Some(2));
    let both = memglass(&["oom", "--follow", "--from-file", "x"]);
    assert_eq!(both.status.code(), Some(2));
    let missing = memglass(&["oom", "--from-file", "/nonexistent/memglass-log"]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("/nonexistent/memglass-log"), "{stderr}");
}

/// When the kernel rate-limited a report's header, only its kill line is in the log: the
/// event says so instead of guessing a cgroup.
#[test]
fn a_kill_line_alone_names_no_cgroup() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memglass"))
        .args(["--no-cri", "oom", "--json", "--from-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"[ 2993.794008] Memory cgroup out of memory: Killed process 22609 (node) total-vm:9923620kB, anon-rss:4116684kB, file-rss:23132kB, shmem-rss:0kB, UID:0 pgtables:10964kB oom_score_adj:969\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let events: Value = serde_json::from_slice(&output.stdout).unwrap();
    let event = &events[0];
    assert_eq!(event["scope"], "cgroup");
    assert_eq!(event["constraint"], "CONSTRAINT_MEMCG");
    assert!(event["oom_memcg"].is_null() && event["task_memcg"].is_null());
    assert_eq!(event["dominant"], "anon");
    assert!(event["explanation"]
        .as_str()
        .unwrap()
        .contains("the kernel rate-limits OOM report headers"));
}

/// A syslog line prints no year: it is dated in the latest year that does not put it after
/// the file's modification time (issue 15: a `Dec 16` line read on 7 December was nine days
/// in the future), and memglass says which year it assumed.
#[test]
fn year_less_logs_are_dated_before_the_files_modification_time() {
    let text = std::fs::read_to_string(fixture("oom/aks-5.15-azure-kubepods-oom-group-syslog.txt"))
        .unwrap()
        .replace("May 19 ", "Dec 16 ");
    let dir = std::env::temp_dir().join(format!("memglass-oom-year-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("syslog");
    std::fs::write(&file, text).unwrap();
    // Written on 7 December 2026, 12:00 UTC.
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_644_800);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let output = memglass(&["oom", "--json", "--from-file", file.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success());
    let events: Value = serde_json::from_slice(&output.stdout).unwrap();
    let time = events[0]["time"].as_str().unwrap();
    assert!(time.starts_with("2025-12-16T18:14:43"), "{time}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("print no year: read from 2025 on"),
        "{stderr}"
    );
}
