//! The collector: the only code that makes the agent look at the machine, through a
//! [`Source`] the binary supplies. One thread, one collection per interval.
//!
//! Each collection is published to [`Shared::report`] (handlers see it at once), written
//! to the history in one transaction, and compared with the previous one for OOM kills,
//! each stored with its flight recorder.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use memglass_analyse::eviction::{self, Threshold};
use memglass_analyse::filecache::CacheHolder;
use memglass_analyse::{sizing, Snapshot};
use memglass_identify::Directory;

use crate::config::Retention;
use crate::findings::{self, LeakWatch};
use crate::oom::{self, CounterWatch, KernelOom, OomEvent};
use crate::shared::{Health, Report, Shared};
use crate::store::{Resolution, Writer};

/// One collection from a [`Source`]: the analysed snapshot and the directory that named
/// it (pods' requests, limits and priorities, the node's allocatable), which the eviction
/// and sizing analyses need and the snapshot does not carry.
#[derive(Debug, Clone)]
pub struct Collected {
    /// What was found.
    pub snapshot: Snapshot,
    /// What the runtime, `--pods`/`--node` and the API said about the pods and the node.
    pub directory: Directory,
}

/// Where collections come from: the binary's snapshot path (sources → identify → analyse).
pub trait Source: Send {
    /// One analysed snapshot of the machine, with the directory that named it.
    fn collect(&mut self) -> std::result::Result<Collected, String>;

    /// OOM reports from the kernel log since the last call, or `None` when the kernel log
    /// is not followed (kills are then found from counters). Called before
    /// [`Source::collect`], so that every kill reported is counted by the counters that
    /// collection reads.
    fn kernel_ooms(&mut self) -> Option<Vec<KernelOom>> {
        None
    }

    /// What the kernel log lost since the last call (ring-buffer overruns).
    fn kernel_log_losses(&mut self) -> KmsgLosses {
        KmsgLosses::default()
    }

    /// The `holders` largest page-cache holders of `snapshot` with their `files` largest
    /// files, measured now (`memglass_file_cache_bytes`); `None` when this source cannot
    /// look (a recorded tree).
    fn cache_holders(
        &mut self,
        _snapshot: &Snapshot,
        _holders: usize,
        _files: usize,
    ) -> Option<Vec<CacheHolder>> {
        None
    }

    /// Called once a collection is published and stored, with the OOM kills it revealed
    /// (as stored, ids set): the seam for sinks outside the agent, such as the binary's
    /// Kubernetes Events.
    fn published(&mut self, _report: &Report, _ooms: &[OomEvent]) {}

    /// Called after every collection, failed or not (e.g. to return freed memory).
    fn after_collection(&mut self) {}

    /// Resident memory of this process, for the agent's health (bytes).
    fn resident_bytes(&self) -> Option<u64> {
        None
    }
}

/// What the kernel log lost: the kernel overwrote records before they were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KmsgLosses {
    /// Overruns (`read` failed with EPIPE: records were overwritten since the last read).
    pub overruns: u64,
    /// Records skipped by those overruns (gaps in the sequence numbers).
    pub records: u64,
}

/// How the collector runs.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Time between collections.
    pub interval: Duration,
    /// History retention.
    pub retention: Retention,
    /// Minutes of the victim's samples kept with an OOM event.
    pub flight_minutes: u32,
    /// kubelet's hard eviction threshold the signals are compared with.
    pub eviction_threshold: Threshold,
    /// Which cached files are measured for `memglass_file_cache_bytes`, and how often.
    pub file_cache: FileCacheSchedule,
    /// The diagnosis rules' tunables (eviction margin, memory throttling factor).
    pub diagnose: memglass_analyse::diagnose::Settings,
}

/// The top files of the largest page-cache holders, measured every `every` collections
/// (the first included): `holders` × `files` series at most; `holders` 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCacheSchedule {
    /// Leaf cgroups with processes, largest page cache first.
    pub holders: usize,
    /// Files per holder, largest cached first (64 KiB or more).
    pub files: usize,
    /// Collections between two measurements.
    pub every: u64,
}

/// Collect forever (the thread ends with the process).
pub fn run(shared: &Arc<Shared>, mut writer: Writer, mut source: impl Source, schedule: Schedule) {
    let mut watch = CounterWatch::default();
    let mut leaks = LeakWatch::new(schedule.interval);
    let mut next = Instant::now();
    let mut seq = 0;
    // Kernel reports read before a collection that failed wait for the next one.
    let mut carried: Vec<KernelOom> = Vec::new();
    loop {
        let cpu_before = thread_cpu();
        let taken_at = SystemTime::now();
        let started = Instant::now();
        // The kernel log first: a kill it reports is counted by the counters read next.
        let kernel = source.kernel_ooms().map(|reports| {
            carried.extend(reports);
            std::mem::take(&mut carried)
        });
        let losses = source.kernel_log_losses();
        Health::add(&shared.health.kmsg_overruns, losses.overruns);
        Health::add(&shared.health.kmsg_records_lost, losses.records);
        match source.collect() {
            Ok(Collected {
                snapshot,
                directory,
            }) => {
                // The same pure analyses as `memglass eviction` and `memglass requests`,
                // once per collection: scrapes and API calls only present them.
                let eviction =
                    eviction::analyse(&snapshot, &directory, schedule.eviction_threshold);
                let sizing = sizing::analyse(&snapshot, &directory);
                seq += 1;
                let mut report = Report {
                    seq,
                    taken_at,
                    duration: started.elapsed(),
                    snapshot,
                    eviction,
                    sizing,
                    findings: Vec::new(),
                };
                let before = shared.latest();
                let health = &shared.health;
                Health::add(&health.vanished_cgroups, report.snapshot.vanished as u64);
                health.count_gaps(&report.snapshot);
                let files = schedule.file_cache;
                if files.holders > 0 && (seq - 1) % files.every.max(1) == 0 {
                    let measured =
                        source.cache_holders(&report.snapshot, files.holders, files.files);
                    shared.cache_holders.store(measured.map(Arc::new));
                }
                let ooms = record(
                    shared,
                    &mut writer,
                    &mut watch,
                    &report,
                    before.as_deref().map(|b| &b.snapshot),
                    kernel,
                    &schedule,
                );
                // After the kills are stored (they are findings at once), and before the
                // raw memory.stat maps go (v1's own-page counters are read).
                let holders = shared.cache_holders.load_full();
                report.findings = findings::compute(
                    &report,
                    &directory,
                    writer.store(),
                    holders.as_deref().map_or(&[], Vec::as_slice),
                    &mut leaks,
                    schedule.diagnose,
                );
                drop(directory);
                // The raw memory.stat maps are most of a report's size and nothing the
                // agent serves needs them (every named figure is kept): drop them.
                for cgroup in &mut report.snapshot.cgroups {
                    cgroup.stat = Default::default();
                }
                // /metrics once per collection, not once per scrape; stored first, so
                // whoever sees this report sees its metrics too.
                let exposition = crate::metrics::Exposition::render(shared, &report);
                shared.exposition.store(Some(Arc::new(exposition)));
                let report = Arc::new(report);
                shared.report.store(Some(Arc::clone(&report)));
                // Counted once published: whoever sees the count sees this collection.
                Health::add(&health.collections, 1);
                source.published(&report, &ooms);
            }
            Err(error) => {
                carried = kernel.unwrap_or_default();
                Health::add(&shared.health.collection_errors, 1);
                shared.health.set_error(Some(error));
            }
        }
        let used = thread_cpu().saturating_sub(cpu_before);
        Health::add(
            &shared.health.collection_cpu_usec,
            u64::try_from(used.as_micros()).unwrap_or(u64::MAX),
        );
        source.after_collection();
        if let Some(rss) = source.resident_bytes() {
            shared
                .health
                .resident_bytes
                .store(rss, std::sync::atomic::Ordering::Relaxed);
        }
        next += schedule.interval;
        let now = Instant::now();
        if next < now {
            // Collections took longer than the interval: skip the missed ticks.
            next = now;
        }
        std::thread::sleep(next - now);
    }
}

/// Store one collection and the OOM kills it revealed; returns those kills.
fn record(
    shared: &Shared,
    writer: &mut Writer,
    watch: &mut CounterWatch,
    report: &Report,
    before: Option<&Snapshot>,
    kernel: Option<Vec<KernelOom>>,
    schedule: &Schedule,
) -> Vec<OomEvent> {
    let health = &shared.health;
    let t = report.unix_seconds();
    match writer.write(t, &report.snapshot) {
        Ok(rows) => {
            Health::add(&health.store_rows, rows as u64);
            health.store(|s| s.failing = false);
        }
        Err(error) => store_failed(health, &error),
    }
    if let Err(error) = writer.prune(t, &schedule.retention) {
        store_failed(health, &error);
    }
    if let Err(error) = writer.enforce_max_bytes() {
        store_failed(health, &error);
    }
    health.store(|s| s.pruned_rows = writer.pruned_rows());
    let resume = kernel
        .as_ref()
        .and_then(|reports| reports.iter().rev().find_map(|k| k.resume.clone()));
    let events: Vec<OomEvent> = match kernel {
        Some(reports) => {
            let overruns = Health::get(&health.kmsg_overruns);
            let events = watch.reconcile(t, &report.snapshot, before, &reports, overruns);
            let lost = events
                .iter()
                .filter(|e| e.source != oom::OomSource::KernelLog)
                .map(|e| e.kills)
                .sum();
            Health::add(&health.oom_reports_lost, lost);
            events
        }
        None => watch.observe(t, &report.snapshot, before),
    };
    if let Ok(mut kills) = shared.oom_kills.lock() {
        // Kills since the agent started: a fresh history reads the whole kernel ring
        // buffer, whose older kills are stored as events but are not news to Prometheus.
        let started = crate::shared::unix_seconds(shared.started_at) - 2;
        for event in events.iter().filter(|e| e.time >= started && e.kills > 0) {
            kills.add(event);
        }
        kills.expire(t);
    }
    let mut stored = Vec::with_capacity(events.len());
    for mut event in events {
        if let Some(path) = &event.cgroup {
            let from = event.time - i64::from(schedule.flight_minutes) * 60;
            event.flight = writer
                .store()
                .history(path, from, event.time, Resolution::Raw)
                .unwrap_or_default();
        }
        match writer.insert_oom(&event) {
            Ok(id) => {
                Health::add(&health.oom_events, 1);
                event.id = Some(id);
            }
            Err(error) => store_failed(health, &error),
        }
        event.flight = Vec::new(); // stored; sinks get the event, not its history
        stored.push(event);
    }
    if let Some(resume) = resume {
        if let Err(error) = writer.store().set_meta(KMSG_RESUME, &resume) {
            store_failed(health, &error);
        }
    }
    stored
}

/// The `meta` key holding where the kernel-log reader resumes.
pub const KMSG_RESUME: &str = "kmsg_resume";

/// A history write failed: counted, and shown in /api/v1/health (`store_errors`,
/// `database.failing`, `database.last_error`). The collection is still served.
fn store_failed(health: &Health, error: &crate::Error) {
    Health::add(&health.store_errors, 1);
    let line = error.to_string().replace('\n', " ");
    health.store(|s| {
        s.failing = true;
        s.last_error = Some((crate::shared::unix_seconds(SystemTime::now()), line.clone()));
    });
    health.set_error(Some(line));
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Fill the history with `span` of copies of `snapshot`, one per `interval`, ending now
/// (benchmarks and tests: a day of history in seconds). Each copy moves every cgroup's
/// sizes by a few pages, differently per cgroup and collection, so that the history takes
/// the room a busy node's does (identical copies would compress to almost nothing).
/// Returns the rows written.
pub fn simulate_history(
    writer: &mut Writer,
    snapshot: &Snapshot,
    span: Duration,
    interval: Duration,
) -> crate::Result<u64> {
    let now = crate::shared::unix_seconds(SystemTime::now());
    let step = i64::try_from(interval.as_secs().max(1)).unwrap_or(10);
    let span = i64::try_from(span.as_secs()).unwrap_or(0);
    let mut rows = 0;
    let mut t = now - span;
    let mut copy = snapshot.clone();
    let mut n: u64 = 0;
    while t < now {
        for (k, (c, base)) in copy.cgroups.iter_mut().zip(&snapshot.cgroups).enumerate() {
            let (m, b) = (&mut c.memory, &base.memory);
            let pages = |salt: u64| {
                (n.wrapping_mul(7919) ^ (k as u64 + salt).wrapping_mul(104_729)) % 17 * 4096
            };
            m.usage = b.usage.map(|v| v + pages(1) + pages(2));
            m.anon = b.anon.map(|v| v + pages(1));
            m.active_anon = b.active_anon.map(|v| v + pages(1));
            m.file = b.file.map(|v| v + pages(2));
            m.active_file = b.active_file.map(|v| v + pages(2));
            m.kernel = b.kernel.map(|v| v + pages(3));
        }
        rows += writer.write(t, &copy)? as u64;
        writer.enforce_max_bytes()?;
        t += step;
        n += 1;
    }
    Ok(rows)
}
