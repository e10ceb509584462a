//! Real containers (PRODUCT.md §5 tier 4): a private containerd (ci/containerd/setup)
//! runs pods created through CRI exactly as kubelet creates them (sandbox with a
//! kubelet-style cgroup parent, then containers with memory limits), with real
//! workloads; memglass must name every cgroup's namespace, pod and container from the
//! runtime, with the right QoS class and limits, and a pod's totals must include all of
//! its containers. Everything is stopped and removed afterwards, also on failure.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use memglass_cri::proto::{ContainerMetadata, ImageSpec, PodSandboxMetadata};
use memglass_testkit::{memglass_bin, TestCgroup};
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// Kubelet-side CRI messages (only tests create pods; memglass itself only reads).
mod cri {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamespaceOption {
        /// POD = 0, CONTAINER = 1, NODE = 2.
        #[prost(int32, tag = "1")]
        pub network: i32,
        #[prost(int32, tag = "2")]
        pub pid: i32,
        #[prost(int32, tag = "3")]
        pub ipc: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxSandboxSecurityContext {
        #[prost(message, optional, tag = "1")]
        pub namespace_options: Option<NamespaceOption>,
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
        #[prost(int64, tag = "4")]
        pub memory_limit_in_bytes: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxContainerSecurityContext {
        #[prost(message, optional, tag = "3")]
        pub namespace_options: Option<NamespaceOption>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxContainerConfig {
        #[prost(message, optional, tag = "1")]
        pub resources: Option<LinuxContainerResources>,
        #[prost(message, optional, tag = "2")]
        pub security_context: Option<LinuxContainerSecurityContext>,
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
    pub struct SandboxIdRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}
}

/// A private containerd, started by ci/containerd/setup and torn down on drop.
struct Containerd {
    state: PathBuf,
    socket: PathBuf,
}

impl Containerd {
    fn start() -> Containerd {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let state =
            std::env::temp_dir().join(format!("memglass-containerd-{}", std::process::id()));
        let output = Command::new(repo.join("ci/containerd/setup"))
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
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let _ = Command::new(repo.join("ci/containerd/teardown"))
            .arg(&self.state)
            .status();
    }
}

/// One pod as kubelet would create it.
struct PodSpec<'a> {
    uid: &'a str,
    namespace: &'a str,
    name: &'a str,
    /// Cgroup parent relative to the test cgroup: kubepods/<qos>/pod<uid>.
    parent: String,
    /// (name, shell script, memory limit in bytes or 0)
    containers: Vec<(&'a str, &'a str, i64)>,
}

struct RunningPod {
    sandbox_id: String,
    containers: Vec<(String, String)>, // (name, id)
}

async fn call<Req, Resp>(
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

async fn run_pod(
    client: &mut memglass_cri::Client,
    cg: &TestCgroup,
    spec: &PodSpec<'_>,
) -> RunningPod {
    let node_namespaces = || cri::NamespaceOption {
        network: 2,
        pid: 1,
        ipc: 0,
    };
    let sandbox_config = cri::PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: spec.name.into(),
            uid: spec.uid.into(),
            namespace: spec.namespace.into(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: String::new(),
        labels: HashMap::from([("io.kubernetes.pod.uid".to_string(), spec.uid.to_string())]),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/{}", cg.path, spec.parent),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(node_namespaces()),
            }),
        }),
    };
    let sandbox: cri::RunPodSandboxResponse = call(
        client,
        "/runtime.v1.RuntimeService/RunPodSandbox",
        cri::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
        },
    )
    .await;
    let mut containers = Vec::new();
    for (name, script, limit) in &spec.containers {
        let config = cri::ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: "memglass.test/busybox:1".into(),
                ..ImageSpec::default()
            }),
            command: vec!["/bin/sh".into(), "-c".into(), script.to_string()],
            args: Vec::new(),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: *limit,
                }),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(node_namespaces()),
                }),
            }),
        };
        let created: cri::CreateContainerResponse = call(
            client,
            "/runtime.v1.RuntimeService/CreateContainer",
            cri::CreateContainerRequest {
                pod_sandbox_id: sandbox.pod_sandbox_id.clone(),
                config: Some(config),
                sandbox_config: Some(sandbox_config.clone()),
            },
        )
        .await;
        let _: cri::Empty = call(
            client,
            "/runtime.v1.RuntimeService/StartContainer",
            cri::ContainerIdRequest {
                container_id: created.container_id.clone(),
            },
        )
        .await;
        containers.push((name.to_string(), created.container_id));
    }
    RunningPod {
        sandbox_id: sandbox.pod_sandbox_id,
        containers,
    }
}

fn snapshot(socket: &Path) -> Value {
    let output = Command::new(memglass_bin())
        .arg("--cri-socket")
        .arg(format!("unix://{}", socket.display()))
        .args(["snapshot", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("CRI socket"),
        "the runtime should have answered: {stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn cgroup<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("{path} missing from snapshot"))
}

fn mem(cgroup: &Value, key: &str) -> u64 {
    cgroup["memory"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} of {}", cgroup["path"]))
}

#[test]
fn pods_created_through_cri_are_named_by_the_runtime() {
    let containerd = Containerd::start();
    let cg = TestCgroup::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let web = PodSpec {
        uid: "5f0c2a7e-1b3d-4e8f-9a6c-0d2e4f6a8b1c",
        namespace: "shop",
        name: "web-7d9f",
        parent: "kubepods/burstable/pod5f0c2a7e-1b3d-4e8f-9a6c-0d2e4f6a8b1c".into(),
        containers: vec![
            (
                "app",
                "head -c 24m /dev/zero > /dev/shm/fill && sleep 3600",
                64 * MIB as i64,
            ),
            ("sidecar", "head -c 8m /dev/zero > /cache && sleep 3600", 0),
        ],
    };
    let batch = PodSpec {
        uid: "a1b2c3d4-e5f6-4711-8899-aabbccddeeff",
        namespace: "jobs",
        name: "report-x1",
        parent: "kubepods/besteffort/poda1b2c3d4-e5f6-4711-8899-aabbccddeeff".into(),
        containers: vec![(
            "worker",
            "head -c 12m /dev/zero > /dev/shm/fill && sleep 3600",
            0,
        )],
    };
    let db = PodSpec {
        uid: "0badc0de-0000-4000-8000-000000000001",
        namespace: "data",
        name: "db-0",
        parent: "kubepods/pod0badc0de-0000-4000-8000-000000000001".into(),
        containers: vec![(
            "postgres",
            "head -c 16m /dev/zero > /dev/shm/fill && sleep 3600",
            128 * MIB as i64,
        )],
    };
    // The pod cgroups exist before the sandbox, as kubelet creates them; kubelet also
    // sets a Guaranteed pod's limit there.
    for spec in [&web, &batch, &db] {
        cg.child(&spec.parent);
    }
    let (db_dir, _) = cg.child(&db.parent);
    let limit_file = if cg.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    cg.write(&db_dir, limit_file, &(128 * MIB).to_string());
    let pods: Vec<RunningPod> = runtime.block_on(async {
        let mut client = memglass_cri::Client::connect(&containerd.socket, Duration::from_secs(10))
            .await
            .unwrap();
        let mut pods = Vec::new();
        for spec in [&web, &batch, &db] {
            pods.push(run_pod(&mut client, &cg, spec).await);
        }
        pods
    });
    let _stop = StopPods {
        socket: containerd.socket.clone(),
        sandboxes: pods.iter().map(|p| p.sandbox_id.clone()).collect(),
    };

    // Wait until every workload has written its data.
    let app_path = format!("{}/{}/{}", cg.path, web.parent, pods[0].containers[0].1);
    let worker_path = format!("{}/{}/{}", cg.path, batch.parent, pods[1].containers[0].1);
    let postgres_path = format!("{}/{}/{}", cg.path, db.parent, pods[2].containers[0].1);
    let started = Instant::now();
    let doc = loop {
        let doc = snapshot(&containerd.socket);
        let filled = [(&app_path, 24), (&worker_path, 12), (&postgres_path, 16)]
            .iter()
            .all(|(path, mib)| {
                doc["cgroups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["path"] == path.as_str() && mem(c, "shmem") >= mib * MIB)
            });
        if filled {
            break doc;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "workloads did not fill their memory in 60 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    };

    for (spec, pod, qos) in [
        (&web, &pods[0], "Burstable"),
        (&batch, &pods[1], "BestEffort"),
        (&db, &pods[2], "Guaranteed"),
    ] {
        let pod_path = format!("{}/{}", cg.path, spec.parent);
        let pod_cgroup = cgroup(&doc, &pod_path);
        assert_eq!(pod_cgroup["kind"], "pod", "{pod_path}");
        assert_eq!(pod_cgroup["pod_uid"], spec.uid);
        assert_eq!(pod_cgroup["namespace"], spec.namespace);
        assert_eq!(pod_cgroup["pod"], spec.name);
        assert_eq!(pod_cgroup["qos_class"], qos);
        let mut sum_usage = 0;
        let mut sum_shmem = 0;
        // Every container, and the sandbox (pause) container named POD as cAdvisor does.
        let sandbox = cgroup(&doc, &format!("{pod_path}/{}", pod.sandbox_id));
        assert_eq!(sandbox["container"], "POD");
        assert_eq!(sandbox["workload"]["sandbox"], true);
        assert_eq!(sandbox["pod"], spec.name);
        for ((name, id), (_, _, limit)) in pod.containers.iter().zip(&spec.containers) {
            let container = cgroup(&doc, &format!("{pod_path}/{id}"));
            assert_eq!(container["kind"], "container");
            assert_eq!(container["container_id"], id.as_str());
            assert_eq!(container["container"], name.as_str());
            assert_eq!(container["namespace"], spec.namespace);
            assert_eq!(container["pod"], spec.name);
            assert_eq!(container["qos_class"], qos);
            assert_eq!(container["workload"]["sandbox"], false);
            assert_eq!(container["workload"]["image"], "memglass.test/busybox:1");
            if *limit > 0 {
                assert_eq!(container["memory"]["limit"], *limit as u64, "{name}");
            } else {
                assert!(
                    container["memory"]["limit"].is_null(),
                    "{name} has no limit"
                );
            }
            sum_usage += mem(container, "usage");
            sum_shmem += mem(container, "shmem");
        }
        sum_usage += mem(sandbox, "usage");
        assert!(
            mem(pod_cgroup, "usage") >= sum_usage,
            "pod usage includes every container"
        );
        assert!(mem(pod_cgroup, "shmem") >= sum_shmem);
        let group = doc["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == pod_path.as_str())
            .unwrap();
        assert_eq!(
            group["containers"].as_array().unwrap().len(),
            pod.containers.len() + 1,
            "containers + sandbox"
        );
    }
    assert_eq!(
        cgroup(&doc, &format!("{}/{}", cg.path, db.parent))["memory"]["limit"],
        128 * MIB
    );
    let sidecar = cgroup(
        &doc,
        &format!("{}/{}/{}", cg.path, web.parent, pods[0].containers[1].1),
    );
    assert!(
        mem(sidecar, "file") >= 7 * MIB,
        "the sidecar's file in its rootfs is page cache charged to it"
    );
}

/// Stop and remove the pods' sandboxes (and so their containers) through CRI.
struct StopPods {
    socket: PathBuf,
    sandboxes: Vec<String>,
}

impl Drop for StopPods {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(mut client) =
                memglass_cri::Client::connect(&self.socket, Duration::from_secs(10)).await
            else {
                return;
            };
            for id in &self.sandboxes {
                let request = cri::SandboxIdRequest {
                    pod_sandbox_id: id.clone(),
                };
                let _: Result<cri::Empty, _> = client
                    .call("/runtime.v1.RuntimeService/StopPodSandbox", request.clone())
                    .await;
                let _: Result<cri::Empty, _> = client
                    .call("/runtime.v1.RuntimeService/RemovePodSandbox", request)
                    .await;
            }
        });
    }
}
