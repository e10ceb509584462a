//! The snapshot path of `memglass snapshot`, for commands that take one again and again
//! (`memglass agent`, `memglass top`): the runtime's names are cached between collections
//! and asked again only when a container appears; the `--pods`/`--node` files are read
//! once; the Kubernetes API is watched ([`memglass_kube::NodeWatch`]: this node's pods and
//! Node, a new pod named within a second, the last names kept while the API is away).
//! Warnings are kept for the caller, which knows whether stderr is free (top's screen is
//! not).

use std::path::Path;
use std::time::Duration;

use memglass_analyse::Snapshot;
use memglass_identify::Directory;
use memglass_kernel::Roots;

use crate::cli::{IdentityArgs, SourceArgs};

/// How long the runtime may take to answer, and how often it is asked at most.
const CRI_TIMEOUT: Duration = Duration::from_secs(2);
const CRI_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// How long the API server may take to connect, and to give its first lists at start.
const KUBE_TIMEOUT: Duration = Duration::from_secs(10);

/// This machine's memory cgroups, identified, once per [`LiveSource::collect`].
pub struct LiveSource {
    pub roots: Roots,
    cri: Option<memglass_cri::Cache>,
    /// What the `--pods`/`--node` files said.
    files: Directory,
    /// The API's pods and node, kept up to date (None: no API to ask).
    kube: Option<std::sync::Arc<memglass_kube::NodeWatch>>,
    /// What the API could not give at the start.
    warnings: Vec<String>,
    /// Where `--cgroup-root` sits in this machine's live hierarchy, as the kernel prints
    /// cgroup paths (None: the whole hierarchy, or a recorded tree). Such a subtree works
    /// as a node of its own: its kills are those inside it, its paths start at it.
    subtree: Option<String>,
}

impl LiveSource {
    /// Read the `--pods`/`--node` files (bad files fail here) and start watching the API
    /// when asked (`--kube`, or in a cluster), waiting up to 10 s for its first lists.
    /// `events`: the watch may post Kubernetes Events ([`LiveSource::post_event`]).
    pub fn new(
        sources: &SourceArgs,
        identity: &IdentityArgs,
        events: bool,
    ) -> anyhow::Result<LiveSource> {
        let socket = match (&identity.cri_socket, &sources.cgroup_root) {
            _ if identity.no_cri => None,
            (Some(named), _) => Some(memglass_cri::socket::parse(named)),
            (None, None) => memglass_cri::socket::detect(Path::new("/")),
            // A recorded tree is not this machine's: ask only a named socket.
            (None, Some(_)) => None,
        };
        let files = crate::identity::files(identity)?;
        let mut warnings = Vec::new();
        let kube = if crate::identity::wants_api(sources, identity) {
            match memglass_kube::NodeWatch::start(
                identity.node_name.as_deref(),
                KUBE_TIMEOUT,
                events,
            ) {
                Ok(watch) => {
                    if !watch.wait_synced(KUBE_TIMEOUT) {
                        let status = watch.status();
                        warnings.push(format!(
                            "Kubernetes API: no pods and node for {} yet: {} (names, requests, limits and priorities come once it answers; the watch keeps trying)",
                            status.node,
                            status
                                .last_error
                                .unwrap_or_else(|| format!("no answer within {KUBE_TIMEOUT:?}"))
                        ));
                    }
                    Some(std::sync::Arc::new(watch))
                }
                Err(error) => {
                    warnings.push(format!(
                        "Kubernetes API: {error} (requests, limits and priorities unavailable)"
                    ));
                    None
                }
            }
        } else {
            None
        };
        Ok(LiveSource {
            roots: Roots {
                proc: sources.proc_root.clone(),
                cgroup: sources.cgroup_root.clone(),
            },
            cri: socket.map(|s| memglass_cri::Cache::new(s, CRI_TIMEOUT, CRI_MIN_INTERVAL)),
            files,
            kube,
            warnings,
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
        let mut directory = match &mut self.cri {
            Some(cache) => cache
                .refresh_for(identities.iter().filter_map(|i| i.container_id.as_deref()))
                .clone(),
            None => Directory::new(),
        };
        self.merge_others(&mut directory);
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
        self.merge_others(&mut directory);
        directory
    }

    /// The files' names, then the API's (the order every command uses).
    fn merge_others(&self, directory: &mut Directory) {
        directory.merge(self.files.clone());
        if let Some(watch) = &self.kube {
            directory.merge(Directory::clone(&watch.directory()));
        }
    }

    /// The API watch, shared (e.g. with the agent's health handlers).
    pub fn kube_watch(&self) -> Option<std::sync::Arc<memglass_kube::NodeWatch>> {
        self.kube.clone()
    }

    /// How the API watch is doing (None: the API is not asked).
    pub fn kube_status(&self) -> Option<memglass_kube::WatchStatus> {
        self.kube.as_ref().map(|w| w.status())
    }

    /// Queue a Kubernetes Event (false: no API, events off, or the queue is full).
    pub fn post_event(&self, event: memglass_kube::PodEvent) -> bool {
        self.kube.as_ref().is_some_and(|w| w.post(event))
    }

    /// Why names are missing: the runtime's last error, what the API could not give at the
    /// start, and whether the API is away now (its last names are kept meanwhile).
    pub fn warnings(&self) -> Vec<String> {
        let cri = self.cri.as_ref().and_then(|c| c.last_error());
        let cri = cri.map(|e| format!("{e} (pod and container names unavailable)"));
        let away = self
            .kube_status()
            .filter(|s| s.synced && !s.connected)
            .map(|s| api_away(&s));
        cri.into_iter()
            .chain(self.warnings.iter().cloned())
            .chain(away)
            .collect()
    }
}

/// One line saying the API is away and what is served meanwhile.
pub fn api_away(status: &memglass_kube::WatchStatus) -> String {
    let since = status
        .last_contact
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "the start".into());
    format!(
        "Kubernetes API unreachable: {} (serving the {} pods known at {since}; retrying)",
        status.last_error.as_deref().unwrap_or("no answer"),
        status.pods
    )
}
