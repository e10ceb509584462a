//! Large kubepods-like trees of real cgroups, for benchmarks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{workload_bin, TestCgroup};

/// `kubepods/burstable/pod<i>/<container j>` under `root`, pods of four containers, until
/// `cgroups` cgroups exist (kubepods and burstable count). Returns the container dirs.
pub fn kubepods_tree(root: &TestCgroup, cgroups: usize) -> Vec<PathBuf> {
    let mut containers = Vec::new();
    let mut made = 2; // kubepods, burstable
    let mut pod = 0;
    while made < cgroups {
        let pod_rel = format!("kubepods/burstable/pod{pod:08x}-0000-4000-8000-{pod:012x}");
        root.child(&pod_rel);
        made += 1;
        for container in 0..4 {
            if made >= cgroups {
                break;
            }
            let (dir, _) = root.child(&format!("{pod_rel}/{pod:056x}{container:08x}"));
            containers.push(dir);
            made += 1;
        }
        pod += 1;
    }
    containers
}

/// Leave 64 KiB of tmpfs (files under `shm_dir`) charged to every container: one helper
/// process per 400 containers visits them in turn (tmpfs stays charged after it exits).
pub fn charge_tmpfs(containers: &[PathBuf], shm_dir: &str) {
    for chunk in containers.chunks(400) {
        let mut command = Command::new(workload_bin());
        for (i, dir) in chunk.iter().enumerate() {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            command
                .arg("--cgroup")
                .arg(dir)
                .arg("--tmpfs")
                .arg(format!("{shm_dir}/{name}-{i}:64K"));
        }
        let output = command
            .stdin(Stdio::null())
            .output()
            .expect("run memglass-workload");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Cgroups (directories) in the tree rooted at `dir`, itself included.
pub fn count_cgroups(dir: &Path) -> usize {
    1 + std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| count_cgroups(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}
