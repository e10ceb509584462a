//! `memglass cluster top`: the pods of every node ranked by one memory type.
//!
//! A pod's figures are its pod cgroup's (`pod!=""`, `container=""`), which on v1 and v2
//! alike include its containers (docs/metrics.md). The store ranks (`topk`); the other
//! figures of the same pods come from the same cgroups (`and on(instance, cgroup)`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::series::{escape, NodeNames, Series};

/// The memory types `memglass_cgroup_memory_bytes{type}` carries.
pub const STAT_TYPES: [&str; 14] = [
    "anon",
    "active_anon",
    "inactive_anon",
    "file",
    "active_file",
    "inactive_file",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "kernel",
    "swap",
    "unevictable",
    "peak",
];

/// What to rank pods by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    /// inactive_anon + active_anon + active_file (`memglass_cgroup_memory_working_set_bytes`).
    WorkingSet,
    /// usage − inactive_file (`memglass_cgroup_memory_working_set_kubelet_bytes`).
    WorkingSetKubelet,
    /// `memglass_cgroup_memory_usage_bytes`.
    Usage,
    /// The hard limit (`memglass_cgroup_memory_limit_bytes`; unlimited pods have none).
    Limit,
    /// One of [`STAT_TYPES`] (`memglass_cgroup_memory_bytes{type=…}`).
    Stat(&'static str),
}

impl FromStr for By {
    type Err = String;

    fn from_str(text: &str) -> Result<By, String> {
        Ok(match text {
            "working_set" => By::WorkingSet,
            "working_set_kubelet" => By::WorkingSetKubelet,
            "usage" => By::Usage,
            "limit" => By::Limit,
            text => match STAT_TYPES.iter().find(|t| **t == text) {
                Some(t) => By::Stat(t),
                None => {
                    return Err(format!(
                        "unknown memory type {text:?}: expected working_set, working_set_kubelet, usage, limit, {}",
                        STAT_TYPES.join(", ")
                    ))
                }
            },
        })
    }
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            By::WorkingSet => "working_set",
            By::WorkingSetKubelet => "working_set_kubelet",
            By::Usage => "usage",
            By::Limit => "limit",
            By::Stat(t) => t,
        })
    }
}

impl By {
    /// The selector of this figure for pod cgroups (in namespace `namespace` when given).
    pub fn selector(&self, namespace: Option<&str>) -> String {
        let mut matchers = Vec::new();
        let metric = match self {
            By::WorkingSet => "memglass_cgroup_memory_working_set_bytes",
            By::WorkingSetKubelet => "memglass_cgroup_memory_working_set_kubelet_bytes",
            By::Usage => "memglass_cgroup_memory_usage_bytes",
            By::Limit => "memglass_cgroup_memory_limit_bytes",
            By::Stat(t) => {
                matchers.push(format!("type=\"{t}\""));
                "memglass_cgroup_memory_bytes"
            }
        };
        matchers.push("pod!=\"\"".into());
        matchers.push("container=\"\"".into());
        if let Some(ns) = namespace {
            matchers.push(format!("namespace=\"{}\"", escape(ns)));
        }
        format!("{metric}{{{}}}", matchers.join(","))
    }
}

/// The queries of one `cluster top`, in the order [`rows`] takes their answers:
/// the ranking, then working set, kubelet's working set, usage and limit of the same pods,
/// then `memglass_node_info`.
pub fn queries(by: &By, namespace: Option<&str>, limit: usize) -> Vec<String> {
    let ranked = format!("topk({limit}, {})", by.selector(namespace));
    let mut queries = vec![ranked.clone()];
    for figure in [By::WorkingSet, By::WorkingSetKubelet, By::Usage, By::Limit] {
        queries.push(format!(
            "{} and on(instance, cgroup) {ranked}",
            figure.selector(namespace)
        ));
    }
    queries.push("memglass_node_info".into());
    queries
}

/// One pod in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopPod {
    /// The node (see [`NodeNames`]).
    pub node: String,
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// The figure ranked by, in bytes.
    pub value: u64,
    /// The pod cgroup (the agent's `cgroup` label).
    pub cgroup: String,
    /// The scrape target that exported it.
    pub instance: String,
    /// inactive_anon + active_anon + active_file.
    pub working_set: Option<u64>,
    /// usage − inactive_file (kubelet's).
    pub working_set_kubelet: Option<u64>,
    /// usage.
    pub usage: Option<u64>,
    /// The pod cgroup's limit (null: unlimited).
    pub limit: Option<u64>,
}

/// The answers of [`queries`] → pods, largest first (ties by node, namespace, pod).
pub fn rows(
    ranked: &[Series],
    working_set: &[Series],
    working_set_kubelet: &[Series],
    usage: &[Series],
    limit: &[Series],
    info: &[Series],
) -> Vec<TopPod> {
    let names = NodeNames::from_info(info);
    let index = |answer: &[Series]| -> BTreeMap<(String, String), u64> {
        answer
            .iter()
            .map(|s| {
                (
                    (s.label("instance").to_owned(), s.label("cgroup").to_owned()),
                    s.bytes(),
                )
            })
            .collect()
    };
    let (ws, wsk, us, lim) = (
        index(working_set),
        index(working_set_kubelet),
        index(usage),
        index(limit),
    );
    let mut pods: Vec<TopPod> = ranked
        .iter()
        .map(|s| {
            let key = (s.label("instance").to_owned(), s.label("cgroup").to_owned());
            TopPod {
                node: names.of(s),
                namespace: s.label("namespace").to_owned(),
                pod: s.label("pod").to_owned(),
                value: s.bytes(),
                cgroup: key.1.clone(),
                instance: key.0.clone(),
                working_set: ws.get(&key).copied(),
                working_set_kubelet: wsk.get(&key).copied(),
                usage: us.get(&key).copied(),
                limit: lim.get(&key).copied(),
            }
        })
        .collect();
    pods.sort_by(|a, b| {
        b.value
            .cmp(&a.value)
            .then_with(|| (&a.node, &a.namespace, &a.pod).cmp(&(&b.node, &b.namespace, &b.pod)))
    });
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::series;

    #[test]
    fn every_type_maps_to_its_metric() {
        assert_eq!(
            "inactive_anon".parse::<By>().map(|b| b.selector(None)),
            Ok(r#"memglass_cgroup_memory_bytes{type="inactive_anon",pod!="",container=""}"#.into())
        );
        assert_eq!(
            "working_set_kubelet".parse::<By>().map(|b| b.selector(Some("a\"b"))),
            Ok(r#"memglass_cgroup_memory_working_set_kubelet_bytes{pod!="",container="",namespace="a\"b"}"#.into())
        );
        for t in STAT_TYPES {
            assert_eq!(t.parse::<By>().map(|b| b.to_string()), Ok(t.to_owned()));
        }
        assert!("rss".parse::<By>().is_err());
    }

    #[test]
    fn rows_join_the_figures_and_the_node() {
        let pod = |instance: &str, cgroup: &str, name: &str, v: f64| {
            series(
                &[
                    ("instance", instance),
                    ("cgroup", cgroup),
                    ("namespace", "shop"),
                    ("pod", name),
                ],
                v,
            )
        };
        let ranked = [
            pod("10.0.0.1:9850", "/kubepods/podA", "a", 10.0),
            pod("10.0.0.2:9850", "/kubepods/podB", "b", 30.0),
        ];
        let info = [series(
            &[("instance", "10.0.0.2:9850"), ("node", "w2")],
            1.0,
        )];
        let rows = rows(
            &ranked,
            &[pod("10.0.0.2:9850", "/kubepods/podB", "b", 40.0)],
            &[],
            &[],
            &[pod("10.0.0.1:9850", "/kubepods/podA", "a", 64.0)],
            &info,
        );
        assert_eq!(rows[0].pod, "b");
        assert_eq!(rows[0].node, "w2");
        assert_eq!(rows[0].working_set, Some(40));
        assert_eq!(rows[0].limit, None);
        assert_eq!(rows[1].node, "10.0.0.1:9850");
        assert_eq!(rows[1].limit, Some(64));
    }
}
