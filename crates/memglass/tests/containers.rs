//! Real containers (PRODUCT.md §5 tier 4): a private containerd (ci/containerd/setup)
//! runs pods created through CRI exactly as kubelet creates them (sandbox with a
//! kubelet-style cgroup parent, then containers with memory limits), with real
//! workloads; memglass must name every cgroup's namespace, pod and container from the
//! runtime, with the right QoS class and limits, and a pod's totals must include all of
//! its containers. Everything is stopped and removed afterwards, also on failure.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod cri_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cri_support::{self as cri, call, Containerd, StopPods};
use cri_support::{ContainerMetadata, ImageSpec, PodSandboxMetadata};
use memglass_testkit::{memglass_bin, TestCgroup};
use serde_json::Value;

const MIB: u64 = 1 << 20;

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
                ..Default::default()
            }),
        }),
        ..Default::default()
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
                    ..Default::default()
                }),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(node_namespaces()),
                    ..Default::default()
                }),
            }),
            ..Default::default()
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
