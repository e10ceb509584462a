//! Per-cgroup figures: the kernel's, plus both working sets side by side.

use memglass_identify::{CgroupKind, PathIdentity, QosClass, Resolved, Runtime};
use memglass_kernel::cgroup::{
    CgroupEvents, CgroupMemory, CgroupSample, KeyedValues, Limit, UsageSource,
};
use memglass_kernel::parse::Pressure;

use crate::node::working_set_kubelet;

/// One cgroup, identified and with derived figures. Serialises to the `cgroups[]` items of
/// the `memglass.snapshot/v1` JSON contract (docs/json-format.md).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CgroupReport {
    /// Path relative to the hierarchy root, starting with "/".
    pub path: String,
    /// 1 or 2.
    pub cgroup_version: u8,
    /// Directory inode (what /proc/kpagecgroup reports for its pages).
    pub inode: u64,
    /// What the cgroup is (root, kubepods, qos, pod, container, service, slice, other).
    pub kind: CgroupKind,
    /// Pod UID, from the path.
    pub pod_uid: Option<String>,
    /// Container ID, from the path.
    pub container_id: Option<String>,
    /// Kubernetes namespace (from the runtime or API; null when unknown).
    pub namespace: Option<String>,
    /// Pod name (null when unknown).
    pub pod: Option<String>,
    /// Container name (null when unknown).
    pub container: Option<String>,
    /// QoS class, from the path.
    pub qos_class: Option<QosClass>,
    /// Container runtime, from the path.
    pub runtime: Option<Runtime>,
    /// What the runtime or the Kubernetes API says about its pod and container
    /// (null when neither was asked or knows it).
    pub workload: Option<WorkloadFacts>,
    /// Memory figures in bytes.
    pub memory: MemoryReport,
    /// Event counters (hierarchical).
    pub events: CgroupEvents,
    /// Event counters of this cgroup alone (v2).
    pub events_local: Option<CgroupEvents>,
    /// PSI memory pressure (v2).
    pub pressure: Option<Pressure>,
    /// memory.stat exactly as the kernel printed it (all keys).
    pub stat: KeyedValues,
}

/// Facts about a cgroup's pod and container from the runtime (CRI) or the Kubernetes API.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadFacts {
    /// Container image.
    pub image: Option<String>,
    /// True for the pod's sandbox (pause) container.
    pub sandbox: Option<bool>,
    /// The container's memory request (bytes).
    pub container_memory_request: Option<u64>,
    /// The container's memory limit in its spec (bytes).
    pub container_memory_limit: Option<u64>,
    /// Σ of the pod's container memory requests (bytes).
    pub pod_memory_request: Option<u64>,
    /// Σ of the pod's container memory limits (bytes).
    pub pod_memory_limit: Option<u64>,
    /// spec.priority.
    pub priority: Option<i32>,
    /// spec.priorityClassName.
    pub priority_class: Option<String>,
    /// Controlling owner, `Kind/name`.
    pub owner: Option<String>,
}

/// A cgroup's memory in bytes. `null` in JSON where the kernel lacks the figure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemoryReport {
    /// Charged memory (v2 memory.current, v1 memory.usage_in_bytes).
    pub usage: Option<u64>,
    /// Which file `usage` came from.
    pub usage_source: UsageSource,
    /// Hard limit; null = unlimited.
    pub limit: Option<u64>,
    /// v2 memory.high; null = unlimited or not v2.
    pub high: Option<u64>,
    /// v2 memory.low.
    pub low: Option<u64>,
    /// v2 memory.min.
    pub min: Option<u64>,
    /// v1 soft limit.
    pub soft_limit: Option<u64>,
    /// Peak usage (v2 memory.peak, v1 max_usage_in_bytes).
    pub peak: Option<u64>,
    /// Anonymous memory.
    pub anon: Option<u64>,
    /// Active anonymous.
    pub active_anon: Option<u64>,
    /// Inactive anonymous.
    pub inactive_anon: Option<u64>,
    /// Page cache, tmpfs included.
    pub file: Option<u64>,
    /// Active page cache.
    pub active_file: Option<u64>,
    /// Inactive page cache.
    pub inactive_file: Option<u64>,
    /// tmpfs / shared memory.
    pub shmem: Option<u64>,
    /// Mapped page cache.
    pub file_mapped: Option<u64>,
    /// Dirty page cache.
    pub file_dirty: Option<u64>,
    /// Page cache under writeback.
    pub file_writeback: Option<u64>,
    /// Kernel memory.
    pub kernel: Option<u64>,
    /// Swap used.
    pub swap: Option<u64>,
    /// Unevictable.
    pub unevictable: Option<u64>,
    /// The seeds' working set: inactive_anon + active_anon + active_file.
    pub working_set: Option<u64>,
    /// kubelet's working set: usage − inactive_file, floored at 0.
    pub working_set_kubelet: Option<u64>,
}

/// The seeds' working set: inactive_anon + active_anon + active_file.
pub fn working_set(memory: &CgroupMemory) -> Option<u64> {
    Some(
        memory
            .inactive_anon?
            .saturating_add(memory.active_anon?)
            .saturating_add(memory.active_file?),
    )
}

/// Build the report of one cgroup from its sample, its path identity, and what the
/// directory knows about its pod and container.
pub fn report(sample: &CgroupSample, identity: &PathIdentity, known: Resolved<'_>) -> CgroupReport {
    let memory = &sample.memory;
    let limit_bytes = |limit: Option<Limit>| limit.and_then(Limit::bytes);
    CgroupReport {
        path: sample.path.clone(),
        cgroup_version: sample.version.number(),
        inode: sample.inode,
        kind: identity.kind,
        pod_uid: identity.pod_uid.clone(),
        container_id: identity.container_id.clone(),
        namespace: known
            .pod
            .map(|p| p.namespace.clone())
            .filter(|n| !n.is_empty()),
        pod: known.pod.map(|p| p.name.clone()).filter(|n| !n.is_empty()),
        container: known
            .container
            .map(|c| c.name.clone())
            .filter(|n| !n.is_empty()),
        qos_class: identity.qos_class.or(known.pod.and_then(|p| p.qos_class)),
        runtime: identity.runtime,
        workload: workload_facts(known),
        memory: MemoryReport {
            usage: memory.usage,
            usage_source: memory.usage_source,
            limit: memory.limit.bytes(),
            high: limit_bytes(memory.high),
            low: limit_bytes(memory.low),
            min: limit_bytes(memory.min),
            soft_limit: limit_bytes(memory.soft_limit),
            peak: memory.peak,
            anon: memory.anon,
            active_anon: memory.active_anon,
            inactive_anon: memory.inactive_anon,
            file: memory.file,
            active_file: memory.active_file,
            inactive_file: memory.inactive_file,
            shmem: memory.shmem,
            file_mapped: memory.file_mapped,
            file_dirty: memory.file_dirty,
            file_writeback: memory.file_writeback,
            kernel: memory.kernel,
            swap: memory.swap,
            unevictable: memory.unevictable,
            working_set: working_set(memory),
            working_set_kubelet: memory
                .usage
                .map(|usage| working_set_kubelet(usage, memory.inactive_file.unwrap_or(0))),
        },
        events: memory.events,
        events_local: memory.events_local,
        pressure: memory.pressure,
        stat: memory.stat.clone(),
    }
}

fn workload_facts(known: Resolved<'_>) -> Option<WorkloadFacts> {
    if known.pod.is_none() && known.container.is_none() {
        return None;
    }
    let (pod, container) = (known.pod, known.container);
    Some(WorkloadFacts {
        image: container.and_then(|c| c.image.clone()),
        sandbox: container.map(|c| c.sandbox),
        container_memory_request: container.and_then(|c| c.memory_request),
        container_memory_limit: container.and_then(|c| c.memory_limit),
        pod_memory_request: pod.and_then(|p| p.memory_request),
        pod_memory_limit: pod.and_then(|p| p.memory_limit),
        priority: pod.and_then(|p| p.priority),
        priority_class: pod.and_then(|p| p.priority_class.clone()),
        owner: pod.and_then(|p| p.owner.clone()),
    })
}

/// The parent of a cgroup path ("/" for top-level cgroups, `None` for the root).
pub fn parent_path(path: &str) -> Option<&str> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/"),
        Some(at) => Some(&path[..at]),
        None => None,
    }
}

impl CgroupReport {
    /// True for the hierarchy's root.
    pub fn is_root(&self) -> bool {
        self.kind == CgroupKind::Root
    }

    /// Depth below the root ("/" is 0, "/a" is 1).
    pub fn depth(&self) -> usize {
        if self.path == "/" {
            0
        } else {
            self.path.matches('/').count()
        }
    }
}
