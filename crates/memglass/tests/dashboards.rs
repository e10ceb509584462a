//! The Grafana dashboards (deploy/grafana/*.json) hold what deploy/grafana/generate.py
//! writes, and every query of every panel, its variables filled in, answers on a real
//! Prometheus scraping a real agent: the named kubepods tree of tests/cluster_support, a
//! file in one pod's page cache and a real OOM kill in one of its containers. Each panel
//! must get series carrying the labels its legend names, and the values memglass's own
//! JSON reports. The same Prometheus evaluates deploy/prometheus/rules.yaml: the OOM and
//! near-limit alerts go off on the real workloads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: fail loudly

mod agent_support;
mod cluster_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use agent_support::prometheus::Prometheus;
use agent_support::*;
use cluster_support::*;
use memglass_testkit::{Scratch, Workload};
use serde_json::Value;

const NODE_NAME: &str = "dash-node";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dashboards() -> Vec<(String, Value)> {
    ["memglass-pods.json", "memglass-nodes.json"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(repo().join("deploy/grafana").join(name)).unwrap();
            (name.to_string(), serde_json::from_str(&text).unwrap())
        })
        .collect()
}

#[test]
fn the_dashboards_are_what_the_generator_writes() {
    let status = Command::new("python3")
        .arg(repo().join("deploy/grafana/generate.py"))
        .arg("--check")
        .status()
        .unwrap();
    assert!(status.success(), "run deploy/grafana/generate.py");
    for (name, dashboard) in dashboards() {
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(variables[0], "datasource", "{name}");
        assert!(variables.contains(&"node"), "{name}: {variables:?}");
        for panel in dashboard["panels"].as_array().unwrap() {
            if panel["type"] != "row" {
                assert_eq!(panel["datasource"]["uid"], "${datasource}", "{name}");
            }
        }
    }
    let pods = &dashboards()[0].1;
    let names: Vec<&str> = pods["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["datasource", "node", "namespace", "pod", "type"]);
}

/// The query with the dashboard's variables set as a person would set them.
fn fill(expr: &str, pod: &str) -> String {
    expr.replace("$namespace", "evict")
        .replace("$pod", pod)
        .replace("$node", NODE_NAME)
        .replace("$type", "inactive_anon")
        .replace("$__range", "1h")
        .replace("$__rate_interval", "5m")
}

/// The labels a legend format names (`{{node}} {{signal}}` → node, signal).
fn legend_labels(legend: &str) -> Vec<&str> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|rest| rest.split("}}").next())
        .map(str::trim)
        .collect()
}

fn number(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn every_panel_query_answers_on_a_real_prometheus() {
    let cluster = Cluster::new();
    let cg = &cluster.cg;
    let limit = if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    // roomy: a pod limit, a file in its page cache, and a second container that the
    // kernel OOM-kills at its own 32 MiB limit.
    let roomy = cluster.dir("roomy").to_path_buf();
    cg.write(&roomy, limit, &(256 * MIB).to_string());
    // Its container `app` (named by --pods) gets a limit of its own, as kubelet sets one.
    let app = std::fs::read_dir(&roomy)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    cg.write(&app, limit, &(200 * MIB).to_string());
    let roomy_rel = roomy.strip_prefix(&cg.dir).unwrap().display().to_string();
    let (reader, _) = cg.child(&format!("{roomy_rel}/{:064x}", 0xf11e_u64));
    let (victim, victim_path) = cg.child(&format!("{roomy_rel}/{:064x}", 0x00d_u64));
    cg.write(&victim, limit, &(32 * MIB).to_string());
    let scratch = Scratch::new();
    let file = scratch.file("dashboard.bin");
    let _reader = Workload::start(&reader, &args(&[("--map-file", format!("{file}:24M"))]));

    let db = Scratch::new();
    let cgroup_root = cg.dir.display().to_string();
    let (pods, node) = (
        cluster.pods_file.display().to_string(),
        cluster.node_file.display().to_string(),
    );
    let agent = Agent::start(
        &db.dir.join("h.db"),
        &[
            "--cgroup-root",
            &cgroup_root,
            "--pods",
            &pods,
            "--node",
            &node,
            "--node-name",
            NODE_NAME,
            "--file-cache-every",
            "1",
        ],
    );
    // tight: its container at 40 MiB of a 44 MiB cgroup limit, above the 90% of the
    // near-limit alert.
    let tight = cluster.dir("tight").to_path_buf();
    let tight_app = std::fs::read_dir(&tight)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    cg.write(&tight_app, limit, &(44 * MIB).to_string());
    let rules = repo().join("deploy/prometheus/rules.yaml");
    let prometheus = Prometheus::start(&[agent.addr], None, &[rules.to_str().unwrap()]);
    prometheus.wait_up(1);
    memglass_testkit::oom_kill_in(&victim);
    // Scraped a few times since the kill (range functions need two samples).
    let relative = victim_path.strip_prefix(&cg.path).unwrap();
    prometheus.query_until_some(&format!(
        "count_over_time(memglass_oom_kills_total{{cgroup=\"{relative}\"}}[1m]) >= 3"
    ));

    let mut checked = 0;
    for (name, dashboard) in dashboards() {
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = fill(target["expr"].as_str().unwrap(), "roomy");
                let title = panel["title"].as_str().unwrap();
                let result = prometheus.query(&expr);
                assert!(
                    !result.is_empty(),
                    "{name} / {title}: no series for\n{expr}"
                );
                for label in legend_labels(target["legendFormat"].as_str().unwrap_or("")) {
                    assert!(
                        result.iter().all(|s| s["metric"].get(label).is_some()),
                        "{name} / {title}: a series without `{label}`: {result:?}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 25, "only {checked} queries");

    // Values are memglass's own: the top pod by inactive_anon is the agent's, the OOM
    // panel counts the one kill with its scope, the file-cache panel names the file.
    let pods_dashboard = &dashboards()[0].1;
    let expr_of = |title: &str| {
        let panel = pods_dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"].as_str().unwrap().starts_with(title))
            .unwrap_or_else(|| panic!("no panel {title}"));
        fill(panel["targets"][0]["expr"].as_str().unwrap(), "roomy")
    };
    let snapshot = agent.get("/api/v1/snapshot").json();
    let top_by_agent = snapshot["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "pod" && !c["pod"].is_null())
        .max_by_key(|c| c["memory"]["inactive_anon"].as_u64().unwrap_or(0))
        .unwrap()["pod"]
        .clone();
    let top = prometheus.query(&expr_of("Top pods by"));
    let first = top
        .iter()
        .max_by(|a, b| number(a).total_cmp(&number(b)))
        .unwrap();
    assert_eq!(first["metric"]["pod"], top_by_agent, "{top:?}");
    assert_eq!(first["metric"]["node"], NODE_NAME, "{top:?}");
    assert_eq!(first["metric"]["type"], "inactive_anon");

    let kills = prometheus.query(&expr_of("OOM kills of"));
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert_eq!(kills[0]["metric"]["scope"], "container", "{kills:?}");
    assert_eq!(number(&kills[0]).round(), 1.0, "{kills:?}");

    let files = prometheus.query(&expr_of("Files in the page cache"));
    let ours = files
        .iter()
        .find(|s| s["metric"]["file"] == file.as_str())
        .unwrap_or_else(|| panic!("{file} not in {files:?}"));
    assert_close(number(ours) as u64, 24 * MIB, "file cache in Prometheus");

    // The alerts fire on the real workloads: the OOM kill at once, the near-limit one
    // pending (its `for: 5m` is promtool's to test).
    let oom = prometheus.query_until_some(
        "ALERTS{alertname=\"MemglassOOMKill\", alertstate=\"firing\", pod=\"roomy\"}",
    );
    assert_eq!(oom[0]["metric"]["scope"], "container", "{oom:?}");
    assert_eq!(
        oom[0]["metric"]["node"],
        Value::Null,
        "no node target label here"
    );
    let near = prometheus.query_until_some("ALERTS{alertname=\"MemglassContainerNearLimit\"}");
    assert!(
        near.iter().all(|a| a["metric"]["pod"] == "tight"),
        "only tight is near its limit: {near:?}"
    );

    let pie = prometheus.query(&expr_of("Memory of"));
    let roomy_report = snapshot["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "pod" && c["pod"] == "roomy")
        .unwrap();
    let anon: f64 = pie
        .iter()
        .filter(|s| {
            s["metric"]["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("_anon"))
        })
        .map(number)
        .sum();
    assert_close(
        anon as u64,
        roomy_report["memory"]["anon"].as_u64().unwrap(),
        "the pie's anon against the agent's snapshot",
    );
}
