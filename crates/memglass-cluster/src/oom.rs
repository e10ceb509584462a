//! `memglass cluster oom`: OOM kills across nodes by victim (pod and container), with whose
//! limit was hit (`scope`) and what filled it (`cause`), from `memglass_oom_kills_total`.
//!
//! A victim's series is born at 1 with its first kill (docs/metrics.md), and stores differ
//! on such a series: Prometheus' `increase()` starts from its first sample (the first kill
//! is missed), VictoriaMetrics' assumes a slow counter with no earlier sample started at 0
//! (the first kill is counted). docs/metrics.md's `increase + first value of a series born
//! in the window` therefore counts it twice on VictoriaMetrics (seen: 2 for one kill). What
//! is right on both: a series that existed when the window began counts its
//! `increase(x[R])`; a series born inside the window counts all it has,
//! `max_over_time(x[R])` (it started at its first kill). Summed per victim and node and
//! rounded to whole kills here (`increase` extrapolates to the window's edges). A victim
//! killed, then its agent restarted, then killed again, all inside the window, counts the
//! larger of its two runs.

use std::time::Duration;

use serde::Serialize;

use crate::series::{escape, NodeNames, Series};

/// The metric.
pub const METRIC: &str = "memglass_oom_kills_total";

/// A window as PromQL writes it (whole seconds, at least 1 s).
pub fn range(window: Duration) -> String {
    format!("{}s", window.as_secs().max(1))
}

/// The queries: kills per victim over `window`, then `memglass_node_info`.
pub fn queries(window: Duration, namespace: Option<&str>) -> Vec<String> {
    let r = range(window);
    let x = match namespace {
        Some(ns) => format!("{METRIC}{{namespace=\"{}\"}}", escape(ns)),
        None => METRIC.to_owned(),
    };
    let existing = format!("(increase({x}[{r}]) and {x} offset {r})");
    let born = format!("(max_over_time({x}[{r}]) unless {x} offset {r})");
    vec![
        format!(
            "sum by (instance, node, namespace, pod, container, cgroup, scope, cause) \
             ({existing} or {born})"
        ),
        "memglass_node_info".into(),
    ]
}

/// Kills of one victim (a pod's container, or a pod, or a cgroup) on one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kills {
    /// The node (see [`NodeNames`]).
    pub node: String,
    /// Namespace (`""` when unknown).
    pub namespace: String,
    /// Pod (`""` when unknown).
    pub pod: String,
    /// Container (`""` when unknown or the pod cgroup itself).
    pub container: String,
    /// Whose limit was hit: `node`, `kubepods`, `qos`, `pod`, `container`, `cgroup`,
    /// `unknown`.
    pub scope: String,
    /// What dominated the memory under that limit: `anon`, `shmem`, `file`, `kernel`,
    /// `unknown`.
    pub cause: String,
    /// Kills in the window, whole.
    pub count: u64,
    /// The victim's cgroup.
    pub cgroup: String,
    /// The scrape target that counted them.
    pub instance: String,
}

/// The answers of [`queries`] → victims with at least one kill, most kills first.
pub fn rows(kills: &[Series], info: &[Series]) -> Vec<Kills> {
    let names = NodeNames::from_info(info);
    let mut rows: Vec<Kills> = kills
        .iter()
        .filter(|s| s.value.is_finite() && s.value >= 0.5)
        .map(|s| Kills {
            node: names.of(s),
            namespace: s.label("namespace").to_owned(),
            pod: s.label("pod").to_owned(),
            container: s.label("container").to_owned(),
            scope: s.label("scope").to_owned(),
            cause: s.label("cause").to_owned(),
            count: s.value.round() as u64,
            cgroup: s.label("cgroup").to_owned(),
            instance: s.label("instance").to_owned(),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.count.cmp(&a.count).then_with(|| {
            (&a.node, &a.namespace, &a.pod, &a.container).cmp(&(
                &b.node,
                &b.namespace,
                &b.pod,
                &b.container,
            ))
        })
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::series;

    #[test]
    fn series_born_inside_the_window_count_all_they_have() {
        let q = queries(Duration::from_secs(86400), None);
        assert_eq!(
            q[0],
            "sum by (instance, node, namespace, pod, container, cgroup, scope, cause) \
             ((increase(memglass_oom_kills_total[86400s]) and memglass_oom_kills_total offset 86400s) \
             or (max_over_time(memglass_oom_kills_total[86400s]) unless memglass_oom_kills_total offset 86400s))"
        );
        assert!(queries(Duration::from_secs(60), Some("shop"))[0]
            .contains(r#"memglass_oom_kills_total{namespace="shop"}[60s]"#));
    }

    #[test]
    fn counts_round_to_whole_kills() {
        let victim = |pod: &str, v: f64| {
            series(
                &[
                    ("instance", "i:1"),
                    ("namespace", "ns"),
                    ("pod", pod),
                    ("container", "app"),
                    ("scope", "container"),
                    ("cause", "anon"),
                ],
                v,
            )
        };
        // increase() extrapolates: 1.0833 is one kill; 0.2 (a fraction of an old one) none.
        let rows = rows(
            &[victim("a", 1.0833), victim("b", 2.9), victim("c", 0.2)],
            &[series(&[("instance", "i:1"), ("node", "n1")], 1.0)],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].pod.as_str(), rows[0].count), ("b", 3));
        assert_eq!((rows[1].pod.as_str(), rows[1].count), ("a", 1));
        assert_eq!(rows[1].node, "n1");
        assert_eq!(rows[1].scope, "container");
    }
}
