//! CRI replies (protobuf, `runtime.v1`): what the runtime's socket answers.

use std::collections::HashMap;

use memglass_cri::{directory_from, proto};
use memglass_identify::identify;
use prost::Message;
use serde_json::Value;

use crate::mutate::Rng;
use crate::seeds::Fixtures;
use crate::Target;

/// ListPodSandbox, ListContainers and Version replies → the directory of names.
pub static CRI_REPLY: Target = Target {
    name: "cri-reply",
    about: "CRI replies: prost decode of ListPodSandbox/ListContainers/Version, directory_from, resolve",
    seeds,
    tokens: &["\x0a", "\x12", "\x1a", "\x22", "\x2a", "\x42", "\x08", "\x10", "\x7f", "\x01"],
    mutate: Some(mutate),
    run: |input| {
        let sandboxes = proto::ListPodSandboxResponse::decode(input).map(|r| r.items);
        let containers = proto::ListContainersResponse::decode(input).map(|r| r.containers);
        let _ = proto::VersionResponse::decode(input);
        let sandboxes = sandboxes.unwrap_or_default();
        let containers = containers.unwrap_or_default();
        let directory = directory_from(&sandboxes, &containers);
        for container in containers.iter().take(16) {
            let path = format!("/kubepods/pod{}/{}", container.pod_sandbox_id, container.id);
            let _ = directory.resolve(&identify(&path));
        }
    },
};

/// Replies built from the pods of the recorded API documents (the same pods a runtime on
/// those nodes would list), plus a version reply.
fn seeds(fixtures: &Fixtures) -> Vec<Vec<u8>> {
    let mut sandboxes = Vec::new();
    let mut containers = Vec::new();
    for (_, json) in fixtures.kube_json() {
        let Ok(value) = serde_json::from_slice::<Value>(&json) else {
            continue;
        };
        let pods: Vec<&Value> = match value.get("items").and_then(Value::as_array) {
            Some(items) => items.iter().collect(),
            None => vec![&value],
        };
        for (n, pod) in pods.into_iter().enumerate() {
            let field = |path: &[&str]| -> String {
                path.iter()
                    .try_fold(pod, |v, key| v.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let uid = field(&["metadata", "uid"]);
            if uid.is_empty() {
                continue;
            }
            let sandbox_id = format!("{n:064x}");
            sandboxes.push(proto::PodSandbox {
                id: sandbox_id.clone(),
                metadata: Some(proto::PodSandboxMetadata {
                    name: field(&["metadata", "name"]),
                    uid: uid.clone(),
                    namespace: field(&["metadata", "namespace"]),
                    attempt: 0,
                }),
                state: 0,
                created_at: 1_700_000_000_000_000_000,
                labels: HashMap::from([("io.kubernetes.pod.uid".to_owned(), uid.clone())]),
                annotations: HashMap::new(),
                runtime_handler: String::new(),
            });
            let statuses = pod
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for status in statuses {
                let text = |key: &str| {
                    status
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let id = text("containerID");
                let id = id
                    .split_once("://")
                    .map_or(id.as_str(), |(_, id)| id)
                    .to_owned();
                containers.push(proto::Container {
                    id,
                    pod_sandbox_id: sandbox_id.clone(),
                    metadata: Some(proto::ContainerMetadata {
                        name: text("name"),
                        attempt: 1,
                    }),
                    image: Some(proto::ImageSpec {
                        image: text("imageID"),
                        annotations: HashMap::new(),
                        user_specified_image: text("image"),
                    }),
                    image_ref: text("imageID"),
                    state: 1,
                    created_at: 1_700_000_000_000_000_000,
                    labels: HashMap::from([
                        ("io.kubernetes.pod.uid".to_owned(), uid.clone()),
                        ("io.kubernetes.container.name".to_owned(), text("name")),
                    ]),
                    annotations: HashMap::new(),
                });
            }
        }
    }
    let mut seeds = vec![
        proto::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "containerd".into(),
            runtime_version: "v1.7.24".into(),
            runtime_api_version: "v1".into(),
        }
        .encode_to_vec(),
        proto::ListPodSandboxResponse {
            items: sandboxes.clone(),
        }
        .encode_to_vec(),
        proto::ListContainersResponse {
            containers: containers.clone(),
        }
        .encode_to_vec(),
    ];
    for sandbox in sandboxes.into_iter().take(20) {
        seeds.push(
            proto::ListPodSandboxResponse {
                items: vec![sandbox],
            }
            .encode_to_vec(),
        );
    }
    for container in containers.into_iter().take(20) {
        seeds.push(
            proto::ListContainersResponse {
                containers: vec![container],
            }
            .encode_to_vec(),
        );
    }
    seeds
}

const ODD_STRINGS: &[&str] = &[
    "",
    "POD",
    "é",
    "\u{0}",
    "../..",
    "containerd://",
    "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82",
    "b27201334a41cd0749d053b18378d7ea65617b8e26277197ea25c974da1a5a8a",
    "io.kubernetes.pod.uid",
];

/// Structure-aware: a reply decoded, a few fields changed (ids shared or emptied, odd
/// strings, metadata dropped, items duplicated), encoded again.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let odd = |rng: &mut Rng| -> String {
        if rng.one_in(8) {
            "x".repeat(rng.below(100_000))
        } else {
            rng.pick(ODD_STRINGS).copied().unwrap_or("").to_owned()
        }
    };
    if let Ok(mut reply) = proto::ListContainersResponse::decode(seed) {
        if !reply.containers.is_empty() {
            for _ in 0..=rng.below(3) {
                let i = rng.below(reply.containers.len());
                let c = &mut reply.containers[i];
                match rng.below(6) {
                    0 => c.id = odd(rng),
                    1 => c.pod_sandbox_id = odd(rng),
                    2 => c.metadata = None,
                    3 => c.image = None,
                    4 => {
                        c.labels.insert(odd(rng), odd(rng));
                    }
                    _ => {
                        let copy = c.clone();
                        reply.containers.push(copy);
                    }
                }
            }
            return reply.encode_to_vec();
        }
    }
    if let Ok(mut reply) = proto::ListPodSandboxResponse::decode(seed) {
        if !reply.items.is_empty() {
            for _ in 0..=rng.below(3) {
                let i = rng.below(reply.items.len());
                let s = &mut reply.items[i];
                match rng.below(5) {
                    0 => s.id = odd(rng),
                    1 => s.metadata = None,
                    2 => {
                        if let Some(m) = s.metadata.as_mut() {
                            m.uid = odd(rng);
                        }
                    }
                    3 => s.state = rng.next_u64() as i32,
                    _ => {
                        let copy = s.clone();
                        reply.items.push(copy);
                    }
                }
            }
            return reply.encode_to_vec();
        }
    }
    seed.to_vec()
}
