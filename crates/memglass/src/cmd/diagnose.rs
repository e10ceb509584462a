//! `memglass diagnose`: every analysis at once, as findings with evidence and remedies
//! (memglass_analyse::diagnose has the rules).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use clap::Args;
use memglass_analyse::diagnose::{self, Finding, History, Inputs, RecentKill, Settings, Severity};
use memglass_analyse::eviction::{self, Margin, Threshold};
use memglass_analyse::sizing;
use memglass_identify::CgroupKind;

use crate::cli::{IdentityArgs, SourceArgs};
use crate::live::LiveSource;
use crate::render;

/// Cache holders whose files are looked at (deleted open files, the files behind active
/// cache and tmpfs), and files per holder.
const HOLDERS: usize = 10;
const FILES_PER_HOLDER: usize = 10;
/// How far back `--history` is read for leaks.
const LEAK_WINDOW: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Args)]
pub struct DiagnoseArgs {
    /// Only findings about this pod ([NAMESPACE/]NAME) and its containers.
    #[arg(long, value_name = "NAME", conflicts_with = "cgroup")]
    pub pod: Option<String>,
    /// Only findings about this cgroup and the cgroups below it.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Emit the memglass.diagnose/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
    /// OOM kills this recent count (30m, 24h, 7d).
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub since: Duration,
    /// The agent's history database (`memglass agent --db`): leaks are found from the
    /// working set's trend over its last hour.
    #[arg(long, value_name = "DB")]
    pub history: Option<PathBuf>,
    /// kubelet's hard eviction threshold for memory.available (as `memglass eviction`).
    #[arg(long, default_value = "100Mi", value_name = "QUANTITY|PERCENT", value_parser = crate::cmd::eviction::parse_threshold)]
    pub threshold: Threshold,
    /// How near its threshold a signal must come for the pod kubelet evicts next to be a
    /// finding: a percentage of the threshold (20%) or a quantity (50Mi).
    #[arg(long, default_value = "20%", value_name = "QUANTITY|PERCENT", value_parser = crate::cmd::eviction::parse_margin)]
    pub eviction_margin: Margin,
    /// KEP-2570's memory throttling factor for the memory.high remedies (kubelet's
    /// memoryThrottlingFactor).
    #[arg(long, default_value = "0.9", value_name = "FACTOR", value_parser = parse_factor)]
    pub memory_throttling_factor: f64,
    /// Leave out findings below this severity (critical, warning, info).
    #[arg(long, default_value = "info", value_name = "SEVERITY", value_parser = parse_severity)]
    pub min_severity: Severity,
}

pub fn parse_factor(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err(format!("expected a factor in (0, 1], got {text:?}")),
    }
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    match text {
        "critical" => Ok(Severity::Critical),
        "warning" => Ok(Severity::Warning),
        "info" => Ok(Severity::Info),
        _ => Err(format!("expected critical, warning or info, got {text:?}")),
    }
}

pub fn run(
    sources: &SourceArgs,
    identity: &IdentityArgs,
    args: &DiagnoseArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let taken_at = SystemTime::now();
    let mut live = LiveSource::new(sources, identity, false)?;
    for warning in live.warnings() {
        eprintln!("memglass: warning: {warning}");
    }
    let (snapshot, directory) = live.collect().map_err(anyhow::Error::msg)?;
    crate::cmd::snapshot::warn_about_gaps(&snapshot);
    let scope = Scope::of(&snapshot, &directory, args)?;

    let since = taken_at
        .checked_sub(args.since)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let kills = recent_kills(&sources.proc_root, &directory, since, live.subtree(), false);
    let recorded = sources.cgroup_root.is_some() && live.subtree().is_none();
    let holders = if recorded {
        Vec::new()
    } else {
        crate::cmd::snapshot::measure_holders(&live.roots, &snapshot, HOLDERS, FILES_PER_HOLDER)
            .unwrap_or_default()
    };
    let now = memglass_agent::shared::unix_seconds(taken_at);
    let histories = match &args.history {
        Some(db) => histories(db, &snapshot, now)?,
        None => Vec::new(),
    };
    let settings = Settings {
        eviction_margin: args.eviction_margin,
        memory_throttling_factor: args.memory_throttling_factor,
        page_size: rustix::param::page_size() as u64,
        now,
    };
    let findings = find(
        &snapshot,
        &directory,
        args.threshold,
        &kills,
        &holders,
        &histories,
        settings,
    );
    let findings: Vec<Finding> = findings
        .into_iter()
        .filter(|f| f.severity <= args.min_severity && scope.holds(f))
        .collect();
    if args.json {
        render::diagnose::json(out, &findings, taken_at)
    } else {
        render::diagnose::text(out, &findings, &scope.describe(&snapshot))
    }
}

/// Every finding for one snapshot: kubelet's eviction view and the sizing at `threshold`,
/// then the rules (`memglass top` calls this on each refresh too).
pub fn find(
    snapshot: &memglass_analyse::Snapshot,
    directory: &memglass_identify::Directory,
    threshold: Threshold,
    kills: &[RecentKill],
    holders: &[memglass_analyse::filecache::CacheHolder],
    histories: &[History],
    settings: Settings,
) -> Vec<Finding> {
    let eviction = eviction::analyse(snapshot, directory, threshold);
    let sizing = sizing::analyse(snapshot, directory);
    diagnose::diagnose(&Inputs {
        snapshot,
        directory,
        eviction: &eviction,
        sizing: &sizing,
        kills,
        cache_holders: holders,
        histories,
        settings,
    })
}

/// The kernel log's kills since `since`, as the rules read them; none (with a warning
/// unless `quiet`) when the log cannot be read.
pub fn recent_kills(
    proc_root: &std::path::Path,
    directory: &memglass_identify::Directory,
    since: SystemTime,
    subtree: Option<&str>,
    quiet: bool,
) -> Vec<RecentKill> {
    match crate::cmd::oom::recent(proc_root, directory, since, subtree, quiet) {
        Ok(reports) => reports
            .iter()
            .map(|(report, time)| RecentKill::from_report(report, *time))
            .collect(),
        Err(error) => {
            if !quiet {
                eprintln!("memglass: warning: no OOM findings: {error:#}");
            }
            Vec::new()
        }
    }
}

/// What `--pod` / `--cgroup` narrowed the findings to.
enum Scope {
    Everything,
    /// A cgroup and everything below it.
    Cgroup(String),
    /// A pod by name (and namespace), with its cgroup when it has one.
    Pod {
        namespace: Option<String>,
        name: String,
        cgroup: Option<String>,
    },
}

impl Scope {
    fn of(
        snapshot: &memglass_analyse::Snapshot,
        directory: &memglass_identify::Directory,
        args: &DiagnoseArgs,
    ) -> anyhow::Result<Scope> {
        if let Some(path) = &args.cgroup {
            let cgroup = crate::cmd::cache::select(&snapshot.cgroups, Some(path), None)?;
            return Ok(Scope::Cgroup(cgroup.path.clone()));
        }
        let Some(pod) = &args.pod else {
            return Ok(Scope::Everything);
        };
        let (namespace, name) = match pod.split_once('/') {
            Some((ns, name)) => (Some(ns.to_owned()), name.to_owned()),
            None => (None, pod.clone()),
        };
        let cgroup = crate::cmd::cache::select(&snapshot.cgroups, None, Some(pod))
            .ok()
            .map(|c| c.path.clone());
        // A Pending pod has no cgroup yet: the directory must know it.
        let known = directory
            .pods()
            .any(|p| p.name == name && namespace.as_ref().is_none_or(|ns| &p.namespace == ns));
        if cgroup.is_none() && !known {
            bail!("no pod named {pod} (names come from the container runtime, --pods or the Kubernetes API)");
        }
        Ok(Scope::Pod {
            namespace,
            name,
            cgroup,
        })
    }

    fn holds(&self, finding: &Finding) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Cgroup(path) => finding.within(path),
            Scope::Pod {
                namespace,
                name,
                cgroup,
            } => {
                cgroup.as_deref().is_some_and(|path| finding.within(path))
                    || (finding.pod.as_deref() == Some(name.as_str())
                        && namespace
                            .as_deref()
                            .is_none_or(|ns| finding.namespace.as_deref() == Some(ns)))
            }
        }
    }

    /// What was looked at, for the line printed when nothing was found.
    fn describe(&self, snapshot: &memglass_analyse::Snapshot) -> String {
        match self {
            Scope::Everything => {
                let pods = snapshot
                    .cgroups
                    .iter()
                    .filter(|c| c.kind == CgroupKind::Pod)
                    .count();
                format!("{} cgroups, {pods} pods", snapshot.cgroups.len())
            }
            Scope::Cgroup(path) => format!("cgroup {path}"),
            Scope::Pod {
                namespace, name, ..
            } => match namespace {
                Some(ns) => format!("pod {ns}/{name}"),
                None => format!("pod {name}"),
            },
        }
    }
}

/// The last hour of kubelet's working set of every pod and container with a limit, from
/// the agent's database.
fn histories(
    db: &std::path::Path,
    snapshot: &memglass_analyse::Snapshot,
    now: i64,
) -> anyhow::Result<Vec<History>> {
    if !db.is_file() {
        bail!("no history database at {}", db.display());
    }
    let store = memglass_agent::store::Store::open(db)
        .with_context(|| format!("cannot open the history database {}", db.display()))?;
    let from = now - LEAK_WINDOW.as_secs() as i64;
    let mut histories = Vec::new();
    for c in snapshot.cgroups.iter().filter(|c| {
        matches!(c.kind, CgroupKind::Pod | CgroupKind::Container) && c.memory.limit.is_some()
    }) {
        let points = store
            .history(&c.path, from, now, memglass_agent::store::Resolution::Raw)
            .with_context(|| format!("cannot read the history of {}", c.path))?
            .into_iter()
            .filter_map(|p| Some((p.t, p.working_set_kubelet?)))
            .collect();
        histories.push(History {
            cgroup: c.path.clone(),
            points,
        });
    }
    Ok(histories)
}
