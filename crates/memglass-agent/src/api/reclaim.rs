//! `POST /api/v1/reclaim`: proactive reclaim of one pod's or container's cgroup
//! (`memglass reclaim`), only when the agent runs with `--allow-reclaim` (docs/api.md).
//!
//! Statuses: 200 with the `memglass.reclaim/v1` document (also when the kernel reclaimed
//! less than asked: `complete` says so); 400 for a body that is not the one below; 404
//! when reclaim is not enabled or the cgroup or pod is not on this node now; 409 while
//! another reclaim runs; 422 when memglass refuses (cgroup v1, not a pod or container,
//! swap could be used); 500 when the kernel write failed; 401 without the token (the
//! server's check, before this handler).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{counted, latest, ApiError, ApiResult};
use crate::shared::{ReclaimFailure, Shared};

/// The default deadline, as `memglass reclaim --timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest deadline a request may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    /// A cgroup path, as the snapshot's `path`.
    cgroup: Option<String>,
    /// A pod name (or namespace/name).
    pod: Option<String>,
    /// The pod's namespace.
    namespace: Option<String>,
    /// Bytes: a number, or a quantity string ("200Mi").
    bytes: Value,
    /// Seconds (default 30, at most 300).
    timeout_seconds: Option<f64>,
}

/// Releases the one-at-a-time flag when the request ends, however it ends.
struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.reclaim_running.store(false, Ordering::Release);
    }
}

pub(super) async fn reclaim(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    counted(&shared);
    if shared.reclaim.get().is_none() {
        return Err(ApiError::not_found(
            "reclaim is not enabled on this agent (start it with --allow-reclaim and --token-file)",
        ));
    }
    if shared.token.is_none() {
        // --allow-reclaim refuses to start without a token; never serve it without one.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "reclaim needs a bearer token (--token-file)",
        ));
    }
    let body: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"cgroup\": PATH or \"pod\": NAME (+ \"namespace\"), \"bytes\": N}}: {e}"
        ))
    })?;
    let reclaimer = shared
        .reclaim
        .get()
        .ok_or_else(|| ApiError::internal("reclaim is not enabled"))?;
    let bytes = bytes(reclaimer.as_ref(), &body.bytes)?;
    let timeout = match body.timeout_seconds {
        None => DEFAULT_TIMEOUT,
        Some(s) if s > 0.0 && s <= MAX_TIMEOUT.as_secs_f64() => Duration::from_secs_f64(s),
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "timeout_seconds {s}: expected more than 0 and at most {}",
                MAX_TIMEOUT.as_secs()
            )))
        }
    };
    let report = latest(&shared)?;
    let path = match (&body.cgroup, &body.pod) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::bad_request(
                "give exactly one of \"cgroup\" and \"pod\"",
            ))
        }
        (Some(path), None) => {
            if body.namespace.is_some() {
                return Err(ApiError::bad_request(
                    "\"namespace\" goes with \"pod\", not \"cgroup\"",
                ));
            }
            format!("/{}", path.trim_matches('/'))
        }
        (None, Some(pod)) => pod_path(&report.snapshot, pod, body.namespace.as_deref())?,
    };
    let cgroup = report
        .snapshot
        .cgroups
        .iter()
        .find(|c| c.path == path)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no cgroup {path} now")))?;
    if shared
        .reclaim_running
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "another reclaim is running on this agent: try again when it is done",
        ));
    }
    let running = Running(Arc::clone(&shared));
    let answer = tokio::task::spawn_blocking(move || {
        let shared = &running.0;
        let reclaimer = shared
            .reclaim
            .get()
            .ok_or_else(|| ApiError::internal("reclaim is not enabled"))?;
        reclaimer
            .reclaim(&cgroup, bytes, timeout)
            .map_err(|failure| match failure {
                ReclaimFailure::Refused(message) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
                }
                ReclaimFailure::Failed(message) => {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
                }
            })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(answer))
}

/// `bytes` as a positive number of bytes or a quantity ("200Mi", "1G", "4096").
fn bytes(reclaimer: &dyn crate::shared::Reclaim, value: &Value) -> Result<u64, ApiError> {
    let bytes = match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| "not a whole number".to_owned()),
        Value::String(text) => reclaimer.quantity(text),
        _ => Err("neither a number nor a string".to_owned()),
    };
    match bytes {
        Ok(n) if n > 0 => Ok(n),
        Ok(_) => Err(ApiError::bad_request("\"bytes\": expected more than 0")),
        Err(e) => Err(ApiError::bad_request(format!(
            "\"bytes\": expected a positive number or a quantity like \"200Mi\", got {value}: {e}"
        ))),
    }
}

/// The pod cgroup of the pod named `pod` ("name" or "namespace/name").
fn pod_path(
    snapshot: &memglass_analyse::Snapshot,
    pod: &str,
    namespace: Option<&str>,
) -> Result<String, ApiError> {
    let (namespace, name) = match (pod.split_once('/'), namespace) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give the namespace in \"namespace\" or as namespace/name, not both",
            ))
        }
        (Some((ns, name)), None) => (Some(ns), name),
        (None, ns) => (ns, pod),
    };
    let found: Vec<_> = snapshot
        .pods
        .iter()
        .filter(|p| p.pod.as_deref() == Some(name))
        .filter(|p| namespace.is_none() || p.namespace.as_deref() == namespace)
        .collect();
    match found.as_slice() {
        [one] => Ok(one.path.clone()),
        [] => Err(ApiError::not_found(format!(
            "no pod named {pod} on this node now"
        ))),
        many => Err(ApiError::bad_request(format!(
            "{} pods are named {name}: give \"namespace\"",
            many.len()
        ))),
    }
}

/// The endpoint's own rules (disabled, bodies, one at a time, refusals), with a stand-in
/// for the kernel write that takes a moment: the real write is tested against real
/// kernels in crates/memglass/tests (agent.rs on this host's v1, kernel/reclaim.rs on v2).
#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use axum::response::IntoResponse;
    use memglass_analyse::CgroupReport;
    use serde_json::json;

    use super::*;
    use crate::shared::Reclaim;

    #[derive(Debug)]
    struct SlowStandIn;

    impl Reclaim for SlowStandIn {
        fn reclaim(
            &self,
            cgroup: &CgroupReport,
            bytes: u64,
            _timeout: Duration,
        ) -> Result<Value, ReclaimFailure> {
            if cgroup.kind != memglass_identify::CgroupKind::Container {
                return Err(ReclaimFailure::Refused("not a container".into()));
            }
            std::thread::sleep(Duration::from_millis(400));
            Ok(json!({"cgroup": cgroup.path, "requested": bytes}))
        }

        fn quantity(&self, text: &str) -> Result<u64, String> {
            match text.strip_suffix("Mi") {
                Some(n) => n.parse::<u64>().map(|n| n << 20).map_err(|e| e.to_string()),
                None => text
                    .parse()
                    .map_err(|e: std::num::ParseIntError| e.to_string()),
            }
        }
    }

    fn db(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "memglass-agent-reclaim-{name}-{}/h.db",
            std::process::id()
        ))
    }

    fn shared(enabled: bool, name: &str) -> Arc<Shared> {
        let db = db(name);
        let _ = crate::store::Writer::open(&db).unwrap();
        let config = crate::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            db: db.clone(),
            interval: Duration::from_secs(10),
            retention: crate::Retention::default(),
            token: Some("t".into()),
            flight_minutes: 5,
            eviction_threshold: memglass_analyse::eviction::Threshold::Bytes(100 << 20),
            node: crate::NodeLabels::default(),
            metrics: crate::MetricFamilies::default(),
        };
        let shared = Shared::new(crate::store::Store::open(&db).unwrap(), &config);
        let snapshot = crate::tests::recorded();
        let directory = memglass_identify::Directory::new();
        let eviction =
            memglass_analyse::eviction::analyse(&snapshot, &directory, config.eviction_threshold);
        let sizing = memglass_analyse::sizing::analyse(&snapshot, &directory);
        shared.report.store(Some(Arc::new(crate::Report {
            seq: 1,
            taken_at: SystemTime::now(),
            duration: Duration::ZERO,
            snapshot,
            eviction,
            sizing,
            findings: Vec::new(),
        })));
        if enabled {
            let _ = shared.reclaim.set(Box::new(SlowStandIn));
        }
        shared
    }

    async fn post(shared: &Arc<Shared>, body: Value) -> (u16, Value) {
        let response = match reclaim(State(Arc::clone(shared)), Bytes::from(body.to_string())).await
        {
            Ok(json) => json.into_response(),
            Err(error) => error.into_response(),
        };
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn container(shared: &Shared) -> String {
        let report = shared.latest().unwrap();
        report
            .snapshot
            .cgroups
            .iter()
            .find(|c| c.kind == memglass_identify::CgroupKind::Container)
            .unwrap()
            .path
            .clone()
    }

    #[tokio::test]
    async fn disabled_bad_bodies_refusals_and_one_at_a_time() {
        let off = shared(false, "off");
        let path = container(&off);
        let (status, body) = post(&off, json!({"cgroup": path, "bytes": 1})).await;
        assert_eq!(status, 404);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-reclaim"));

        let on = shared(true, "on");
        for bad in [
            json!({"bytes": 1}),
            json!({"cgroup": path, "pod": "x", "bytes": 1}),
            json!({"cgroup": path}),
            json!({"cgroup": path, "bytes": 0}),
            json!({"cgroup": path, "bytes": -5}),
            json!({"cgroup": path, "bytes": "lots"}),
            json!({"cgroup": path, "bytes": 1, "swappiness": 60}),
            json!({"cgroup": path, "bytes": 1, "namespace": "default"}),
            json!({"cgroup": path, "bytes": 1, "timeout_seconds": 3600}),
            json!([1, 2]),
        ] {
            let (status, answer) = post(&on, bad.clone()).await;
            assert_eq!(status, 400, "{bad}: {answer}");
            assert_eq!(answer["error"]["status"], 400);
        }
        let (status, _) = post(&on, json!({"cgroup": "/nope", "bytes": 1})).await;
        assert_eq!(status, 404);
        let (status, _) = post(&on, json!({"pod": "nobody", "bytes": 1})).await;
        assert_eq!(status, 404);
        let (status, answer) = post(&on, json!({"cgroup": "/", "bytes": 1})).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["message"], "not a container");

        // Two at once: one runs, the other is told to wait its turn.
        let body = json!({"cgroup": path, "bytes": "2Mi"});
        let (a, b) = tokio::join!(post(&on, body.clone()), post(&on, body.clone()));
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        let done = if a.0 == 200 { a.1 } else { b.1 };
        assert_eq!(done["requested"], 2 << 20);
        // And the turn is given back.
        let (status, _) = post(&on, body).await;
        assert_eq!(status, 200);
        for name in ["off", "on"] {
            let _ = std::fs::remove_dir_all(db(name).parent().unwrap());
        }
    }
}
