//! `memglass reclaim`: proactive reclaim of a pod's or a container's cold page cache
//! through cgroup v2 `memory.reclaim` (PRODUCT.md §2, question 5).
//!
//! Anonymous memory must never be pushed to swap by it. Where the kernel takes
//! `swappiness=` in `memory.reclaim` (asked, not guessed from the version: see
//! [`ReclaimFile::swappiness_supported`]), every write carries `swappiness=0`, so memcg
//! reclaim scans the file LRUs only. Elsewhere memglass reclaims only a cgroup that cannot
//! swap at all: `memory.swap.max` 0 on it or an ancestor, or no swap on the node
//! (SwapTotal 0); otherwise it refuses.
//!
//! The bytes are asked for in writes of at most [`CHUNK`], with the deadline checked
//! before each one (a write cannot be cut short, so the last one may run past it by the
//! time the kernel takes for one chunk). When the kernel gives up on a write (EAGAIN:
//! nothing more it could reclaim now), that is the result: memglass stops and reports what
//! was reclaimed, with exit 0.
//!
//! The same [`perform`] serves the agent's `POST /api/v1/reclaim`.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::Args;
use memglass_analyse::CgroupReport;
use memglass_identify::CgroupKind;
use memglass_kernel::cgroup::reclaim::{self, ReclaimError, ReclaimFile, Written};
use memglass_kernel::cgroup::{CgroupMemory, CgroupVersion, MemoryHierarchy};
use memglass_kernel::Roots;

use crate::cli::{IdentityArgs, SourceArgs};
use crate::render;

/// The most asked of the kernel in one write of `memory.reclaim`.
pub const CHUNK: u64 = 64 << 20;

#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["cgroup", "pod"]))]
pub struct ReclaimArgs {
    /// The pod's or container's cgroup, as a path relative to the memory hierarchy
    /// (e.g. /kubepods.slice/…/cri-containerd-<id>.scope).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// The pod, by name or namespace/name (names come from the runtime or --pods).
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// How much to reclaim: bytes or a quantity (200Mi, 1Gi, 500M).
    #[arg(long, value_name = "QUANTITY", value_parser = parse_bytes)]
    pub bytes: u64,
    /// Stop asking the kernel after this long (checked between writes of at most 64 MiB).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Emit the memglass.reclaim/v1 JSON document (docs/json-format.md).
    #[arg(long)]
    pub json: bool,
}

/// `200Mi`, `1G`, `4096` → bytes (Kubernetes quantities), at least one byte.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    match memglass_kube::parse_memory(text.trim()) {
        Ok(0) => Err("expected more than 0 bytes".into()),
        Ok(bytes) => Ok(bytes),
        Err(e) => Err(format!("expected a quantity like 200Mi, 1G or 4096: {e}")),
    }
}

/// A refusal: the request was understood, and memglass will not do it (one line saying
/// why). The agent answers it with a 4xx; anything else is a failure.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refuse<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(Refused(message.into()).into())
}

/// How anonymous memory is kept out of swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapGuard {
    /// Every write carries `swappiness=0`.
    SwappinessZero,
    /// `memory.swap.max` is 0 at this cgroup (the target or an ancestor).
    SwapMaxZero(String),
    /// The node has no swap (SwapTotal 0).
    NoSwap,
}

impl SwapGuard {
    /// The JSON name.
    pub fn as_str(&self) -> &'static str {
        match self {
            SwapGuard::SwappinessZero => "swappiness_zero",
            SwapGuard::SwapMaxZero(_) => "swap_max_zero",
            SwapGuard::NoSwap => "no_swap",
        }
    }
}

/// How `reclaimed` was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReclaimedSource {
    /// The rise of `pgsteal` in the cgroup's memory.stat (pages reclaimed from it, its
    /// descendants included) between the figures before and after: the kernel's own
    /// count, which shows when it reclaims more than asked (6.1 does, by about a third).
    Pgsteal,
    /// Without `pgsteal`: each write the kernel completed counts its full size (it
    /// reclaimed at least that); a write it gave up on (EAGAIN) counts the fall of
    /// `memory.current` while it ran, at most its size.
    Writes,
}

impl ReclaimedSource {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReclaimedSource::Pgsteal => "pgsteal",
            ReclaimedSource::Writes => "writes",
        }
    }
}

/// Why the writes stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Everything asked for was reclaimed.
    Complete,
    /// The kernel gave up on a write (EAGAIN): less was reclaimable than asked.
    KernelShort,
    /// The deadline came first.
    Deadline,
    /// A signal interrupted a write (EINTR).
    Interrupted,
}

impl Stop {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Complete => "complete",
            Stop::KernelShort => "kernel_gave_up",
            Stop::Deadline => "deadline",
            Stop::Interrupted => "interrupted",
        }
    }
}

/// What was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Bytes to reclaim.
    pub bytes: u64,
    /// The overall deadline.
    pub timeout: Duration,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When it started.
    pub started_at: SystemTime,
    /// The cgroup as the snapshot reported it (path, kind, names).
    pub target: CgroupReport,
    /// Bytes asked for.
    pub requested: u64,
    /// Bytes reclaimed: see [`ReclaimedSource`].
    pub reclaimed: u64,
    /// Where `reclaimed` comes from.
    pub reclaimed_source: ReclaimedSource,
    /// The cgroup's figures just before the first write.
    pub before: CgroupMemory,
    /// And just after the last.
    pub after: CgroupMemory,
    /// How swap was ruled out.
    pub swap_guard: SwapGuard,
    /// Why it stopped.
    pub stop: Stop,
    /// Writes made.
    pub writes: u32,
    /// Time spent.
    pub elapsed: Duration,
    /// The deadline given.
    pub timeout: Duration,
}

impl Outcome {
    /// Everything asked for was reclaimed.
    pub fn complete(&self) -> bool {
        self.stop == Stop::Complete
    }

    /// One sentence: why it stopped.
    pub fn reason(&self) -> String {
        match self.stop {
            Stop::Complete => "reclaimed as requested".into(),
            Stop::KernelShort => format!(
                "the kernel found less to reclaim than asked (EAGAIN after its retries): \
                 reclaimed {} of {} requested",
                self.reclaimed, self.requested
            ),
            Stop::Deadline => format!(
                "stopped at the deadline ({}) after {} of {} requested",
                humantime::format_duration(self.timeout),
                self.reclaimed,
                self.requested
            ),
            Stop::Interrupted => "interrupted by a signal".into(),
        }
    }
}

pub fn run(
    sources: &SourceArgs,
    identity: &IdentityArgs,
    args: &ReclaimArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let roots = Roots {
        proc: sources.proc_root.clone(),
        cgroup: sources.cgroup_root.clone(),
    };
    let hierarchy = roots
        .memory_hierarchy()
        .context("cannot find the memory cgroup hierarchy")?;
    // Refuse v1 before looking for the cgroup: nothing on this node can be reclaimed.
    if hierarchy.version == CgroupVersion::V1 {
        return refuse(v1_refusal(&hierarchy));
    }
    let snapshot = crate::cmd::snapshot::take(sources, identity)?;
    let target = crate::cmd::cache::select(
        &snapshot.cgroups,
        args.cgroup.as_deref(),
        args.pod.as_deref(),
    )?
    .clone();
    let request = Request {
        bytes: args.bytes,
        timeout: args.timeout,
    };
    let outcome = perform(&roots, &hierarchy, target, request)?;
    if args.json {
        render::reclaim::json(out, &outcome)
    } else {
        render::reclaim::table(out, &outcome)
    }
}

fn v1_refusal(hierarchy: &MemoryHierarchy) -> String {
    format!(
        "cgroup v1 (memory controller at {}): memory.reclaim exists only on cgroup v2",
        hierarchy.mount_point.display()
    )
}

/// Reclaim `request.bytes` from `target` (a pod's or a container's cgroup of the memory
/// hierarchy `hierarchy`), bounded by `request.timeout`. Errors downcast to [`Refused`]
/// are refusals; any other is a failure.
pub fn perform(
    roots: &Roots,
    hierarchy: &MemoryHierarchy,
    target: CgroupReport,
    request: Request,
) -> anyhow::Result<Outcome> {
    if hierarchy.version == CgroupVersion::V1 {
        return refuse(v1_refusal(hierarchy));
    }
    if !matches!(target.kind, CgroupKind::Pod | CgroupKind::Container) {
        return refuse(format!(
            "{} is not a pod's or a container's cgroup (kind {}): memglass reclaims only those",
            target.path,
            target.kind.as_str()
        ));
    }
    let dir = hierarchy
        .mount_point
        .join(target.path.trim_start_matches('/'));
    let file = ReclaimFile::open(&dir).map_err(refusal_or_failure)?;
    let swappiness = file.swappiness_supported().map_err(refusal_or_failure)?;
    let swap_guard = if swappiness {
        SwapGuard::SwappinessZero
    } else {
        swap_guard_without_swappiness(roots, hierarchy, &target.path)?
    };
    let swappiness = swappiness.then_some(0);

    let started_at = SystemTime::now();
    let start = Instant::now();
    let before = file.memory().map_err(refusal_or_failure)?;
    let mut reclaimed = 0u64;
    let mut writes = 0u32;
    let stop = loop {
        let left = request.bytes.saturating_sub(reclaimed);
        if left == 0 {
            break Stop::Complete;
        }
        if start.elapsed() >= request.timeout {
            break Stop::Deadline;
        }
        let chunk = left.min(CHUNK);
        let usage_before = file.current().ok();
        writes += 1;
        match file.reclaim(chunk, swappiness) {
            Ok(Written::Full) => reclaimed += chunk,
            Ok(Written::Short) => {
                let usage_after = file.current().ok();
                if let (Some(b), Some(a)) = (usage_before, usage_after) {
                    reclaimed += b.saturating_sub(a).min(chunk);
                }
                break Stop::KernelShort;
            }
            Err(ReclaimError::Interrupted { .. }) => break Stop::Interrupted,
            Err(other) => return Err(refusal_or_failure(other)),
        }
    };
    let after = file.memory().map_err(refusal_or_failure)?;
    // The kernel's own count of pages reclaimed from this cgroup (hierarchical): what the
    // writes took, overshoot included, plus any other reclaim of it meanwhile.
    let page_size = rustix::param::page_size() as u64;
    let stolen = match (before.stat.get("pgsteal"), after.stat.get("pgsteal")) {
        (Some(b), Some(a)) if a >= b => Some((a - b).saturating_mul(page_size)),
        _ => None,
    };
    Ok(Outcome {
        started_at,
        target,
        requested: request.bytes,
        reclaimed: stolen.unwrap_or(reclaimed),
        reclaimed_source: if stolen.is_some() {
            ReclaimedSource::Pgsteal
        } else {
            ReclaimedSource::Writes
        },
        before,
        after,
        swap_guard,
        stop,
        writes,
        elapsed: start.elapsed(),
        timeout: request.timeout,
    })
}

/// On a kernel without `swappiness=`: only a cgroup that cannot swap may be reclaimed.
fn swap_guard_without_swappiness(
    roots: &Roots,
    hierarchy: &MemoryHierarchy,
    path: &str,
) -> anyhow::Result<SwapGuard> {
    if let Some(at) = reclaim::swap_forbidden_at(&hierarchy.mount_point, path)? {
        return Ok(SwapGuard::SwapMaxZero(at));
    }
    let meminfo = memglass_kernel::proc::meminfo::read(&roots.proc, &mut Vec::new())?;
    match meminfo.swap_total {
        Some(0) => Ok(SwapGuard::NoSwap),
        total => refuse(format!(
            "this kernel's memory.reclaim takes no swappiness= (Linux 6.11+), and {path} can \
             swap (memory.swap.max is not 0, SwapTotal {}): reclaim could push anonymous \
             memory to swap",
            total.map_or_else(|| "unknown".to_owned(), |t| format!("{} kB", t >> 10))
        )),
    }
}

/// The kernel readers' errors that mean "not here" become refusals; the rest failures.
fn refusal_or_failure(error: ReclaimError) -> anyhow::Error {
    match error {
        ReclaimError::CgroupV1 { .. }
        | ReclaimError::NotCgroup { .. }
        | ReclaimError::NoReclaimFile { .. } => Refused(error.to_string()).into(),
        other => anyhow::Error::from(other),
    }
}

/// Whether `error` is a refusal (the agent's 4xx).
pub fn is_refusal(error: &anyhow::Error) -> bool {
    error.downcast_ref::<Refused>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_bytes("200Mi"), Ok(200 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1Mi").is_err());
    }

    #[test]
    fn refusals_are_told_apart_from_failures() {
        let refusal = refusal_or_failure(ReclaimError::CgroupV1 {
            path: "/sys/fs/cgroup/memory/x".into(),
        });
        assert!(is_refusal(&refusal));
        assert!(refusal.to_string().contains("cgroup v1"));
        let failure = refusal_or_failure(ReclaimError::Interrupted {
            path: "/x/memory.reclaim".into(),
        });
        assert!(!is_refusal(&failure));
    }
}
