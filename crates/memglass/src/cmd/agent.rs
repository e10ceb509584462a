//! `memglass agent`: the node agent. The collector thread runs the snapshot path
//! (sources → identify → analyse, the same functions as `memglass snapshot`) on an
//! interval; the HTTP server (memglass-agent) only reads what it publishes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use memglass_agent::collector::{self, Collected, FileCacheSchedule, Schedule, Source};
use memglass_agent::oom::KernelOom;
use memglass_agent::store::{Store, Writer};
use memglass_agent::{Config, MetricFamilies, NodeLabels, Retention, Shared};
use memglass_analyse::eviction::{EvictionReport, Threshold};
use memglass_analyse::sizing::SizingReport;

use crate::cli::{IdentityArgs, SourceArgs};
use crate::live::LiveSource;

mod events;
mod filecache;
mod kmsg;
mod reclaim;

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Address to serve on. Anything beyond loopback needs --token-file.
    #[arg(long, default_value = "127.0.0.1:9850", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// History database [default: /var/lib/memglass/history.db as root, else
    /// $XDG_STATE_HOME/memglass/history.db or ~/.local/state/memglass/history.db].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Most bytes the history (the database and its write-ahead log) may take on disk: over
    /// it, the oldest raw samples go first, then one-minute averages; OOM events are kept
    /// longest (at least 1Mi; e.g. 64Mi, 2GiB).
    #[arg(long, default_value = "1Gi", value_name = "SIZE", value_parser = parse_db_size)]
    pub db_max_size: u64,
    /// Time between collections (e.g. 10s, 1m).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// How long history is kept: raw samples, one-minute averages, OOM events.
    #[arg(long, default_value = "raw=1d,1m=7d,oom=365d", value_name = "SPEC")]
    pub retention: String,
    /// File holding the bearer token that /metrics and /api/v1 then require
    /// (`Authorization: Bearer <token>`); required when --listen is not loopback.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Minutes of the victim's samples kept with each OOM event (the flight recorder).
    #[arg(long, default_value_t = 5, value_name = "MINUTES")]
    pub flight_minutes: u32,
    /// Do not follow the kernel log: find OOM kills from cgroup and node counters only
    /// (no process names or RSS then).
    #[arg(long)]
    pub no_kernel_log: bool,
    /// kubelet's hard eviction threshold the eviction signals are compared with, as
    /// `memglass eviction --threshold`: a quantity (100Mi) or a percentage of the signal's
    /// capacity (5%).
    #[arg(long, default_value = "100Mi", value_name = "QUANTITY|PERCENT", value_parser = crate::cmd::eviction::parse_threshold)]
    pub eviction_threshold: Threshold,
    /// How many of the largest page-cache holders (leaf cgroups with processes) have their
    /// largest files exported as `memglass_file_cache_bytes` (0: none).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub file_cache_holders: usize,
    /// How many files per holder, largest cached first.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub file_cache_files: usize,
    /// Collections between two measurements of those files (each takes a few ms per
    /// holder; 6 at the default interval is once a minute).
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub file_cache_every: u64,
    /// Do not post Kubernetes Events (`MemglassOOMKill`, `MemglassEvictionNext`). Events
    /// are posted only when the agent asks the API (--kube, or inside a cluster).
    #[arg(long)]
    pub no_events: bool,
    /// The pod kubelet would evict next is a finding (`eviction_next`) and gets a
    /// `MemglassEvictionNext` event while an eviction signal's available memory is below
    /// its threshold plus this margin: a quantity (50Mi) or a percentage of the threshold
    /// (20% of 100Mi is 20Mi).
    #[arg(long = "eviction-margin", alias = "event-eviction-margin", default_value = "20%", value_name = "QUANTITY|PERCENT", value_parser = crate::cmd::eviction::parse_margin)]
    pub eviction_margin: events::Margin,
    /// KEP-2570's memory throttling factor for the memory.high the findings suggest
    /// (kubelet's memoryThrottlingFactor).
    #[arg(long, default_value = "0.9", value_name = "FACTOR", value_parser = crate::cmd::diagnose::parse_factor)]
    pub memory_throttling_factor: f64,
    /// Serve `POST /api/v1/reclaim` (proactive reclaim of a pod's or container's page
    /// cache, as `memglass reclaim`; docs/api.md). Changes the system: needs --token-file.
    #[arg(long)]
    pub allow_reclaim: bool,
    /// Opt-in metric families beyond the default budget of 12 series per container
    /// (docs/metrics.md): `container_types` (every memory.stat type), `container_events`
    /// (every memory event), `container_pressure` (PSI), `container_sizing` (request,
    /// limit, suggestions, verdicts), comma-separated, or `all`.
    #[arg(long, default_value = "", value_name = "LIST")]
    pub metrics_families: String,
    /// Serve HTTPS with this certificate chain (PEM, leaf first; e.g. `tls.crt` of a
    /// kubernetes.io/tls Secret), read again when it changes. Needs --tls-key-file.
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, RSA or EC; e.g. `tls.key`).
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Time a client has to send a request's head (and the TLS handshake), from the
    /// connection or the end of the previous answer; then the connection is closed.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// A client that takes no byte of an answer for this long loses the connection.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Time from a request's head to its answer (503 beyond; POST /api/v1/reclaim gets
    /// 300s more).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,
    /// Requests answered at once; more get 503 (with Retry-After: 1).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_in_flight: usize,
    /// Longest request target (path and query), in bytes: 414 beyond.
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    pub max_uri_bytes: usize,
    /// Longest request head (request line and headers), in bytes: 431 beyond.
    #[arg(long, default_value_t = 16384, value_name = "BYTES")]
    pub max_header_bytes: usize,
    /// Largest request body, in bytes: 413 beyond.
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Benchmarks and tests: before serving, fill the history with this much of copies of
    /// the first collection (each moved by a few pages, as a busy node's figures move).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub simulate_history: Option<Duration>,
}

/// `memglass_node_info`'s labels: the node's name as the API source resolves it
/// (`--node-name`, `$NODE_NAME`, the hostname), the kernel release and the memory
/// hierarchy's version; empty where they cannot be had.
fn node_labels(sources: &SourceArgs, identity: &IdentityArgs) -> NodeLabels {
    let roots = memglass_kernel::Roots {
        proc: sources.proc_root.clone(),
        cgroup: sources.cgroup_root.clone(),
    };
    let kernel = std::fs::read_to_string(sources.proc_root.join("sys/kernel/osrelease"));
    NodeLabels {
        node: memglass_kube::node_name(identity.node_name.as_deref()).unwrap_or_default(),
        kernel: kernel.map(|k| k.trim().to_owned()).unwrap_or_default(),
        cgroup_version: match roots.memory_hierarchy().map(|h| h.version) {
            Ok(memglass_kernel::cgroup::hierarchy::CgroupVersion::V1) => "1".into(),
            Ok(memglass_kernel::cgroup::hierarchy::CgroupVersion::V2) => "2".into(),
            Err(_) => String::new(),
        },
    }
}

/// A usage error: one line on stderr and exit code 2 (the scripting contract).
fn usage(message: &str) -> ! {
    eprintln!("memglass: {message}");
    std::process::exit(2)
}

/// A long-running server with a few threads: two malloc arenas instead of one per core
/// per thread, and large buffers (a 4 MiB /metrics body) mapped and unmapped rather than
/// kept in the heap, keep its RSS to what it holds.
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

pub fn run(sources: &SourceArgs, identity: &IdentityArgs, args: &AgentArgs) -> anyhow::Result<()> {
    tune_allocator();
    if args.interval < Duration::from_secs(1) {
        usage("--interval must be at least 1s");
    }
    let retention = Retention::parse(&args.retention).unwrap_or_else(|e| usage(&e.to_string()));
    let loopback = memglass_agent::config::is_loopback(&args.listen);
    let token = match &args.token_file {
        Some(file) => Some(read_token(file)?),
        None if !loopback => usage(&format!(
            "listening on {} reaches beyond this machine: give --token-file (or listen on 127.0.0.1)",
            args.listen
        )),
        None => None,
    };
    if args.allow_reclaim && token.is_none() {
        usage("--allow-reclaim changes the system: give --token-file too");
    }
    let server = memglass_agent::server::Settings {
        limits: memglass_agent::Limits {
            header_read_timeout: args.header_read_timeout,
            idle_timeout: args.idle_timeout,
            request_timeout: args.request_timeout,
            max_connections: args.max_connections,
            max_in_flight: args.max_in_flight,
            max_uri_bytes: args.max_uri_bytes,
            max_header_bytes: args.max_header_bytes,
            max_body_bytes: args.max_body_bytes,
        },
        tls: match (&args.tls_cert_file, &args.tls_key_file) {
            (Some(cert), Some(key)) => Some(memglass_agent::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
    };
    if let Err(error) = server.limits.validate() {
        usage(&error.to_string());
    }
    if !loopback && server.tls.is_none() {
        eprintln!(
            "memglass: warning: listening on {} without TLS: the bearer token and every answer \
             travel in clear text; give --tls-cert-file and --tls-key-file, or serve behind \
             kube-rbac-proxy (docs/deploy.md)",
            args.listen
        );
    }
    if let Some(warning) = raise_open_files(args.max_connections) {
        eprintln!("memglass: warning: {warning}");
    }
    let db = match &args.db {
        Some(db) => db.clone(),
        None => default_db().context("no --db given and no state directory ($HOME unset)")?,
    };
    let config = Config {
        listen: args.listen,
        db: db.clone(),
        interval: args.interval,
        retention,
        token,
        flight_minutes: args.flight_minutes,
        eviction_threshold: args.eviction_threshold,
        node: node_labels(sources, identity),
        metrics: MetricFamilies::parse(&args.metrics_families)?,
    };
    let now = memglass_agent::shared::unix_seconds(std::time::SystemTime::now());
    let (writer, moved_aside) =
        Writer::open_or_replace(&db, now).with_context(|| "cannot open the history")?;
    if let Some(moved) = &moved_aside {
        eprintln!(
            "memglass: warning: history database {} is corrupt ({}): moved it aside to {} and started a new one",
            db.display(),
            moved.reason,
            moved.to.display()
        );
    }
    let mut writer = writer
        .with_max_bytes(Some(args.db_max_size))
        .with_context(|| "cannot open the history")?;
    let reader = Store::open(&db).with_context(|| "cannot open the history")?;
    let resume = reader.meta(collector::KMSG_RESUME).unwrap_or_default();
    let shared = Shared::new(reader, &config);
    shared.health.store(|s| {
        s.max_bytes = Some(args.db_max_size);
        s.moved_aside = moved_aside;
    });
    let live = LiveSource::new(sources, identity, !args.no_events)?;
    for warning in live.warnings() {
        eprintln!("memglass: warning: {warning}");
    }
    let events = match live.kube_watch() {
        Some(watch) => {
            let sink = (!args.no_events).then(|| events::EventSink::new(args.eviction_margin));
            let _ = shared.kube.set(Box::new(events::KubeHealthSource {
                watch,
                events_enabled: sink.is_some(),
                dropped: sink
                    .as_ref()
                    .map(|s| Arc::clone(&s.dropped))
                    .unwrap_or_default(),
            }));
            sink
        }
        None => None,
    };
    let mut source = HostSource {
        api_away: live.kube_status().is_some_and(|s| !s.connected),
        live,
        kernel_log: None,
        events,
    };
    let kernel_log = if args.no_kernel_log {
        Err("--no-kernel-log".to_owned())
    } else {
        kmsg::KernelLog::open(&sources.proc_root, resume.as_deref(), source.live.subtree())
    };
    let oom_source = match kernel_log {
        Err(reason) if args.no_kernel_log => {
            format!("cgroup counters (memory.events oom_kill, vmstat oom_kill): {reason}")
        }
        Ok(log) => {
            source.kernel_log = Some(log);
            "kernel log (/dev/kmsg)".to_owned()
        }
        Err(error) => {
            eprintln!("memglass: warning: {error}; OOM kills are found from counters instead");
            format!("cgroup counters (memory.events oom_kill, vmstat oom_kill): {error}")
        }
    };
    if let Ok(mut slot) = shared.oom_source.lock() {
        *slot = oom_source;
    }
    let _ = shared.file_cache.set(Box::new(filecache::Scanner {
        roots: source.live.roots.clone(),
    }));
    let _ = shared.documents.set(Box::new(Documents));
    if args.allow_reclaim {
        let _ = shared.reclaim.set(Box::new(reclaim::Reclaimer {
            roots: source.live.roots.clone(),
        }));
    }
    if let Some(span) = args.simulate_history {
        let first = source
            .collect()
            .map_err(anyhow::Error::msg)
            .context("cannot take the first snapshot")?;
        let rows = collector::simulate_history(&mut writer, &first.snapshot, span, args.interval)?;
        eprintln!("memglass: simulated {rows} sample rows of history");
    }
    // Read the certificate before anything runs in the background: a bad file fails the
    // start, not the first handshake.
    let tls = server.tls.is_some();
    let server = memglass_agent::server::Server::new(Arc::clone(&shared), &server)
        .context("cannot start the HTTP server")?;
    // Bind before anything runs in the background, so a taken port fails at once.
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    eprintln!(
        "memglass: agent listening on {}://{bound}/ (history: {}, every {})",
        if tls { "https" } else { "http" },
        db.display(),
        humantime::format_duration(args.interval)
    );
    let schedule = Schedule {
        interval: config.interval,
        retention: config.retention,
        flight_minutes: config.flight_minutes,
        eviction_threshold: config.eviction_threshold,
        file_cache: FileCacheSchedule {
            holders: args.file_cache_holders,
            files: args.file_cache_files,
            every: args.file_cache_every.max(1),
        },
        diagnose: memglass_analyse::diagnose::Settings {
            eviction_margin: args.eviction_margin,
            memory_throttling_factor: args.memory_throttling_factor,
            page_size: rustix::param::page_size() as u64,
            now: 0,
        },
    };
    let collector_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("memglass-collector".into())
        .spawn(move || collector::run(&collector_shared, writer, source, schedule))
        .context("cannot start the collector thread")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::select! {
            served = server.serve(listener) => served.map_err(anyhow::Error::from),
            _ = shutdown_signal() => Ok(()),
        }
    })
}

/// Each connection holds a descriptor: raise the soft limit of open files to the hard one
/// when it is below `max_connections` and some for the history, /proc and the API (Go
/// programs do the same at start). A warning when even the hard limit is lower.
fn raise_open_files(max_connections: usize) -> Option<String> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let needed = max_connections as u64 + 128;
    let mut limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    if current >= needed {
        return None;
    }
    let target = limit.maximum.unwrap_or(u64::MAX).min(needed);
    limit.current = Some(target);
    let now = if setrlimit(Resource::Nofile, limit).is_ok() {
        target
    } else {
        current
    };
    (now < needed).then(|| {
        format!(
            "open files limited to {now} (ulimit -n), fewer than --max-connections \
             ({max_connections}) needs: connections beyond wait to be accepted"
        )
    })
}

/// SIGTERM or SIGINT: stop serving. An interrupted history write is rolled back by
/// SQLite on the next start (WAL), so there is nothing to flush.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// `--db-max-size`: a Kubernetes quantity (64Mi, 1Gi, 500M) or with a `B` after an IEC
/// suffix (64MiB), at least 1Mi.
fn parse_db_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let quantity = text
        .strip_suffix("iB")
        .map_or_else(|| text.to_owned(), |t| format!("{t}i"));
    let bytes = memglass_kube::parse_memory(&quantity)
        .map_err(|e| format!("expected a size like 64Mi, 1Gi or 512MiB: {e}"))?;
    if bytes < memglass_agent::store::MIN_MAX_BYTES {
        return Err("the history needs at least 1Mi".into());
    }
    Ok(bytes)
}

fn read_token(file: &Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the token file {}", file.display()))?;
    let token = token.trim().to_owned();
    anyhow::ensure!(
        !token.is_empty(),
        "the token file {} is empty",
        file.display()
    );
    Ok(token)
}

/// The `memglass eviction --json` / `memglass requests --json` renderers, for
/// `/api/v1/eviction` and `/api/v1/requests`: one format for scripts.
#[derive(Debug)]
struct Documents;

impl memglass_agent::Documents for Documents {
    fn eviction(
        &self,
        report: &EvictionReport,
        taken_at: std::time::SystemTime,
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        crate::render::eviction::json(&mut out, report, taken_at).map_err(|e| format!("{e:#}"))?;
        Ok(out)
    }

    fn requests(
        &self,
        report: &SizingReport,
        taken_at: std::time::SystemTime,
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        crate::render::requests::json(&mut out, report, taken_at).map_err(|e| format!("{e:#}"))?;
        Ok(out)
    }
}

/// root: /var/lib/memglass; others: the XDG state directory.
fn default_db() -> Option<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Some(PathBuf::from("/var/lib/memglass/history.db"));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("memglass/history.db"))
}

/// This machine, as the collector asks it: [`LiveSource`] and the kernel log; and the
/// Kubernetes Events sink, fed with each published collection.
struct HostSource {
    live: LiveSource,
    kernel_log: Option<kmsg::KernelLog>,
    events: Option<events::EventSink>,
    /// The API was away at the last collection (a warning was printed).
    api_away: bool,
}

impl HostSource {
    /// Say on stderr when the API goes away and when it is back (the names of the last
    /// answer are served meanwhile).
    fn report_api(&mut self) {
        let Some(status) = self.live.kube_status() else {
            return;
        };
        if !status.connected && !self.api_away && status.errors > 0 {
            eprintln!("memglass: warning: {}", crate::live::api_away(&status));
            self.api_away = true;
        } else if status.connected && self.api_away {
            eprintln!(
                "memglass: Kubernetes API reachable again ({} pods on {})",
                status.pods, status.node
            );
            self.api_away = false;
        }
    }
}

impl Source for HostSource {
    fn collect(&mut self) -> Result<Collected, String> {
        self.report_api();
        let (snapshot, directory) = self.live.collect()?;
        Ok(Collected {
            snapshot,
            directory,
        })
    }

    fn kernel_ooms(&mut self) -> Option<Vec<KernelOom>> {
        let directory = self.live.directory();
        Some(self.kernel_log.as_mut()?.drain(&directory))
    }

    fn kernel_log_losses(&mut self) -> memglass_agent::collector::KmsgLosses {
        self.kernel_log
            .as_mut()
            .map(kmsg::KernelLog::take_losses)
            .unwrap_or_default()
    }

    fn cache_holders(
        &mut self,
        snapshot: &memglass_analyse::Snapshot,
        holders: usize,
        files: usize,
    ) -> Option<Vec<memglass_analyse::filecache::CacheHolder>> {
        // Only this machine's processes can be asked which files they hold.
        let live = self.live.roots.proc == std::path::Path::new("/proc")
            && (self.live.roots.cgroup.is_none() || self.live.subtree().is_some());
        if !live {
            return None;
        }
        crate::cmd::snapshot::measure_holders(&self.live.roots, snapshot, holders, files)
    }

    fn published(
        &mut self,
        report: &memglass_agent::Report,
        ooms: &[memglass_agent::oom::OomEvent],
    ) {
        if let Some(sink) = &mut self.events {
            sink.collected(&self.live, &report.eviction, ooms);
        }
    }

    fn after_collection(&mut self) {
        // Give back what the collection and the scrapes since the last one freed, so the
        // agent's RSS stays near what it holds (glibc keeps freed heap otherwise).
        // SAFETY: malloc_trim only walks the allocator's own free lists.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    fn resident_bytes(&self) -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * rustix::param::page_size() as u64)
    }
}
