//! From symptom to cause to remedy: every other analysis of this crate turned into
//! findings a person acts on (`memglass diagnose`, `/api/v1/findings`, `memglass_finding`).
//!
//! A [`Finding`] has a [`Kind`] from a fixed set (docs/diagnose.md lists them with the rule
//! behind each), a [`Severity`], its subject (the node, or a pod or container), one
//! sentence, the [`Evidence`] (each figure with the file or API field it came from) and a
//! [`Remedy`]. The checks live by topic:
//!
//! - [`kills`]: `oom_killed`, one per victim container and scope.
//! - [`requests`]: `near_limit`, `eviction_next`, `exceeds_request`, `pending_no_room`,
//!   and the sizing verdicts `over_requested`, `under_requested`, `no_limit`,
//!   `no_request`.
//! - [`missing`]: what holds memory that processes' RSS does not explain:
//!   `page_cache_working_set`, `tmpfs`, `dirty_backlog`, `deleted_open_files`,
//!   `kernel_memory`, `dying_cgroups`.
//! - [`leak`]: a working set growing steadily toward its limit, from history.
//!
//! A healthy node gives no finding: every rule has a floor in bytes as well as a ratio, so
//! small cgroups never trip one.

use memglass_identify::Directory;
use serde::Serialize;

use crate::cgroup::CgroupReport;
use crate::eviction::EvictionReport;
use crate::filecache::CacheHolder;
use crate::sizing::SizingReport;
use crate::snapshot::Snapshot;

mod kills;
pub mod leak;
mod missing;
mod requests;

pub use kills::RecentKill;
pub use leak::{History, Trend};

const MIB: u64 = 1 << 20;

/// What a finding is about. The set is fixed (a bounded label of `memglass_finding`);
/// docs/diagnose.md gives each one's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A task was OOM-killed recently.
    OomKilled,
    /// kubelet would evict this pod next, and a signal is close to its threshold.
    EvictionNext,
    /// A Pending pod requests more memory than the node has left.
    PendingNoRoom,
    /// The working set is above 90% of the limit.
    NearLimit,
    /// The working set grows steadily toward the limit.
    Leak,
    /// The pod's working set is above its memory request.
    ExceedsRequest,
    /// The working set (now or at its peak) is well above the request.
    UnderRequested,
    /// The request is far above the peak working set.
    OverRequested,
    /// No memory request.
    NoRequest,
    /// No memory limit.
    NoLimit,
    /// Active page cache is most of the working set.
    PageCacheWorkingSet,
    /// tmpfs / shared memory holds a large part of the memory.
    Tmpfs,
    /// Many dirty pages wait for writeback.
    DirtyBacklog,
    /// Deleted files still open keep their cache (and disk space).
    DeletedOpenFiles,
    /// Kernel memory (slab, sockets, page tables) is a large part of the memory.
    KernelMemory,
    /// Memory still charged to removed cgroups.
    DyingCgroups,
}

impl Kind {
    /// Every kind, in the order findings of equal severity are listed.
    pub const ALL: [Kind; 16] = [
        Kind::OomKilled,
        Kind::EvictionNext,
        Kind::PendingNoRoom,
        Kind::NearLimit,
        Kind::Leak,
        Kind::ExceedsRequest,
        Kind::UnderRequested,
        Kind::OverRequested,
        Kind::NoRequest,
        Kind::NoLimit,
        Kind::PageCacheWorkingSet,
        Kind::Tmpfs,
        Kind::DirtyBacklog,
        Kind::DeletedOpenFiles,
        Kind::KernelMemory,
        Kind::DyingCgroups,
    ];

    /// The name in JSON and in the `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OomKilled => "oom_killed",
            Kind::EvictionNext => "eviction_next",
            Kind::PendingNoRoom => "pending_no_room",
            Kind::NearLimit => "near_limit",
            Kind::Leak => "leak",
            Kind::ExceedsRequest => "exceeds_request",
            Kind::UnderRequested => "under_requested",
            Kind::OverRequested => "over_requested",
            Kind::NoRequest => "no_request",
            Kind::NoLimit => "no_limit",
            Kind::PageCacheWorkingSet => "page_cache_working_set",
            Kind::Tmpfs => "tmpfs",
            Kind::DirtyBacklog => "dirty_backlog",
            Kind::DeletedOpenFiles => "deleted_open_files",
            Kind::KernelMemory => "kernel_memory",
            Kind::DyingCgroups => "dying_cgroups",
        }
    }
}

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something failed or is about to (a kill, an eviction, a pod that cannot start).
    Critical,
    /// Will cause trouble if left alone.
    Warning,
    /// Worth knowing; nothing breaks.
    Info,
}

impl Severity {
    /// The name in JSON and in the `severity` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// What a finding is about: the node, a pod, a container or another cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The node as a whole.
    Node,
    /// A pod.
    Pod,
    /// A container.
    Container,
    /// Any other cgroup (a QoS level, a systemd unit…).
    Cgroup,
}

/// One figure behind a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// What it is (`working_set_kubelet`, `limit`, `active_file`, a file's path…).
    pub name: String,
    /// Its value.
    pub value: Value,
    /// `bytes`, `percent`, `count`, `seconds`, `bytes_per_second` or `text`.
    pub unit: &'static str,
    /// Where it came from: a kernel file and key, an API field, or how it was computed.
    pub source: String,
}

/// A figure's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A whole number.
    Integer(u64),
    /// A ratio or a rate.
    Float(f64),
    /// Words.
    Text(String),
}

impl Evidence {
    fn bytes(name: &str, value: u64, source: impl Into<String>) -> Evidence {
        Evidence {
            name: name.into(),
            value: Value::Integer(value),
            unit: "bytes",
            source: source.into(),
        }
    }

    fn percent(name: &str, value: f64, source: impl Into<String>) -> Evidence {
        Evidence {
            name: name.into(),
            value: Value::Float((value * 10.0).round() / 10.0),
            unit: "percent",
            source: source.into(),
        }
    }

    fn count(name: &str, value: u64, source: impl Into<String>) -> Evidence {
        Evidence {
            name: name.into(),
            value: Value::Integer(value),
            unit: "count",
            source: source.into(),
        }
    }

    fn text(name: &str, value: impl Into<String>, source: impl Into<String>) -> Evidence {
        Evidence {
            name: name.into(),
            value: Value::Text(value.into()),
            unit: "text",
            source: source.into(),
        }
    }
}

/// What to do about a finding.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Remedy {
    /// In words.
    pub text: String,
    /// Values to set, where there are any.
    pub set: Vec<Setting>,
    /// A command that applies or investigates it, where there is one.
    pub command: Option<String>,
}

/// One value to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// What to set: a pod-spec field (`resources.limits.memory`), a cgroup file
    /// (`memory.high`), a kubelet flag.
    pub name: String,
    /// Which object it belongs to (`namespace/pod`, `namespace/pod/container`, a cgroup
    /// path), when it is not the finding's subject itself.
    pub target: Option<String>,
    /// The value in bytes.
    pub bytes: u64,
    /// The value as a Kubernetes quantity (whole MiB: `640Mi`).
    pub quantity: String,
}

impl Setting {
    fn new(name: &str, target: Option<String>, bytes: u64) -> Setting {
        Setting {
            name: name.into(),
            target,
            bytes,
            quantity: quantity(bytes),
        }
    }
}

/// `bytes` as a Kubernetes quantity: whole Gi or Mi when exact, else Ki, else bytes.
pub fn quantity(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    match bytes {
        0 => "0".into(),
        b if b % GIB == 0 => format!("{}Gi", b / GIB),
        b if b % MIB == 0 => format!("{}Mi", b / MIB),
        b if b % 1024 == 0 => format!("{}Ki", b / 1024),
        b => b.to_string(),
    }
}

/// One thing memglass found, with the figures behind it and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: Kind,
    /// How urgent.
    pub severity: Severity,
    /// What it is about.
    pub subject: SubjectKind,
    /// Namespace of the pod (null: unknown, or not about a pod).
    pub namespace: Option<String>,
    /// Pod name (null: unknown, or not about a pod).
    pub pod: Option<String>,
    /// Container name (null: unknown, or not about a container).
    pub container: Option<String>,
    /// Pod UID, when about a pod.
    pub pod_uid: Option<String>,
    /// The cgroup path (null: the node, or a pod without a cgroup).
    pub cgroup: Option<String>,
    /// What is wrong, in one sentence.
    pub summary: String,
    /// The figures behind it.
    pub evidence: Vec<Evidence>,
    /// What to do.
    pub remedy: Remedy,
}

impl Finding {
    /// A finding about `cgroup` (a pod, a container or another cgroup).
    fn about(kind: Kind, severity: Severity, cgroup: &CgroupReport) -> Finding {
        use memglass_identify::CgroupKind;
        Finding {
            kind,
            severity,
            subject: match cgroup.kind {
                CgroupKind::Pod => SubjectKind::Pod,
                CgroupKind::Container => SubjectKind::Container,
                _ => SubjectKind::Cgroup,
            },
            namespace: cgroup.namespace.clone(),
            pod: cgroup.pod.clone(),
            container: cgroup.container.clone(),
            pod_uid: cgroup.pod_uid.clone(),
            cgroup: Some(cgroup.path.clone()),
            summary: String::new(),
            evidence: Vec::new(),
            remedy: Remedy::default(),
        }
    }

    /// A finding about the node as a whole.
    fn about_node(kind: Kind, severity: Severity) -> Finding {
        Finding {
            kind,
            severity,
            subject: SubjectKind::Node,
            namespace: None,
            pod: None,
            container: None,
            pod_uid: None,
            cgroup: None,
            summary: String::new(),
            evidence: Vec::new(),
            remedy: Remedy::default(),
        }
    }

    /// `namespace/pod[/container]`, else the cgroup path, else `the node`.
    pub fn subject_name(&self) -> String {
        match (&self.namespace, &self.pod, &self.container) {
            (Some(ns), Some(pod), Some(c)) => format!("{ns}/{pod}/{c}"),
            (Some(ns), Some(pod), None) => format!("{ns}/{pod}"),
            _ => match (&self.cgroup, &self.pod_uid) {
                (Some(path), _) => path.clone(),
                (None, Some(uid)) => format!("pod {uid}"),
                (None, None) => "the node".into(),
            },
        }
    }

    /// True when the finding is about `cgroup` or a cgroup below it.
    pub fn within(&self, cgroup: &str) -> bool {
        let prefix = cgroup.trim_end_matches('/');
        self.cgroup.as_deref().is_some_and(|path| {
            prefix.is_empty()
                || path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// The schema name of `memglass diagnose --json` and the agent's `/api/v1/findings`.
pub const SCHEMA: &str = "memglass.diagnose/v1";

/// The `memglass.diagnose/v1` document (docs/json-format.md).
#[derive(Debug, Clone, Serialize)]
pub struct Document<'a> {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// When the figures were read, RFC 3339.
    pub taken_at: String,
    /// Most severe first.
    pub findings: &'a [Finding],
}

/// Tunables of the rules, with kubelet's defaults where kubelet has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// How near its threshold a signal must come for `eviction_next` (and for
    /// `exceeds_request` to become a warning).
    pub eviction_margin: crate::eviction::Margin,
    /// KEP-2570's memory throttling factor (kubelet's `memoryThrottlingFactor`, 0.9).
    pub memory_throttling_factor: f64,
    /// The machine's page size (memory.high is a whole number of pages).
    pub page_size: u64,
    /// Unix seconds now (how old kills are, when a leak reaches its limit).
    pub now: i64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            eviction_margin: crate::eviction::Margin::DEFAULT,
            memory_throttling_factor: 0.9,
            page_size: 4096,
            now: 0,
        }
    }
}

/// Everything the rules look at; the caller gathers it (the CLI now, the agent each
/// collection).
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The node and its cgroups now.
    pub snapshot: &'a Snapshot,
    /// The pods' specs, the node's allocatable.
    pub directory: &'a Directory,
    /// kubelet's signals and ranking.
    pub eviction: &'a EvictionReport,
    /// Requests and limits against the measured peaks.
    pub sizing: &'a SizingReport,
    /// OOM kills of the window the caller chose (the CLI's `--since`, the agent's hour).
    pub kills: &'a [RecentKill],
    /// The files behind the largest page-cache holders (may be empty).
    pub cache_holders: &'a [CacheHolder],
    /// Working-set history of cgroups (may be empty: no leak findings).
    pub histories: &'a [History],
    /// The rules' tunables.
    pub settings: Settings,
}

/// Every finding for `inputs`, most severe first (then by [`Kind::ALL`]'s order, then by
/// subject).
pub fn diagnose(inputs: &Inputs<'_>) -> Vec<Finding> {
    let index: Index<'_> = inputs
        .snapshot
        .cgroups
        .iter()
        .map(|c| (c.path.as_str(), c))
        .collect();
    let mut findings = Vec::new();
    kills::check(inputs, &index, &mut findings);
    requests::check(inputs, &index, &mut findings);
    missing::check(inputs, &mut findings);
    leak::check(inputs, &index, &mut findings);
    findings.sort_by(|a, b| {
        (a.severity, a.kind, a.subject_name()).cmp(&(b.severity, b.kind, b.subject_name()))
    });
    findings
}

/// Memory QoS as Kubernetes' MemoryQoS feature (KEP-2570) sets it for a container cgroup
/// (kubelet's `kuberuntime_container_linux.go`): `memory.min` = the request, and
/// `memory.high` = floor((request + factor × (limit, or node allocatable without one, −
/// request)) / page size) × page size, so the kernel throttles and reclaims before the
/// limit kills. Like kubelet, no memory.high when request = limit (Guaranteed pods) or when
/// the result is not above the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryQos {
    /// memory.min: the request (0 without one).
    pub min: u64,
    /// memory.high.
    pub high: u64,
}

/// [`MemoryQos`] for a request and a limit (`None` = not set), with `allocatable` standing
/// in for a missing limit.
pub fn memory_qos(
    request: Option<u64>,
    limit: Option<u64>,
    allocatable: Option<u64>,
    settings: &Settings,
) -> Option<MemoryQos> {
    let request = request.unwrap_or(0);
    if limit == Some(request) {
        return None;
    }
    let ceiling = limit.or(allocatable).filter(|&c| c > 0)?;
    let page = settings.page_size.max(1) as f64;
    let high =
        request as f64 + (ceiling as f64 - request as f64) * settings.memory_throttling_factor;
    let high = ((high / page).floor() * page) as u64;
    (high > request).then_some(MemoryQos { min: request, high })
}

/// The snapshot's cgroups by path (the rules look cgroups up by path a lot: a node has
/// thousands).
type Index<'a> = std::collections::HashMap<&'a str, &'a CgroupReport>;

/// `value` as a percentage of `whole`.
fn percent(value: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        value as f64 * 100.0 / whole as f64
    }
}

/// Whole MiB, for sentences.
fn mib(bytes: u64) -> String {
    let mib = bytes as f64 / MIB as f64;
    if mib >= 10.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

#[cfg(test)]
mod tests;
