//! Who kubelet would evict next under memory pressure, and why (PRODUCT.md §2, question 2).
//!
//! Followed from kubelet's eviction manager (kubernetes/kubernetes,
//! `pkg/kubelet/eviction/helpers.go` and `eviction_manager.go`; `pkg/kubelet/types/pod_update.go`
//! for critical pods; `pkg/kubelet/stats/helper.go` for the "available" figures):
//!
//! - **Signals** ([`signals`]). `memory.available` = node capacity − the root cgroup's working
//!   set (cAdvisor's machine memory, i.e. MemTotal, minus root usage − inactive_file: see
//!   [`crate::node`]). `allocatableMemory.available` = the pods cgroup's memory limit − its
//!   working set (`availableBytes = Spec.Memory.Limit − WorkingSet`); kubelet sets that limit
//!   when it enforces node allocatable on pods. Where the kubepods cgroup has no limit,
//!   memglass uses the node's allocatable memory from `--node` or the API instead. Each
//!   signal's capacity is `available + working set`, which is what a percentage threshold is
//!   a percentage of (`GetThresholdQuantity`).
//! - **Threshold** ([`Threshold`]). kubelet's default hard threshold is
//!   `memory.available<100Mi`; with node allocatable enforced on pods, `addAllocatableThresholds`
//!   copies every hard `memory.available` threshold to `allocatableMemory.available`. A
//!   threshold is met when available < threshold (`thresholdsMet`, operator `LessThan`).
//!   `parseThresholdStatement` refuses a zero or negative quantity, ignores exactly `0%` and
//!   `100%` (no threshold at all: [`Threshold::Disabled`]), and keeps any other percentage as a
//!   32-bit float fraction that `GetThresholdQuantity` multiplies in 64 bits
//!   ([`Threshold::parse_percentage`], [`Threshold::bytes`]).
//! - **Ranking** ([`rank`]): `rankMemoryPressure` = `orderedBy(exceedMemoryRequests, priority,
//!   memory)`: pods with no stats first ("prioritize evicting the pod for which no stats were
//!   found"), then pods whose working set exceeds their memory request (strictly greater),
//!   then lower `spec.priority` (unset = 0), then the larger working set − request. The
//!   usage is the pod's working set (`memoryUsage` = `WorkingSetBytes` of the pod's stats:
//!   its pod cgroup's usage − inactive_file); the request is `GetResourceRequestQuantity`
//!   (`PodInfo::eviction_memory_request`; none = 0), which adds RuntimeClass overhead only to
//!   a non-zero request and ignores the containers when pod-level resources are set. kubelet's sort is not stable; memglass breaks
//!   remaining ties by UID so the output is reproducible.
//! - **Never evicted** ([`Protection`]): `evictPod` refuses critical pods
//!   (`kubelettypes.IsCriticalPod`): static pods, mirror pods, and pods with priority ≥
//!   2000000000 (`SystemCriticalPriority`). kubelet then tries the next pod in the ranking,
//!   so "next" is the first pod that is not protected. From the data memglass has, a static
//!   pod is a pod cgroup whose UID is kubelet's 32-hex manifest hash, and a mirror pod is an
//!   API pod owned by its `Node`.

use std::cmp::Ordering;

use memglass_identify::{Directory, PodInfo, QosClass};

use crate::node_pods::{kubepods_of, node_pods, NodePod};
use crate::snapshot::Snapshot;

/// `scheduling.SystemCriticalPriority`: pods at or above it are critical and never evicted.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// kubelet's default hard eviction threshold for memory.available: 100Mi.
pub const DEFAULT_THRESHOLD: Threshold = Threshold::Bytes(100 << 20);

/// An eviction threshold: a quantity, a percentage of the signal's capacity, or none.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// Bytes (`100Mi`).
    Bytes(u64),
    /// Percent of the signal's capacity (`5%` is `Percent(5.0)`), held as kubelet holds it: a
    /// 32-bit float (`evictionapi.ThresholdValue{Percentage float32}`), so that `bytes` gives
    /// kubelet's figure to the byte.
    Percent(f32),
    /// No threshold: kubelet ignores exactly `0%` and `100%` ("ignore 0% and 100%" in
    /// `parseThresholdStatement`), so it never evicts on the signal. Its figure in bytes is 0,
    /// which available memory can never fall below.
    Disabled,
}

impl Threshold {
    /// kubelet's `parseThresholdStatement` for a value ending in `%`
    /// (`pkg/kubelet/eviction/helpers.go`): exactly `0%` or `100%` is no threshold; otherwise
    /// `parsePercentage` (every trailing `%` trimmed, `strconv.ParseFloat(…, 32)`, the same
    /// correctly rounded 32-bit value as Rust's `f32` parse) must give a fraction in [0, 1],
    /// the fraction being `float32(value) / 100` in 32-bit arithmetic. So `100.0%` is a
    /// threshold of the whole capacity, unlike `100%`, and `0.0%` one of zero bytes.
    pub fn parse_percentage(text: &str) -> Result<Threshold, String> {
        if text == "0%" || text == "100%" {
            return Ok(Threshold::Disabled);
        }
        let percent: f32 = text
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("{text:?} is not a percentage"))?;
        if percent < 0.0 {
            return Err(format!(
                "an eviction percentage must be >= 0%, got {text:?}"
            ));
        }
        if percent / 100.0 > 1.0 {
            return Err(format!(
                "an eviction percentage must be <= 100%, got {text:?}"
            ));
        }
        Ok(Threshold::Percent(percent))
    }

    /// The threshold in bytes for a signal of `capacity` bytes, as kubelet's
    /// `GetThresholdQuantity` (`pkg/kubelet/eviction/api/types.go`) computes it:
    /// `int64(float64(capacity.Value()) * float64(value.Percentage))`, the percentage being the
    /// 32-bit `float32(percent) / 100`, the product taken in 64 bits and truncated. 0 for
    /// [`Threshold::Disabled`].
    pub fn bytes(self, capacity: u64) -> u64 {
        match self {
            Threshold::Bytes(bytes) => bytes,
            Threshold::Percent(percent) => {
                let fraction: f32 = percent / 100.0;
                (capacity as f64 * f64::from(fraction)) as u64
            }
            Threshold::Disabled => 0,
        }
    }
}

/// How close to its threshold a signal counts as "near" (the `eviction_next` finding, the
/// agent's `MemglassEvictionNext` event).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Margin {
    /// Bytes above the threshold.
    Bytes(u64),
    /// Percent of the threshold (in bytes) above it.
    PercentOfThreshold(f64),
}

impl Margin {
    /// memglass's default: within 20% of the threshold.
    pub const DEFAULT: Margin = Margin::PercentOfThreshold(20.0);

    /// The margin in bytes for a threshold of `threshold` bytes.
    pub fn bytes(self, threshold: u64) -> u64 {
        match self {
            Margin::Bytes(bytes) => bytes,
            Margin::PercentOfThreshold(p) => (threshold as f64 * p / 100.0) as u64,
        }
    }
}

/// Which eviction signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Signal {
    /// The node: capacity − root working set.
    #[serde(rename = "memory.available")]
    MemoryAvailable,
    /// The pods (kubepods) cgroup: its capacity − its working set.
    #[serde(rename = "allocatableMemory.available")]
    AllocatableMemoryAvailable,
}

/// Where a signal's capacity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacitySource {
    /// MemTotal (cAdvisor's machine memory).
    MemTotal,
    /// The kubepods cgroup's memory limit, as kubelet reads it.
    KubepodsLimit,
    /// The node's allocatable memory from `--node` or the API (the kubepods cgroup has no
    /// limit).
    NodeAllocatable,
}

/// One eviction signal, observed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SignalReport {
    /// The signal.
    pub signal: Signal,
    /// The cgroup whose working set it subtracts ("/" or the kubepods cgroup).
    pub cgroup: String,
    /// What `available` is taken from.
    pub capacity: u64,
    /// Where `capacity` came from.
    pub capacity_source: CapacitySource,
    /// The cgroup's working set (usage − inactive_file).
    pub working_set: u64,
    /// capacity − working set, floored at 0.
    pub available: u64,
    /// The threshold in bytes (0 when disabled: available can never fall below it).
    pub threshold: u64,
    /// available − threshold: how much more the working set may grow before kubelet evicts
    /// (negative: the threshold is crossed).
    pub margin: i64,
    /// available < threshold: kubelet is evicting.
    pub met: bool,
}

impl SignalReport {
    /// Within `margin` of the threshold, or past it: available < threshold + margin. A
    /// threshold of 0 bytes is none (kubelet never evicts on it): never near.
    pub fn near(&self, margin: Margin) -> bool {
        let margin = i64::try_from(margin.bytes(self.threshold)).unwrap_or(i64::MAX);
        self.threshold > 0 && self.margin < margin
    }
}

/// Why kubelet will not evict a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// Priority ≥ 2000000000 (system-cluster-critical, system-node-critical).
    CriticalPriority,
    /// A static pod (UID is kubelet's manifest hash).
    StaticPod,
    /// The API's mirror of a static pod (owned by its Node).
    MirrorPod,
}

/// What the ranking needs to know about one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUsage {
    /// Pod UID.
    pub pod_uid: String,
    /// Namespace, when known.
    pub namespace: Option<String>,
    /// Name, when known.
    pub pod: Option<String>,
    /// QoS class.
    pub qos_class: Option<QosClass>,
    /// spec.priority; `None` when unknown or unset (kubelet then uses 0).
    pub priority: Option<i32>,
    /// spec.priorityClassName.
    pub priority_class: Option<String>,
    /// The memory request kubelet's ranking subtracts (`GetResourceRequestQuantity`, see
    /// `PodInfo::eviction_memory_request`); `None` = none (counts as 0).
    pub request: Option<u64>,
    /// True when the directory knows this pod (so `request` and `priority` are real).
    pub known: bool,
    /// Working set of the pod cgroup (usage − inactive_file); `None` = no stats.
    pub working_set: Option<u64>,
    /// Why it can never be evicted, if so.
    pub protection: Option<Protection>,
    /// Its pod cgroup.
    pub cgroup: Option<String>,
}

/// One pod in kubelet's eviction order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RankedPod {
    /// 1 = first in line.
    pub rank: usize,
    /// Pod UID.
    pub pod_uid: String,
    /// Namespace (null when unknown).
    pub namespace: Option<String>,
    /// Pod name (null when unknown).
    pub pod: Option<String>,
    /// QoS class.
    pub qos_class: Option<QosClass>,
    /// The priority kubelet compares (spec.priority; 0 when unset or unknown).
    pub priority: i32,
    /// spec.priorityClassName.
    pub priority_class: Option<String>,
    /// Memory request (null = none; kubelet counts it as 0).
    pub request: Option<u64>,
    /// False when no source (`--pods`, the API) described this pod: request and priority
    /// are then kubelet's defaults, not the pod's.
    pub requests_known: bool,
    /// The pod's working set (usage − inactive_file of its pod cgroup); null = no stats.
    pub working_set: Option<u64>,
    /// working_set > request (null without stats).
    pub exceeds_request: Option<bool>,
    /// working_set − request (null without stats).
    pub usage_over_request: Option<i64>,
    /// False for pods kubelet never evicts.
    pub evictable: bool,
    /// Why it is never evicted (null when it can be).
    pub protected: Option<Protection>,
    /// Its pod cgroup (null when it has none).
    pub cgroup: Option<String>,
}

/// The whole answer: the signals and the ranking.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvictionReport {
    /// The threshold asked for.
    pub threshold: Threshold,
    /// The signals that could be observed.
    pub signals: Vec<SignalReport>,
    /// True when some signal has met its threshold (kubelet is evicting now).
    pub under_pressure: bool,
    /// Index into `pods` of the pod kubelet would evict next (the first evictable one).
    pub next: Option<usize>,
    /// Every pod of the node, in kubelet's order.
    pub pods: Vec<RankedPod>,
}

/// Observe the signals and rank the pods of `snapshot`, naming them from `directory`.
pub fn analyse(snapshot: &Snapshot, directory: &Directory, threshold: Threshold) -> EvictionReport {
    let pods = node_pods(snapshot, directory);
    let usages: Vec<PodUsage> = pods.iter().map(pod_usage).collect();
    let signals = signals(snapshot, &pods, threshold);
    let ranked = rank(usages);
    EvictionReport {
        threshold,
        under_pressure: signals.iter().any(|s| s.met),
        signals,
        next: ranked.iter().position(|p| p.evictable),
        pods: ranked,
    }
}

/// The eviction signals of this node: `memory.available` (when the root cgroup's usage is
/// known) and `allocatableMemory.available` (when a kubepods cgroup exists and its limit or
/// the node's allocatable is known).
pub fn signals(
    snapshot: &Snapshot,
    pods: &[NodePod<'_>],
    threshold: Threshold,
) -> Vec<SignalReport> {
    let mut signals = Vec::new();
    if let Some(working_set) = snapshot.node.root_working_set {
        signals.push(observe(
            Signal::MemoryAvailable,
            "/",
            snapshot.node.mem_total,
            CapacitySource::MemTotal,
            working_set,
            threshold,
        ));
    }
    if let Some(kubepods) = kubepods_of(snapshot, pods) {
        let allocatable = snapshot
            .kubernetes_node
            .as_ref()
            .and_then(|n| n.allocatable_memory);
        let capacity = match (kubepods.memory.limit, allocatable) {
            (Some(limit), _) => Some((limit, CapacitySource::KubepodsLimit)),
            (None, Some(allocatable)) => Some((allocatable, CapacitySource::NodeAllocatable)),
            (None, None) => None,
        };
        if let (Some((capacity, source)), Some(working_set)) =
            (capacity, kubepods.memory.working_set_kubelet)
        {
            signals.push(observe(
                Signal::AllocatableMemoryAvailable,
                &kubepods.path,
                capacity,
                source,
                working_set,
                threshold,
            ));
        }
    }
    signals
}

fn observe(
    signal: Signal,
    cgroup: &str,
    capacity: u64,
    capacity_source: CapacitySource,
    working_set: u64,
    threshold: Threshold,
) -> SignalReport {
    let available = capacity.saturating_sub(working_set);
    let threshold = threshold.bytes(capacity);
    SignalReport {
        signal,
        cgroup: cgroup.to_owned(),
        capacity,
        capacity_source,
        working_set,
        available,
        threshold,
        margin: signed_difference(available, threshold),
        met: available < threshold,
    }
}

/// a − b as i64, saturating.
fn signed_difference(a: u64, b: u64) -> i64 {
    let difference = i128::from(a) - i128::from(b);
    i64::try_from(difference).unwrap_or(if difference < 0 { i64::MIN } else { i64::MAX })
}

/// What the ranking needs from one pod of the node.
pub fn pod_usage(pod: &NodePod<'_>) -> PodUsage {
    let info = pod.info;
    let cgroup = pod.cgroup;
    PodUsage {
        pod_uid: pod.uid.to_owned(),
        namespace: info
            .map(|i| i.namespace.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| cgroup.and_then(|c| c.namespace.clone())),
        pod: info
            .map(|i| i.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| cgroup.and_then(|c| c.pod.clone())),
        qos_class: cgroup
            .and_then(|c| c.qos_class)
            .or(info.and_then(|i| i.qos_class)),
        priority: info.and_then(effective_priority),
        priority_class: info.and_then(|i| i.priority_class.clone()),
        request: info.and_then(|i| i.eviction_memory_request),
        known: pod.spec_known,
        working_set: cgroup.and_then(|c| c.memory.working_set_kubelet),
        protection: protection(pod.uid, info),
        cgroup: cgroup.map(|c| c.path.clone()),
    }
}

/// spec.priority; where only the class is known, the priority the admission plugin gives
/// the two built-in system classes.
fn effective_priority(info: &PodInfo) -> Option<i32> {
    info.priority.or(match info.priority_class.as_deref() {
        Some("system-node-critical") => Some(2_000_001_000),
        Some("system-cluster-critical") => Some(SYSTEM_CRITICAL_PRIORITY),
        _ => None,
    })
}

/// kubelet's `IsCriticalPod`, from what memglass can see.
fn protection(uid: &str, info: Option<&PodInfo>) -> Option<Protection> {
    if info
        .and_then(effective_priority)
        .is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
    {
        return Some(Protection::CriticalPriority);
    }
    if uid.len() == 32 && uid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(Protection::StaticPod);
    }
    if info
        .and_then(|i| i.owner.as_deref())
        .is_some_and(|owner| owner.starts_with("Node/"))
    {
        return Some(Protection::MirrorPod);
    }
    None
}

/// Order pods as kubelet's `rankMemoryPressure` does (see the module docs), and number them.
pub fn rank(mut pods: Vec<PodUsage>) -> Vec<RankedPod> {
    pods.sort_by(kubelet_order);
    pods.into_iter()
        .enumerate()
        .map(|(index, pod)| {
            let over = pod
                .working_set
                .map(|ws| signed_difference(ws, pod.request.unwrap_or(0)));
            RankedPod {
                rank: index + 1,
                exceeds_request: over.map(|over| over > 0),
                usage_over_request: over,
                priority: pod.priority.unwrap_or(0),
                evictable: pod.protection.is_none(),
                protected: pod.protection,
                pod_uid: pod.pod_uid,
                namespace: pod.namespace,
                pod: pod.pod,
                qos_class: pod.qos_class,
                priority_class: pod.priority_class,
                request: pod.request,
                requests_known: pod.known,
                working_set: pod.working_set,
                cgroup: pod.cgroup,
            }
        })
        .collect()
}

/// `orderedBy(exceedMemoryRequests(stats), priority, memory(stats))`, then UID.
fn kubelet_order(a: &PodUsage, b: &PodUsage) -> Ordering {
    let over = |p: &PodUsage| {
        p.working_set
            .map(|ws| i128::from(ws) - i128::from(p.request.unwrap_or(0)))
    };
    let (over_a, over_b) = (over(a), over(b));
    // exceedMemoryRequests: no stats first, then exceeding (true before false).
    let first = |over: Option<i128>| match over {
        None => 0,
        Some(over) if over > 0 => 1,
        Some(_) => 2,
    };
    first(over_a)
        .cmp(&first(over_b))
        // priority: lower first.
        .then(a.priority.unwrap_or(0).cmp(&b.priority.unwrap_or(0)))
        // memory: larger usage − request first (no stats compare equal).
        .then(match (over_a, over_b) {
            (Some(x), Some(y)) => y.cmp(&x),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        })
        .then_with(|| a.pod_uid.cmp(&b.pod_uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn pod(uid: &str, ws: Option<u64>, request: Option<u64>, priority: Option<i32>) -> PodUsage {
        PodUsage {
            pod_uid: uid.into(),
            namespace: Some("ns".into()),
            pod: Some(uid.into()),
            qos_class: None,
            priority,
            priority_class: None,
            request,
            known: true,
            working_set: ws,
            protection: None,
            cgroup: None,
        }
    }

    fn order(ranked: &[RankedPod]) -> Vec<&str> {
        ranked.iter().map(|p| p.pod_uid.as_str()).collect()
    }

    #[test]
    fn exceeding_request_beats_priority_beats_size() {
        let ranked = rank(vec![
            // the largest pod, but within its request: last
            pod("big-within", Some(900 * MIB), Some(1024 * MIB), Some(0)),
            // exceeds by 24 MiB at priority 1000
            pod("a", Some(40 * MIB), Some(16 * MIB), Some(1000)),
            // exceeds by 56 MiB at priority 1000
            pod("c", Some(120 * MIB), Some(64 * MIB), Some(1000)),
            // no request: all 30 MiB count, priority 0 comes before 1000
            pod("d", Some(30 * MIB), None, None),
        ]);
        assert_eq!(order(&ranked), ["d", "c", "a", "big-within"]);
        assert_eq!(ranked[0].exceeds_request, Some(true));
        assert_eq!(ranked[0].usage_over_request, Some(30 * MIB as i64));
        assert_eq!(ranked[0].priority, 0, "unset priority is 0");
        assert_eq!(ranked[3].exceeds_request, Some(false));
        assert_eq!(ranked[3].usage_over_request, Some(-124 * MIB as i64));
        assert_eq!(
            ranked.iter().map(|p| p.rank).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn equal_to_request_does_not_exceed_it() {
        let ranked = rank(vec![
            pod("exact", Some(64 * MIB), Some(64 * MIB), Some(0)),
            pod(
                "one-byte-over",
                Some(64 * MIB + 1),
                Some(64 * MIB),
                Some(100),
            ),
        ]);
        assert_eq!(order(&ranked), ["one-byte-over", "exact"]);
        assert_eq!(ranked[1].exceeds_request, Some(false));
    }

    #[test]
    fn pods_without_stats_come_first_then_by_priority() {
        let ranked = rank(vec![
            pod("measured", Some(500 * MIB), None, Some(0)),
            pod("pending-high", None, Some(MIB), Some(10)),
            pod("pending-low", None, Some(MIB), Some(5)),
        ]);
        assert_eq!(order(&ranked), ["pending-low", "pending-high", "measured"]);
        assert_eq!(ranked[0].exceeds_request, None);
        assert_eq!(ranked[0].usage_over_request, None);
    }

    #[test]
    fn within_requests_lower_priority_goes_first_even_if_smaller() {
        let ranked = rank(vec![
            pod("big", Some(100 * MIB), Some(200 * MIB), Some(0)),
            pod("small-low", Some(10 * MIB), Some(200 * MIB), Some(-5)),
        ]);
        assert_eq!(order(&ranked), ["small-low", "big"]);
    }

    #[test]
    fn critical_static_and_mirror_pods_are_protected() {
        let info = |priority: Option<i32>, class: Option<&str>, owner: Option<&str>| PodInfo {
            uid: "u".into(),
            priority,
            priority_class: class.map(Into::into),
            owner: owner.map(Into::into),
            ..PodInfo::default()
        };
        let uid = "0f8a3c51-5d0e-4c3a-9b7e-2a1d6f4e8c90";
        assert_eq!(
            protection(uid, Some(&info(Some(2_000_000_000), None, None))),
            Some(Protection::CriticalPriority)
        );
        assert_eq!(
            protection(uid, Some(&info(Some(1_999_999_999), None, None))),
            None
        );
        assert_eq!(
            protection(uid, Some(&info(None, Some("system-node-critical"), None))),
            Some(Protection::CriticalPriority)
        );
        assert_eq!(
            protection(uid, Some(&info(None, None, Some("Node/worker-1")))),
            Some(Protection::MirrorPod)
        );
        assert_eq!(
            protection(uid, Some(&info(None, None, Some("ReplicaSet/web")))),
            None
        );
        assert_eq!(
            protection("8e8fff2dbe184c30923715081eb36a31", None),
            Some(Protection::StaticPod)
        );
        assert_eq!(protection(uid, None), None);
    }

    #[test]
    fn thresholds_as_kubelet_computes_them() {
        assert_eq!(DEFAULT_THRESHOLD.bytes(1 << 40), 100 * MIB);
        assert_eq!(Threshold::Percent(5.0).bytes(1000), 50);
        assert_eq!(Threshold::Percent(7.5).bytes(1001), 75, "truncated");
        assert_eq!(Threshold::Disabled.bytes(1 << 40), 0);
        let signal = observe(
            Signal::MemoryAvailable,
            "/",
            1000 * MIB,
            CapacitySource::MemTotal,
            950 * MIB,
            Threshold::Percent(10.0),
        );
        assert_eq!(signal.available, 50 * MIB);
        // float32(10)/100 = 0.100000001490116…: kubelet's 10% of 1000Mi is one byte over 100Mi.
        assert_eq!(signal.threshold, 100 * MIB + 1);
        assert_eq!(signal.margin, -50 * MIB as i64 - 1);
        assert!(signal.met);
        let at = observe(
            Signal::MemoryAvailable,
            "/",
            200 * MIB,
            CapacitySource::MemTotal,
            100 * MIB,
            DEFAULT_THRESHOLD,
        );
        assert!(!at.met, "available == threshold is not below it");
        assert_eq!(at.margin, 0);
        let over = observe(
            Signal::AllocatableMemoryAvailable,
            "/kubepods",
            MIB,
            CapacitySource::KubepodsLimit,
            2 * MIB,
            DEFAULT_THRESHOLD,
        );
        assert_eq!(over.available, 0, "floored, never wrapped");
        assert!(over.met);
    }

    /// The figure every `thresholdsMet` row below turns on: is `available` below `threshold`
    /// for a signal of `capacity` bytes?
    fn met(threshold: Threshold, available: u64, capacity: u64) -> bool {
        let working_set = capacity.saturating_sub(available);
        observe(
            Signal::MemoryAvailable,
            "/",
            capacity,
            CapacitySource::MemTotal,
            working_set,
            threshold,
        )
        .met
    }

    /// `pkg/kubelet/eviction/helpers_test.go` `TestParseThresholdConfig` (the hard
    /// `memory.available` values: memglass takes one hard threshold and, as kubelet's
    /// `addAllocatableThresholds`, applies it to both memory signals; the `imagefs`/`nodefs`
    /// percentages go through the same `parsePercentage`) and `TestParsePercentage`.
    #[test]
    fn kubelet_parse_threshold_config_and_percentage() {
        let ok = |text: &str| match Threshold::parse_percentage(text) {
            Ok(t) => t,
            Err(e) => panic!("{text}: {e}"),
        };
        // (case, value, kubelet's ThresholdValue.Percentage, a float32)
        let fractions: &[(&str, &str, f32)] = &[
            (
                "TestParseThresholdConfig/all memory eviction values in percentages",
                "10%",
                0.1,
            ),
            (
                "TestParseThresholdConfig/all memory eviction values in percentages",
                "30%",
                0.3,
            ),
            (
                "TestParseThresholdConfig/disk eviction values in percentages",
                "15%",
                0.15,
            ),
            (
                "TestParseThresholdConfig/disk eviction values in percentages",
                "10.5%",
                0.105,
            ),
            (
                "TestParseThresholdConfig/disk eviction values in percentages",
                "20.5%",
                0.205,
            ),
            ("TestParsePercentage/25.5%", "25.5%", 0.255),
        ];
        for &(case, value, fraction) in fractions {
            match ok(value) {
                Threshold::Percent(p) => assert_eq!(p / 100.0, fraction, "{case}"),
                other => panic!("{case}: {other:?}"),
            }
        }
        for (case, value) in [
            ("TestParseThresholdConfig/disable via 0%", "0%"),
            ("TestParseThresholdConfig/disable via 100%", "100%"),
        ] {
            assert_eq!(ok(value), Threshold::Disabled, "{case}");
        }
        for (case, value) in [
            (
                "TestParseThresholdConfig/hard-signal-negative-percentage",
                "-15%",
            ),
            (
                "TestParseThresholdConfig/hard-signal-percentage-greater-than-100%",
                "150%",
            ),
            ("TestParsePercentage/blah", "blah"),
            ("TestParsePercentage/foo%", "foo%"),
            ("TestParsePercentage/12%345", "12%345"),
        ] {
            assert!(Threshold::parse_percentage(value).is_err(), "{case}");
        }
        // Only the exact strings are ignored; what they parse to elsewhere is a threshold.
        assert_eq!(ok("0.0%"), Threshold::Percent(0.0));
        assert_eq!(ok("100.0%"), Threshold::Percent(100.0));
        assert_eq!(
            ok("5%%"),
            Threshold::Percent(5.0),
            "TrimRight drops every %"
        );
    }

    /// `pkg/kubelet/eviction/helpers_test.go` `TestThresholdsMet` (without min-reclaim, which
    /// only decides when kubelet stops evicting) and `TestPercentageThresholdsMet` (its
    /// `nodefs.available` 30% rows go through the same `GetThresholdQuantity`), through
    /// `thresholdsMet`'s `quantity.Cmp(available) > 0`.
    #[test]
    fn kubelet_thresholds_met() {
        const GIB: u64 = 1 << 30;
        let hard = Threshold::Bytes(GIB);
        // Its capacity is not read for a quantity; any will do.
        assert!(met(hard, 500 * MIB, 4 * GIB), "threshold-met-memory");
        assert!(!met(hard, 2 * GIB, 4 * GIB), "threshold-not-met");
        let memory = Threshold::Percent(20.0);
        let nodefs = Threshold::Percent(30.0);
        // (case, memory available / capacity, nodefs available / capacity, met)
        let rows = [
            (
                "BothMet",
                (100 * MIB, 1000 * MIB),
                (100 * GIB, 1000 * GIB),
                (true, true),
            ),
            (
                "NoneMet",
                (300 * MIB, 1000 * MIB),
                (400 * GIB, 1000 * GIB),
                (false, false),
            ),
            (
                "DiskMet",
                (300 * MIB, 1000 * MIB),
                (100 * GIB, 1000 * GIB),
                (false, true),
            ),
            (
                "MemoryMet",
                (100 * MIB, 1000 * MIB),
                (400 * GIB, 1000 * GIB),
                (true, false),
            ),
        ];
        for (case, (m_avail, m_cap), (d_avail, d_cap), (m_met, d_met)) in rows {
            assert_eq!(
                met(memory, m_avail, m_cap),
                m_met,
                "TestPercentageThresholdsMet/{case}"
            );
            assert_eq!(
                met(nodefs, d_avail, d_cap),
                d_met,
                "TestPercentageThresholdsMet/{case}"
            );
        }
        // A disabled threshold is never met, however little is available.
        assert!(!met(Threshold::Disabled, 0, GIB));
    }

    /// `GetThresholdQuantity` (`pkg/kubelet/eviction/api/types.go`) to the byte: the fraction is
    /// `float32(percent) / 100` in 32 bits, the product 64-bit, then truncated. The expected
    /// figures are float32 arithmetic done by hand (`struct.pack('f', …)` in Python).
    #[test]
    fn kubelet_get_threshold_quantity_in_float32() {
        let rows: &[(f32, u64, u64)] = &[
            // 0.1f32 = 0.100000001490116…
            (10.0, 1000 * MIB, 104_857_601),
            // 0.2f32 = 0.200000002980232…
            (20.0, 1000 * MIB, 209_715_203),
            // 0.075f32 = 0.075000002980232…
            (7.5, 1001, 75),
            // 0.05f32 = 0.0500000007450580…: 5% of 16 GiB is 858993472, not 858993459.
            (5.0, 16 << 30, 858_993_472),
            (100.0, 123_456_789, 123_456_789),
            (0.0, 123_456_789, 0),
        ];
        for &(percent, capacity, bytes) in rows {
            assert_eq!(
                Threshold::Percent(percent).bytes(capacity),
                bytes,
                "{percent}% of {capacity}"
            );
        }
    }

    /// `pkg/kubelet/eviction/helpers_test.go`, the memory ranking tables, each through
    /// memglass's whole `rankMemoryPressure` order (`orderedBy(exceedMemoryRequests, priority,
    /// memory)`); where the Go test sorts by fewer comparators, the rows are such that the
    /// whole order agrees. Pods are `newPod(name, priority, containers)` with the memory
    /// request of `newResourceList("", memory, "")` and the working set of
    /// `newPodMemoryStats`; `lowPriority` = -1, `defaultPriority` = 0, `highPriority` = 1.
    #[test]
    fn kubelet_memory_ranking_tables() {
        struct Case {
            test: &'static str,
            /// (name, priority, memory request in MiB, working set in MiB)
            pods: &'static [(&'static str, i32, Option<u64>, Option<u64>)],
            expected: &'static [&'static str],
        }
        let cases = [
            Case {
                test: "TestOrderedByExceedsRequestMemory",
                pods: &[
                    ("below-requests", -1, Some(200), Some(199)),
                    ("exceeds-requests", 1, Some(100), Some(101)),
                ],
                expected: &["exceeds-requests", "below-requests"],
            },
            Case {
                // orderedBy(priority) on pods without stats.
                test: "TestOrderedByPriority",
                pods: &[
                    ("high-priority", 12534, Some(200), None),
                    ("medium-priority", 1, Some(100), None),
                    ("low-priority", -134, None, None),
                ],
                expected: &["low-priority", "medium-priority", "high-priority"],
            },
            Case {
                test: "TestOrderedByMemory",
                pods: &[
                    ("best-effort-high", 0, None, Some(500)),
                    ("best-effort-low", 0, None, Some(300)),
                    ("burstable-high", 0, Some(100), Some(800)),
                    ("burstable-low", 0, Some(100), Some(300)),
                    ("guaranteed-high", 0, Some(1024), Some(800)),
                    ("guaranteed-low", 0, Some(1024), Some(200)),
                ],
                expected: &[
                    "burstable-high",
                    "best-effort-high",
                    "best-effort-low",
                    "burstable-low",
                    "guaranteed-high",
                    "guaranteed-low",
                ],
            },
            Case {
                test: "TestOrderedByPriorityMemory",
                pods: &[
                    (
                        "below-requests-high-priority-low-usage",
                        1,
                        Some(1024),
                        Some(200),
                    ),
                    (
                        "below-requests-high-priority-high-usage",
                        1,
                        Some(1024),
                        Some(800),
                    ),
                    (
                        "below-requests-low-priority-low-usage",
                        -1,
                        Some(1024),
                        Some(200),
                    ),
                    (
                        "below-requests-low-priority-high-usage",
                        -1,
                        Some(1024),
                        Some(800),
                    ),
                    (
                        "above-requests-high-priority-low-usage",
                        1,
                        Some(100),
                        Some(150),
                    ),
                    (
                        "above-requests-high-priority-high-usage",
                        1,
                        Some(100),
                        Some(600),
                    ),
                    ("above-requests-low-priority-low-usage", -1, None, Some(50)),
                    (
                        "above-requests-low-priority-high-usage",
                        -1,
                        None,
                        Some(500),
                    ),
                ],
                expected: &[
                    "above-requests-low-priority-high-usage",
                    "above-requests-low-priority-low-usage",
                    "above-requests-high-priority-high-usage",
                    "above-requests-high-priority-low-usage",
                    "below-requests-low-priority-high-usage",
                    "below-requests-low-priority-low-usage",
                    "below-requests-high-priority-high-usage",
                    "below-requests-high-priority-low-usage",
                ],
            },
        ];
        for case in cases {
            let pods = case
                .pods
                .iter()
                .map(|&(name, priority, request, ws)| {
                    pod(
                        name,
                        ws.map(|m| m * MIB),
                        request.map(|m| m * MIB),
                        Some(priority),
                    )
                })
                .collect();
            assert_eq!(order(&rank(pods)), case.expected, "{}", case.test);
        }
    }
}
