//! Gather what the runtime (and, later, the Kubernetes API) knows about pods and
//! containers into one directory. Failures here never fail a command: path identity
//! still names every cgroup's pod UID and container id.

use std::path::Path;
use std::time::Duration;

use memglass_identify::Directory;

use crate::cli::{IdentityArgs, SourceArgs};

/// How long a runtime may take to answer before memglass goes on without names.
const CRI_TIMEOUT: Duration = Duration::from_secs(2);

/// The directory, and why parts of it are missing (one line each, for stderr).
pub struct Gathered {
    pub directory: Directory,
    pub warnings: Vec<String>,
}

pub fn gather(sources: &SourceArgs, args: &IdentityArgs) -> Gathered {
    let mut directory = Directory::new();
    let mut warnings = Vec::new();
    if !args.no_cri {
        // A recorded tree (--cgroup-root) is not this machine's: ask only a named socket.
        let socket = match (&args.cri_socket, &sources.cgroup_root) {
            (Some(named), _) => Some(memglass_cri::socket::parse(named)),
            (None, None) => memglass_cri::socket::detect(Path::new("/")),
            (None, Some(_)) => None,
        };
        if let Some(socket) = socket {
            match memglass_cri::fetch(&socket, CRI_TIMEOUT) {
                Ok(found) => directory.merge(found),
                Err(error) => {
                    warnings.push(format!("{error} (pod and container names unavailable)"))
                }
            }
        }
    }
    Gathered {
        directory,
        warnings,
    }
}
