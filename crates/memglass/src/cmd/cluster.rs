//! `memglass cluster top|oom|eviction|pending`: the whole cluster at a glance, asking a
//! Prometheus-compatible store what every node's agent exported (and, for `pending`, the
//! pods' and nodes' specs).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, Subcommand};
use memglass_cluster::{eviction, oom, top, Options, Prometheus, Series};
use memglass_kube::schedule::{self, PodUsage};

use crate::cli::IdentityArgs;
use crate::render;

/// The store's address for `--prometheus` when the flag is not given.
pub const URL_ENV: &str = "MEMGLASS_PROMETHEUS_URL";

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// How to reach the Prometheus HTTP API (Prometheus, VictoriaMetrics, Thanos, Mimir, …).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store's base URL (e.g. http://prometheus:9090, or a path prefix such as
    /// https://vm.example/select/0/prometheus). Default: $MEMGLASS_PROMETHEUS_URL.
    #[arg(long, global = true, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Send `Authorization: Bearer <the file's content, trimmed>`.
    #[arg(long, global = true, value_name = "FILE")]
    pub bearer_token_file: Option<PathBuf>,
    /// Basic auth: the user, and a file holding the password.
    #[arg(long, global = true, value_name = "USER:PASSWORD_FILE", value_parser = parse_basic_auth)]
    pub basic_auth: Option<(String, PathBuf)>,
    /// Trust the CA certificate(s) in this PEM file instead of the system's.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (testing only).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// An extra HTTP header on every query, NAME:VALUE (repeatable; e.g.
    /// X-Scope-OrgID:tenant for Mimir, Cortex or a Thanos tenant).
    #[arg(long = "header", global = true, value_name = "NAME:VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Give up on a query (or the Kubernetes API) after this long.
    #[arg(long, global = true, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

fn parse_basic_auth(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once(':') {
        Some((user, file)) if !user.is_empty() && !file.is_empty() => {
            Ok((user.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!("expected USER:PASSWORD_FILE, got {text:?}")),
    }
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected NAME:VALUE, got {text:?}")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Pods of every node ranked by one memory type (their pod cgroups' figures).
    Top(TopArgs),
    /// OOM kills across nodes per pod and container, with whose limit was hit and what
    /// filled it.
    Oom(OomArgs),
    /// Nodes by their margin to kubelet's eviction threshold, and who each would evict next.
    Eviction(EvictionArgs),
    /// Every Pending pod against every node: memory requests vs allocatable as the
    /// scheduler counts them, and the other blockers memglass can see; with --prometheus,
    /// the requests nobody uses and which pods to shrink.
    Pending(PendingArgs),
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The memory type to rank by: working_set, working_set_kubelet, usage, limit, anon,
    /// active_anon, inactive_anon, file, active_file, inactive_file, shmem, file_mapped,
    /// file_dirty, file_writeback, kernel, swap, unevictable, peak.
    #[arg(long, default_value = "working_set_kubelet", value_name = "TYPE")]
    pub by: top::By,
    /// Only pods of this namespace.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// How many pods.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Emit the memglass.cluster-top/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

/// A window as the user wrote it (echoed in the JSON) and its length.
#[derive(Debug, Clone)]
pub struct Window {
    pub text: String,
    pub duration: Duration,
}

fn parse_window(text: &str) -> Result<Window, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration >= Duration::from_secs(1) => Ok(Window {
            text: text.to_owned(),
            duration,
        }),
        Ok(_) => Err("the window must be at least 1s".into()),
        Err(e) => Err(format!("expected a duration like 1h, 24h or 7d: {e}")),
    }
}

#[derive(Debug, Args)]
pub struct OomArgs {
    /// The window to count kills in (e.g. 1h, 24h, 7d).
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_window)]
    pub since: Window,
    /// Only victims of this namespace.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Emit the memglass.cluster-oom/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvictionArgs {
    /// Emit the memglass.cluster-eviction/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PendingArgs {
    /// The nodes: `kubectl get nodes -o json` output (with the global --pods FILE:
    /// `kubectl get pods -A -o json` output). Or --kube to ask the API server.
    #[arg(long, value_name = "FILE")]
    pub nodes: Option<PathBuf>,
    /// Emit the memglass.cluster-pending/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

/// A usage error (exit 2), worded and printed as clap does.
fn usage_error(message: &str) -> ! {
    crate::cli::Cli::command()
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}

fn url(store: &StoreArgs) -> Option<String> {
    store
        .prometheus
        .clone()
        .or_else(|| std::env::var(URL_ENV).ok())
        .filter(|u| !u.trim().is_empty())
}

fn connect(store: &StoreArgs, url: String) -> anyhow::Result<Prometheus> {
    Ok(Prometheus::new(&Options {
        url,
        bearer_token_file: store.bearer_token_file.clone(),
        basic_auth: store.basic_auth.clone(),
        ca_file: store.ca_file.clone(),
        insecure_skip_tls_verify: store.insecure_skip_tls_verify,
        timeout: store.timeout,
        headers: store.headers.clone(),
    })?)
}

fn required(store: &StoreArgs) -> anyhow::Result<Prometheus> {
    match url(store) {
        Some(url) => connect(store, url),
        None => usage_error(&format!(
            "memglass cluster needs the Prometheus HTTP API: --prometheus URL or ${URL_ENV}"
        )),
    }
}

/// Every query's answer, or the first error.
fn ask(prometheus: &Prometheus, queries: &[String]) -> anyhow::Result<Vec<Vec<Series>>> {
    let answers = prometheus
        .query_all(queries)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    if answers.last().is_some_and(Vec::is_empty)
        && queries.last().map(String::as_str) == Some("memglass_node_info")
    {
        eprintln!(
            "memglass: note: no memglass_node_info series in {}: nodes are named by their scrape target (instance)",
            prometheus.url()
        );
    }
    Ok(answers)
}

pub fn run(
    identity: &IdentityArgs,
    args: &ClusterArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match &args.command {
        ClusterCommand::Top(a) => {
            let prometheus = required(&args.store)?;
            let answers = ask(
                &prometheus,
                &top::queries(&a.by, a.namespace.as_deref(), a.limit.max(1)),
            )?;
            let empty = Vec::new();
            let get = |i: usize| answers.get(i).unwrap_or(&empty);
            let pods = top::rows(get(0), get(1), get(2), get(3), get(4), get(5));
            if a.json {
                render::cluster::top_json(out, &a.by, &pods)
            } else {
                render::cluster::top_table(out, &a.by, &pods, prometheus.url())
            }
        }
        ClusterCommand::Oom(a) => {
            let prometheus = required(&args.store)?;
            let answers = ask(
                &prometheus,
                &oom::queries(a.since.duration, a.namespace.as_deref()),
            )?;
            let empty = Vec::new();
            let get = |i: usize| answers.get(i).unwrap_or(&empty);
            let kills = oom::rows(get(0), get(1));
            if a.json {
                render::cluster::oom_json(out, &a.since.text, &kills)
            } else {
                render::cluster::oom_table(out, &a.since.text, &kills)
            }
        }
        ClusterCommand::Eviction(a) => {
            let prometheus = required(&args.store)?;
            let answers = ask(&prometheus, &eviction::queries())?;
            let empty = Vec::new();
            let get = |i: usize| answers.get(i).unwrap_or(&empty);
            let nodes = eviction::rows(get(0), get(1), get(2), get(3));
            if a.json {
                render::cluster::eviction_json(out, &nodes)
            } else {
                render::cluster::eviction_table(out, &nodes)
            }
        }
        ClusterCommand::Pending(a) => pending(identity, &args.store, a, out),
    }
}

fn pending(
    identity: &IdentityArgs,
    store: &StoreArgs,
    args: &PendingArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (pods, nodes) = match (&identity.pods, &args.nodes, identity.kube) {
        (None, None, true) => memglass_kube::fetch_cluster(store.timeout)?,
        (Some(pods), Some(nodes), false) => {
            let read = |file: &PathBuf| {
                std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))
            };
            (
                memglass_kube::pod_list_from_json(&read(pods)?)
                    .with_context(|| format!("{}", pods.display()))?,
                memglass_kube::node_list_from_json(&read(nodes)?)
                    .with_context(|| format!("{}", nodes.display()))?,
            )
        }
        _ => usage_error(
            "memglass cluster pending needs either --kube, or --pods FILE (kubectl get pods -A -o json) \
             and --nodes FILE (kubectl get nodes -o json)",
        ),
    };
    let usage = match url(store) {
        None => None,
        Some(url) => Some(pod_usage(&connect(store, url)?)?),
    };
    let report = schedule::pending(&pods, &nodes, usage.as_ref())?;
    if args.json {
        render::cluster::pending_json(out, &report)
    } else {
        render::cluster::pending_table(out, &report, usage.is_some())
    }
}

/// Each running pod's working set and suggested request, by namespace and name.
fn pod_usage(prometheus: &Prometheus) -> anyhow::Result<BTreeMap<(String, String), PodUsage>> {
    let answers = ask(
        prometheus,
        &[
            "memglass_cgroup_memory_working_set_kubelet_bytes{pod!=\"\",container=\"\"}".into(),
            "memglass_pod_memory_suggested_request_bytes{pod!=\"\"}".into(),
        ],
    )?;
    let mut usage: BTreeMap<(String, String), PodUsage> = BTreeMap::new();
    let key = |s: &Series| (s.label("namespace").to_owned(), s.label("pod").to_owned());
    if let Some(ws) = answers.first() {
        for s in ws {
            usage.entry(key(s)).or_default().working_set = Some(s.bytes());
        }
    }
    if let Some(suggested) = answers.get(1) {
        for s in suggested {
            usage.entry(key(s)).or_default().suggested_request = Some(s.bytes());
        }
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_parse() {
        assert_eq!(
            parse_basic_auth("admin:/etc/pw"),
            Ok(("admin".into(), PathBuf::from("/etc/pw")))
        );
        assert!(parse_basic_auth("admin").is_err());
        assert!(parse_basic_auth(":/etc/pw").is_err());
        assert_eq!(
            parse_header("X-Scope-OrgID: team-a"),
            Ok(("X-Scope-OrgID".into(), "team-a".into()))
        );
        assert!(parse_header("novalue").is_err());
        assert_eq!(parse_window("24h").map(|w| w.text), Ok("24h".into()));
        assert_eq!(
            parse_window("7d").map(|w| w.duration),
            Ok(Duration::from_secs(7 * 86400))
        );
        assert!(parse_window("500ms").is_err());
    }
}
