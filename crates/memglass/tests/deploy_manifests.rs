//! The deployment files (deploy/): every Kubernetes document parses into its k8s-openapi
//! type with nothing dropped (deserialize, serialize back, compare: an unknown or
//! misspelt field fails), and the invariants the DaemonSet depends on hold. The plain
//! Prometheus scrape config passes `promtool check config`. No API server can run here
//! (PRODUCT.md §5 tier 6); deploy_containerd.rs runs the DaemonSet's pod spec for real.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every YAML document of a file, as JSON values (empty documents skipped).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// `value` as a `T`, with nothing dropped: serialized back it must be the same JSON.
fn typed<T: DeserializeOwned + Serialize>(value: &Value, what: &str) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if &back != value {
        panic!(
            "{what}: fields the type does not know (misspelt or misplaced):\n{}",
            diff(value, &back, "")
        );
    }
    typed
}

/// Where two JSON values differ, one path per line.
fn diff(a: &Value, b: &Value, at: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .keys()
            .chain(y.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|k| {
                diff(
                    &x[k.as_str()],
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{at}.{k}"),
                )
            })
            .collect(),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .map(|(i, (p, q))| diff(p, q, &format!("{at}[{i}]")))
            .collect(),
        _ if a == b => String::new(),
        _ => format!("{at}: {a} in the file, {b} after the round trip\n"),
    }
}

/// The typed objects of deploy/kubernetes/memglass.yaml.
#[derive(Default)]
struct Manifest {
    namespaces: Vec<Namespace>,
    accounts: Vec<ServiceAccount>,
    secrets: Vec<Secret>,
    roles: Vec<ClusterRole>,
    bindings: Vec<ClusterRoleBinding>,
    daemonsets: Vec<DaemonSet>,
    services: Vec<Service>,
    config_maps: Vec<ConfigMap>,
    /// Prometheus Operator objects (no typed crate): ServiceMonitor, PodMonitor,
    /// PrometheusRule.
    monitoring: Vec<Value>,
}

fn parse(path: &Path) -> Manifest {
    let mut m = Manifest::default();
    for (i, doc) in documents(path).iter().enumerate() {
        let what = format!("{} document {}", path.display(), i + 1);
        match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
            (Some("v1"), Some("Namespace")) => m.namespaces.push(typed(doc, &what)),
            (Some("v1"), Some("ServiceAccount")) => m.accounts.push(typed(doc, &what)),
            (Some("v1"), Some("Secret")) => m.secrets.push(typed(doc, &what)),
            (Some("v1"), Some("Service")) => m.services.push(typed(doc, &what)),
            (Some("apps/v1"), Some("DaemonSet")) => m.daemonsets.push(typed(doc, &what)),
            (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRole")) => {
                m.roles.push(typed(doc, &what))
            }
            (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRoleBinding")) => {
                m.bindings.push(typed(doc, &what))
            }
            (Some("v1"), Some("ConfigMap")) => m.config_maps.push(typed(doc, &what)),
            (
                Some("monitoring.coreos.com/v1"),
                Some("ServiceMonitor" | "PodMonitor" | "PrometheusRule"),
            ) => m.monitoring.push(doc.clone()),
            other => panic!("{what}: unexpected kind {other:?}"),
        }
    }
    m
}

/// A Kubernetes quantity in base units (bytes, cores).
fn quantity(q: &str) -> f64 {
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in suffixes {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().unwrap() * factor;
        }
    }
    q.parse().unwrap_or_else(|_| panic!("quantity {q}"))
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn agent(ds: &DaemonSet) -> &Container {
    let spec = ds.spec.template.spec.as_ref().unwrap();
    assert_eq!(spec.containers.len(), 1, "one container: the agent");
    &spec.containers[0]
}

/// The value of `--flag=value` (or `--flag value`) in the container's args.
fn flag<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    let args = container.args.as_deref().unwrap_or_default();
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix(&format!("{name}=")).or_else(|| {
            (a == name)
                .then(|| args.get(i + 1).map(String::as_str))
                .flatten()
        })
    })
}

/// Every document of every file in deploy/kubernetes/, each into its type (the Prometheus
/// Operator's kinds, which have no typed crate, checked for what they must hold), all in
/// the memglass namespace.
#[test]
fn every_manifest_file_parses() {
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for path in files {
        let m = parse(&path);
        for cm in &m.config_maps {
            assert_eq!(cm.metadata.namespace.as_deref(), Some("memglass"));
            // Grafana's sidecar loads ConfigMaps with this label; each entry a dashboard.
            let labels = cm.metadata.labels.clone().unwrap_or_default();
            assert_eq!(
                labels.get("grafana_dashboard").map(String::as_str),
                Some("1")
            );
            for (key, text) in cm.data.iter().flatten() {
                let dashboard: Value = serde_json::from_str(text).unwrap();
                assert!(
                    dashboard["panels"]
                        .as_array()
                        .is_some_and(|p| !p.is_empty()),
                    "{key}"
                );
            }
        }
        for object in &m.monitoring {
            assert_eq!(
                object["metadata"]["namespace"],
                "memglass",
                "{}",
                path.display()
            );
            if object["kind"] == "PrometheusRule" {
                let groups = object["spec"]["groups"].as_array().unwrap();
                assert!(groups
                    .iter()
                    .all(|g| g["rules"].as_array().is_some_and(|r| !r.is_empty())));
            }
        }
    }
}

#[test]
fn the_daemonset_manifest_parses_exactly_and_keeps_its_invariants() {
    let path = repo().join("deploy/kubernetes/memglass.yaml");
    let m = parse(&path);
    let [ns] = &m.namespaces[..] else {
        panic!("one Namespace")
    };
    let namespace = ns.metadata.name.clone().unwrap();
    assert_eq!(namespace, "memglass");
    assert_eq!(
        ns.metadata.labels.as_ref().unwrap()["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let [ds] = &m.daemonsets[..] else {
        panic!("one DaemonSet")
    };
    check_daemonset(ds, &namespace, true);

    // The image is the one ci/image builds and names.
    assert_eq!(
        agent(ds).image.as_deref(),
        Some(format!("localhost/memglass:{}", env!("CARGO_PKG_VERSION")).as_str())
    );

    // RBAC: exactly pods and nodes get/list/watch, events.k8s.io events create/patch.
    let [role] = &m.roles[..] else {
        panic!("one ClusterRole")
    };
    let mut granted = BTreeSet::new();
    for rule in role.rules.as_deref().unwrap() {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        for group in rule.api_groups.as_deref().unwrap() {
            for resource in rule.resources.as_deref().unwrap() {
                for verb in &rule.verbs {
                    granted.insert(format!("{group}/{resource}:{verb}"));
                }
            }
        }
    }
    let expected: BTreeSet<String> = [
        "/pods:get",
        "/pods:list",
        "/pods:watch",
        "/nodes:get",
        "/nodes:list",
        "/nodes:watch",
        "events.k8s.io/events:create",
        "events.k8s.io/events:patch",
    ]
    .map(String::from)
    .into();
    assert_eq!(granted, expected);
    let [binding] = &m.bindings[..] else {
        panic!("one ClusterRoleBinding")
    };
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let pod_spec = ds.spec.template.spec.as_ref().unwrap();
    let agent_account = pod_spec.service_account_name.clone().unwrap();
    let [subject] = binding.subjects.as_deref().unwrap() else {
        panic!("one subject")
    };
    assert_eq!(
        (
            subject.kind.as_str(),
            subject.name.as_str(),
            subject.namespace.as_deref()
        ),
        (
            "ServiceAccount",
            agent_account.as_str(),
            Some(namespace.as_str())
        )
    );
    let account_names: BTreeSet<_> = m
        .accounts
        .iter()
        .map(|a| a.metadata.name.clone().unwrap())
        .collect();
    assert!(account_names.contains(&agent_account));

    // The token: a service-account-token Secret the cluster fills, of an account that no
    // role is bound to, mounted where --token-file reads it.
    let [secret] = &m.secrets[..] else {
        panic!("one Secret")
    };
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/service-account-token")
    );
    assert!(secret.data.is_none() && secret.string_data.is_none());
    let token_account =
        &secret.metadata.annotations.as_ref().unwrap()["kubernetes.io/service-account.name"];
    assert!(account_names.contains(token_account));
    assert_ne!(
        token_account, &agent_account,
        "the scrape token grants no API access"
    );
    let token_file = flag(agent(ds), "--token-file").expect("--token-file");
    let token_volume = pod_spec
        .volumes
        .as_deref()
        .unwrap()
        .iter()
        .find(|v| {
            v.secret.as_ref().and_then(|s| s.secret_name.as_ref()) == secret.metadata.name.as_ref()
        })
        .expect("the token Secret is a volume");
    let token_mount = agent(ds)
        .volume_mounts
        .as_deref()
        .unwrap()
        .iter()
        .find(|vm| vm.name == token_volume.name)
        .unwrap();
    let items = token_volume
        .secret
        .as_ref()
        .unwrap()
        .items
        .as_deref()
        .unwrap();
    assert_eq!(
        format!("{}/{}", token_mount.mount_path, items[0].path),
        token_file
    );
    assert_eq!(items[0].key, "token");

    // The headless Service selects the agents and names their port.
    let [service] = &m.services[..] else {
        panic!("one Service")
    };
    let service_spec = service.spec.as_ref().unwrap();
    assert_eq!(service_spec.cluster_ip.as_deref(), Some("None"), "headless");
    let pod_labels = ds
        .spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    assert!(labels_match(
        service_spec.selector.as_ref().unwrap(),
        &pod_labels
    ));
    let container_ports: BTreeMap<_, _> = agent(ds)
        .ports
        .as_deref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.container_port))
        .collect();
    for port in service_spec.ports.as_deref().unwrap() {
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        match port.target_port.as_ref().unwrap() {
            IntOrString::String(name) => assert!(container_ports.contains_key(name), "{name}"),
            IntOrString::Int(n) => assert!(container_ports.values().any(|p| p == n), "{n}"),
        }
    }
    let service_labels = service.metadata.labels.clone().unwrap();
    for object in [&ds.metadata, &service.metadata] {
        assert_eq!(object.namespace.as_deref(), Some(namespace.as_str()));
    }
    for account in &m.accounts {
        assert_eq!(
            account.metadata.namespace.as_deref(),
            Some(namespace.as_str())
        );
    }
    assert_eq!(
        secret.metadata.namespace.as_deref(),
        Some(namespace.as_str())
    );

    // The Prometheus Operator's monitors select them too, with the token.
    let secret_name = secret.metadata.name.clone().unwrap();
    for (file, kind, endpoints_key, selects, port_names) in [
        (
            "servicemonitor.yaml",
            "ServiceMonitor",
            "endpoints",
            &service_labels,
            service_spec
                .ports
                .as_deref()
                .unwrap()
                .iter()
                .map(|p| p.name.clone().unwrap())
                .collect::<BTreeSet<_>>(),
        ),
        (
            "podmonitor.yaml",
            "PodMonitor",
            "podMetricsEndpoints",
            &pod_labels,
            container_ports.keys().cloned().collect(),
        ),
    ] {
        let docs = documents(&repo().join("deploy/kubernetes").join(file));
        let [monitor] = &docs[..] else {
            panic!("{file}: one document")
        };
        assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(monitor["kind"], kind);
        assert_eq!(monitor["metadata"]["namespace"], namespace.as_str());
        let spec = &monitor["spec"];
        let selector: BTreeMap<String, String> =
            serde_json::from_value(spec["selector"]["matchLabels"].clone()).unwrap();
        assert!(
            labels_match(&selector, selects),
            "{file} selects the agents"
        );
        assert_eq!(
            spec["namespaceSelector"]["matchNames"],
            serde_json::json!([namespace])
        );
        let endpoints = spec[endpoints_key].as_array().unwrap();
        assert!(!endpoints.is_empty());
        for endpoint in endpoints {
            let port = endpoint["port"].as_str().unwrap();
            assert!(port_names.contains(port), "{file}: port {port}");
            assert_eq!(endpoint["authorization"]["type"], "Bearer");
            assert_eq!(
                endpoint["authorization"]["credentials"]["name"],
                secret_name.as_str()
            );
            assert_eq!(endpoint["authorization"]["credentials"]["key"], "token");
            let relabelings = endpoint["relabelings"].as_array().unwrap();
            assert!(relabelings.iter().any(|r| r["sourceLabels"]
                == serde_json::json!(["__meta_kubernetes_pod_node_name"])
                && r["targetLabel"] == "node"));
            // memglass's own namespace/pod/container labels must not be overwritten.
            assert!(relabelings
                .iter()
                .any(|r| r["action"] == "labeldrop" && r["regex"] == "namespace|pod|container"));
        }
    }
}

/// What every profile of the DaemonSet needs.
fn check_daemonset(ds: &DaemonSet, namespace: &str, privileged: bool) {
    assert_eq!(ds.metadata.namespace.as_deref(), Some(namespace));
    let spec = &ds.spec;
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    assert!(labels_match(
        spec.selector.match_labels.as_ref().unwrap(),
        &template_labels
    ));
    let update = spec.update_strategy.as_ref().unwrap();
    assert_eq!(update.type_.as_deref(), Some("RollingUpdate"));
    assert!(update
        .rolling_update
        .as_ref()
        .unwrap()
        .max_unavailable
        .is_some());
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.host_pid, Some(true), "hostPID");
    assert_ne!(pod.host_network, Some(true), "the pod network is enough");
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    let tolerations = pod.tolerations.as_deref().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists")
                && t.key.is_none()
                && t.effect.is_none()),
        "tolerates every taint"
    );
    assert!(pod.termination_grace_period_seconds.is_some());
    let c = agent(ds);
    assert_eq!(c.args.as_deref().unwrap()[0], "agent");
    let env = c.env.as_deref().unwrap();
    let node_name = env.iter().find(|e| e.name == "NODE_NAME").unwrap();
    assert_eq!(
        node_name
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("spec.nodeName")
    );

    // Host paths: read-only, except the history, which is where --db writes.
    let volumes = pod.volumes.as_deref().unwrap();
    let db = flag(c, "--db").expect("--db");
    let history_dir = Path::new(db).parent().unwrap();
    let mut host_paths = BTreeSet::new();
    for mount in c.volume_mounts.as_deref().unwrap() {
        let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
        let Some(host) = &volume.host_path else {
            continue;
        };
        host_paths.insert(host.path.clone());
        if Path::new(&mount.mount_path) == history_dir {
            assert_eq!(host.path, "/var/lib/memglass");
            assert_ne!(mount.read_only, Some(true), "the history is written");
        } else {
            assert_eq!(
                mount.read_only,
                Some(true),
                "{} read-only",
                mount.mount_path
            );
        }
    }
    assert!(host_paths.contains("/sys/fs/cgroup"));
    assert!(host_paths.contains("/var/lib/memglass"));
    assert!(
        !host_paths
            .iter()
            .any(|p| p.contains(".sock") || p.starts_with("/run")),
        "no container runtime socket: names come from the API"
    );

    // Probes on a port the container exposes, at the token-free health endpoint.
    let ports = c.ports.as_deref().unwrap();
    for probe in [&c.liveness_probe, &c.readiness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        assert!(ports.iter().any(|p| match &get.port {
            IntOrString::Int(n) => p.container_port == *n,
            IntOrString::String(s) => p.name.as_deref() == Some(s),
        }));
    }
    let listen = flag(c, "--listen").unwrap();
    let port: i32 = listen.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        ports.iter().any(|p| p.container_port == port),
        "--listen's port is exposed"
    );

    // Requests at most the limits.
    let resources = c.resources.as_ref().unwrap();
    let requests = resources.requests.as_ref().unwrap();
    let limits = resources.limits.as_ref().unwrap();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    assert!(limits.contains_key("memory"));
    for (name, request) in requests {
        if let Some(limit) = limits.get(name) {
            assert!(
                quantity(&request.0) <= quantity(&limit.0),
                "{name}: {request:?} > {limit:?}"
            );
        }
    }

    let security = c.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let no_kernel_log = c
        .args
        .as_deref()
        .unwrap()
        .iter()
        .any(|a| a == "--no-kernel-log");
    if privileged {
        assert_eq!(security.privileged, Some(true));
        assert!(!no_kernel_log);
    } else {
        assert_eq!(security.privileged, Some(false));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        let caps = security.capabilities.as_ref().unwrap();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert!(no_kernel_log, "without privileged /dev/kmsg cannot be read");
    }
}

#[test]
fn the_unprivileged_profile_differs_only_in_its_security_and_the_kernel_log() {
    let dir = repo().join("deploy/kubernetes");
    let full = parse(&dir.join("memglass.yaml"));
    let lean = parse(&dir.join("memglass-unprivileged.yaml"));
    let [ds] = &lean.daemonsets[..] else {
        panic!("memglass-unprivileged.yaml: one DaemonSet")
    };
    assert!(lean.namespaces.is_empty() && lean.roles.is_empty() && lean.services.is_empty());
    check_daemonset(ds, "memglass", false);
    // Same object name (applying it replaces the privileged one); the rest identical.
    let normalise = |ds: &DaemonSet| {
        let mut ds = ds.clone();
        let pod = ds.spec.template.spec.as_mut().unwrap();
        let c = &mut pod.containers[0];
        c.security_context = None;
        c.args.as_mut().unwrap().retain(|a| a != "--no-kernel-log");
        ds
    };
    assert_eq!(normalise(ds), normalise(&full.daemonsets[0]));
}

/// ci/apt-ensure PKG when `binary` is missing (idempotent: nothing when present).
fn ensure_tool(binary: &str, package: &str) {
    if Path::new(binary).exists() {
        return;
    }
    let status = Command::new(repo().join("ci/apt-ensure"))
        .arg(package)
        .status()
        .unwrap();
    assert!(status.success(), "ci/apt-ensure {package} failed");
}

/// Debian's Prometheus (2.42, bookworm) is built without Kubernetes service discovery:
/// its promtool rejects `kubernetes_sd_configs` as an unknown field. So the config is
/// checked twice: promtool on a copy whose discovery block is swapped for a static target
/// (everything else, authorization and relabelling included, as Prometheus parses it),
/// and Debian's VictoriaMetrics, whose strict parser knows kubernetes_sd_configs, on the
/// file as it is (`-dryRun`; an unknown or misspelt field fails it).
#[test]
fn the_plain_prometheus_scrape_config_passes_promtool() {
    ensure_tool("/usr/bin/promtool", "prometheus");
    ensure_tool("/usr/bin/victoria-metrics", "victoria-metrics");
    let path = repo().join("deploy/prometheus/scrape.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("    kubernetes_sd_configs:").unwrap();
    let end = text.find("    relabel_configs:").unwrap();
    let scratch = memglass_testkit::Scratch::new();
    let static_copy = scratch.dir.join("scrape-static.yaml");
    std::fs::write(
        &static_copy,
        format!(
            "{}    static_configs:\n      - targets: [\"127.0.0.1:9850\"]\n{}",
            &text[..start],
            &text[end..]
        ),
    )
    .unwrap();
    let promtool = Command::new("promtool")
        .args(["check", "config", "--syntax-only"])
        .arg(&static_copy)
        .output()
        .unwrap();
    assert!(
        promtool.status.success(),
        "promtool check config: {}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    let vm = Command::new("victoria-metrics")
        .arg("-dryRun")
        .arg(format!("-promscrape.config={}", path.display()))
        .output()
        .unwrap();
    assert!(
        vm.status.success(),
        "victoria-metrics -dryRun: {}",
        String::from_utf8_lossy(&vm.stderr)
    );
    let [config] = &documents(&path)[..] else {
        panic!("one document")
    };
    let job = &config["scrape_configs"][0];
    let sd = &job["kubernetes_sd_configs"][0];
    assert!(["pod", "endpoints"].contains(&sd["role"].as_str().unwrap()));
    assert_eq!(sd["namespaces"]["names"][0], "memglass");
    assert_eq!(job["authorization"]["type"], "Bearer");
    assert!(job["authorization"]["credentials_file"].is_string());
    let relabel = job["relabel_configs"].as_array().unwrap();
    assert!(relabel.iter().any(|r| r["source_labels"]
        == serde_json::json!(["__meta_kubernetes_pod_node_name"])
        && r["target_label"] == "node"));
    // No target label may take the names memglass's own series carry.
    for r in relabel {
        let target = r["target_label"].as_str().unwrap_or_default();
        assert!(
            !["namespace", "pod", "container", "cgroup"].contains(&target),
            "{target}"
        );
    }
}

#[test]
fn the_tls_profile_differs_only_in_its_certificate_and_probe_scheme() {
    let dir = repo().join("deploy/kubernetes");
    let full = parse(&dir.join("memglass.yaml"));
    let tls = parse(&dir.join("memglass-tls.yaml"));
    let [ds] = &tls.daemonsets[..] else {
        panic!("memglass-tls.yaml: one DaemonSet")
    };
    assert!(tls.namespaces.is_empty() && tls.secrets.is_empty() && tls.services.is_empty());
    check_daemonset(ds, "memglass", true);
    let c = agent(ds);
    // The flags read the Secret's files where they are mounted.
    let pod = ds.spec.template.spec.as_ref().unwrap();
    let volume = pod
        .volumes
        .as_deref()
        .unwrap()
        .iter()
        .find(|v| v.name == "tls")
        .unwrap();
    let secret = volume.secret.as_ref().unwrap();
    assert_eq!(secret.secret_name.as_deref(), Some("memglass-tls"));
    let mount = c
        .volume_mounts
        .as_deref()
        .unwrap()
        .iter()
        .find(|m| m.name == "tls")
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    for (flag_name, key) in [
        ("--tls-cert-file", "tls.crt"),
        ("--tls-key-file", "tls.key"),
    ] {
        let item = secret
            .items
            .as_deref()
            .unwrap()
            .iter()
            .find(|i| i.key == key)
            .unwrap();
        assert_eq!(
            flag(c, flag_name),
            Some(format!("{}/{}", mount.mount_path, item.path).as_str())
        );
    }
    for probe in [&c.liveness_probe, &c.readiness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
    }
    // Everything else as in memglass.yaml.
    let normalise = |ds: &DaemonSet| {
        let mut ds = ds.clone();
        let pod = ds.spec.template.spec.as_mut().unwrap();
        pod.volumes.as_mut().unwrap().retain(|v| v.name != "tls");
        let c = &mut pod.containers[0];
        c.args
            .as_mut()
            .unwrap()
            .retain(|a| !a.starts_with("--tls-"));
        c.volume_mounts
            .as_mut()
            .unwrap()
            .retain(|m| m.name != "tls");
        for probe in [&mut c.liveness_probe, &mut c.readiness_probe] {
            probe.as_mut().unwrap().http_get.as_mut().unwrap().scheme = None;
        }
        ds
    };
    assert_eq!(normalise(ds), normalise(&full.daemonsets[0]));
}

#[test]
fn behind_kube_rbac_proxy_the_agent_listens_on_loopback_only() {
    let m = parse(&repo().join("deploy/kubernetes/memglass-kube-rbac-proxy.yaml"));
    let [ds] = &m.daemonsets[..] else {
        panic!("one DaemonSet")
    };
    let pod = ds.spec.template.spec.as_ref().unwrap();
    let container = |name: &str| pod.containers.iter().find(|c| c.name == name).unwrap();
    let (agent, proxy) = (container("agent"), container("kube-rbac-proxy"));
    let listen = flag(agent, "--listen").unwrap();
    assert!(listen.starts_with("127.0.0.1:"), "{listen}");
    assert_eq!(flag(agent, "--token-file"), None, "loopback needs no token");
    assert!(agent.ports.is_none(), "only the proxy is reachable");
    assert_eq!(
        flag(proxy, "--upstream"),
        Some(format!("http://{listen}/").as_str())
    );
    assert_eq!(flag(proxy, "--ignore-paths"), Some("/healthz"));
    let secure = flag(proxy, "--secure-listen-address").unwrap();
    let port: i32 = secure.rsplit(':').next().unwrap().parse().unwrap();
    let proxy_ports = proxy.ports.as_deref().unwrap();
    assert!(proxy_ports
        .iter()
        .any(|p| p.container_port == port && p.name.as_deref() == Some("metrics")));
    // The probes go through the proxy's port, over HTTPS, to the token-free /healthz, and
    // sit on the agent, so a stuck agent is the container restarted.
    for probe in [&agent.liveness_probe, &agent.readiness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        assert_eq!(get.port, IntOrString::Int(port));
    }
    // The proxy may ask TokenReviews and SubjectAccessReviews, as the agent's account.
    let proxy_role = m
        .roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("memglass-kube-rbac-proxy"))
        .unwrap();
    let mut granted = BTreeSet::new();
    for rule in proxy_role.rules.as_deref().unwrap() {
        for group in rule.api_groups.as_deref().unwrap() {
            for resource in rule.resources.as_deref().unwrap() {
                for verb in &rule.verbs {
                    granted.insert(format!("{group}/{resource}:{verb}"));
                }
            }
        }
    }
    assert_eq!(
        granted,
        BTreeSet::from([
            "authentication.k8s.io/tokenreviews:create".to_string(),
            "authorization.k8s.io/subjectaccessreviews:create".to_string(),
        ])
    );
    let [binding] = &m.bindings[..] else {
        panic!("one ClusterRoleBinding")
    };
    assert_eq!(binding.role_ref.name, "memglass-kube-rbac-proxy");
    let subject = &binding.subjects.as_deref().unwrap()[0];
    assert_eq!(Some(&subject.name), pod.service_account_name.as_ref());
    // Readers get /metrics and the API by a role on non-resource URLs.
    let viewer = m
        .roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("memglass-viewer"))
        .unwrap();
    let urls = viewer.rules.as_deref().unwrap()[0]
        .non_resource_urls
        .clone()
        .unwrap();
    assert!(urls.contains(&"/metrics".to_string()) && urls.contains(&"/api/v1/*".to_string()));
}
