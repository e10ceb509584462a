//! Cgroup paths, as the kernel prints them (`oom_memcg=`, `/proc/PID/cgroup`) and as the
//! hierarchy walk finds them.

use std::sync::OnceLock;

use memglass_identify::{identify, ContainerInfo, Directory, PodInfo};

use super::text;
use crate::seeds::Fixtures;
use crate::Target;

/// cgroup path → identity, then resolved against a directory of pods and containers.
pub static CGROUP_PATH: Target = Target {
    name: "cgroup-path",
    about: "cgroup paths: memglass_identify::identify, Directory::resolve",
    seeds,
    tokens: &[
        "/",
        "//",
        "kubepods",
        "kubepods.slice",
        "kubepods-burstable.slice",
        "besteffort",
        "burstable",
        "kubepods-besteffort-pod",
        "pod",
        ".slice",
        ".scope",
        ".service",
        ".mount",
        "cri-containerd-",
        "crio-",
        "crio-conmon-",
        "docker-",
        "libpod-",
        "libpod-conmon-",
        "nerdctl-",
        "lxc.monitor.",
        ".lxc",
        "lxc.payload.",
        ":cri-containerd:",
        " (deleted)",
        "machine-libpod_pod_",
        "k8s.io",
        "default",
        "container",
        "-",
        "_",
        "0330b2c1_a15b_4cdd_b5e5_72d4a90bee82",
        "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82",
        "b27201334a41cd0749d053b18378d7ea65617b8e26277197ea25c974da1a5a8a",
        "5B27201334A41CD0749D053B18378D7EA65617B8E26277197EA25C974DA1A5A8",
        "d8f6b0e7f1a94f1f9b3e1c2d4a5b6c7d",
    ],
    mutate: None,
    run: |input| {
        let identity = identify(&text(input));
        let resolved = directory().resolve(&identity);
        std::hint::black_box((serde_json::to_vec(&identity).ok(), resolved));
    },
};

/// Paths from the recorded hosts, the OOM reports' `oom_memcg=`/`task_memcg=`, and the
/// identify crate's own tables of real paths.
fn seeds(fixtures: &Fixtures) -> Vec<Vec<u8>> {
    let mut paths: Vec<String> = fixtures.cgroup_paths();
    for log in fixtures.oom_logs().iter().chain(fixtures.kmsg().iter()) {
        let log = String::from_utf8_lossy(log);
        for key in [
            "oom_memcg=",
            "task_memcg=",
            "Memory cgroup stats for ",
            "Task in ",
        ] {
            for (_, rest) in log
                .match_indices(key)
                .map(|(i, _)| log.split_at(i + key.len()))
            {
                let end = rest.find([',', ' ', ':', '\n']).unwrap_or(rest.len());
                paths.push(rest[..end].to_owned());
            }
        }
    }
    let tables = fixtures
        .root()
        .join("../crates/memglass-identify/src/tests");
    if let Ok(entries) = std::fs::read_dir(tables) {
        for entry in entries.flatten() {
            let source = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for quoted in source.split('"').skip(1).step_by(2) {
                if quoted.starts_with('/') {
                    paths.push(quoted.replace("\\\n", "").replace(' ', ""));
                }
            }
        }
    }
    paths.sort();
    paths.dedup();
    paths.into_iter().map(String::into_bytes).collect()
}

/// A directory holding the pods and containers the seeds name.
fn directory() -> &'static Directory {
    static DIRECTORY: OnceLock<Directory> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let mut directory = Directory::new();
        for uid in [
            "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82",
            "8d3c7f0e-5b1a-4f29-9c6e-2a7b4d1e0f93",
        ] {
            directory.add_pod(PodInfo {
                uid: uid.into(),
                namespace: "ns".into(),
                name: "pod".into(),
                ..PodInfo::default()
            });
        }
        for id in [
            "b27201334a41cd0749d053b18378d7ea65617b8e26277197ea25c974da1a5a8a",
            "b7e2d4a9c1f60358e9a7b2c4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a5c7b9d2e4",
        ] {
            directory.add_container(ContainerInfo {
                id: id.into(),
                pod_uid: "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82".into(),
                name: "c".into(),
                ..ContainerInfo::default()
            });
        }
        directory
    })
}
