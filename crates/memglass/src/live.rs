//! The snapshot path of `memglass snapshot`, for commands that take one again and again
//! (`memglass agent`, `memglass top`): the runtime's names are cached between collections
//! and asked again only when a container appears; the `--pods`/`--node` files are read
//! once; the Kubernetes API is asked again every five minutes. Warnings are kept for the
//! caller, which knows whether stderr is free (top's screen is not).

use std::path::Path;
use std::time::{Duration, Instant};

use memglass_analyse::Snapshot;
use memglass_identify::Directory;
use memglass_kernel::Roots;

use crate::cli::{IdentityArgs, SourceArgs};

/// How long the runtime may take to answer, and how often it is asked at most.
const CRI_TIMEOUT: Duration = Duration::from_secs(2);
const CRI_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// How often the Kubernetes API is asked again for pods (requests, limits, names).
const KUBE_REFRESH: Duration = Duration::from_secs(300);

/// This machine's memory cgroups, identified, once per [`LiveSource::collect`].
pub struct LiveSource {
    pub roots: Roots,
    cri: Option<memglass_cri::Cache>,
    /// What the files and the API said (everything but the runtime).
    others: Directory,
    /// How to ask the API again, and when it was last asked (None: no API to ask).
    kube: Option<(SourceArgs, IdentityArgs, Instant)>,
    /// What the files and the API said could not be had, at the start.
    warnings: Vec<String>,
    /// Where `--cgroup-root` sits in this machine's live hierarchy, as the kernel prints
    /// cgroup paths (None: the whole hierarchy, or a recorded tree). Such a subtree works
    /// as a node of its own: its kills are those inside it, its paths start at it.
    subtree: Option<String>,
}

impl LiveSource {
    /// Read the `--pods`/`--node` files and ask the API once (bad files fail here).
    pub fn new(sources: &SourceArgs, identity: &IdentityArgs) -> anyhow::Result<LiveSource> {
        let socket = match (&identity.cri_socket, &sources.cgroup_root) {
            _ if identity.no_cri => None,
            (Some(named), _) => Some(memglass_cri::socket::parse(named)),
            (None, None) => memglass_cri::socket::detect(Path::new("/")),
            // A recorded tree is not this machine's: ask only a named socket.
            (None, Some(_)) => None,
        };
        // Everything but the runtime, the way every command gathers it.
        let without_cri = IdentityArgs {
            no_cri: true,
            ..identity.clone()
        };
        let gathered = crate::identity::gather(sources, &without_cri)?;
        let in_cluster =
            std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() && sources.cgroup_root.is_none();
        let kube =
            (identity.kube || in_cluster).then(|| (sources.clone(), without_cri, Instant::now()));
        Ok(LiveSource {
            roots: Roots {
                proc: sources.proc_root.clone(),
                cgroup: sources.cgroup_root.clone(),
            },
            cri: socket.map(|s| memglass_cri::Cache::new(s, CRI_TIMEOUT, CRI_MIN_INTERVAL)),
            others: gathered.directory,
            kube,
            warnings: gathered.warnings,
            subtree: sources.cgroup_root.as_deref().and_then(|dir| {
                memglass_kernel::cgroup::hierarchy::kernel_path(&sources.proc_root, dir)
                    .filter(|path| path != "/")
            }),
        })
    }

    /// One snapshot, and the directory that named its cgroups.
    pub fn collect(&mut self) -> Result<(Snapshot, Directory), String> {
        let sample = memglass_kernel::collect(&self.roots)
            .map_err(|e| format!("cannot read memory statistics: {e}"))?;
        let identities: Vec<_> = sample
            .cgroups
            .iter()
            .map(|cgroup| memglass_identify::identify(&cgroup.path))
            .collect();
        self.refresh_kube();
        let mut directory = match &mut self.cri {
            Some(cache) => cache
                .refresh_for(identities.iter().filter_map(|i| i.container_id.as_deref()))
                .clone(),
            None => Directory::new(),
        };
        directory.merge(self.others.clone());
        let mut snapshot = memglass_analyse::snapshot(&sample, &identities, &directory);
        if self.subtree.is_some() {
            // The subtree's node counter is its root's (hierarchical) oom_kill, not
            // /proc/vmstat's, which counts kills anywhere on the machine.
            snapshot.node.oom_kill = snapshot
                .cgroups
                .iter()
                .find(|c| c.is_root())
                .and_then(|root| root.events.oom_kill);
        }
        Ok((snapshot, directory))
    }

    /// Where `--cgroup-root` sits in the live hierarchy, when it is a subtree of it.
    pub fn subtree(&self) -> Option<&str> {
        self.subtree.as_deref()
    }

    /// The names known now, without asking anyone.
    pub fn directory(&self) -> Directory {
        let mut directory = self
            .cri
            .as_ref()
            .map(|c| c.directory().clone())
            .unwrap_or_default();
        directory.merge(self.others.clone());
        directory
    }

    /// Why names are missing: the runtime's last error, then what the files and the API
    /// could not give at the start.
    pub fn warnings(&self) -> Vec<String> {
        let cri = self.cri.as_ref().and_then(|c| c.last_error());
        let cri = cri.map(|e| format!("{e} (pod and container names unavailable)"));
        cri.into_iter()
            .chain(self.warnings.iter().cloned())
            .collect()
    }

    /// Ask the API again when due; an answer with warnings keeps the last good one.
    fn refresh_kube(&mut self) {
        let Some((sources, args, asked)) = &mut self.kube else {
            return;
        };
        if asked.elapsed() < KUBE_REFRESH {
            return;
        }
        *asked = Instant::now();
        if let Ok(gathered) = crate::identity::gather(sources, args) {
            if gathered.warnings.is_empty() {
                self.others = gathered.directory;
            }
        }
    }
}
