//! Why a pod stays Pending, and what to set: memory requests and limits against node
//! allocatable and against what the pods really use (PRODUCT.md §2, questions 1 and 5).
//!
//! The scheduler admits a pod when its memory **request** fits in allocatable − Σ requests
//! of the pods already bound to the node; real usage plays no part. So the node figures
//! are allocatable, Σ requests, the room left, Σ limits (how far the node is overcommitted)
//! and Σ working set (what is really used), and each pod gets a verdict comparing its
//! request and limit with what the kernel measured.
//!
//! # The sizing rule (the one place it is written)
//!
//! - **Peak working set** ([`peak_working_set`]): the kernel records the peak of *usage*
//!   (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`), page cache included, not of the
//!   working set. memglass estimates the working-set peak as the larger of the working set
//!   now and peak − inactive_file now (the page cache kubelet would not count today). Where
//!   the kernel has no peak, the figures now stand in for it.
//! - **Suggested request** = peak working set × 1.15, rounded up to a MiB.
//! - **Suggested limit** = max(peak usage × 1.3, suggested request), rounded up to a MiB.
//! - A peak covers only the time since the cgroup was created (the container's start): a
//!   short history. Size from a longer one (the agent's) before trusting it.
//!
//! # Verdicts ([`verdicts`]), for pods and containers whose request is known
//!
//! - `no_request`: no memory request (the pod is BestEffort for memory and counts 0
//!   against allocatable, yet uses memory).
//! - `under_requested`: the working set now exceeds the request (kubelet evicts such pods
//!   first), or the peak working set exceeds it by more than 10%.
//! - `over_requested`: the request is more than twice the peak working set and at least
//!   32 MiB above it: it blocks scheduling for memory nobody uses.
//! - `no_limit`: no memory limit (the pod can grow until the node runs short).
//! - `near_limit`: the peak working set reached 90% of the limit (the next OOM kill).
//! - `fits`: none of the above.

use memglass_identify::{Directory, QosClass};

use crate::cgroup::{CgroupReport, MemoryReport};
use crate::node_pods::{containers_of, node_pods, NodePod};
use crate::snapshot::Snapshot;

const MIB: u64 = 1 << 20;
/// Suggested request = peak working set × (100 + this) / 100.
pub const REQUEST_HEADROOM_PERCENT: u64 = 15;
/// Suggested limit = peak usage × this / 100 (at least the suggested request).
pub const LIMIT_PEAK_PERCENT: u64 = 130;
/// Under-requested when the peak working set is more than this % above the request.
pub const UNDER_REQUEST_MARGIN_PERCENT: u64 = 10;
/// Over-requested when the request is more than this many times the peak working set...
pub const OVER_REQUEST_FACTOR: u64 = 2;
/// ...and at least this many bytes above it.
pub const OVER_REQUEST_MIN_BYTES: u64 = 32 * MIB;
/// Near its limit when the peak working set reached this % of the limit.
pub const NEAR_LIMIT_PERCENT: u64 = 90;

/// What a request/limit comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Request ≫ peak working set.
    OverRequested,
    /// Working set (now or at its peak) ≫ request.
    UnderRequested,
    /// No memory request.
    NoRequest,
    /// No memory limit.
    NoLimit,
    /// Peak working set ≥ 90% of the limit.
    NearLimit,
    /// Request and limit match what was measured.
    Fits,
}

/// A suggested request and limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Suggestion {
    /// Suggested memory request, bytes (a whole number of MiB).
    pub request: u64,
    /// Suggested memory limit, bytes (a whole number of MiB).
    pub limit: u64,
}

/// What the kernel measured for one cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Measured {
    /// Working set now (usage − inactive_file).
    pub working_set: Option<u64>,
    /// Peak usage since the cgroup was created (memory.peak / max_usage_in_bytes).
    pub peak: Option<u64>,
    /// Estimated peak working set (see the module docs).
    pub peak_working_set: Option<u64>,
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContainerSizing {
    /// Container name (null when unknown).
    pub container: Option<String>,
    /// Container id from the path.
    pub container_id: Option<String>,
    /// Its cgroup.
    pub cgroup: String,
    /// True for the pod's sandbox (pause) container.
    pub sandbox: bool,
    /// True when a source described this container (so request and limit are real).
    pub requests_known: bool,
    /// Memory request (null = none).
    pub request: Option<u64>,
    /// Memory limit in its spec (null = none).
    pub limit: Option<u64>,
    /// What the kernel measured.
    #[serde(flatten)]
    pub measured: Measured,
    /// Verdicts (empty when the request is not known, or for the sandbox).
    pub verdicts: Vec<Verdict>,
    /// What to set, from the peak (null for the sandbox or without measurements).
    pub suggested: Option<Suggestion>,
}

/// One pod.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PodSizing {
    /// Pod UID.
    pub pod_uid: String,
    /// Namespace (null when unknown).
    pub namespace: Option<String>,
    /// Pod name (null when unknown).
    pub pod: Option<String>,
    /// QoS class.
    pub qos_class: Option<QosClass>,
    /// Its pod cgroup (null when it has none yet).
    pub cgroup: Option<String>,
    /// True when a source (`--pods`, the API) described this pod.
    pub requests_known: bool,
    /// The pod's effective memory request (null = none).
    pub request: Option<u64>,
    /// The pod's memory limit (null unless every container has one).
    pub limit: Option<u64>,
    /// What the kernel measured for the pod cgroup.
    #[serde(flatten)]
    pub measured: Measured,
    /// Verdicts (empty when the request is not known).
    pub verdicts: Vec<Verdict>,
    /// What to set, from the peak (null without measurements).
    pub suggested: Option<Suggestion>,
    /// Its containers.
    pub containers: Vec<ContainerSizing>,
}

/// The node's scheduling view.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeSizing {
    /// The node's name (null without `--node` or the API).
    pub name: Option<String>,
    /// status.capacity.memory.
    pub capacity: Option<u64>,
    /// status.allocatable.memory: what the scheduler fills with requests.
    pub allocatable: Option<u64>,
    /// Pods counted (those with a pod cgroup, and those bound to the node without one).
    pub pods: usize,
    /// Pods no source described: their requests are unknown and not in `requests`.
    pub pods_without_requests_data: usize,
    /// Σ memory requests of the pods whose requests are known.
    pub requests: u64,
    /// Σ memory limits of the pods that have one (a pod has one when every container does).
    pub limits: u64,
    /// Pods with known requests but no pod limit: unbounded, not in `limits`.
    pub pods_without_limit: usize,
    /// requests / allocatable.
    pub requests_over_allocatable: Option<f64>,
    /// limits / allocatable: the overcommit ratio (above 1, the limits cannot all be met).
    pub limits_over_allocatable: Option<f64>,
    /// Σ working set of the pod cgroups (what the pods really use).
    pub working_set: u64,
    /// allocatable − requests: the largest request the scheduler can still place here
    /// (negative: already overcommitted by requests).
    pub room: Option<i64>,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SizingReport {
    /// The node.
    pub node: NodeSizing,
    /// Every pod of the node, in cgroup order (pods without a cgroup last).
    pub pods: Vec<PodSizing>,
}

/// Size every pod of `snapshot` against what `directory` says they request.
pub fn analyse(snapshot: &Snapshot, directory: &Directory) -> SizingReport {
    let pods: Vec<PodSizing> = node_pods(snapshot, directory)
        .iter()
        .map(|pod| size_pod(snapshot, pod))
        .collect();
    let kubernetes = snapshot.kubernetes_node.as_ref();
    let allocatable = kubernetes.and_then(|n| n.allocatable_memory);
    let known = pods.iter().filter(|p| p.requests_known);
    let requests = known
        .clone()
        .filter_map(|p| p.request)
        .fold(0u64, u64::saturating_add);
    let limits = known
        .clone()
        .filter_map(|p| p.limit)
        .fold(0u64, u64::saturating_add);
    let ratio = |sum: u64| {
        allocatable
            .filter(|&a| a > 0)
            .map(|a| sum as f64 / a as f64)
    };
    let node = NodeSizing {
        name: kubernetes.map(|n| n.name.clone()).filter(|n| !n.is_empty()),
        capacity: kubernetes.and_then(|n| n.capacity_memory),
        allocatable,
        pods: pods.len(),
        pods_without_requests_data: pods.iter().filter(|p| !p.requests_known).count(),
        requests,
        limits,
        pods_without_limit: known.filter(|p| p.limit.is_none()).count(),
        requests_over_allocatable: ratio(requests),
        limits_over_allocatable: ratio(limits),
        working_set: pods
            .iter()
            .filter_map(|p| p.measured.working_set)
            .fold(0u64, u64::saturating_add),
        room: allocatable
            .map(|a| i64::try_from(i128::from(a) - i128::from(requests)).unwrap_or(i64::MIN)),
    };
    SizingReport { node, pods }
}

fn size_pod(snapshot: &Snapshot, pod: &NodePod<'_>) -> PodSizing {
    let info = pod.info;
    let measured = pod.cgroup.map(|c| measure(&c.memory)).unwrap_or(Measured {
        working_set: None,
        peak: None,
        peak_working_set: None,
    });
    let (request, limit) = (
        info.and_then(|i| i.memory_request),
        info.and_then(|i| i.memory_limit),
    );
    let containers = pod
        .cgroup
        .map(|c| containers_of(snapshot, c))
        .unwrap_or_default()
        .into_iter()
        .map(|c| size_container(c, pod.spec_known))
        .collect();
    PodSizing {
        pod_uid: pod.uid.to_owned(),
        namespace: info
            .map(|i| i.namespace.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| pod.cgroup.and_then(|c| c.namespace.clone())),
        pod: info
            .map(|i| i.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| pod.cgroup.and_then(|c| c.pod.clone())),
        qos_class: pod
            .cgroup
            .and_then(|c| c.qos_class)
            .or(info.and_then(|i| i.qos_class)),
        cgroup: pod.cgroup.map(|c| c.path.clone()),
        requests_known: pod.spec_known,
        request,
        limit,
        verdicts: if pod.spec_known {
            verdicts(request, limit, &measured)
        } else {
            Vec::new()
        },
        suggested: suggest(&measured),
        measured,
        containers,
    }
}

/// A container's request and limit are known when its pod's spec is and the container
/// itself was matched (by runtime id) to a container of that spec.
fn size_container(cgroup: &CgroupReport, pod_spec_known: bool) -> ContainerSizing {
    let facts = cgroup.workload.as_ref();
    let sandbox = facts.and_then(|f| f.sandbox).unwrap_or(false);
    let known = pod_spec_known && cgroup.container.is_some();
    let (request, limit) = (
        facts.and_then(|f| f.container_memory_request),
        facts.and_then(|f| f.container_memory_limit),
    );
    let measured = measure(&cgroup.memory);
    ContainerSizing {
        container: cgroup.container.clone(),
        container_id: cgroup.container_id.clone(),
        cgroup: cgroup.path.clone(),
        sandbox,
        requests_known: known && !sandbox,
        request,
        limit,
        verdicts: if known && !sandbox {
            verdicts(request, limit, &measured)
        } else {
            Vec::new()
        },
        suggested: if sandbox { None } else { suggest(&measured) },
        measured,
    }
}

/// The working set now, the peak usage and the estimated peak working set of a cgroup.
pub fn measure(memory: &MemoryReport) -> Measured {
    Measured {
        working_set: memory.working_set_kubelet,
        peak: memory.peak,
        peak_working_set: peak_working_set(memory),
    }
}

/// max(working set now, peak usage − inactive_file now): the kernel keeps no working-set
/// peak (module docs). Without a peak, the working set now.
pub fn peak_working_set(memory: &MemoryReport) -> Option<u64> {
    let now = memory.working_set_kubelet;
    let from_peak = memory
        .peak
        .map(|peak| peak.saturating_sub(memory.inactive_file.unwrap_or(0)));
    match (now, from_peak) {
        (Some(now), Some(from_peak)) => Some(now.max(from_peak)),
        (now, from_peak) => now.or(from_peak),
    }
}

/// The sizing rule of the module docs; `None` without any measurement.
pub fn suggest(measured: &Measured) -> Option<Suggestion> {
    let peak_ws = measured.peak_working_set?;
    let peak = measured.peak.or(measured.working_set).unwrap_or(peak_ws);
    let request = round_up_mib(scale(peak_ws, 100 + REQUEST_HEADROOM_PERCENT));
    let limit = round_up_mib(scale(peak, LIMIT_PEAK_PERCENT)).max(request);
    Some(Suggestion { request, limit })
}

/// The verdicts of the module docs for a known `request`/`limit` (`None` = none set).
pub fn verdicts(request: Option<u64>, limit: Option<u64>, measured: &Measured) -> Vec<Verdict> {
    let mut found = Vec::new();
    let now = measured.working_set;
    let peak_ws = measured.peak_working_set.or(now);
    match request.filter(|&r| r > 0) {
        None => found.push(Verdict::NoRequest),
        Some(request) => {
            let over_now = now.is_some_and(|ws| ws > request);
            let over_peak = peak_ws.is_some_and(|p| {
                u128::from(p) * 100
                    > u128::from(request) * u128::from(100 + UNDER_REQUEST_MARGIN_PERCENT)
            });
            if over_now || over_peak {
                found.push(Verdict::UnderRequested);
            } else if let Some(p) = peak_ws {
                if u128::from(request) > u128::from(p) * u128::from(OVER_REQUEST_FACTOR)
                    && request - p >= OVER_REQUEST_MIN_BYTES
                {
                    found.push(Verdict::OverRequested);
                }
            }
        }
    }
    match limit {
        None => found.push(Verdict::NoLimit),
        Some(limit) => {
            if peak_ws.is_some_and(|p| {
                u128::from(p) * 100 >= u128::from(limit) * u128::from(NEAR_LIMIT_PERCENT)
            }) {
                found.push(Verdict::NearLimit);
            }
        }
    }
    if found.is_empty() {
        found.push(Verdict::Fits);
    }
    found
}

/// value × percent / 100, saturating.
fn scale(value: u64, percent: u64) -> u64 {
    u64::try_from(u128::from(value) * u128::from(percent) / 100).unwrap_or(u64::MAX)
}

/// Up to the next whole MiB, saturating.
fn round_up_mib(value: u64) -> u64 {
    value.div_ceil(MIB).saturating_mul(MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(ws: u64, peak: u64, peak_ws: u64) -> Measured {
        Measured {
            working_set: Some(ws * MIB),
            peak: Some(peak * MIB),
            peak_working_set: Some(peak_ws * MIB),
        }
    }

    #[test]
    fn suggestion_is_peak_plus_headroom_and_limit_from_peak_usage() {
        let s = suggest(&measured(80, 100, 90)).unwrap();
        // 90 MiB × 1.15 = 103.5 MiB → 104 MiB; 100 MiB × 1.3 = 130 MiB.
        assert_eq!(s.request, 104 * MIB);
        assert_eq!(s.limit, 130 * MIB);
        // A peak made of page cache: the limit never goes below the request.
        let s = suggest(&measured(100, 10, 100)).unwrap();
        assert_eq!((s.request, s.limit), (115 * MIB, 115 * MIB));
        assert_eq!(round_up_mib(1), MIB);
        assert_eq!(round_up_mib(MIB), MIB);
        assert_eq!(round_up_mib(u64::MAX), u64::MAX, "saturates");
        assert!(suggest(&Measured {
            working_set: None,
            peak: None,
            peak_working_set: None
        })
        .is_none());
    }

    #[test]
    fn verdict_rules() {
        let v = |request: Option<u64>, limit: Option<u64>, m: Measured| {
            verdicts(request.map(|r| r * MIB), limit.map(|l| l * MIB), &m)
        };
        use Verdict::*;
        // 40 MiB used against a 16 MiB request and a 44 MiB limit.
        assert_eq!(
            v(Some(16), Some(44), measured(40, 41, 40)),
            [UnderRequested, NearLimit]
        );
        // 80 MiB used, 200 MiB requested = limited.
        assert_eq!(
            v(Some(200), Some(200), measured(80, 81, 80)),
            [OverRequested]
        );
        // Twice the peak but only 20 MiB above it: not worth a verdict.
        assert_eq!(v(Some(40), Some(400), measured(18, 19, 19)), [Fits]);
        assert_eq!(v(None, None, measured(30, 31, 30)), [NoRequest, NoLimit]);
        assert_eq!(v(Some(0), Some(64), measured(30, 31, 30)), [NoRequest]);
        // Now within the request, but the peak was 12% above it.
        assert_eq!(
            v(Some(100), Some(400), measured(90, 200, 112)),
            [UnderRequested]
        );
        // 10% above at the peak is still within the margin.
        assert_eq!(v(Some(100), Some(400), measured(90, 200, 110)), [Fits]);
        // One byte over now is under-requested: kubelet ranks it first for eviction.
        let m = Measured {
            working_set: Some(100 * MIB + 1),
            peak: None,
            peak_working_set: Some(100 * MIB + 1),
        };
        assert_eq!(
            verdicts(Some(100 * MIB), None, &m),
            [UnderRequested, NoLimit]
        );
    }

    #[test]
    fn peak_working_set_discounts_todays_inactive_cache() {
        let memory = MemoryReport {
            usage: Some(60 * MIB),
            usage_source: memglass_kernel::cgroup::UsageSource::UsageInBytes,
            limit: None,
            high: None,
            low: None,
            min: None,
            soft_limit: None,
            peak: Some(300 * MIB),
            anon: None,
            active_anon: None,
            inactive_anon: None,
            file: None,
            active_file: None,
            inactive_file: Some(20 * MIB),
            shmem: None,
            file_mapped: None,
            file_dirty: None,
            file_writeback: None,
            kernel: None,
            swap: None,
            unevictable: None,
            working_set: None,
            working_set_kubelet: Some(40 * MIB),
        };
        assert_eq!(peak_working_set(&memory), Some(280 * MIB));
        let no_peak = MemoryReport {
            peak: None,
            ..memory.clone()
        };
        assert_eq!(peak_working_set(&no_peak), Some(40 * MIB));
        let cache_gone = MemoryReport {
            peak: Some(30 * MIB),
            ..memory
        };
        assert_eq!(
            peak_working_set(&cache_gone),
            Some(40 * MIB),
            "never below now"
        );
    }
}
