//! The agent's Kubernetes Events sink: what memglass explains, posted on the pod it is
//! about, so `kubectl describe pod` shows it next to kubelet's own words (docs/api.md,
//! "Kubernetes Events").
//!
//! - `MemglassOOMKill` (Warning) on the victim's pod for each OOM kill the agent records
//!   (kernel log or counters): whose limit was hit (the scope), what dominated, the limit
//!   and the peak. Kills more than [`OOM_LOOKBACK`] before the agent started are not
//!   posted.
//! - `MemglassEvictionNext` (Warning) on the pod that is next in kubelet's eviction order
//!   while an eviction signal is near its threshold: available < threshold + margin, the
//!   margin being `--eviction-margin` (a quantity, or a percentage of the threshold;
//!   default 20%). Posted when that pod or signal changes, and again every
//!   [`EVICTION_REPEAT`] while it lasts.
//!
//! Posting goes through memglass-kube ([`LiveSource::post_event`], kube-rs' `Recorder`):
//! a repeat of the same reason on the same pod within 6 minutes becomes a PATCH of the
//! first event's series (count, last time) rather than a new event. On top of that, at most
//! [`BURST`] events at once and one per [`REFILL`] after that leave this agent; the rest are
//! dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memglass_agent::oom::OomEvent;
use memglass_analyse::eviction::{EvictionReport, RankedPod, Signal, SignalReport};
use memglass_kube::PodEvent;

use crate::live::LiveSource;
use crate::render::human::bytes;

/// Reason of the OOM event.
pub const REASON_OOM: &str = "MemglassOOMKill";
/// Reason of the eviction event.
pub const REASON_EVICTION: &str = "MemglassEvictionNext";
/// Events that may leave at once.
pub const BURST: u32 = 10;
/// One more event may leave per this much time.
pub const REFILL: Duration = Duration::from_secs(6);
/// Kills older than this before the agent started (still in the kernel's ring buffer, or
/// counted while it restarted) are recorded but not posted: the pod's events would show an
/// old kill as new.
pub const OOM_LOOKBACK: Duration = Duration::from_secs(300);
/// While the same pod stays next under the same signal, the event is posted again this
/// often (kube-rs' recorder then counts it in the series).
pub const EVICTION_REPEAT: Duration = Duration::from_secs(300);

pub use memglass_analyse::eviction::Margin;

/// The signal nearest its threshold among those within the margin, and the pod kubelet
/// would evict next, when both exist and the pod is named.
pub fn eviction_candidate(
    report: &EvictionReport,
    margin: Margin,
) -> Option<(&SignalReport, &RankedPod)> {
    let signal = report
        .signals
        .iter()
        .filter(|s| s.near(margin))
        .min_by_key(|s| s.margin)?;
    let pod = report.pods.get(report.next?)?;
    pod.namespace.as_ref()?;
    pod.pod.as_ref()?;
    Some((signal, pod))
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::MemoryAvailable => "memory.available",
        Signal::AllocatableMemoryAvailable => "allocatableMemory.available",
    }
}

/// The message of the eviction event.
pub fn eviction_note(signal: &SignalReport, pod: &RankedPod, margin: Margin) -> String {
    let b = |v: u64| bytes(Some(v));
    let position = if signal.met {
        format!(
            "{} below the hard threshold {}: kubelet is evicting",
            b(signal.threshold.saturating_sub(signal.available)),
            b(signal.threshold)
        )
    } else {
        format!(
            "{} above the hard threshold {}; memglass warns within {}",
            b(signal.available.saturating_sub(signal.threshold)),
            b(signal.threshold),
            b(margin.bytes(signal.threshold))
        )
    };
    let usage = match (pod.working_set, pod.usage_over_request) {
        (Some(ws), Some(over)) if over > 0 => format!(
            "working set {} is {} over its memory request {}",
            b(ws),
            b(over.unsigned_abs()),
            b(pod.request.unwrap_or(0))
        ),
        (Some(ws), Some(over)) => format!(
            "working set {} is {} under its memory request {}",
            b(ws),
            b(over.unsigned_abs()),
            b(pod.request.unwrap_or(0))
        ),
        _ => "no memory statistics (kubelet evicts such pods first)".to_owned(),
    };
    format!(
        "Next in kubelet's memory eviction order: {} is {} on {} ({position}). This pod: {usage}, priority {}. kubelet ranks pods by usage above request, then lower priority, then usage − request.",
        signal_name(signal.signal),
        b(signal.available),
        signal.cgroup,
        pod.priority,
    )
}

/// Whose limit the scope names, in words.
fn scope_words(event: &OomEvent) -> String {
    let memcg = event.oom_memcg.as_deref().unwrap_or("?");
    match event.scope.as_str() {
        "container" => format!("the container's own memory limit was hit ({memcg})"),
        "pod" => format!("the pod's memory limit was hit ({memcg})"),
        "qos" => format!("the QoS class cgroup's memory limit was hit ({memcg})"),
        "kubepods" => {
            format!("the node's allocatable memory for pods was used up ({memcg})")
        }
        "node" => "the whole node ran out of memory (no cgroup limit was hit)".to_owned(),
        "cgroup" => format!("the memory limit of cgroup {memcg} was hit"),
        other => format!("scope {other} ({memcg})"),
    }
}

/// The message of the OOM event, or `None` when the victim's pod is not named (no event
/// can be posted without its namespace and name).
pub fn oom_note(event: &OomEvent) -> Option<String> {
    event.namespace.as_ref()?;
    event.pod.as_ref()?;
    let b = |v: Option<u64>| bytes(v);
    let victim = match (&event.container, event.pid, &event.comm) {
        (Some(c), Some(pid), Some(comm)) => format!("container {c}, pid {pid} ({comm})"),
        (Some(c), _, _) => format!("container {c}"),
        (None, Some(pid), Some(comm)) => format!("pid {pid} ({comm})"),
        _ => "a process of this pod".to_owned(),
    };
    let kills = if event.kills > 1 {
        format!("{} OOM kills", event.kills)
    } else {
        "OOM kill".to_owned()
    };
    let mut note = format!(
        "Kernel {kills} in {victim}: {}. Limit {}, peak {}.",
        scope_words(event),
        b(event.limit),
        b(event.peak)
    );
    if let Some(cause) = &event.cause {
        note.push_str(&format!(" {cause} dominated the memory under that limit"));
        if event.anon_rss.is_some() || event.file_rss.is_some() || event.shmem_rss.is_some() {
            note.push_str(&format!(
                "; the victim's RSS at the kill: anon {}, file {}, shmem {}",
                b(event.anon_rss),
                b(event.file_rss),
                b(event.shmem_rss)
            ));
        }
        note.push('.');
    }
    let source = match event.source {
        memglass_agent::oom::OomSource::KernelLog => "the kernel log",
        _ => "cgroup counters",
    };
    note.push_str(&format!(" From {source}"));
    if let Some(id) = event.id {
        note.push_str(&format!("; details: memglass agent /api/v1/oom/{id}"));
    }
    note.push('.');
    Some(note)
}

/// Events leave at most [`BURST`] at once, then one per [`REFILL`].
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        self.tokens = (self.tokens + refilled).min(f64::from(BURST));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The sink: decides what to post, and posts it through the live source's API watch.
#[derive(Debug)]
pub struct EventSink {
    margin: Margin,
    bucket: Bucket,
    /// The eviction event last posted: (pod UID, signal), when.
    last_eviction: Option<((String, Signal), Instant)>,
    /// Events not posted for the rate limit (shared with the health handlers).
    pub dropped: Arc<AtomicU64>,
    /// Unix seconds: kills before this are not posted (start − [`OOM_LOOKBACK`]).
    oldest_kill: i64,
}

impl EventSink {
    pub fn new(margin: Margin) -> EventSink {
        EventSink {
            margin,
            bucket: Bucket {
                tokens: f64::from(BURST),
                at: Instant::now(),
            },
            last_eviction: None,
            dropped: Arc::new(AtomicU64::new(0)),
            oldest_kill: memglass_agent::shared::unix_seconds(std::time::SystemTime::now())
                - OOM_LOOKBACK.as_secs() as i64,
        }
    }

    /// Post what this collection calls for.
    pub fn collected(&mut self, live: &LiveSource, eviction: &EvictionReport, ooms: &[OomEvent]) {
        let now = Instant::now();
        let oldest = self.oldest_kill;
        for event in ooms.iter().filter(|e| e.time >= oldest) {
            let (Some(note), Some(uid)) = (oom_note(event), event.pod_uid.clone()) else {
                continue;
            };
            self.post(
                live,
                now,
                PodEvent {
                    namespace: event.namespace.clone().unwrap_or_default(),
                    name: event.pod.clone().unwrap_or_default(),
                    uid,
                    warning: true,
                    reason: REASON_OOM.into(),
                    action: "ExplainOOMKill".into(),
                    note,
                },
            );
        }
        let Some((signal, pod)) = eviction_candidate(eviction, self.margin) else {
            self.last_eviction = None;
            return;
        };
        let key = (pod.pod_uid.clone(), signal.signal);
        let due = match &self.last_eviction {
            Some((last, at)) => *last != key || now.duration_since(*at) >= EVICTION_REPEAT,
            None => true,
        };
        if !due {
            return;
        }
        self.last_eviction = Some((key, now));
        self.post(
            live,
            now,
            PodEvent {
                namespace: pod.namespace.clone().unwrap_or_default(),
                name: pod.pod.clone().unwrap_or_default(),
                uid: pod.pod_uid.clone(),
                warning: true,
                reason: REASON_EVICTION.into(),
                action: "RankForEviction".into(),
                note: eviction_note(signal, pod, self.margin),
            },
        );
    }

    fn post(&mut self, live: &LiveSource, now: Instant, event: PodEvent) {
        if !self.bucket.take(now) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // A full queue is counted by the watch itself.
        live.post_event(event);
    }
}

/// The API watch and this sink, as the agent's health handlers read them.
#[derive(Debug)]
pub struct KubeHealthSource {
    pub watch: Arc<memglass_kube::NodeWatch>,
    pub events_enabled: bool,
    pub dropped: Arc<AtomicU64>,
}

impl memglass_agent::KubeStatus for KubeHealthSource {
    fn health(&self) -> memglass_agent::KubeHealth {
        let s = self.watch.status();
        let unix = |t: Option<std::time::SystemTime>| t.map(memglass_agent::shared::unix_seconds);
        memglass_agent::KubeHealth {
            node: s.node,
            connected: s.connected,
            synced: s.synced,
            last_contact: unix(s.last_contact),
            last_update: unix(s.last_update),
            last_error: s.last_error,
            watch_errors: s.errors,
            pods: s.pods as u64,
            events_enabled: self.events_enabled,
            events_posted: s.events_posted,
            events_failed: s.events_failed,
            events_dropped: s.events_dropped + self.dropped.load(Ordering::Relaxed),
            last_event_error: s.last_event_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memglass_agent::oom::OomSource;
    use memglass_analyse::eviction::CapacitySource;

    const MIB: u64 = 1 << 20;

    fn signal(available: u64, threshold: u64) -> SignalReport {
        SignalReport {
            signal: Signal::MemoryAvailable,
            cgroup: "/".into(),
            capacity: 2048 * MIB,
            capacity_source: CapacitySource::MemTotal,
            working_set: (2048 * MIB).saturating_sub(available),
            available,
            threshold,
            margin: available as i64 - threshold as i64,
            met: available < threshold,
        }
    }

    #[test]
    fn near_means_available_below_threshold_plus_margin() {
        let twenty = Margin::PercentOfThreshold(20.0);
        // 100Mi threshold, 20% margin: near below 120Mi available.
        assert!(!signal(200 * MIB, 100 * MIB).near(twenty));
        assert!(!signal(120 * MIB, 100 * MIB).near(twenty));
        assert!(signal(120 * MIB - 1, 100 * MIB).near(twenty));
        assert!(signal(100 * MIB, 100 * MIB).near(twenty));
        // Past the threshold (kubelet evicting) is near too.
        assert!(signal(10 * MIB, 100 * MIB).near(twenty));
        // A margin of 0: only a met threshold.
        let zero = Margin::Bytes(0);
        assert!(!signal(100 * MIB, 100 * MIB).near(zero));
        assert!(signal(100 * MIB - 1, 100 * MIB).near(zero));
        assert_eq!(Margin::Bytes(7).bytes(100 * MIB), 7);
        assert_eq!(twenty.bytes(100 * MIB), 20 * MIB);
    }

    fn ranked(uid: &str, named: bool) -> RankedPod {
        RankedPod {
            rank: 1,
            pod_uid: uid.into(),
            namespace: named.then(|| "shop".into()),
            pod: named.then(|| "web-0".into()),
            qos_class: None,
            priority: 0,
            priority_class: None,
            request: Some(100 * MIB),
            requests_known: true,
            working_set: Some(300 * MIB),
            exceeds_request: Some(true),
            usage_over_request: Some(200 * MIB as i64),
            evictable: true,
            protected: None,
            cgroup: Some("/kubepods/burstable/podx".into()),
        }
    }

    #[test]
    fn the_next_pod_is_named_only_near_the_threshold() {
        let mut report = EvictionReport {
            threshold: memglass_analyse::eviction::DEFAULT_THRESHOLD,
            signals: vec![signal(500 * MIB, 100 * MIB)],
            under_pressure: false,
            next: Some(0),
            pods: vec![ranked("u1", true)],
        };
        let margin = Margin::PercentOfThreshold(20.0);
        assert!(eviction_candidate(&report, margin).is_none());
        report.signals.push(signal(110 * MIB, 100 * MIB));
        let (s, p) = eviction_candidate(&report, margin).unwrap();
        assert_eq!((s.available, p.pod_uid.as_str()), (110 * MIB, "u1"));
        assert_eq!(
            eviction_note(s, p, margin),
            "Next in kubelet's memory eviction order: memory.available is 110.0 MiB on / \
             (10.0 MiB above the hard threshold 100.0 MiB; memglass warns within 20.0 MiB). \
             This pod: working set 300.0 MiB is 200.0 MiB over its memory request 100.0 MiB, \
             priority 0. kubelet ranks pods by usage above request, then lower priority, then \
             usage − request."
        );
        // An unnamed pod gets no event (it cannot be referred to).
        report.pods = vec![ranked("u2", false)];
        assert!(eviction_candidate(&report, margin).is_none());
    }

    fn oom(scope: &str) -> OomEvent {
        OomEvent {
            id: Some(7),
            time: 0,
            time_rfc3339: String::new(),
            source: OomSource::KernelLog,
            kills: 1,
            cgroup: Some("/kubepods/burstable/poda/c1".into()),
            oom_memcg: Some("/kubepods/burstable/poda/c1".into()),
            scope: scope.into(),
            constraint: Some("CONSTRAINT_MEMCG".into()),
            namespace: Some("shop".into()),
            pod: Some("web-0".into()),
            container: Some("app".into()),
            pod_uid: Some("a".into()),
            container_id: Some("c1".into()),
            pid: Some(4242),
            comm: Some("java".into()),
            anon_rss: Some(31 * MIB),
            file_rss: Some(MIB),
            shmem_rss: Some(0),
            limit: Some(32 * MIB),
            peak: Some(32 * MIB),
            cause: Some("anon".into()),
            memory: None,
            note: None,
            flight: Vec::new(),
        }
    }

    #[test]
    fn oom_messages_say_scope_cause_limit_and_peak() {
        assert_eq!(
            oom_note(&oom("container")).unwrap(),
            "Kernel OOM kill in container app, pid 4242 (java): the container's own memory \
             limit was hit (/kubepods/burstable/poda/c1). Limit 32.0 MiB, peak 32.0 MiB. anon \
             dominated the memory under that limit; the victim's RSS at the kill: anon 31.0 \
             MiB, file 1.0 MiB, shmem 0 B. From the kernel log; details: memglass agent \
             /api/v1/oom/7."
        );
        let mut pod = oom("pod");
        pod.oom_memcg = Some("/kubepods/burstable/poda".into());
        pod.source = OomSource::CgroupCounters;
        pod.kills = 2;
        pod.pid = None;
        pod.comm = None;
        pod.anon_rss = None;
        pod.file_rss = None;
        pod.shmem_rss = None;
        pod.cause = Some("shmem".into());
        pod.peak = None;
        assert_eq!(
            oom_note(&pod).unwrap(),
            "Kernel 2 OOM kills in container app: the pod's memory limit was hit \
             (/kubepods/burstable/poda). Limit 32.0 MiB, peak -. shmem dominated the memory \
             under that limit. From cgroup counters; details: memglass agent /api/v1/oom/7."
        );
        let mut node = oom("node");
        node.oom_memcg = None;
        assert!(oom_note(&node)
            .unwrap()
            .contains("the whole node ran out of memory (no cgroup limit was hit)"));
        let mut unnamed = oom("container");
        unnamed.pod = None;
        assert_eq!(oom_note(&unnamed), None);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_one_per_refill() {
        let start = Instant::now();
        let mut bucket = Bucket {
            tokens: f64::from(BURST),
            at: start,
        };
        for _ in 0..BURST {
            assert!(bucket.take(start));
        }
        assert!(!bucket.take(start));
        assert!(!bucket.take(start + REFILL / 2));
        assert!(bucket.take(start + REFILL + REFILL / 2));
        assert!(!bucket.take(start + REFILL + REFILL / 2));
    }
}
