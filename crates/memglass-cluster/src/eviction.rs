//! `memglass cluster eviction`: every node's margin to kubelet's eviction threshold (its
//! tighter signal: `memory.available` or `allocatableMemory.available`) and the pod kubelet
//! would evict next there, as each node's agent computes them (docs/metrics.md, Eviction).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::series::{NodeNames, Series};

/// The queries, in the order [`rows`] takes their answers.
pub fn queries() -> Vec<String> {
    vec![
        "memglass_eviction_signal_available_bytes".into(),
        "memglass_eviction_signal_threshold_bytes".into(),
        "memglass_pod_eviction_next == 1".into(),
        "memglass_node_info".into(),
    ]
}

/// One signal of one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalMargin {
    /// `memory.available` or `allocatableMemory.available`.
    pub signal: String,
    /// Bytes available (capacity − working set).
    pub available: u64,
    /// kubelet's hard threshold in bytes.
    pub threshold: u64,
    /// available − threshold: kubelet evicts when it is negative.
    pub margin: i64,
}

/// The pod kubelet would evict next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextPod {
    /// Namespace (`""` when no source named the pod).
    pub namespace: String,
    /// Pod (`""` when no source named it).
    pub pod: String,
    /// Its pod cgroup (`""` for a pod without one yet).
    pub cgroup: String,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeEviction {
    /// The node (see [`NodeNames`]).
    pub node: String,
    /// The signal with the smallest margin (null fields when the node exports none).
    pub signal: Option<String>,
    /// Its available bytes.
    pub available: Option<u64>,
    /// Its threshold.
    pub threshold: Option<u64>,
    /// Its margin (negative: kubelet is evicting).
    pub margin: Option<i64>,
    /// Who goes next (null: no evictable pod).
    pub next: Option<NextPod>,
    /// Every signal of the node.
    pub signals: Vec<SignalMargin>,
    /// The scrape target.
    pub instance: String,
}

/// The answers of [`queries`] → nodes, the smallest margin first (nodes without signals
/// last).
pub fn rows(
    available: &[Series],
    threshold: &[Series],
    next: &[Series],
    info: &[Series],
) -> Vec<NodeEviction> {
    let names = NodeNames::from_info(info);
    let thresholds: BTreeMap<(&str, &str), u64> = threshold
        .iter()
        .map(|s| ((s.label("instance"), s.label("signal")), s.bytes()))
        .collect();
    let mut nodes: BTreeMap<String, NodeEviction> = BTreeMap::new();
    let mut node = |s: &Series| -> String {
        let instance = s.label("instance").to_owned();
        nodes
            .entry(instance.clone())
            .or_insert_with(|| NodeEviction {
                node: names.of(s),
                signal: None,
                available: None,
                threshold: None,
                margin: None,
                next: None,
                signals: Vec::new(),
                instance: instance.clone(),
            });
        instance
    };
    let mut signals = Vec::new();
    for s in available {
        let Some(threshold) = thresholds
            .get(&(s.label("instance"), s.label("signal")))
            .copied()
        else {
            continue;
        };
        let available = s.bytes();
        let margin = i64::try_from(available)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(threshold).unwrap_or(i64::MAX));
        signals.push((
            node(s),
            SignalMargin {
                signal: s.label("signal").to_owned(),
                available,
                threshold,
                margin,
            },
        ));
    }
    let mut nexts = Vec::new();
    for s in next {
        nexts.push((
            node(s),
            NextPod {
                namespace: s.label("namespace").to_owned(),
                pod: s.label("pod").to_owned(),
                cgroup: s.label("cgroup").to_owned(),
            },
        ));
    }
    for (instance, signal) in signals {
        if let Some(n) = nodes.get_mut(&instance) {
            n.signals.push(signal);
        }
    }
    for (instance, pod) in nexts {
        if let Some(n) = nodes.get_mut(&instance) {
            // One per node; should two be exported (never by one agent), the first by name.
            if n.next.as_ref().is_none_or(|current| {
                (&pod.namespace, &pod.pod) < (&current.namespace, &current.pod)
            }) {
                n.next = Some(pod);
            }
        }
    }
    let mut rows: Vec<NodeEviction> = nodes
        .into_values()
        .map(|mut n| {
            n.signals
                .sort_by(|a, b| a.margin.cmp(&b.margin).then(a.signal.cmp(&b.signal)));
            if let Some(tightest) = n.signals.first() {
                n.signal = Some(tightest.signal.clone());
                n.available = Some(tightest.available);
                n.threshold = Some(tightest.threshold);
                n.margin = Some(tightest.margin);
            }
            n
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.margin.is_none(), a.margin, &a.node).cmp(&(b.margin.is_none(), b.margin, &b.node))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::series;

    #[test]
    fn tightest_signal_and_next_pod_per_node() {
        let sig = |instance: &str, signal: &str, v: f64| {
            series(&[("instance", instance), ("signal", signal)], v)
        };
        let mi = 1048576.0;
        let available = [
            sig("a:1", "memory.available", 900.0 * mi),
            sig("a:1", "allocatableMemory.available", 300.0 * mi),
            sig("b:1", "memory.available", 150.0 * mi),
        ];
        let threshold = [
            sig("a:1", "memory.available", 100.0 * mi),
            sig("a:1", "allocatableMemory.available", 100.0 * mi),
            sig("b:1", "memory.available", 100.0 * mi),
        ];
        let next = [series(
            &[
                ("instance", "a:1"),
                ("namespace", "shop"),
                ("pod", "cart"),
                ("cgroup", "/kubepods/podX"),
            ],
            1.0,
        )];
        let info = [
            series(&[("instance", "a:1"), ("node", "node-a")], 1.0),
            series(&[("instance", "b:1"), ("node", "node-b")], 1.0),
            series(&[("instance", "c:1"), ("node", "node-c")], 1.0),
        ];
        let rows = rows(&available, &threshold, &next, &info);
        assert_eq!(
            rows.len(),
            2,
            "a node is listed once it exports eviction figures"
        );
        assert_eq!(rows[0].node, "node-b");
        assert_eq!(rows[0].margin, Some(50 << 20));
        assert_eq!(rows[0].next, None);
        assert_eq!(rows[1].node, "node-a");
        assert_eq!(
            rows[1].signal.as_deref(),
            Some("allocatableMemory.available")
        );
        assert_eq!(rows[1].margin, Some(200 << 20));
        assert_eq!(rows[1].signals.len(), 2);
        assert_eq!(rows[1].next.as_ref().map(|n| n.pod.as_str()), Some("cart"));
    }
}
