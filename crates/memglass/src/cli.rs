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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The node and every memory cgroup, for a person or (--json) for scripts.
    Snapshot(SnapshotArgs),
    /// Record the files memglass reads into DIR, to replay later with --cgroup-root and
    /// --proc-root (bug reports, fixtures).
    Capture(CaptureArgs),
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
}

impl Default for SnapshotArgs {
    fn default() -> Self {
        SnapshotArgs {
            json: false,
            top: 15,
        }
    }
}
