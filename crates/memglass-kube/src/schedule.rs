//! Why a Pending pod does not fit a node, by the scheduler's own arithmetic
//! (`memglass cluster pending`). Pure: typed pods and nodes in, verdicts out.
//!
//! The rules, from kubernetes/kubernetes (1.28–1.34):
//! - **NodeResourcesFit** (`pkg/scheduler/framework/plugins/noderesources/fit.go`,
//!   `fitsRequest`): a pod does not fit when `len(pods on the node) + 1 > allocatable pods`
//!   ("Too many pods"), or, for cpu and memory each, when the pod requests more than 0 and
//!   more than `allocatable − requested` ("Insufficient memory", "Insufficient cpu").
//!   The pod's request is `k8s.io/component-helpers/resource.PodRequests` (resources.rs:
//!   max(Σ app + sidecars, each init + the sidecars before it), pod-level resources, plus
//!   overhead), rounded up once per pod (`Quantity.Value()`, cpu `MilliValue()`).
//!   `requested` is the same figure summed over the pods bound to the node
//!   (`spec.nodeName`) that have not terminated (phase neither `Succeeded` nor `Failed`);
//!   a Pending pod already bound to the node is not counted against itself.
//! - **NodeUnschedulable**: `spec.unschedulable` nodes refuse pods that do not tolerate the
//!   `node.kubernetes.io/unschedulable:NoSchedule` taint.
//! - **TaintToleration**: every `NoSchedule`/`NoExecute` taint must be tolerated
//!   (`v1.Toleration.ToleratesTaint`: the effect matches or is empty; the key matches or is
//!   empty; `Exists` matches any value, `Equal` (the default) the same value).
//! - **NodeAffinity**: `spec.nodeSelector` (every label equal) and the required node
//!   affinity terms (any term whose expressions all hold: `In`, `NotIn`, `Exists`,
//!   `DoesNotExist`, `Gt`, `Lt` on labels, `metadata.name` fields).
//!
//! Not checked (memglass cannot see them, or they are not about room): pod (anti-)affinity,
//! topology spread, volumes, ports, extended resources, ephemeral storage, preemption.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::map::pod_label;
use crate::quantity::{parse_memory, Quantity};
use crate::resources::PodResources;

/// What Prometheus tells about a running pod (by namespace and name), to see how much of
/// its request it does not use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PodUsage {
    /// kubelet's working set of the pod now (usage − inactive_file).
    pub working_set: Option<u64>,
    /// The agent's suggested request (peak working set × 1.15), when it has one.
    pub suggested_request: Option<u64>,
}

/// A Pending pod and every node's verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub pod: String,
    /// Its memory request as the scheduler counts it, in bytes (0: none).
    pub request: u64,
    /// Its cpu request in millicores (0: none).
    pub cpu_request_millis: u64,
    /// The node it is already bound to (`spec.nodeName`; then it waits for kubelet), or null.
    pub bound_to: Option<String>,
    /// Every node, the ones it fits first, then by free memory, largest first.
    pub nodes: Vec<NodeFit>,
}

/// One node, as the scheduler sees it for one pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeFit {
    /// Node name.
    pub node: String,
    /// `status.allocatable.memory` (null: not reported).
    pub allocatable: Option<u64>,
    /// Σ memory requests of the node's non-terminated pods.
    pub requested: u64,
    /// allocatable − requested (negative when overcommitted; null without allocatable).
    pub free: Option<i64>,
    /// No reason below: the scheduler's filters memglass can see pass.
    pub fits: bool,
    /// Each blocker, in the scheduler's words where it has them.
    pub reasons: Vec<String>,
    /// With usage: Σ over the node's pods of (request − working set) where positive: requested
    /// memory nobody uses (null without usage).
    pub unused_requests: Option<u64>,
    /// With usage, when memory is the blocker: over-requested pods on the node whose
    /// requests, shrunk to their suggestion, would make room (largest saving first, just
    /// enough of them).
    pub shrink: Vec<Shrink>,
}

/// An over-requested pod whose request could shrink.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shrink {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub pod: String,
    /// Its memory request now.
    pub request: u64,
    /// Its working set now.
    pub working_set: Option<u64>,
    /// What to request instead: the agent's suggestion, or the working set without one.
    pub suggested_request: u64,
    /// request − suggested_request.
    pub frees: u64,
}

/// A pod's scheduler figures.
struct Requests {
    memory: u64,
    cpu_millis: u64,
}

fn requests(pod: &Pod) -> Result<Requests> {
    let object = format!("pod {}", pod_label(pod));
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(Requests {
            memory: 0,
            cpu_millis: 0,
        });
    };
    let resources = PodResources::read(spec).map_err(|e| Error::Quantity {
        object,
        field: e.field,
        source: e.source,
    })?;
    // Saturating, as `bytes` in map.rs: a huge quantity is far above any allocatable anyway.
    Ok(Requests {
        memory: resources
            .memory_request()
            .unwrap_or(Quantity::ZERO)
            .ceil_units_saturating(),
        cpu_millis: resources.cpu_request().ceil_millis().unwrap_or(u64::MAX),
    })
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn names(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

fn bound_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// A node's allocatable figures.
struct Allocatable {
    memory: Option<u64>,
    cpu_millis: Option<u64>,
    pods: Option<u64>,
}

fn allocatable(node: &Node, name: &str) -> Result<Allocatable> {
    let map = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let get = |key: &str| map.and_then(|m| m.get(key)).map(|q| q.0.as_str());
    let quantity_error = |field: &str, source| Error::Quantity {
        object: format!("node {name}"),
        field: field.into(),
        source,
    };
    let memory = get("memory")
        .map(|q| parse_memory(q).map_err(|e| quantity_error("status.allocatable.memory", e)))
        .transpose()?;
    let cpu_millis = get("cpu")
        .map(|q| {
            Quantity::parse(q)
                .map(|q| q.ceil_millis().unwrap_or(u64::MAX))
                .map_err(|e| quantity_error("status.allocatable.cpu", e))
        })
        .transpose()?;
    let pods = get("pods")
        .map(|q| {
            Quantity::parse(q)
                .map(|q| q.ceil_units().unwrap_or(u64::MAX))
                .map_err(|e| quantity_error("status.allocatable.pods", e))
        })
        .transpose()?;
    Ok(Allocatable {
        memory,
        cpu_millis,
        pods,
    })
}

/// One running (non-terminated, bound) pod on a node.
struct Resident {
    namespace: String,
    pod: String,
    memory: u64,
    cpu_millis: u64,
}

/// Every Pending pod of `pods` against every node of `nodes`; with `usage` (by namespace and
/// pod name), how much of each node's requests is unused and which pods to shrink.
pub fn pending(
    pods: &[Pod],
    nodes: &[Node],
    usage: Option<&BTreeMap<(String, String), PodUsage>>,
) -> Result<Vec<PendingPod>> {
    let mut residents: BTreeMap<&str, Vec<Resident>> = BTreeMap::new();
    for pod in pods {
        let Some(node) = bound_node(pod) else {
            continue;
        };
        if matches!(phase(pod), "Succeeded" | "Failed") {
            continue;
        }
        let r = requests(pod)?;
        let (namespace, name) = names(pod);
        residents.entry(node).or_default().push(Resident {
            namespace,
            pod: name,
            memory: r.memory,
            cpu_millis: r.cpu_millis,
        });
    }
    let mut out = Vec::new();
    for pod in pods.iter().filter(|p| phase(p) == "Pending") {
        let r = requests(pod)?;
        let (namespace, name) = names(pod);
        let bound_to = bound_node(pod).map(str::to_owned);
        let mut fits = Vec::new();
        for node in nodes {
            let node_name = node.metadata.name.clone().unwrap_or_default();
            let alloc = allocatable(node, &node_name)?;
            let on_node: Vec<&Resident> = residents
                .get(node_name.as_str())
                .into_iter()
                .flatten()
                .filter(|p| {
                    !(bound_to.as_deref() == Some(node_name.as_str())
                        && p.namespace == namespace
                        && p.pod == name)
                })
                .collect();
            let requested: u64 = on_node.iter().map(|p| p.memory).sum();
            let requested_cpu: u64 = on_node.iter().map(|p| p.cpu_millis).sum();
            let free = alloc
                .memory
                .map(|a| signed(a).saturating_sub(signed(requested)));
            let mut reasons = Vec::new();
            let spec = pod.spec.as_ref();
            let tolerations: &[Toleration] = spec
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default();
            let node_spec = node.spec.as_ref();
            if node_spec.and_then(|s| s.unschedulable) == Some(true) {
                let cordon = Taint {
                    key: "node.kubernetes.io/unschedulable".into(),
                    effect: "NoSchedule".into(),
                    ..Taint::default()
                };
                if !tolerations.iter().any(|t| tolerates(t, &cordon)) {
                    reasons.push("node is unschedulable (cordoned)".into());
                }
            }
            for taint in node_spec
                .and_then(|s| s.taints.as_deref())
                .unwrap_or_default()
            {
                if matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                    && !tolerations.iter().any(|t| tolerates(t, taint))
                {
                    reasons.push(format!(
                        "untolerated taint {}{}:{}",
                        taint.key,
                        taint
                            .value
                            .as_deref()
                            .filter(|v| !v.is_empty())
                            .map(|v| format!("={v}"))
                            .unwrap_or_default(),
                        taint.effect
                    ));
                }
            }
            let labels = node.metadata.labels.clone().unwrap_or_default();
            if let Some(selector) = spec.and_then(|s| s.node_selector.as_ref()) {
                for (key, value) in selector {
                    if labels.get(key) != Some(value) {
                        reasons.push(format!("nodeSelector {key}={value} does not match"));
                    }
                }
            }
            let terms = spec
                .and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|r| r.node_selector_terms.as_slice());
            if let Some(terms) = terms {
                if !terms.iter().any(|t| term_matches(t, &labels, &node_name)) {
                    reasons.push("required node affinity does not match".into());
                }
            }
            if let Some(max) = alloc.pods {
                if on_node.len() as u64 + 1 > max {
                    reasons.push(format!("Too many pods ({} of {max})", on_node.len()));
                }
            }
            if r.cpu_millis > 0 {
                if let Some(cpu) = alloc.cpu_millis {
                    if r.cpu_millis > cpu.saturating_sub(requested_cpu) {
                        reasons.push(format!(
                            "Insufficient cpu (requests {}m, {}m of {cpu}m requested)",
                            r.cpu_millis, requested_cpu
                        ));
                    }
                }
            }
            let memory_short = match (r.memory, free) {
                (0, _) | (_, None) => None,
                (want, Some(free)) => (signed(want) > free).then(|| signed(want) - free),
            };
            if memory_short.is_some() {
                reasons.push(format!(
                    "Insufficient memory (requests {} B, {} B free)",
                    r.memory,
                    free.unwrap_or(0)
                ));
            }
            let (unused_requests, shrink) = match usage {
                None => (None, Vec::new()),
                Some(usage) => room(&on_node, usage, memory_short),
            };
            fits.push(NodeFit {
                node: node_name,
                allocatable: alloc.memory,
                requested,
                free,
                fits: reasons.is_empty(),
                reasons,
                unused_requests,
                shrink,
            });
        }
        fits.sort_by(|a, b| {
            b.fits
                .cmp(&a.fits)
                .then_with(|| b.free.cmp(&a.free))
                .then_with(|| a.node.cmp(&b.node))
        });
        out.push(PendingPod {
            namespace,
            pod: name,
            request: r.memory,
            cpu_request_millis: r.cpu_millis,
            bound_to,
            nodes: fits,
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
    Ok(out)
}

fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Unused requests on a node, and the pods to shrink to free `short` bytes.
fn room(
    on_node: &[&Resident],
    usage: &BTreeMap<(String, String), PodUsage>,
    short: Option<i64>,
) -> (Option<u64>, Vec<Shrink>) {
    let mut unused = 0u64;
    let mut candidates = Vec::new();
    for pod in on_node {
        let Some(u) = usage.get(&(pod.namespace.clone(), pod.pod.clone())) else {
            continue;
        };
        if let Some(ws) = u.working_set {
            unused = unused.saturating_add(pod.memory.saturating_sub(ws));
        }
        let Some(target) = u.suggested_request.or(u.working_set) else {
            continue;
        };
        let frees = pod.memory.saturating_sub(target);
        if frees > 0 {
            candidates.push(Shrink {
                namespace: pod.namespace.clone(),
                pod: pod.pod.clone(),
                request: pod.memory,
                working_set: u.working_set,
                suggested_request: target,
                frees,
            });
        }
    }
    candidates.sort_by(|a, b| b.frees.cmp(&a.frees).then_with(|| a.pod.cmp(&b.pod)));
    let mut shrink = Vec::new();
    if let Some(short) = short {
        let mut freed = 0i64;
        for c in candidates {
            if freed >= short {
                break;
            }
            freed = freed.saturating_add(signed(c.frees));
            shrink.push(c);
        }
    }
    (Some(unused), shrink)
}

/// `v1.Toleration.ToleratesTaint`.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// One required node affinity term: every expression and field holds (an empty term
/// matches nothing, as in `nodeaffinity`).
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_holds(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_holds(r, Some(name)))
}

fn requirement_holds(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |v: &str| v.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(want)) = (
                value.and_then(number),
                values.first().and_then(|v| number(v)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
