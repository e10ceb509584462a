//! `/metrics`: every figure of the latest report, in Prometheus text or OpenMetrics.
//!
//! Rendered once per collection, right after it is published ([`Exposition`]: both
//! formats, gzip-compressed as they are written), so a scrape only sends bytes and label
//! sets of cgroups that vanished are gone with the next collection. Names and labels are
//! the contract in docs/metrics.md: prefix `memglass_`, base units, `_total` counters,
//! labels `namespace`, `pod`, `container` (empty when unknown) and `cgroup` (always).
//!
//! Cardinality (docs/metrics.md): a container cgroup gets 12 series by default
//! ([`CONTAINER_TYPES`] and the figures every panel and alert use); the rest of its
//! breakdown comes with `--metrics-families`. Pods and the cgroups above them get it all.

mod encode;
mod eviction;

use memglass_analyse::{CgroupReport, MemoryReport, NodeReport};

use encode::{labels, Encoder};
pub use encode::{Format, Kind};

use crate::shared::{Health, Shared};

/// A named figure of a cgroup's memory.
pub type CgroupFigure = (&'static str, fn(&MemoryReport) -> Option<u64>);
/// A named figure of the node.
pub type NodeFigure = (&'static str, fn(&NodeReport) -> Option<u64>);

/// Per-cgroup memory figures exported as `memglass_cgroup_memory_bytes{type=…}`.
/// Parts overlap (active_anon is part of anon, shmem of file): never sum across `type`.
pub const CGROUP_TYPES: [CgroupFigure; 14] = [
    ("anon", |m| m.anon),
    ("active_anon", |m| m.active_anon),
    ("inactive_anon", |m| m.inactive_anon),
    ("file", |m| m.file),
    ("active_file", |m| m.active_file),
    ("inactive_file", |m| m.inactive_file),
    ("shmem", |m| m.shmem),
    ("file_mapped", |m| m.file_mapped),
    ("file_dirty", |m| m.file_dirty),
    ("file_writeback", |m| m.file_writeback),
    ("kernel", |m| m.kernel),
    ("swap", |m| m.swap),
    ("unevictable", |m| m.unevictable),
    ("peak", |m| m.peak),
];

/// The memory.stat types a container cgroup exports by default (all of
/// [`CGROUP_TYPES`] with the `container_types` family): anon and its inactive part (the
/// seeds' leak suspect), the page cache split kubelet's working set turns on, tmpfs, dirty
/// pages and kernel memory.
pub const CONTAINER_TYPES: [&str; 7] = [
    "anon",
    "inactive_anon",
    "active_file",
    "inactive_file",
    "shmem",
    "file_dirty",
    "kernel",
];

/// Node figures exported as `memglass_node_memory_bytes{type=…}`.
pub const NODE_TYPES: [NodeFigure; 23] = [
    ("mem_total", |n| Some(n.mem_total)),
    ("mem_free", |n| Some(n.mem_free)),
    ("mem_available", |n| n.mem_available),
    ("buffers", |n| n.buffers),
    ("active_anon", |n| n.active_anon),
    ("inactive_anon", |n| n.inactive_anon),
    ("active_file", |n| n.active_file),
    ("inactive_file", |n| n.inactive_file),
    ("unevictable", |n| n.unevictable),
    ("shmem", |n| n.shmem),
    ("dirty", |n| n.dirty),
    ("writeback", |n| n.writeback),
    ("slab_reclaimable", |n| n.slab_reclaimable),
    ("slab_unreclaimable", |n| n.slab_unreclaimable),
    ("kernel_stack", |n| n.kernel_stack),
    ("pagetables", |n| n.pagetables),
    ("vmalloc", |n| n.vmalloc),
    ("percpu", |n| n.percpu),
    ("hugetlb", |n| n.hugetlb),
    ("application", |n| Some(n.application)),
    ("kernel_named", |n| Some(n.kernel_named)),
    ("alloc_page", |n| Some(n.alloc_page)),
    ("kernel", |n| Some(n.kernel)),
];

/// The four identity labels of a cgroup, escaped and joined.
pub fn cgroup_labels(cgroup: &CgroupReport) -> String {
    labels(&[
        ("namespace", cgroup.namespace.as_deref().unwrap_or("")),
        ("pod", cgroup.pod.as_deref().unwrap_or("")),
        ("container", cgroup.container.as_deref().unwrap_or("")),
        ("cgroup", &cgroup.path),
    ])
}

/// Render the whole exposition now (before the first collection's [`Exposition`], and in
/// tests).
pub fn render(shared: &Shared, format: Format) -> String {
    let report = shared.latest();
    let cgroups = report.as_ref().map_or(0, |r| r.snapshot.cgroups.len());
    // About 15 samples of ~150 bytes per cgroup: reserve once.
    let mut out = String::with_capacity(4096 + cgroups * 2400);
    let mut e = Encoder::new(&mut out, format);
    write_all(&mut e, shared, report.as_deref());
    e.finish();
    out
}

/// /metrics of one collection in both formats, gzip-compressed.
#[derive(Debug, Clone)]
pub struct Exposition {
    /// The collection it shows.
    pub seq: u64,
    openmetrics: axum::body::Bytes,
    prometheus: axum::body::Bytes,
    /// Uncompressed sizes (OpenMetrics, Prometheus text), for health and benchmarks.
    pub plain_bytes: [usize; 2],
}

impl Exposition {
    /// Render both formats of `report` (about to be published), each streamed into gzip
    /// as it is written (64 KiB of text at a time: the plain text never sits whole in
    /// memory).
    pub fn render(shared: &Shared, report: &crate::Report) -> Exposition {
        let mut buffer = String::with_capacity(70 << 10);
        let mut one = |format: Format| {
            let mut gz = CountingGzip::new();
            let mut e = Encoder::spilling(&mut buffer, format, &mut gz);
            write_all(&mut e, shared, Some(report));
            e.finish();
            gz.finish()
        };
        let (openmetrics, om_plain) = one(Format::OpenMetrics);
        let (prometheus, prom_plain) = one(Format::Prometheus);
        Exposition {
            seq: report.seq,
            openmetrics,
            prometheus,
            plain_bytes: [om_plain, prom_plain],
        }
    }

    /// The body in `format`: gzip-compressed (`true`) when the client takes it, else
    /// decompressed here (rare: Prometheus and VictoriaMetrics always ask for gzip).
    pub fn body(&self, format: Format, gzip: bool) -> (axum::body::Bytes, bool) {
        let compressed = match format {
            Format::OpenMetrics => &self.openmetrics,
            Format::Prometheus => &self.prometheus,
        };
        if gzip {
            return (compressed.clone(), true);
        }
        let mut plain =
            Vec::with_capacity(self.plain_bytes[usize::from(format == Format::Prometheus)]);
        match std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&compressed[..]),
            &mut plain,
        ) {
            Ok(_) => (plain.into(), false),
            // Our own gzip in memory: unreadable only if memory is corrupt.
            Err(_) => (compressed.clone(), true),
        }
    }
}

/// A gzip stream into memory that counts the text it was given.
struct CountingGzip {
    gz: flate2::write::GzEncoder<Vec<u8>>,
    plain: usize,
}

impl CountingGzip {
    fn new() -> CountingGzip {
        CountingGzip {
            // Level 1: a tenth of the text's size at a fraction of the default's CPU.
            gz: flate2::write::GzEncoder::new(
                Vec::with_capacity(64 << 10),
                flate2::Compression::fast(),
            ),
            plain: 0,
        }
    }

    fn finish(self) -> (axum::body::Bytes, usize) {
        let bytes = self.gz.finish().unwrap_or_default();
        (bytes.into(), self.plain)
    }
}

impl std::io::Write for CountingGzip {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.gz.write(data)?;
        self.plain += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.gz.flush()
    }
}

fn write_all(e: &mut Encoder<'_>, shared: &Shared, report: Option<&crate::Report>) {
    if let Some(report) = report {
        let label_sets: Vec<String> = report.snapshot.cgroups.iter().map(cgroup_labels).collect();
        write_cgroups(
            e,
            &report.snapshot.cgroups,
            &label_sets,
            shared.metric_families,
        );
        write_node(
            e,
            &report.snapshot.node,
            report.snapshot.reconciliation.residual,
        );
        let by_path: eviction::LabelsByPath<'_> = report
            .snapshot
            .cgroups
            .iter()
            .zip(&label_sets)
            .map(|(c, l)| (c.path.as_str(), l.as_str()))
            .collect();
        eviction::write_eviction(e, &report.eviction, &by_path);
        eviction::write_sizing(
            e,
            &report.sizing,
            &by_path,
            shared.metric_families.container_sizing,
        );
        if let Some(holders) = shared.cache_holders.load_full() {
            write_file_cache(e, &holders, &by_path);
        }
        write_findings(e, &report.findings);
        write_collection(e, report);
    }
    write_oom_kills(e, shared);
    write_node_info(e, &shared.node);
    write_agent(e, &shared.health);
    if let Some(kube) = shared.kube.get() {
        write_kube(e, &kube.health());
    }
}

fn write_cgroups(
    e: &mut Encoder<'_>,
    cgroups: &[CgroupReport],
    label_sets: &[String],
    families: crate::config::MetricFamilies,
) {
    let each = |e: &mut Encoder<'_>, f: &dyn Fn(&CgroupReport) -> Option<u64>| {
        for (cgroup, labels) in cgroups.iter().zip(label_sets) {
            if let Some(value) = f(cgroup) {
                e.sample(labels, None, value);
            }
        }
    };
    let container = |c: &CgroupReport| c.kind == memglass_identify::CgroupKind::Container;
    e.family(
        "memglass_cgroup_memory_usage_bytes",
        Kind::Gauge,
        "Memory charged to the cgroup and its descendants (v2 memory.current, v1 memory.usage_in_bytes).",
    );
    each(e, &|c| c.memory.usage);
    e.family(
        "memglass_cgroup_memory_bytes",
        Kind::Gauge,
        "Memory of the cgroup by type, from memory.stat (types overlap: do not sum across type).",
    );
    for (cgroup, labels) in cgroups.iter().zip(label_sets) {
        let all = !container(cgroup) || families.container_types;
        for (name, figure) in CGROUP_TYPES {
            if !all && !CONTAINER_TYPES.contains(&name) {
                continue;
            }
            if let Some(value) = figure(&cgroup.memory) {
                e.sample(labels, Some(("type", name)), value);
            }
        }
    }
    e.family(
        "memglass_cgroup_memory_working_set_bytes",
        Kind::Gauge,
        "Working set as the seeds define it: inactive_anon + active_anon + active_file.",
    );
    each(e, &|c| c.memory.working_set);
    e.family(
        "memglass_cgroup_memory_working_set_kubelet_bytes",
        Kind::Gauge,
        "Working set as kubelet evicts on it: usage - inactive_file, floored at 0.",
    );
    each(e, &|c| c.memory.working_set_kubelet);
    e.family(
        "memglass_cgroup_memory_limit_bytes",
        Kind::Gauge,
        "Hard memory limit (v2 memory.max, v1 memory.limit_in_bytes); absent when unlimited.",
    );
    each(e, &|c| c.memory.limit);
    e.family(
        "memglass_cgroup_memory_events",
        Kind::Counter,
        "Memory events of the cgroup and its descendants (memory.events; v1 oom_kill summed up the tree, failcnt).",
    );
    for (cgroup, labels) in cgroups.iter().zip(label_sets) {
        let all = !container(cgroup) || families.container_events;
        let ev = &cgroup.events;
        for (name, value) in [
            ("low", ev.low),
            ("high", ev.high),
            ("max", ev.max),
            ("oom", ev.oom),
            ("oom_kill", ev.oom_kill),
            ("oom_group_kill", ev.oom_group_kill),
            ("failcnt", ev.failcnt),
        ] {
            if !all && name != "oom_kill" {
                continue;
            }
            if let Some(value) = value {
                e.sample(labels, Some(("event", name)), value);
            }
        }
    }
    e.family(
        "memglass_cgroup_memory_pressure_stalled_seconds",
        Kind::Counter,
        "Time tasks of the cgroup stalled on memory (v2 memory.pressure total; kind some or full).",
    );
    for (cgroup, labels) in cgroups.iter().zip(label_sets) {
        if container(cgroup) && !families.container_pressure {
            continue;
        }
        if let Some(pressure) = &cgroup.pressure {
            let secs = |usec: u64| usec as f64 / 1e6;
            e.sample(
                labels,
                Some(("kind", "some")),
                secs(pressure.some.total_usec),
            );
            if let Some(full) = &pressure.full {
                e.sample(labels, Some(("kind", "full")), secs(full.total_usec));
            }
        }
    }
}

fn write_node(e: &mut Encoder<'_>, node: &NodeReport, residual: i64) {
    e.family(
        "memglass_node_memory_bytes",
        Kind::Gauge,
        "Node memory by type from /proc/meminfo; application, kernel_named, alloc_page and kernel are memglass's breakdown.",
    );
    for (name, figure) in NODE_TYPES {
        if let Some(value) = figure(node) {
            e.sample("", Some(("type", name)), value);
        }
    }
    e.family(
        "memglass_node_memory_available_bytes",
        Kind::Gauge,
        "kubelet's eviction signal: MemTotal - (root usage - root inactive_file).",
    );
    if let Some(value) = node.memory_available {
        e.sample("", None, value);
    }
    e.family(
        "memglass_node_reconciliation_residual_bytes",
        Kind::Gauge,
        "MemTotal minus (top-level cgroups + memory outside them + free): what nothing explains.",
    );
    e.sample("", None, residual);
    e.family(
        "memglass_node_oom_kills",
        Kind::Counter,
        "OOM kills since boot (/proc/vmstat oom_kill).",
    );
    if let Some(value) = node.oom_kill {
        e.sample("", None, value);
    }
}

fn write_collection(e: &mut Encoder<'_>, report: &crate::Report) {
    e.family(
        "memglass_agent_collection_duration_seconds",
        Kind::Gauge,
        "Wall time of the last collection.",
    );
    e.sample("", None, report.duration.as_secs_f64());
    e.family(
        "memglass_agent_last_collection_timestamp_seconds",
        Kind::Gauge,
        "When the last collection started (Unix time).",
    );
    e.sample("", None, report.unix_seconds());
    e.family(
        "memglass_agent_cgroups",
        Kind::Gauge,
        "Memory cgroups in the last collection.",
    );
    e.sample("", None, report.snapshot.cgroups.len());
}

/// `memglass_file_cache_bytes` and `memglass_file_cache_dirty_bytes`: the largest files
/// of the largest page-cache holders, as last measured (holders that vanished since are
/// left out). Dirty bytes only where the kernel tells them (cachestat, Linux 6.5+).
fn write_file_cache(
    e: &mut Encoder<'_>,
    holders: &[memglass_analyse::filecache::CacheHolder],
    by_path: &eviction::LabelsByPath<'_>,
) {
    let series = || {
        holders.iter().flat_map(|holder| {
            let cgroup = by_path.get(holder.cgroup.as_str());
            holder.files.iter().filter_map(move |file| {
                let file_label = labels(&[("file", &file.candidate.container_path)]);
                Some((format!("{},{file_label}", cgroup?), &file.cache))
            })
        })
    };
    e.family(
        "memglass_file_cache_bytes",
        Kind::Gauge,
        "Page cache of one of the largest files of one of the largest cache holders (cachestat or mincore).",
    );
    for (labels, cache) in series() {
        e.sample(&labels, None, cache.cached);
    }
    e.family(
        "memglass_file_cache_dirty_bytes",
        Kind::Gauge,
        "Dirty page cache of the same files, where the kernel tells it (cachestat).",
    );
    for (labels, cache) in series() {
        if let Some(dirty) = cache.dirty {
            e.sample(&labels, None, dirty);
        }
    }
}

/// `memglass_finding`: 1 for each finding that holds now (`memglass diagnose`'s kinds, a
/// fixed set; a subject has at most one series per kind).
fn write_findings(e: &mut Encoder<'_>, findings: &[memglass_analyse::diagnose::Finding]) {
    e.family(
        "memglass_finding",
        Kind::Gauge,
        "1 while a finding holds: kind (oom_killed, near_limit, eviction_next, leak, ...), severity and subject (docs/diagnose.md).",
    );
    let mut seen = std::collections::HashSet::new();
    for f in findings {
        let labels = labels(&[
            ("kind", f.kind.as_str()),
            ("severity", f.severity.as_str()),
            ("namespace", f.namespace.as_deref().unwrap_or("")),
            ("pod", f.pod.as_deref().unwrap_or("")),
            ("container", f.container.as_deref().unwrap_or("")),
            ("cgroup", f.cgroup.as_deref().unwrap_or("")),
        ]);
        let subject = (
            f.kind,
            f.namespace.as_deref(),
            f.pod.as_deref(),
            f.cgroup.as_deref(),
        );
        // Most severe first: a second finding of the same kind and subject adds nothing.
        if seen.insert(subject) {
            e.sample(&labels, None, 1);
        }
    }
}

/// `memglass_oom_kills_total`: kills per victim, with whose limit was hit and what
/// dominated. A victim's series appears with its first kill (at 1: use `increase(...) or
/// (x unless x offset 10m)`, as the alert rules do) and stays an hour after its last.
fn write_oom_kills(e: &mut Encoder<'_>, shared: &Shared) {
    e.family(
        "memglass_oom_kills",
        Kind::Counter,
        "OOM kills by victim since the agent started, with the scope whose limit was hit and what dominated.",
    );
    let Ok(kills) = shared.oom_kills.lock() else {
        return;
    };
    for (key, count) in kills.iter() {
        let labels = labels(&[
            ("namespace", &key.namespace),
            ("pod", &key.pod),
            ("container", &key.container),
            ("cgroup", &key.cgroup),
            ("scope", &key.scope),
            ("cause", &key.cause),
        ]);
        e.sample(&labels, None, count);
    }
}

/// `memglass_node_info`: the node every series of this target belongs to.
fn write_node_info(e: &mut Encoder<'_>, node: &crate::NodeLabels) {
    e.family(
        "memglass_node",
        Kind::Info,
        "The node this agent describes: its name, kernel release and cgroup version.",
    );
    let labels = labels(&[
        ("node", &node.node),
        ("kernel", &node.kernel),
        ("cgroup_version", &node.cgroup_version),
    ]);
    e.sample(&labels, None, 1);
}

fn write_agent(e: &mut Encoder<'_>, health: &Health) {
    e.family("memglass_build", Kind::Info, "The agent's version.");
    e.sample(&labels(&[("version", env!("CARGO_PKG_VERSION"))]), None, 1);
    let counters: [(&str, &str, u64); 12] = [
        (
            "memglass_agent_collections",
            "Collections that produced a report.",
            Health::get(&health.collections),
        ),
        (
            "memglass_agent_collection_errors",
            "Collections that failed as a whole.",
            Health::get(&health.collection_errors),
        ),
        (
            "memglass_agent_vanished_cgroups",
            "Cgroups that vanished while being read.",
            Health::get(&health.vanished_cgroups),
        ),
        (
            "memglass_agent_scrapes",
            "/metrics requests answered.",
            Health::get(&health.scrapes),
        ),
        (
            "memglass_agent_api_requests",
            "JSON API requests answered.",
            Health::get(&health.api_requests),
        ),
        (
            "memglass_agent_unauthorized_requests",
            "Requests refused for a missing or wrong bearer token.",
            Health::get(&health.unauthorized),
        ),
        (
            "memglass_agent_store_rows",
            "Sample rows written to the history database.",
            Health::get(&health.store_rows),
        ),
        (
            "memglass_agent_store_errors",
            "History database writes that failed.",
            Health::get(&health.store_errors),
        ),
        (
            "memglass_agent_oom_events",
            "OOM kills recorded as events.",
            Health::get(&health.oom_events),
        ),
        (
            "memglass_agent_oom_reports_lost",
            "OOM kills counted from the counters because their kernel report was not read.",
            Health::get(&health.oom_reports_lost),
        ),
        (
            "memglass_agent_kmsg_overruns",
            "Kernel log ring-buffer overruns (records overwritten before they were read).",
            Health::get(&health.kmsg_overruns),
        ),
        (
            "memglass_agent_kmsg_records_lost",
            "Kernel log records skipped by overruns.",
            Health::get(&health.kmsg_records_lost),
        ),
    ];
    for (name, help, value) in counters {
        e.family(name, Kind::Counter, help);
        e.sample("", None, value);
    }
    e.family(
        "memglass_agent_collection_cpu_seconds",
        Kind::Counter,
        "CPU time used by the collector thread.",
    );
    e.sample(
        "",
        None,
        Health::get(&health.collection_cpu_usec) as f64 / 1e6,
    );
    e.family(
        "memglass_collect_errors",
        Kind::Counter,
        "Parts of collections that could not be read (gaps), by source.",
    );
    for (source, count) in health.gaps() {
        e.sample(&labels(&[("source", source)]), None, count);
    }
    e.family(
        "memglass_agent_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory of the agent process at the last collection.",
    );
    e.sample("", None, Health::get(&health.resident_bytes));
}

/// The Kubernetes API side, when the agent asks the API.
fn write_kube(e: &mut Encoder<'_>, kube: &crate::KubeHealth) {
    let node = labels(&[("node", &kube.node)]);
    e.family(
        "memglass_agent_kube_api_connected",
        Kind::Gauge,
        "1 when the Kubernetes API server answered the agent's last request (watch or check), else 0.",
    );
    e.sample(&node, None, u64::from(kube.connected));
    e.family(
        "memglass_agent_kube_api_last_contact_timestamp_seconds",
        Kind::Gauge,
        "Unix time of the last answer from the Kubernetes API server.",
    );
    if let Some(t) = kube.last_contact {
        e.sample(&node, None, u64::try_from(t).unwrap_or(0));
    }
    e.family(
        "memglass_agent_kube_watch_errors",
        Kind::Counter,
        "Errors of the pod and node watch (each followed by a retry after a backoff).",
    );
    e.sample(&node, None, kube.watch_errors);
    e.family(
        "memglass_agent_kube_pods",
        Kind::Gauge,
        "Pods of this node known from the Kubernetes API.",
    );
    e.sample(&node, None, kube.pods);
    e.family(
        "memglass_agent_kube_events",
        Kind::Counter,
        "Kubernetes Events by outcome: posted (created or added to a series), failed, dropped (rate limit or full queue).",
    );
    for (outcome, count) in [
        ("posted", kube.events_posted),
        ("failed", kube.events_failed),
        ("dropped", kube.events_dropped),
    ] {
        e.sample(&labels(&[("outcome", outcome)]), None, count);
    }
}
