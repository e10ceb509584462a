//! `kubectl get pods -o json` and `kubectl get node NAME -o json` text → typed objects → the
//! same mapping as the live API.

use k8s_openapi::api::core::v1::{Node, Pod};
use memglass_identify::{Directory, NodeInfo, Origin};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::map::{build_directory, node_info, pod_label};

/// Reads `kubectl get pods -o json` output: a `List` or `PodList` with `items`, or a single
/// `Pod` (`kubectl get pod NAME -o json`). Every pod and every container that has a runtime id
/// goes into the directory, whatever node it is on; `origin` records where the text came from.
pub fn pods_from_json(text: &str, origin: Origin) -> Result<Directory> {
    let value: Value = serde_json::from_str(text).map_err(Error::Json)?;
    let pods: Vec<(String, Pod)> = match items(&value) {
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let object = format!("item {index}");
                expect_kind(item, "Pod", &object)?;
                let pod: Pod = typed(item, "Pod", &object)?;
                Ok((format!("item {index} ({})", pod_label(&pod)), pod))
            })
            .collect::<Result<_>>()?,
        None => {
            expect_kind(&value, "Pod", "document")?;
            let pod: Pod = typed(&value, "Pod", "document")?;
            vec![(format!("pod {}", pod_label(&pod)), pod)]
        }
    };
    build_directory(
        pods.iter().map(|(object, pod)| (object.clone(), pod)),
        origin,
    )
}

/// Reads `kubectl get node NAME -o json` output: one `Node`, or a list holding exactly one
/// (`kubectl get nodes -o json` on a one-node cluster).
pub fn node_from_json(text: &str) -> Result<NodeInfo> {
    let value: Value = serde_json::from_str(text).map_err(Error::Json)?;
    let node = match items(&value) {
        Some([one]) => one,
        Some(items) => {
            return Err(Error::WrongKind {
                object: "document".into(),
                expected: "one Node (kubectl get node NAME -o json)",
                found: format!("a list of {} items", items.len()),
            })
        }
        None => &value,
    };
    expect_kind(node, "Node", "document")?;
    let node: Node = typed(node, "Node", "document")?;
    node_info(&node)
}

/// Reads `kubectl get pods -A -o json` output (a list, or a single `Pod`) into typed pods,
/// whatever node they are on.
pub fn pod_list_from_json(text: &str) -> Result<Vec<Pod>> {
    list_from_json(text, "Pod")
}

/// Reads `kubectl get nodes -o json` output (a list, or a single `Node`) into typed nodes.
pub fn node_list_from_json(text: &str) -> Result<Vec<Node>> {
    list_from_json(text, "Node")
}

fn list_from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    kind: &'static str,
) -> Result<Vec<T>> {
    let value: Value = serde_json::from_str(text).map_err(Error::Json)?;
    match items(&value) {
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let object = format!("item {index}");
                expect_kind(item, kind, &object)?;
                typed(item, kind, &object)
            })
            .collect(),
        None => {
            expect_kind(&value, kind, "document")?;
            Ok(vec![typed(&value, kind, "document")?])
        }
    }
}

/// The `items` of a list document, `None` for a single object.
fn items(value: &Value) -> Option<&[Value]> {
    value
        .as_object()
        .and_then(|o| o.get("items"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
}

/// A JSON object whose `kind`, when present, is `kind` (list items from the API omit it).
fn expect_kind(value: &Value, kind: &'static str, object: &str) -> Result<()> {
    let found = match value {
        Value::Object(map) => match map.get("kind") {
            None => return Ok(()),
            Some(Value::String(k)) if k == kind => return Ok(()),
            Some(Value::String(k)) => format!("kind {k}"),
            Some(other) => format!("kind {other}"),
        },
        Value::Array(_) => "a JSON array".into(),
        other => format!("the JSON value {other}"),
    };
    Err(Error::WrongKind {
        object: object.to_string(),
        expected: kind,
        found,
    })
}

fn typed<T: serde::de::DeserializeOwned>(
    value: &Value,
    kind: &'static str,
    object: &str,
) -> Result<T> {
    T::deserialize(value).map_err(|source| Error::Schema {
        object: object.to_string(),
        kind,
        source,
    })
}
