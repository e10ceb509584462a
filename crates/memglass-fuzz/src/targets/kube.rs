//! The Kubernetes API side: quantities, pod JSON, node JSON (`kubectl get -o json` files and
//! the API server's answers, which go through the same typed mapping).

use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Node;
use memglass_kube::{
    directory_from_pods, node_from_json, node_info, node_list_from_json, parse_memory,
    pod_list_from_json, pods_from_json, schedule, Origin, Quantity,
};
use serde_json::Value;

use super::text;
use crate::mutate::{Rng, NUMBERS};
use crate::seeds::Fixtures;
use crate::Target;

/// Quantity strings, and strings close to them.
const QUANTITIES: &[&str] = &[
    "128Mi",
    "1Gi",
    "1.5Gi",
    "0.5",
    "100m",
    "1e3",
    "1E3",
    "5e-3",
    "1Ei",
    "8Ei",
    "1E",
    "1P",
    "123456789012345678901234567890Ki",
    ".5",
    "5.",
    "+1Ki",
    "-1",
    "-0",
    "0.000000001",
    "1n",
    "1u",
    "1k",
    "1K",
    "Mi",
    "e",
    "E",
    "1e",
    "1e-",
    "1e99999999999",
    "1e-99999999999",
    "",
    "m",
    "9223372036854775807",
    "9223372036854775808Ki",
    "0.0000000000000000000000001Ei",
];

/// Kubernetes resource quantities.
pub static QUANTITY: Target = Target {
    name: "quantity",
    about: "resource quantities: Quantity::parse (+ units, millis, Display), parse_memory",
    seeds: |f| {
        let mut found: Vec<String> = QUANTITIES.iter().map(|q| q.to_string()).collect();
        for (_, json) in f.kube_json() {
            if let Ok(value) = serde_json::from_slice::<Value>(&json) {
                collect_quantities(&value, &mut found);
            }
        }
        found.sort();
        found.dedup();
        found.into_iter().map(String::into_bytes).collect()
    },
    tokens: &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "m", "u", "n", "e", "E",
        ".", "+", "-",
    ],
    mutate: None,
    run: |input| {
        let text = text(input);
        if let Ok(quantity) = Quantity::parse(&text) {
            let _ = (
                quantity.ceil_units(),
                quantity.ceil_millis(),
                quantity.ceil_units_saturating(),
            );
            let _ = quantity.saturating_add(quantity).to_string();
            let _ = quantity.to_string();
        }
        let _ = parse_memory(&text);
    },
};

/// Strings under `resources`, `capacity`, `allocatable` and `overhead`.
fn collect_quantities(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let resource_map = matches!(
                    key.as_str(),
                    "requests" | "limits" | "capacity" | "allocatable" | "overhead"
                );
                match inner {
                    Value::Object(values) if resource_map => found.extend(
                        values
                            .values()
                            .filter_map(|v| v.as_str().map(str::to_owned)),
                    ),
                    _ => collect_quantities(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_quantities(v, found)),
        _ => {}
    }
}

/// Pods: a `List`/`PodList` or one `Pod`.
pub static POD_JSON: Target = Target {
    name: "pod-json",
    about: "pod JSON: pods_from_json, pod_list_from_json, directory_from_pods, schedule::pending",
    seeds: |f| documents(f, |value| kind_of(value) == Some("Pod")),
    tokens: JSON_WORDS,
    mutate: Some(mutate_json),
    run: |input| {
        let text = text(input);
        let _ = pods_from_json(&text, Origin::File);
        if let Ok(pods) = pod_list_from_json(&text) {
            let _ = directory_from_pods(&pods, Origin::KubeApi);
            let _ = schedule::pending(&pods, nodes(), None);
        }
    },
};

/// Nodes: one `Node` or a list of them.
pub static NODE_JSON: Target = Target {
    name: "node-json",
    about: "node JSON: node_from_json, node_list_from_json, node_info",
    seeds: |f| documents(f, |value| kind_of(value) == Some("Node")),
    tokens: JSON_WORDS,
    mutate: Some(mutate_json),
    run: |input| {
        let text = text(input);
        let _ = node_from_json(&text);
        if let Ok(nodes) = node_list_from_json(&text) {
            for node in &nodes {
                let _ = node_info(node);
            }
        }
    },
};

const JSON_WORDS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "\"kind\":\"Pod\"",
    "\"kind\":\"List\"",
    "\"items\":[]",
    "\"memory\":\"1Ei\"",
    "\"cpu\":\"100m\"",
    "\"resources\":{\"requests\":{\"memory\":\"8Ei\"}}",
    "\"containerID\":\"containerd://",
    "\"restartPolicy\":\"Always\"",
    "\"qosClass\":\"Burstable\"",
    "\"phase\":\"Pending\"",
    "\"priority\":-2147483648",
    "\\u0000",
    "\\ud800",
    "1e999",
];

fn kind_of(value: &Value) -> Option<&str> {
    value.get("kind").and_then(Value::as_str)
}

/// The recorded documents that hold objects of one kind, whole, and each list item alone.
fn documents(fixtures: &Fixtures, wanted: impl Fn(&Value) -> bool) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (_, json) in fixtures.kube_json() {
        let Ok(value) = serde_json::from_slice::<Value>(&json) else {
            continue;
        };
        let items: Vec<&Value> = value
            .get("items")
            .and_then(Value::as_array)
            .map(|items| items.iter().collect())
            .unwrap_or_default();
        let items_wanted = items
            .iter()
            .filter(|i| wanted(i) || kind_of(i).is_none())
            .count();
        if wanted(&value)
            || (!items.is_empty() && items_wanted == items.len() && items.iter().any(|i| wanted(i)))
        {
            seeds.push(json.clone());
        }
        for item in items.into_iter().filter(|i| wanted(i)) {
            if let Ok(alone) = serde_json::to_vec(item) {
                seeds.push(alone);
            }
        }
    }
    seeds
}

/// The recorded nodes, for pending-pod fits.
fn nodes() -> &'static [Node] {
    static NODES: OnceLock<Vec<Node>> = OnceLock::new();
    NODES.get_or_init(|| {
        Fixtures::of_repository()
            .kube_json()
            .iter()
            .filter_map(|(_, json)| node_list_from_json(&String::from_utf8_lossy(json)).ok())
            .flatten()
            .collect()
    })
}

/// Structure-aware: the seed's JSON with a few values, keys or array items changed, so the
/// input stays JSON and reaches the typed mapping (requests, limits, owners, statuses).
fn mutate_json(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(seed) else {
        return seed.to_vec();
    };
    for _ in 0..=rng.below(4) {
        let count = count_nodes(&value);
        let target = rng.below(count);
        let mut index = 0;
        edit_nth(&mut value, target, &mut index, rng);
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Object(map) => map.values().map(count_nodes).sum(),
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Walk depth-first to node number `target` and change it.
fn edit_nth(value: &mut Value, target: usize, index: &mut usize, rng: &mut Rng) -> bool {
    if *index == target {
        edit(value, rng);
        return true;
    }
    *index += 1;
    match value {
        Value::Object(map) => map.values_mut().any(|v| edit_nth(v, target, index, rng)),
        Value::Array(items) => items.iter_mut().any(|v| edit_nth(v, target, index, rng)),
        _ => false,
    }
}

fn edit(value: &mut Value, rng: &mut Rng) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.one_in(3) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            if let Some(key) = rng.pick(&keys) {
                map.remove(key);
            }
        }
        Value::Array(items) if !items.is_empty() && rng.one_in(2) => {
            let i = rng.below(items.len());
            let copy = items[i].clone();
            let most = if rng.one_in(10) { 200 } else { 3 };
            let times = 1 + rng.below(most);
            for _ in 0..times {
                items.push(copy.clone());
            }
        }
        _ => *value = replacement(rng),
    }
}

fn replacement(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 | 1 => Value::String(rng.pick(QUANTITIES).copied().unwrap_or("1").to_owned()),
        2 => serde_json::from_str(rng.pick(NUMBERS).copied().unwrap_or("0")).unwrap_or(Value::Null),
        3 => Value::Null,
        4 => Value::Bool(rng.one_in(2)),
        5 => Value::Object(serde_json::Map::new()),
        6 => Value::Array(Vec::new()),
        7 => Value::String(
            [
                "",
                "containerd://",
                "docker://x",
                "cri-o://ABC",
                "Node/x",
                "Always",
                "Pending",
                "Guaranteed",
                "BestEffort",
                "é\u{0}",
            ][rng.below(10)]
            .to_owned(),
        ),
        _ => Value::String("x".repeat(rng.below(10_000))),
    }
}
