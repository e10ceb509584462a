//! Tier 5: Debian's Prometheus server scrapes the real agent (with a bearer token) on
//! 127.0.0.1 and a `topk` query names the test's container. Both servers are ours, on
//! loopback, and are killed by their PIDs when the test ends.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod agent_support;

use agent_support::prometheus::Prometheus;
use agent_support::*;
use memglass_testkit::{Scratch, TestCgroup, Workload};

#[test]
fn prometheus_scrapes_the_agent_and_topk_names_the_container() {
    if !tool_present("/usr/bin/prometheus", "prometheus") {
        return;
    }
    let cg = TestCgroup::new();
    let (big_dir, pod_path, big, _) = pod_tree(&cg, 11);
    let pod_rel = pod_path
        .strip_prefix(&cg.path)
        .unwrap()
        .trim_start_matches('/');
    let (small_dir, _) = cg.child(&format!("{pod_rel}/{:064x}", 0x5a11_u64));
    let _big = Workload::start(&big_dir, &args(&[("--anon", "96M".into())]));
    let _small = Workload::start(&small_dir, &args(&[("--anon", "8M".into())]));

    let dir = Scratch::new();
    std::fs::write(dir.dir.join("token"), "prom-token\n").unwrap();
    let token_file = dir.dir.join("token").display().to_string();
    let agent = Agent::start_with_token(&dir.dir.join("h.db"), &token_file, "prom-token");

    let prometheus = Prometheus::start(&[agent.addr], Some(&token_file), &[]);
    let up = prometheus.wait_up(1).remove(0);
    assert_eq!(up["scrapeUrl"], format!("http://{}/metrics", agent.addr));

    // Only our two containers match the selector; the 96 MiB one is on top.
    let selector = format!(
        "{{cgroup=~\"{}/kubepods/burstable/pod[^/]+/[^/]+\"}}",
        cg.path
    );
    let query = format!("topk(1, memglass_cgroup_memory_working_set_kubelet_bytes{selector})");
    let result = prometheus.query_until_some(&query);
    assert_eq!(result.len(), 1, "{result:?}");
    let metric = &result[0]["metric"];
    assert_eq!(metric["cgroup"], big.as_str(), "{result:?}");
    assert_eq!(metric["job"], "memglass");
    // No runtime here: the agent exports pod="" and Prometheus stores an empty label as none.
    assert!(metric.get("pod").is_none(), "{metric}");
    let value: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert_close(value as u64, 96 * MIB, "working set in Prometheus");

    // Counters and the pod's aggregate are queryable too.
    let pod_query = format!("memglass_cgroup_memory_bytes{{type=\"anon\",cgroup=\"{pod_path}\"}}");
    let pod_anon: f64 = prometheus.query(&pod_query)[0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_close(pod_anon as u64, 104 * MIB, "pod anon (both containers)");
}
