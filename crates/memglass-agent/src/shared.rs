//! State shared between the collector thread and the request handlers.
//!
//! One writer (the collector) publishes each new [`Report`] with `arc-swap`; handlers load
//! the current `Arc` without locking, so a slow scrape never delays a collection and a
//! collection never blocks a scrape. [`Health`] is a set of atomics the collector bumps.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use memglass_analyse::eviction::EvictionReport;
use memglass_analyse::sizing::SizingReport;
use memglass_analyse::Snapshot;

use crate::store::Store;

/// One collection: the analysed snapshot, kubelet's eviction view, the request/limit
/// sizing of its pods and the findings, and when and how it was taken.
#[derive(Debug, Clone)]
pub struct Report {
    /// 1 for the first collection since start, then counting up.
    pub seq: u64,
    /// Wall-clock time the collection started.
    pub taken_at: SystemTime,
    /// How long it took (wall).
    pub duration: Duration,
    /// What was found.
    pub snapshot: Snapshot,
    /// kubelet's eviction signals and ranking (`memglass eviction`).
    pub eviction: EvictionReport,
    /// Requests and limits against allocatable and the measured peaks (`memglass requests`).
    pub sizing: SizingReport,
    /// What is wrong and what to do (`memglass diagnose`), most severe first.
    pub findings: Vec<memglass_analyse::diagnose::Finding>,
}

impl Report {
    /// `taken_at` as Unix seconds.
    pub fn unix_seconds(&self) -> i64 {
        unix_seconds(self.taken_at)
    }
}

/// Unix seconds of a wall-clock time (0 before the epoch).
pub fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 3339 (seconds) of Unix seconds.
pub fn rfc3339(unix: i64) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The agent's own counters (exported as `memglass_agent_*`).
#[derive(Debug, Default)]
pub struct Health {
    /// Collections that produced a report.
    pub collections: AtomicU64,
    /// Collections that failed as a whole.
    pub collection_errors: AtomicU64,
    /// Cgroups that vanished while being read, summed over collections.
    pub vanished_cgroups: AtomicU64,
    /// CPU time the collector thread used, in microseconds.
    pub collection_cpu_usec: AtomicU64,
    /// /metrics requests answered.
    pub scrapes: AtomicU64,
    /// JSON API requests answered.
    pub api_requests: AtomicU64,
    /// Requests refused for a missing or wrong token.
    pub unauthorized: AtomicU64,
    /// Sample rows written to the history.
    pub store_rows: AtomicU64,
    /// History writes that failed.
    pub store_errors: AtomicU64,
    /// OOM kills recorded as events.
    pub oom_events: AtomicU64,
    /// Kernel log ring-buffer overruns (EPIPE: records overwritten before they were read).
    pub kmsg_overruns: AtomicU64,
    /// Kernel log records those overruns skipped.
    pub kmsg_records_lost: AtomicU64,
    /// OOM kills counted from the counters because their kernel report was not read.
    pub oom_reports_lost: AtomicU64,
    /// Resident memory of the agent process at the last collection (bytes).
    pub resident_bytes: AtomicU64,
    /// Parts of collections that could not be read, by source (gaps).
    pub gaps: Mutex<BTreeMap<&'static str, u64>>,
    /// The last collection or store error, in one line.
    pub last_error: Mutex<Option<String>>,
    /// The history database's own state (`database` in /api/v1/health).
    pub store: Mutex<StoreHealth>,
}

/// How the history database is doing: what /api/v1/health shows under `database`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// `--db-max-size` (bytes; `None`: no limit).
    pub max_bytes: Option<u64>,
    /// The last write failed (a full disk, an I/O error): the agent keeps serving from
    /// memory and tries again at the next collection.
    pub failing: bool,
    /// The last store error, in one line, and when (Unix seconds).
    pub last_error: Option<(i64, String)>,
    /// Rows pruned to stay under `max_bytes` since start (`--simulate-history` included).
    pub pruned_rows: u64,
    /// A corrupt database found at start: where it was moved, and why.
    pub moved_aside: Option<crate::store::MovedAside>,
}

impl Health {
    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Remember the latest error for /api/v1/health.
    pub fn set_error(&self, error: Option<String>) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }

    /// The latest error.
    pub fn error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Change the history database's state.
    pub fn store(&self, change: impl FnOnce(&mut StoreHealth)) {
        if let Ok(mut state) = self.store.lock() {
            change(&mut state);
        }
    }

    /// The history database's state.
    pub fn store_health(&self) -> StoreHealth {
        self.store.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Count one collection's gaps by source.
    pub fn count_gaps(&self, snapshot: &Snapshot) {
        if let Ok(mut gaps) = self.gaps.lock() {
            for gap in &snapshot.gaps {
                *gaps.entry(gap.source).or_insert(0) += 1;
            }
        }
    }

    /// Gaps by source so far.
    pub fn gaps(&self) -> BTreeMap<&'static str, u64> {
        self.gaps.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// What the collector and the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The latest report (`None` until the first collection).
    pub report: ArcSwapOption<Report>,
    /// The agent's counters.
    pub health: Health,
    /// The history (its own read connection; the collector writes through another).
    pub store: Mutex<Store>,
    /// The database file.
    pub db_path: PathBuf,
    /// When the agent started.
    pub started_at: SystemTime,
    /// The collection interval.
    pub interval: Duration,
    /// History retention (the API picks raw or one-minute samples from it).
    pub retention: crate::Retention,
    /// Whether request handlers need a bearer token.
    pub token: Option<String>,
    /// Where OOM kills come from (`kernel log` or `cgroup counters`), for /api/v1/health.
    pub oom_source: Mutex<String>,
    /// OOM kills per victim since start (`memglass_oom_kills_total`).
    pub oom_kills: Mutex<crate::oom::KillCounts>,
    /// Who this agent is (`memglass_node_info`).
    pub node: crate::config::NodeLabels,
    /// The opt-in metric families beyond the default budget.
    pub metric_families: crate::config::MetricFamilies,
    /// /metrics as rendered after the latest collection (both formats, gzip), so a scrape
    /// only sends bytes.
    pub exposition: ArcSwapOption<crate::metrics::Exposition>,
    /// The files behind the largest page-cache holders, as last measured
    /// (`memglass_file_cache_bytes`; every few collections).
    pub cache_holders: ArcSwapOption<Vec<memglass_analyse::filecache::CacheHolder>>,
    /// The per-file page-cache scanner, when the binary provides one.
    pub file_cache: std::sync::OnceLock<Box<dyn FileCache>>,
    /// The renderers of the eviction and requests documents, when the binary provides them.
    pub documents: std::sync::OnceLock<Box<dyn Documents>>,
    /// The Kubernetes API side (watch and events), when the binary asks the API.
    pub kube: std::sync::OnceLock<Box<dyn KubeStatus>>,
    /// Proactive reclaim (`POST /api/v1/reclaim`): set only when the agent runs with
    /// `--allow-reclaim` (which requires a token).
    pub reclaim: std::sync::OnceLock<Box<dyn Reclaim>>,
    /// A reclaim is running (one at a time; another request meanwhile gets 409).
    pub reclaim_running: std::sync::atomic::AtomicBool,
    /// Recent answers of the scanner by cgroup path (it is costly: at most one scan per
    /// cgroup per [`FILE_CACHE_TTL`], and one at a time).
    pub file_cache_answers: Mutex<BTreeMap<String, (std::time::Instant, serde_json::Value)>>,
}

/// How long a file-cache answer is reused.
pub const FILE_CACHE_TTL: Duration = Duration::from_secs(30);

/// Which files fill a cgroup's page cache (`memglass cache`), run on demand on a blocking
/// thread, never on the async workers. Implemented by the binary, which owns the readers.
pub trait FileCache: Send + Sync + std::fmt::Debug {
    /// The `memglass cache --json` document for `cgroup`, at most `top` files.
    fn files(
        &self,
        cgroup: &memglass_analyse::CgroupReport,
        top: usize,
    ) -> std::result::Result<serde_json::Value, String>;
}

/// Proactive reclaim of one pod's or container's cgroup (`memglass reclaim`), run on a
/// blocking thread, one at a time. Implemented by the binary, which owns the kernel writer.
pub trait Reclaim: Send + Sync + std::fmt::Debug {
    /// Reclaim `bytes` from `cgroup` within `timeout`: the `memglass.reclaim/v1` document.
    fn reclaim(
        &self,
        cgroup: &memglass_analyse::CgroupReport,
        bytes: u64,
        timeout: Duration,
    ) -> std::result::Result<serde_json::Value, ReclaimFailure>;

    /// A quantity ("200Mi", "1G", "4096") in bytes, as `memglass reclaim --bytes` reads it.
    fn quantity(&self, text: &str) -> std::result::Result<u64, String>;
}

/// Why a reclaim was not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReclaimFailure {
    /// Understood and refused (cgroup v1, not a pod or container, could swap): a 4xx.
    Refused(String),
    /// Tried and failed (the cgroup vanished, an I/O error): a 5xx.
    Failed(String),
}

/// The `memglass eviction --json` and `memglass requests --json` documents, written by the
/// binary's renderers so scripts get one format from the CLI and the API.
pub trait Documents: Send + Sync + std::fmt::Debug {
    /// The `memglass.eviction/v1` document (JSON text).
    fn eviction(
        &self,
        report: &EvictionReport,
        taken_at: SystemTime,
    ) -> std::result::Result<Vec<u8>, String>;

    /// The `memglass.requests/v1` document (JSON text).
    fn requests(
        &self,
        report: &SizingReport,
        taken_at: SystemTime,
    ) -> std::result::Result<Vec<u8>, String>;
}

/// How the agent's use of the Kubernetes API is doing, read at request time (the `kube`
/// object of /api/v1/health and the `memglass_agent_kube_*` metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KubeHealth {
    /// The node whose pods are watched.
    pub node: String,
    /// The API server answered the last request (watch or check).
    pub connected: bool,
    /// Pods and node have been listed at least once.
    pub synced: bool,
    /// Unix seconds of the last answer from the API (null: never).
    pub last_contact: Option<i64>,
    /// Unix seconds of the last change of the names served (null: never).
    pub last_update: Option<i64>,
    /// The last watch error, one line.
    pub last_error: Option<String>,
    /// Watch errors so far (each followed by a retry after a backoff).
    pub watch_errors: u64,
    /// Pods of this node known from the API.
    pub pods: u64,
    /// Whether Kubernetes Events are posted.
    pub events_enabled: bool,
    /// Events created or added to a series.
    pub events_posted: u64,
    /// Events the API refused or that timed out.
    pub events_failed: u64,
    /// Events not posted: over the rate limit, or the queue was full.
    pub events_dropped: u64,
    /// The last event error, one line.
    pub last_event_error: Option<String>,
}

/// The binary's Kubernetes API watch and event sink, as the handlers see them.
pub trait KubeStatus: Send + Sync + std::fmt::Debug {
    /// The current state.
    fn health(&self) -> KubeHealth;
}

impl Shared {
    /// Shared state around a read connection to the history.
    pub fn new(store: Store, config: &crate::Config) -> Arc<Shared> {
        Arc::new(Shared {
            report: ArcSwapOption::const_empty(),
            health: Health::default(),
            db_path: config.db.clone(),
            store: Mutex::new(store),
            started_at: SystemTime::now(),
            interval: config.interval,
            retention: config.retention,
            token: config.token.clone(),
            oom_source: Mutex::new("cgroup counters".into()),
            oom_kills: Mutex::new(crate::oom::KillCounts::default()),
            node: config.node.clone(),
            metric_families: config.metrics,
            exposition: ArcSwapOption::const_empty(),
            cache_holders: ArcSwapOption::const_empty(),
            file_cache: std::sync::OnceLock::new(),
            documents: std::sync::OnceLock::new(),
            kube: std::sync::OnceLock::new(),
            reclaim: std::sync::OnceLock::new(),
            reclaim_running: std::sync::atomic::AtomicBool::new(false),
            file_cache_answers: Mutex::new(BTreeMap::new()),
        })
    }

    /// The latest report.
    pub fn latest(&self) -> Option<Arc<Report>> {
        self.report.load_full()
    }
}
