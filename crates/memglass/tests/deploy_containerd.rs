//! The image runs as the DaemonSet runs it (PRODUCT.md §5 tier 4 and 6): ci/image builds
//! memglass's image, the private containerd of ci/containerd imports it, and the agent's
//! pod sandbox and container are created through CRI with what deploy/kubernetes/*.yaml
//! say, read from the files: host PID namespace, image, args, environment (downward API),
//! volume mounts, resources, privileged or capabilities, read-only root, seccomp. Next to
//! it run kubelet-style pods with real memory under this test's cgroup prefix.
//!
//! What the test has to put in place of a cluster (and nothing else):
//! - host network for the agent's sandbox (no CNI here) and `--listen 127.0.0.1:PORT`
//!   instead of the manifest's 0.0.0.0 (servers here listen on loopback only);
//! - the hostPath of the history is a scratch directory, not the machine's
//!   /var/lib/memglass; the Secret volume is a scratch directory with a token, as the
//!   token controller would fill it; spec.nodeName is a made-up node name.
//!
//! Asserted, for the privileged profile (memglass.yaml) and the unprivileged one
//! (memglass-unprivileged.yaml): the agent in the container sees the host's cgroup
//! hierarchy at the host's paths, its figures for the test pods equal the host binary's
//! (bracketed by two host reads around its collection), /healthz answers without the
//! token and /metrics only with it, a real OOM kill in a test pod (32 MiB limit) is
//! counted and attributed to that pod and container, and the agent ends on SIGTERM well
//! inside terminationGracePeriodSeconds. Without privileged, /dev/kmsg cannot be read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod agent_support;
mod cri_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agent_support::{free_port, http_get, MIB};
use cri_support::*;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::PodSpec;
use memglass_testkit::{memglass_bin, Scratch, TestCgroup};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The DaemonSet of a deploy/kubernetes file.
fn daemonset(file: &str) -> DaemonSet {
    let path = repo().join("deploy/kubernetes").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .find(|doc| doc["kind"] == "DaemonSet")
        .map(|doc| serde_json::from_value(doc).unwrap())
        .unwrap_or_else(|| panic!("{file}: no DaemonSet"))
}

/// `ci/image --profile dev`: the image as it ships but for the binary's build profile
/// (the debug build ci/test has made already; a release build would add minutes to CI).
fn build_image() -> PathBuf {
    let out = Command::new(repo().join("ci/image"))
        .args(["--profile", "dev"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ci/image failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A Kubernetes quantity in base units (bytes; cores).
fn quantity(q: &str) -> f64 {
    for (suffix, factor) in [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ] {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().unwrap() * factor;
        }
    }
    q.parse().unwrap()
}

/// What kubelet would be given and what it gives back, for the agent's pod.
struct AgentPod {
    sandbox: PodSandboxConfig,
    container: ContainerConfig,
    addr: SocketAddr,
    token: String,
    grace: i64,
    _scratch: Scratch,
}

/// Turn the DaemonSet's pod template into the CRI requests kubelet would send.
fn agent_pod(ds: &DaemonSet, cg: &TestCgroup, name: &str, logs: &Path) -> AgentPod {
    let pod: &PodSpec = ds.spec.template.spec.as_ref().unwrap();
    let c = &pod.containers[0];
    let scratch = Scratch::new();
    let uid = format!(
        "0000aaaa-{:04x}-4000-8000-{:012x}",
        std::process::id() % 0xffff,
        name.len()
    );
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let token = format!("memglass-test-token-{}-{name}", std::process::id());

    // Volumes: hostPath as given (the history redirected to scratch), Secret as a
    // directory holding its keys.
    let mut mounts = Vec::new();
    for vm in c.volume_mounts.as_deref().unwrap_or_default() {
        let volume = pod
            .volumes
            .as_deref()
            .unwrap()
            .iter()
            .find(|v| v.name == vm.name)
            .unwrap();
        let host_path = if let Some(host) = &volume.host_path {
            if host.path == "/var/lib/memglass" {
                let dir = scratch.dir.join("var-lib-memglass");
                std::fs::create_dir_all(&dir).unwrap();
                dir
            } else {
                PathBuf::from(&host.path)
            }
        } else if let Some(secret) = &volume.secret {
            let dir = scratch.dir.join(format!("secret-{}", vm.name));
            std::fs::create_dir_all(&dir).unwrap();
            for item in secret.items.as_deref().unwrap_or_default() {
                assert_eq!(item.key, "token");
                std::fs::write(dir.join(&item.path), &token).unwrap();
            }
            dir
        } else if volume.empty_dir.is_some() {
            let dir = scratch.dir.join(format!("empty-{}", vm.name));
            std::fs::create_dir_all(&dir).unwrap();
            dir
        } else {
            panic!("volume {} of an unexpected kind", vm.name)
        };
        // recursiveReadOnly: IfPossible is sent as false to a runtime that does not
        // announce the feature (containerd 1.6 here); Enabled would fail the pod there.
        assert_ne!(vm.recursive_read_only.as_deref(), Some("Enabled"));
        mounts.push(Mount {
            container_path: vm.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly: vm.read_only == Some(true),
            propagation: 0,
            recursive_read_only: false,
        });
    }

    // Environment: plain values and the downward API's fields.
    let envs = c
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let value = match (
                &e.value,
                e.value_from.as_ref().and_then(|v| v.field_ref.as_ref()),
            ) {
                (Some(v), _) => v.clone(),
                (None, Some(field)) => match field.field_path.as_str() {
                    "spec.nodeName" => "memglass-test-node".to_owned(),
                    "metadata.name" => name.to_owned(),
                    "metadata.namespace" => "memglass".to_owned(),
                    other => panic!("downward API field {other} not simulated"),
                },
                _ => panic!("env {} of an unexpected kind", e.name),
            };
            KeyValue {
                key: e.name.clone(),
                value,
            }
        })
        .collect();

    // Args as written, but listening on this test's loopback port.
    let args: Vec<String> = c
        .args
        .clone()
        .unwrap()
        .into_iter()
        .map(|a| {
            if a.starts_with("--listen=") {
                format!("--listen={addr}")
            } else {
                a
            }
        })
        .collect();
    assert!(args.iter().any(|a| a.starts_with("--listen=127.0.0.1:")));

    let security = c.security_context.clone().unwrap_or_default();
    let privileged = security.privileged == Some(true);
    let pid = if pod.host_pid == Some(true) {
        NS_NODE
    } else {
        NS_CONTAINER
    };
    let namespaces = NamespaceOption {
        network: NS_NODE, // the test's one substitution: no CNI here
        pid,
        ipc: if pod.host_ipc == Some(true) {
            NS_NODE
        } else {
            NS_POD
        },
    };
    let seccomp = match security.seccomp_profile.as_ref().map(|s| s.type_.as_str()) {
        Some("RuntimeDefault") => SecurityProfile {
            profile_type: 0,
            localhost_ref: String::new(),
        },
        None | Some("Unconfined") => SecurityProfile {
            profile_type: 1,
            localhost_ref: String::new(),
        },
        Some(other) => panic!("seccomp {other} not simulated"),
    };
    let resources = c.resources.clone().unwrap_or_default();
    let memory_limit = resources
        .limits
        .as_ref()
        .and_then(|l| l.get("memory"))
        .map_or(0, |q| quantity(&q.0) as i64);
    let cpu_request = resources
        .requests
        .as_ref()
        .and_then(|l| l.get("cpu"))
        .map_or(0.0, |q| quantity(&q.0));
    let qos = if memory_limit > 0 && resources.requests == resources.limits {
        ""
    } else {
        "burstable/"
    };
    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.clone(),
            namespace: "memglass".into(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: logs.display().to_string(),
        labels: HashMap::from([("io.kubernetes.pod.uid".to_string(), uid.clone())]),
        annotations: HashMap::new(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/kubepods/{qos}pod{uid}", cg.path),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces.clone()),
                run_as_user: None,
                readonly_rootfs: false,
                privileged,
                seccomp: Some(seccomp.clone()),
            }),
        }),
    };
    let capabilities = security.capabilities.as_ref().map(|caps| Capability {
        add_capabilities: caps.add.clone().unwrap_or_default(),
        drop_capabilities: caps.drop.clone().unwrap_or_default(),
    });
    let container = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: c.image.clone().unwrap(),
            ..ImageSpec::default()
        }),
        command: c.command.clone().unwrap_or_default(),
        args,
        envs,
        mounts,
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                // kubelet: milliCPU × 1024 / 1000, at least 2.
                cpu_shares: ((cpu_request * 1024.0) as i64).max(2),
                memory_limit_in_bytes: memory_limit,
            }),
            security_context: Some(LinuxContainerSecurityContext {
                capabilities,
                privileged,
                namespace_options: Some(namespaces),
                run_as_user: security.run_as_user.map(|value| Int64Value { value }),
                readonly_rootfs: security.read_only_root_filesystem == Some(true),
                no_new_privs: security.allow_privilege_escalation == Some(false),
                masked_paths: if privileged {
                    vec![]
                } else {
                    MASKED_PATHS.map(String::from).to_vec()
                },
                readonly_paths: if privileged {
                    vec![]
                } else {
                    READONLY_PATHS.map(String::from).to_vec()
                },
                seccomp: Some(seccomp),
            }),
        }),
    };
    AgentPod {
        sandbox,
        container,
        addr,
        token,
        grace: pod.termination_grace_period_seconds.unwrap_or(30),
        _scratch: scratch,
    }
}

/// A busybox container of a workload pod.
fn busybox(name: &str, script: &str, limit: i64, mounts: Vec<Mount>) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: "memglass.test/busybox:1".into(),
            ..ImageSpec::default()
        }),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        mounts,
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_shares: 2,
                memory_limit_in_bytes: limit,
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NS_NODE,
                    pid: NS_CONTAINER,
                    ipc: NS_POD,
                }),
                masked_paths: MASKED_PATHS.map(String::from).to_vec(),
                readonly_paths: READONLY_PATHS.map(String::from).to_vec(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

fn workload_sandbox(cg: &TestCgroup, uid: &str, namespace: &str, name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: namespace.into(),
            attempt: 0,
        }),
        labels: HashMap::from([("io.kubernetes.pod.uid".to_string(), uid.to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/kubepods/burstable/pod{uid}", cg.path),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NS_NODE,
                    pid: NS_CONTAINER,
                    ipc: NS_POD,
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

fn host_snapshot() -> Value {
    let out = Command::new(memglass_bin())
        .args(["--no-cri", "snapshot", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn find<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    doc["cgroups"]
        .as_array()?
        .iter()
        .find(|c| c["path"] == path)
}

/// The running agent, asked over HTTP with its token.
struct Client<'a> {
    pod: &'a AgentPod,
}

impl Client<'_> {
    fn get(&self, path: &str) -> agent_support::Response {
        let auth = format!("Bearer {}", self.pod.token);
        http_get(self.pod.addr, path, &[("Authorization", &auth)])
    }
    fn json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        response.json()
    }
    fn seq(&self) -> u64 {
        self.json("/api/v1/health")["last_collection"]["seq"]
            .as_u64()
            .unwrap_or(0)
    }
}

fn agent_log(logs: &Path, name: &str) -> String {
    std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap_or_default()
}

/// Wait for `done`, up to `secs`, showing the agent's log on failure.
fn wait(what: &str, secs: u64, logs: &Path, name: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s; the agent's log:\n{}",
            agent_log(logs, name)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_daemonset_runs_on_containerd_as_its_manifest_says() {
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("[{:6.1} s] {what}", t0.elapsed().as_secs_f64());
    let containerd = Containerd::start();
    phase("containerd ready");
    let image = build_image();
    phase("ci/image done");
    let privileged = daemonset("memglass.yaml");
    let image_name = privileged.spec.template.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    containerd.import(&image, &image_name);
    phase("image imported");
    let cg = TestCgroup::new();
    let logs = Scratch::new();
    let trigger = Scratch::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Two pods with real memory: a web pod (tmpfs in one container, a file in the other's
    // writable layer) and a hog that is OOM-killed at its 32 MiB limit each time the
    // test touches /trigger/goN.
    let web_uid = "7e57de91-0000-4000-8000-000000000e01".to_owned();
    let hog_uid = "7e57de91-0000-4000-8000-0000000000b0".to_owned();
    for uid in [&web_uid, &hog_uid] {
        cg.child(&format!("kubepods/burstable/pod{uid}"));
    }
    let trigger_mount = Mount {
        container_path: "/trigger".into(),
        host_path: trigger.dir.display().to_string(),
        readonly: true,
        ..Default::default()
    };
    // Each round in a subshell whose processes volunteer first for the OOM killer
    // (oom_score_adj 1000; raising it needs no privilege): a second kill right after
    // tail's (its memory is freed only after it) then takes one of them, never the loop.
    let hog_script = "for n in 1 2; do while [ ! -e /trigger/go$n ]; do sleep 0.2; done; \
                      sh -c 'echo 1000 > /proc/self/oom_score_adj; \
                      head -c 200m /dev/zero | tail > /dev/null'; done; sleep 3600";
    let (web_sandbox, web_ids, hog_sandbox, hog_ids) = runtime.block_on(async {
        let mut client = connect(&containerd.socket).await;
        let (web_sandbox, web_ids) = run_pod(
            &mut client,
            &workload_sandbox(&cg, &web_uid, "shop", "web-1"),
            vec![
                busybox(
                    "app",
                    "head -c 24m /dev/zero > /dev/shm/fill && sleep 3600",
                    64 * MIB as i64,
                    vec![],
                ),
                busybox(
                    "sidecar",
                    "head -c 8m /dev/zero > /cache && sleep 3600",
                    0,
                    vec![],
                ),
            ],
        )
        .await;
        let (hog_sandbox, hog_ids) = run_pod(
            &mut client,
            &workload_sandbox(&cg, &hog_uid, "batch", "hog-1"),
            vec![busybox(
                "hog",
                hog_script,
                32 * MIB as i64,
                vec![trigger_mount],
            )],
        )
        .await;
        (web_sandbox, web_ids, hog_sandbox, hog_ids)
    });
    let _stop = StopPods {
        socket: containerd.socket.clone(),
        sandboxes: vec![web_sandbox, hog_sandbox],
    };
    let web_pod = format!("{}/kubepods/burstable/pod{web_uid}", cg.path);
    let hog_pod = format!("{}/kubepods/burstable/pod{hog_uid}", cg.path);
    let app = format!("{web_pod}/{}", web_ids[0]);
    let sidecar = format!("{web_pod}/{}", web_ids[1]);
    let hog = format!("{hog_pod}/{}", hog_ids[0]);
    let started = Instant::now();
    let filled =
        |doc: &Value| find(doc, &app).and_then(|c| c["memory"]["shmem"].as_u64()) >= Some(24 * MIB);
    while !filled(&host_snapshot()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the web pod did not fill its memory"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    phase("workload pods filled");
    let profiles = [
        ("memglass.yaml", "agent-privileged", true, 1),
        ("memglass-unprivileged.yaml", "agent-unprivileged", false, 2),
    ];
    for (file, name, kernel_log, oom_round) in profiles {
        let ds = daemonset(file);
        let pod = agent_pod(&ds, &cg, name, &logs.dir);
        let (sandbox, ids) = runtime.block_on(async {
            let mut client = connect(&containerd.socket).await;
            run_pod(&mut client, &pod.sandbox, vec![pod.container.clone()]).await
        });
        let stop = StopPods {
            socket: containerd.socket.clone(),
            sandboxes: vec![sandbox],
        };
        let agent = Client { pod: &pod };

        // Probes and the token.
        wait("/healthz 200", 90, &logs.dir, name, || {
            agent_support::try_get(pod.addr, "/healthz")
                .is_some_and(|r| r.status == 200 && r.body == "ok\n")
        });
        assert_eq!(
            http_get(pod.addr, "/metrics", &[]).status,
            401,
            "{file}: /metrics needs the token"
        );
        assert_eq!(agent.get("/metrics").status, 200);
        let health = agent.json("/api/v1/health");
        let source = health["oom_source"].as_str().unwrap().to_owned();
        if kernel_log {
            assert_eq!(
                source, "kernel log (/dev/kmsg)",
                "{file}: privileged reads /dev/kmsg"
            );
        } else {
            assert!(source.starts_with("cgroup counters"), "{file}: {source}");
        }

        // The host's hierarchy at the host's paths, and the same figures as the host's
        // own memglass, bracketed by a host read before and after the agent's collection.
        let seq = agent.seq();
        let before = host_snapshot();
        wait("a fresh collection", 60, &logs.dir, name, || {
            agent.seq() > seq
        });
        phase(&format!("{file}: agent healthy, a fresh collection"));
        let inside = agent.json("/api/v1/snapshot");
        let after = host_snapshot();
        let host_count = before["cgroups"].as_array().unwrap().len() as i64;
        let inside_count = inside["cgroups"].as_array().unwrap().len() as i64;
        assert!(
            (host_count - inside_count).abs() <= 20,
            "{file}: host {host_count} cgroups, container {inside_count}"
        );
        assert!(
            find(&inside, "/").is_some(),
            "{file}: the root of the host's hierarchy"
        );
        let own = ids[0].as_str();
        assert!(
            inside["cgroups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["container_id"] == own),
            "{file}: the agent sees its own container's cgroup"
        );
        for path in [&web_pod, &app, &sidecar, &hog_pod, &hog] {
            let c = find(&inside, path).unwrap_or_else(|| panic!("{file}: {path} not seen inside"));
            let (b, a) = (find(&before, path).unwrap(), find(&after, path).unwrap());
            for key in ["usage", "anon", "shmem", "file", "working_set_kubelet"] {
                let (x, y) = (
                    b["memory"][key].as_u64().unwrap(),
                    a["memory"][key].as_u64().unwrap(),
                );
                let v = c["memory"][key].as_u64().unwrap();
                let slack = 512 << 10;
                assert!(
                    x.min(y).saturating_sub(slack) <= v && v <= x.max(y) + slack,
                    "{file}: {path} {key}: container {v}, host {x} then {y}"
                );
            }
            assert_eq!(c["pod_uid"], b["pod_uid"]);
            assert_eq!(c["container_id"], b["container_id"]);
        }
        assert!(
            find(&inside, &app).unwrap()["memory"]["shmem"]
                .as_u64()
                .unwrap()
                >= 24 * MIB
        );
        assert_eq!(inside["node"]["mem_total"], before["node"]["mem_total"]);

        // A real OOM kill in the hog, counted and attributed to its pod and container.
        let seq = agent.seq();
        wait("a collection before the kill", 60, &logs.dir, name, || {
            agent.seq() > seq
        });
        std::fs::write(trigger.dir.join(format!("go{oom_round}")), "").unwrap();
        let mut event = Value::Null;
        wait(
            "the OOM kill in the agent's events",
            90,
            &logs.dir,
            name,
            || {
                let events = agent.json("/api/v1/oom?range=1h");
                if let Some(e) = events["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    // Under load a second kill can follow the first (tail's memory is
                    // freed only after it): the newest may be its shell; look for tail's.
                    .find(|e| {
                        e["container_id"] == hog_ids[0].as_str()
                            && (!kernel_log || e["comm"] == "tail")
                    })
                {
                    event = e.clone();
                }
                !event.is_null()
            },
        );
        phase(&format!("{file}: the OOM kill seen"));
        eprintln!("{file}: {event}");
        assert_eq!(event["pod_uid"], hog_uid.as_str(), "{file}");
        assert_eq!(event["cgroup"], hog.as_str(), "{file}");
        assert!(event["kills"].as_u64().unwrap_or(1) >= 1);
        if kernel_log {
            assert_eq!(event["source"], "kernel_log", "{file}");
            assert_eq!(event["comm"], "tail", "{file}");
            assert_eq!(event["scope"], "container", "{file}");
        } else {
            assert_eq!(event["source"], "cgroup_counters", "{file}");
        }
        let metrics = agent.get("/metrics").body;
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("memglass_cgroup_memory_events_total{")
                    && l.contains("event=\"oom_kill\"")
                    && l.contains(&format!("cgroup=\"{hog}\""))
                    && !l.ends_with(" 0")),
            "{file}: the hog's oom_kill counter in /metrics"
        );

        // SIGTERM ends it well inside the grace period (StopContainer sends SIGTERM, then
        // SIGKILL at the timeout).
        let t = Instant::now();
        runtime.block_on(async {
            let mut client = connect(&containerd.socket).await;
            let _: Empty = call(
                &mut client,
                "/runtime.v1.RuntimeService/StopContainer",
                StopContainerRequest {
                    container_id: ids[0].clone(),
                    timeout: pod.grace,
                },
            )
            .await;
        });
        let stopped = t.elapsed();
        eprintln!(
            "{file}: the agent stopped {:.2} s after SIGTERM (grace {} s)",
            stopped.as_secs_f64(),
            pod.grace
        );
        assert!(
            stopped < Duration::from_secs((pod.grace as u64).saturating_sub(2).max(1)),
            "{file}: took {stopped:?} to stop, grace {} s",
            pod.grace
        );
        drop(stop);
        eprintln!("{file}: the agent's log:\n{}", agent_log(&logs.dir, name));
    }

    // The reason for `privileged`: without it, /dev/kmsg cannot be opened.
    let mut lean = daemonset("memglass-unprivileged.yaml");
    let c = &mut lean.spec.template.spec.as_mut().unwrap().containers[0];
    c.args.as_mut().unwrap().retain(|a| a != "--no-kernel-log");
    let pod = agent_pod(&lean, &cg, "agent-kmsg", &logs.dir);
    let (sandbox, _) = runtime.block_on(async {
        let mut client = connect(&containerd.socket).await;
        run_pod(&mut client, &pod.sandbox, vec![pod.container.clone()]).await
    });
    let _stop_kmsg = StopPods {
        socket: containerd.socket.clone(),
        sandboxes: vec![sandbox],
    };
    wait("/healthz 200", 90, &logs.dir, "agent-kmsg", || {
        agent_support::try_get(pod.addr, "/healthz").is_some_and(|r| r.status == 200)
    });
    let source = Client { pod: &pod }.json("/api/v1/health")["oom_source"]
        .as_str()
        .unwrap()
        .to_owned();
    eprintln!("unprivileged, kernel log asked for: {source}");
    assert!(
        source.starts_with("cgroup counters") && source.contains("kmsg"),
        "{source}"
    );
}
