//! Command-line definition. Parsing only: `main` turns it into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Container memory, made transparent at the kernel level.
///
/// Without a command, prints the node's memory breakdown and the cgroups with the largest
/// working sets.
#[derive(Debug, Parser)]
#[command(name = "memglass", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where to read from (every command).
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Read the memory cgroup hierarchy rooted at DIR (e.g. a recorded tree) instead of
    /// finding it from /proc/self/mountinfo.
    #[arg(long, global = true, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// Read meminfo, vmstat and mountinfo from DIR instead of /proc.
    #[arg(long, global = true, value_name = "DIR", default_value = "/proc")]
    pub proc_root: PathBuf,
}

/// Where pod and container names come from (every command that shows cgroups).
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// The container runtime's CRI socket (a path or unix:// URL). Default: the first of
    /// containerd's, CRI-O's and cri-dockerd's usual sockets that exists; none is asked
    /// when --cgroup-root replays a recorded tree.
    #[arg(long, global = true, value_name = "SOCKET")]
    pub cri_socket: Option<String>,
    /// Do not ask the container runtime (names then come only from --pods or the API).
    #[arg(long, global = true)]
    pub no_cri: bool,
    /// Pods from a file: `kubectl get pods -o json` output (requests, limits, priority,
    /// owners, names by container id).
    #[arg(long, global = true, value_name = "FILE")]
    pub pods: Option<PathBuf>,
    /// The node from a file: `kubectl get node NAME -o json` output (capacity, allocatable).
    #[arg(long, global = true, value_name = "FILE")]
    pub node: Option<PathBuf>,
    /// Ask the Kubernetes API (in-cluster service account or kubeconfig) for this node's
    /// pods and the node itself. On by default when running inside a cluster.
    #[arg(long, global = true)]
    pub kube: bool,
    /// This node's name for --kube (default: $NODE_NAME, else the hostname).
    #[arg(long, global = true, value_name = "NAME")]
    pub node_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The node and every memory cgroup, for a person or (--json) for scripts.
    Snapshot(SnapshotArgs),
    /// Record the files memglass reads into DIR, to replay later with --cgroup-root and
    /// --proc-root (bug reports, fixtures).
    Capture(CaptureArgs),
    /// Run as a node agent: Prometheus /metrics, a JSON API, an embedded history and a
    /// web dashboard, on 127.0.0.1:9850 by default (docs/api.md, docs/metrics.md).
    Agent(crate::cmd::agent::AgentArgs),
    /// Which files fill a cgroup's or a pod's page cache (or a directory's).
    Cache(CacheArgs),
    /// Count every physical page by memory cgroup and kind, from /proc/kpageflags and
    /// /proc/kpagecgroup: includes memory still charged to deleted (dying) cgroups.
    Pages(PagesArgs),
    /// OOM kills from the kernel log (or a saved log), explained: whose limit was hit
    /// (node, kubepods, QoS, pod, container), what filled it, which pod; --follow streams.
    Oom(crate::cmd::oom::OomArgs),
    /// Who kubelet would evict next under memory pressure, and why: the memory.available
    /// and allocatableMemory.available signals, and the pods in kubelet's order.
    Eviction(crate::cmd::eviction::EvictionArgs),
    /// Why a pod stays Pending, and what to set: Σ memory requests and limits against node
    /// allocatable, each pod's request and limit against its measured peak, suggestions.
    Requests(crate::cmd::requests::RequestsArgs),
    /// What is wrong and what to do: OOM kills, pods near their limit or next to be
    /// evicted, Pending pods without room, requests and limits to change, and where
    /// "missing" memory is (page cache, tmpfs, dirty pages, deleted files, kernel, removed
    /// cgroups), each finding with its figures and a remedy.
    Diagnose(crate::cmd::diagnose::DiagnoseArgs),
    /// A live terminal view: the node's breakdown, pods and their containers (or every
    /// cgroup) by any memory type with growth per refresh, and each cgroup in detail.
    Top(TopArgs),
    /// The whole cluster from a Prometheus-compatible store that scrapes every node's
    /// agent: pods by any memory type, OOM kills, eviction margins, Pending pods.
    Cluster(crate::cmd::cluster::ClusterArgs),
    /// Reclaim a pod's or container's cold page cache now (cgroup v2 memory.reclaim, with
    /// anonymous memory kept out of swap), and show memory.stat before and after.
    Reclaim(crate::cmd::reclaim::ReclaimArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Time between refreshes (e.g. 1s, 500ms).
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
}

#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["cgroup", "pod", "path"]))]
pub struct CacheArgs {
    /// The cgroup, as a path relative to the memory hierarchy (e.g. /kubepods/burstable/pod…).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// The pod, by name or namespace/name (names come from the runtime or --pods).
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// Every file below a directory instead of a cgroup's files.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Also measure the bytes of each file's cache charged to this cgroup, from the
    /// pages' frame numbers (/proc/self/pagemap, /proc/kpagecgroup; root only). This maps
    /// each file and reads one byte of each cached page, which marks it accessed.
    #[arg(long)]
    pub exact: bool,
    /// How many files to list.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Leave out files with less cached than this (bytes; K, M, G suffixes).
    #[arg(long, default_value = "64K", value_name = "SIZE", value_parser = parse_size)]
    pub min_cached: u64,
    /// List every file found, however small.
    #[arg(long)]
    pub all: bool,
    /// Use mincore(2) even where cachestat(2) exists (no dirty/writeback figures).
    #[arg(long)]
    pub mincore: bool,
    /// Emit JSON (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PagesArgs {
    /// Read one chunk of page frames in N and scale up (for very large machines).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub sample: u64,
    /// How many cgroups the table lists.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Emit JSON (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

/// A size in bytes with an optional binary K/M/G suffix.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, scale) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 1 << 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("expected a size like 4096, 64K or 1G, got {text:?}"))
}

#[derive(Debug, Clone, Args)]
pub struct CaptureArgs {
    /// Directory to write (created; files inside are overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Record only cgroups under this path (repeatable; the root is always recorded).
    #[arg(long, value_name = "PATH")]
    pub only: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// Emit the memglass.snapshot/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
    /// How many cgroups the human view lists.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub top: usize,
    /// Name the files behind the page cache of the K leaf cgroups holding the most (their
    /// processes' open and mapped files, their containers' writable layer and volumes);
    /// 0: none. Default: 3 in the human view, 0 with --json (it costs a few ms per
    /// holder). Only on the live system, not on a recorded --cgroup-root.
    #[arg(long, value_name = "K")]
    pub cache_holders: Option<usize>,
}

impl Default for SnapshotArgs {
    fn default() -> Self {
        SnapshotArgs {
            json: false,
            top: 15,
            cache_holders: None,
        }
    }
}
