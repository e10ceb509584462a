//! The agent's findings (issue 14) on real cgroups: a workload that leaks steadily toward
//! its limit and a real OOM kill, seen through /api/v1/findings, `memglass_finding` and
//! `memglass diagnose --history` on the agent's database.
use std::process::Command;

use crate::agent_support::*;
use memglass_testkit::{memglass_bin, oom_kill_in, Scratch, TestCgroup, Workload};

fn findings(agent: &Agent, cgroup: &str) -> serde_json::Value {
    let doc = agent
        .get(&format!("/api/v1/findings?cgroup={}", urlencode(cgroup)))
        .json();
    assert_eq!(doc["schema"], "memglass.diagnose/v1");
    doc
}

fn has(doc: &serde_json::Value, kind: &str, cgroup: &str) -> bool {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == kind && f["cgroup"] == cgroup)
}

#[test]
fn a_leak_and_a_kill_are_findings_in_the_api_the_metrics_and_the_history() {
    let cg = TestCgroup::new();
    let limit_file = if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let (dir, _, path, _) = pod_tree(&cg, 0x1ea4);
    cg.write(&dir, limit_file, &(256 * MIB).to_string());
    // 8 MiB more every second, up to 200 MiB: under its 256 MiB limit in about half a
    // minute at that rate.
    let _leak = Workload::start(&dir, &args(&[("--grow", "8M:200M".into())]));
    let db = Scratch::new();
    let db_file = db.dir.join("h.db");
    let agent = Agent::start(&db_file, &[]);
    agent.wait_for(|a| has(&findings(a, &cg.path), "leak", &path));
    let doc = findings(&agent, &cg.path);
    let leak = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "leak")
        .unwrap();
    let figure = |name: &str| {
        leak["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {leak:#}"))["value"]
            .as_f64()
            .unwrap()
    };
    // The slope is the workload's 8 MiB/s (the kernel charges it as it touches pages).
    let growth = figure("growth");
    assert!(
        (6.0 * MIB as f64..=10.0 * MIB as f64).contains(&growth),
        "growth {growth} B/s"
    );
    let eta = figure("time_to_limit");
    assert!((1.0..=40.0).contains(&eta), "time to limit {eta} s");
    assert_eq!(figure("limit") as u64, 256 * MIB);

    // The same finding as a series.
    let m = parse_metrics(&agent.get("/metrics").body);
    assert_eq!(
        value(&m, "memglass_finding", &path, &[("kind", "leak")]),
        Some(1.0),
        "memglass_finding for the leak"
    );

    // And from the agent's database, by the CLI.
    let output = Command::new(memglass_bin())
        .args([
            "--no-cri",
            "diagnose",
            "--json",
            "--cgroup",
            &cg.path,
            "--history",
        ])
        .arg(&db_file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(has(&cli, "leak", &path), "{cli:#}");

    // A real kill in a second container of the pod is a finding once stored.
    let (victim, _) = cg.child(&format!(
        "{}/{:064x}",
        dir.parent()
            .unwrap()
            .strip_prefix(&cg.dir)
            .unwrap()
            .display(),
        0x0dead
    ));
    cg.write(&victim, limit_file, &(32 * MIB).to_string());
    oom_kill_in(&victim);
    let victim_path = format!("{}/{:064x}", path.rsplit_once('/').unwrap().0, 0x0dead);
    agent.wait_for(|a| has(&findings(a, &cg.path), "oom_killed", &victim_path));
    let m = parse_metrics(&agent.get("/metrics").body);
    assert_eq!(
        value(
            &m,
            "memglass_finding",
            &victim_path,
            &[("kind", "oom_killed"), ("severity", "critical")]
        ),
        Some(1.0)
    );
    // Bad filters are 400s.
    assert_eq!(agent.get("/api/v1/findings?min_severity=loud").status, 400);
    assert_eq!(agent.get("/api/v1/findings?cgroup=relative").status, 400);
}
