//! Shared by the tier-4 tests that run pods through CRI (containers.rs,
//! deploy_containerd.rs): the private containerd of ci/containerd/setup as a guard,
//! kubelet's side of the CRI messages they need (field numbers of runtime.v1's
//! api.proto), and a guard that stops and removes pod sandboxes.
#![allow(clippy::unwrap_used, dead_code)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use memglass_cri::proto::{ContainerMetadata, ImageSpec, PodSandboxMetadata};

/// POD, CONTAINER and NODE of runtime.v1's NamespaceMode.
pub const NS_POD: i32 = 0;
pub const NS_CONTAINER: i32 = 1;
pub const NS_NODE: i32 = 2;

#[derive(Clone, PartialEq, prost::Message)]
pub struct NamespaceOption {
    #[prost(int32, tag = "1")]
    pub network: i32,
    #[prost(int32, tag = "2")]
    pub pid: i32,
    #[prost(int32, tag = "3")]
    pub ipc: i32,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct Int64Value {
    #[prost(int64, tag = "1")]
    pub value: i64,
}
/// RuntimeDefault = 0, Unconfined = 1, Localhost = 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SecurityProfile {
    #[prost(int32, tag = "1")]
    pub profile_type: i32,
    #[prost(string, tag = "2")]
    pub localhost_ref: String,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxSandboxSecurityContext {
    #[prost(message, optional, tag = "1")]
    pub namespace_options: Option<NamespaceOption>,
    #[prost(message, optional, tag = "3")]
    pub run_as_user: Option<Int64Value>,
    #[prost(bool, tag = "4")]
    pub readonly_rootfs: bool,
    #[prost(bool, tag = "6")]
    pub privileged: bool,
    #[prost(message, optional, tag = "9")]
    pub seccomp: Option<SecurityProfile>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxPodSandboxConfig {
    #[prost(string, tag = "1")]
    pub cgroup_parent: String,
    #[prost(message, optional, tag = "2")]
    pub security_context: Option<LinuxSandboxSecurityContext>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxConfig {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<PodSandboxMetadata>,
    #[prost(string, tag = "2")]
    pub hostname: String,
    #[prost(string, tag = "3")]
    pub log_directory: String,
    #[prost(map = "string, string", tag = "6")]
    pub labels: HashMap<String, String>,
    #[prost(map = "string, string", tag = "7")]
    pub annotations: HashMap<String, String>,
    #[prost(message, optional, tag = "8")]
    pub linux: Option<LinuxPodSandboxConfig>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunPodSandboxRequest {
    #[prost(message, optional, tag = "1")]
    pub config: Option<PodSandboxConfig>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunPodSandboxResponse {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxContainerResources {
    #[prost(int64, tag = "3")]
    pub cpu_shares: i64,
    #[prost(int64, tag = "4")]
    pub memory_limit_in_bytes: i64,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct Capability {
    #[prost(string, repeated, tag = "1")]
    pub add_capabilities: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub drop_capabilities: Vec<String>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxContainerSecurityContext {
    #[prost(message, optional, tag = "1")]
    pub capabilities: Option<Capability>,
    #[prost(bool, tag = "2")]
    pub privileged: bool,
    #[prost(message, optional, tag = "3")]
    pub namespace_options: Option<NamespaceOption>,
    #[prost(message, optional, tag = "5")]
    pub run_as_user: Option<Int64Value>,
    #[prost(bool, tag = "7")]
    pub readonly_rootfs: bool,
    #[prost(bool, tag = "11")]
    pub no_new_privs: bool,
    #[prost(string, repeated, tag = "13")]
    pub masked_paths: Vec<String>,
    #[prost(string, repeated, tag = "14")]
    pub readonly_paths: Vec<String>,
    #[prost(message, optional, tag = "15")]
    pub seccomp: Option<SecurityProfile>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxContainerConfig {
    #[prost(message, optional, tag = "1")]
    pub resources: Option<LinuxContainerResources>,
    #[prost(message, optional, tag = "2")]
    pub security_context: Option<LinuxContainerSecurityContext>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}
/// PROPAGATION_PRIVATE = 0.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mount {
    #[prost(string, tag = "1")]
    pub container_path: String,
    #[prost(string, tag = "2")]
    pub host_path: String,
    #[prost(bool, tag = "3")]
    pub readonly: bool,
    #[prost(int32, tag = "5")]
    pub propagation: i32,
    /// Kubernetes 1.30's recursiveReadOnly; runtimes older than its CRI ignore it.
    #[prost(bool, tag = "8")]
    pub recursive_read_only: bool,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerConfig {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ContainerMetadata>,
    #[prost(message, optional, tag = "2")]
    pub image: Option<ImageSpec>,
    #[prost(string, repeated, tag = "3")]
    pub command: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    pub args: Vec<String>,
    #[prost(message, repeated, tag = "6")]
    pub envs: Vec<KeyValue>,
    #[prost(message, repeated, tag = "7")]
    pub mounts: Vec<Mount>,
    #[prost(string, tag = "11")]
    pub log_path: String,
    #[prost(message, optional, tag = "15")]
    pub linux: Option<LinuxContainerConfig>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateContainerRequest {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
    #[prost(message, optional, tag = "2")]
    pub config: Option<ContainerConfig>,
    #[prost(message, optional, tag = "3")]
    pub sandbox_config: Option<PodSandboxConfig>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateContainerResponse {
    #[prost(string, tag = "1")]
    pub container_id: String,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerIdRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct StopContainerRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(int64, tag = "2")]
    pub timeout: i64,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxIdRequest {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// kubelet's default masked and read-only paths for a container that is not privileged
/// (pkg/securitycontext, ProcMountType Default).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A private containerd, started by ci/containerd/setup and torn down on drop.
pub struct Containerd {
    pub state: PathBuf,
    pub socket: PathBuf,
}

impl Containerd {
    pub fn start() -> Containerd {
        let state =
            std::env::temp_dir().join(format!("memglass-containerd-{}", std::process::id()));
        let output = Command::new(repo().join("ci/containerd/setup"))
            .arg(&state)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let socket = stdout
            .lines()
            .find_map(|l| l.strip_prefix("CONTAINERD_SOCKET="))
            .map(PathBuf::from);
        let containerd = Containerd {
            state,
            socket: socket.clone().unwrap_or_default(),
        };
        assert!(
            output.status.success() && socket.is_some(),
            "ci/containerd/setup failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        containerd
    }

    /// The snapshotter setup chose (its config's CRI `snapshotter`).
    pub fn snapshotter(&self) -> String {
        let config = std::fs::read_to_string(self.state.join("config.toml")).unwrap();
        config
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once('=')?;
                (key.trim() == "snapshotter").then(|| value.trim().trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| "overlayfs".into())
    }

    /// `ctr images import` an OCI archive into the CRI namespace, labelled as CRI-pulled
    /// images are (what ci/containerd/setup does for its own images).
    pub fn import(&self, archive: &Path, name: &str) {
        let ctr = |args: &[&str]| {
            let out = Command::new("ctr")
                .arg("--address")
                .arg(&self.socket)
                .args(["-n", "k8s.io"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ctr {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let snapshotter = self.snapshotter();
        ctr(&[
            "images",
            "import",
            "--snapshotter",
            &snapshotter,
            &archive.display().to_string(),
        ]);
        ctr(&["images", "label", name, "io.cri-containerd.image=managed"]);
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("ci/containerd/teardown"))
            .arg(&self.state)
            .status();
    }
}

pub async fn call<Req, Resp>(
    client: &mut memglass_cri::Client,
    method: &'static str,
    request: Req,
) -> Resp
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    client
        .call(method, request)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Run a sandbox, then create and start each container in it; their ids.
pub async fn run_pod(
    client: &mut memglass_cri::Client,
    sandbox: &PodSandboxConfig,
    containers: Vec<ContainerConfig>,
) -> (String, Vec<String>) {
    let created: RunPodSandboxResponse = call(
        client,
        "/runtime.v1.RuntimeService/RunPodSandbox",
        RunPodSandboxRequest {
            config: Some(sandbox.clone()),
        },
    )
    .await;
    let mut ids = Vec::new();
    for config in containers {
        let container: CreateContainerResponse = call(
            client,
            "/runtime.v1.RuntimeService/CreateContainer",
            CreateContainerRequest {
                pod_sandbox_id: created.pod_sandbox_id.clone(),
                config: Some(config),
                sandbox_config: Some(sandbox.clone()),
            },
        )
        .await;
        let _: Empty = call(
            client,
            "/runtime.v1.RuntimeService/StartContainer",
            ContainerIdRequest {
                container_id: container.container_id.clone(),
            },
        )
        .await;
        ids.push(container.container_id);
    }
    (created.pod_sandbox_id, ids)
}

/// Connect to the runtime (10 s to answer).
pub async fn connect(socket: &Path) -> memglass_cri::Client {
    memglass_cri::Client::connect(socket, Duration::from_secs(10))
        .await
        .unwrap()
}

/// Stop and remove pod sandboxes (and so their containers) through CRI, on drop.
pub struct StopPods {
    pub socket: PathBuf,
    pub sandboxes: Vec<String>,
}

impl StopPods {
    pub fn stop_now(socket: &Path, sandboxes: &[String]) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(mut client) =
                memglass_cri::Client::connect(socket, Duration::from_secs(10)).await
            else {
                return;
            };
            for id in sandboxes {
                let request = SandboxIdRequest {
                    pod_sandbox_id: id.clone(),
                };
                let _: Result<Empty, _> = client
                    .call("/runtime.v1.RuntimeService/StopPodSandbox", request.clone())
                    .await;
                let _: Result<Empty, _> = client
                    .call("/runtime.v1.RuntimeService/RemovePodSandbox", request)
                    .await;
            }
        });
    }
}

impl Drop for StopPods {
    fn drop(&mut self) {
        StopPods::stop_now(&self.socket, &self.sandboxes);
    }
}
