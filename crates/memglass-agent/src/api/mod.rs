//! The JSON API under `/api/v1` (docs/api.md). Versioned: fields are added, never renamed.
//! Errors are `{"error": {"status": N, "message": "…"}}` with the same HTTP status.

#[doc(hidden)]
pub mod params;
mod reclaim;
mod views;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::shared::{rfc3339, unix_seconds, Health, Shared};
use params::TimeRange;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with `status` and a one-line message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"status": self.status.as_u16(), "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;
type Params = Query<HashMap<String, String>>;

/// The routes under `/api/v1`.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(health))
        .route("/snapshot", get(snapshot))
        .route("/node", get(node))
        .route("/workloads", get(workloads))
        .route("/cgroup", get(cgroup))
        .route("/pod", get(pod))
        .route("/oom", get(oom_events))
        .route("/oom/:id", get(oom_event))
        .route("/cache", get(cache))
        .route("/eviction", get(eviction))
        .route("/requests", get(requests))
        .route("/findings", get(findings))
        .route("/reclaim", post(reclaim::reclaim))
        .fallback(not_found)
}

/// 404 for paths that name nothing.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (see docs/api.md: /api/v1/...)")
}

/// 405 for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: the agent's endpoints are read with GET (only /api/v1/reclaim takes POST)",
    )
}

fn counted(shared: &Shared) {
    Health::add(&shared.health.api_requests, 1);
}

/// Run a store query off the async workers.
async fn with_store<T: Send + 'static>(
    shared: &Arc<Shared>,
    query: impl FnOnce(&crate::store::Store) -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let store = shared
            .store
            .lock()
            .map_err(|_| ApiError::internal("history store lock poisoned"))?;
        query(&store).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// `starting` (no collection yet), `stale` (the last one is older than three intervals)
/// or `ok`: /api/v1/health's `status`, and all that /healthz tells.
pub(crate) fn status(shared: &Shared, report: Option<&crate::Report>) -> &'static str {
    match report {
        None => "starting",
        Some(r) if r.taken_at.elapsed().unwrap_or_default() > shared.interval * 3 => "stale",
        Some(_) => "ok",
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> ApiResult {
    counted(&shared);
    let report = shared.latest();
    let h = &shared.health;
    let db_bytes = with_store(&shared, |s| Ok(s.size_on_disk())).await?;
    let oom_source = shared
        .oom_source
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let status = status(&shared, report.as_deref());
    Ok(Json(json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": rfc3339(unix_seconds(shared.started_at)),
        "interval_seconds": shared.interval.as_secs_f64(),
        "last_collection": report.as_ref().map(|r| json!({
            "seq": r.seq,
            "taken_at": rfc3339(r.unix_seconds()),
            "duration_seconds": r.duration.as_secs_f64(),
            "cgroups": r.snapshot.cgroups.len(),
            "vanished_cgroups": r.snapshot.vanished,
            "gaps": r.snapshot.gaps.len(),
        })),
        "collections": Health::get(&h.collections),
        "collection_errors": Health::get(&h.collection_errors),
        "collection_cpu_seconds": Health::get(&h.collection_cpu_usec) as f64 / 1e6,
        "scrapes": Health::get(&h.scrapes),
        "store_rows": Health::get(&h.store_rows),
        "store_errors": Health::get(&h.store_errors),
        "oom_events": Health::get(&h.oom_events),
        "oom_source": oom_source,
        "oom_reports_lost": Health::get(&h.oom_reports_lost),
        "kmsg_overruns": Health::get(&h.kmsg_overruns),
        "kmsg_records_lost": Health::get(&h.kmsg_records_lost),
        "resident_bytes": Health::get(&h.resident_bytes),
        "last_error": h.error(),
        "database": database(&shared, db_bytes),
        "token_required": shared.token.is_some(),
        "kube": shared.kube.get().map(|k| {
            let k = k.health();
            json!({
                "node": k.node,
                "connected": k.connected,
                "synced": k.synced,
                "last_contact": k.last_contact.map(rfc3339),
                "last_update": k.last_update.map(rfc3339),
                "last_error": k.last_error,
                "watch_errors": k.watch_errors,
                "pods": k.pods,
                "events": {
                    "enabled": k.events_enabled,
                    "posted": k.events_posted,
                    "failed": k.events_failed,
                    "dropped": k.events_dropped,
                    "last_error": k.last_event_error,
                },
            })
        }),
    })))
}

/// The `database` object of /api/v1/health: the file, its size and limit, and its faults.
fn database(shared: &Shared, bytes: u64) -> serde_json::Value {
    let store = shared.health.store_health();
    json!({
        "path": shared.db_path.display().to_string(),
        "bytes": bytes,
        "max_bytes": store.max_bytes,
        "failing": store.failing,
        "errors": Health::get(&shared.health.store_errors),
        "last_error": store.last_error.as_ref().map(|(_, e)| e),
        "last_error_at": store.last_error.as_ref().map(|(t, _)| rfc3339(*t)),
        "pruned_rows": store.pruned_rows,
        "moved_aside": store.moved_aside.map(|m| json!({
            "path": m.to.display().to_string(),
            "reason": m.reason,
        })),
    })
}

fn latest(shared: &Shared) -> Result<Arc<crate::Report>, ApiError> {
    shared.latest().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no collection yet: the agent is starting",
        )
    })
}

async fn snapshot(State(shared): State<Arc<Shared>>) -> ApiResult {
    counted(&shared);
    let report = latest(&shared)?;
    Ok(Json(views::snapshot_document(&report)))
}

/// `memglass eviction --json` of the latest collection (the agent's `--eviction-threshold`).
async fn eviction(State(shared): State<Arc<Shared>>) -> Result<Response, ApiError> {
    counted(&shared);
    let report = latest(&shared)?;
    let documents = documents(&shared)?;
    let body = documents
        .eviction(&report.eviction, report.taken_at)
        .map_err(ApiError::internal)?;
    Ok(json_text(body))
}

/// `memglass requests --json` of the latest collection.
async fn requests(State(shared): State<Arc<Shared>>) -> Result<Response, ApiError> {
    counted(&shared);
    let report = latest(&shared)?;
    let documents = documents(&shared)?;
    let body = documents
        .requests(&report.sizing, report.taken_at)
        .map_err(ApiError::internal)?;
    Ok(json_text(body))
}

/// `memglass diagnose --json` of the latest collection; `cgroup=PATH` keeps the findings
/// about it and below it, `pod=[NAMESPACE/]NAME` those of a pod, `min_severity=` drops the
/// milder ones.
async fn findings(State(shared): State<Arc<Shared>>, Query(query): Params) -> ApiResult {
    use memglass_analyse::diagnose::{Document, Severity, SCHEMA};
    counted(&shared);
    let report = latest(&shared)?;
    let min = match query.get("min_severity").map(String::as_str) {
        None | Some("info") => Severity::Info,
        Some("warning") => Severity::Warning,
        Some("critical") => Severity::Critical,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "min_severity {other:?}: expected critical, warning or info"
            )))
        }
    };
    let cgroup = match query.get("cgroup") {
        Some(path) if !path.starts_with('/') => {
            return Err(ApiError::bad_request(format!(
                "cgroup {path:?}: a cgroup path starts with /"
            )))
        }
        other => other,
    };
    let pod = query.get("pod").map(|p| match p.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, p.as_str()),
    });
    let kept: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity <= min)
        .filter(|f| cgroup.is_none_or(|path| f.within(path)))
        .filter(|f| {
            pod.is_none_or(|(ns, name)| {
                f.pod.as_deref() == Some(name)
                    && ns.is_none_or(|ns| f.namespace.as_deref() == Some(ns))
            })
        })
        .cloned()
        .collect();
    Ok(Json(json!(Document {
        schema: SCHEMA,
        taken_at: rfc3339(report.unix_seconds()),
        findings: &kept,
    })))
}

fn documents(shared: &Shared) -> Result<&dyn crate::shared::Documents, ApiError> {
    shared.documents.get().map(|d| d.as_ref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "the eviction and requests documents are not available in this build",
        )
    })
}

/// A JSON document already written by a renderer.
fn json_text(body: Vec<u8>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn node(State(shared): State<Arc<Shared>>, Query(query): Params) -> ApiResult {
    counted(&shared);
    let report = latest(&shared)?;
    let range = TimeRange::parse(&query, &shared)?;
    let (from, to, res) = (range.from, range.to, range.resolution);
    let history = with_store(&shared, move |s| s.node_history(from, to, res)).await?;
    Ok(Json(json!({
        "taken_at": rfc3339(report.unix_seconds()),
        "node": report.snapshot.node,
        "reconciliation": report.snapshot.reconciliation,
        "range": range.json(),
        "history": history,
    })))
}

async fn workloads(State(shared): State<Arc<Shared>>) -> ApiResult {
    counted(&shared);
    let report = latest(&shared)?;
    Ok(Json(json!({
        "taken_at": rfc3339(report.unix_seconds()),
        "node": report.snapshot.node,
        "workloads": views::workloads(&report.snapshot),
    })))
}

async fn cgroup(State(shared): State<Arc<Shared>>, Query(query): Params) -> ApiResult {
    counted(&shared);
    let path = params::cgroup_path(&query)?;
    cgroup_answer(&shared, path, &query).await
}

async fn pod(State(shared): State<Arc<Shared>>, Query(query): Params) -> ApiResult {
    counted(&shared);
    let report = latest(&shared)?;
    let pods = &report.snapshot.pods;
    let found = match (query.get("uid"), query.get("namespace"), query.get("name")) {
        (Some(uid), _, _) => pods.iter().find(|p| &p.pod_uid == uid),
        (None, Some(ns), Some(name)) => pods.iter().find(|p| {
            p.namespace.as_deref() == Some(ns.as_str()) && p.pod.as_deref() == Some(name.as_str())
        }),
        _ => {
            return Err(ApiError::bad_request(
                "give uid=POD_UID, or namespace=NS and name=POD",
            ))
        }
    };
    let path = found
        .map(|p| p.path.clone())
        .ok_or_else(|| ApiError::not_found("no such pod on this node now"))?;
    cgroup_answer(&shared, path, &query).await
}

/// One cgroup now (if it still exists), its pod's containers, and its history.
async fn cgroup_answer(
    shared: &Arc<Shared>,
    path: String,
    query: &HashMap<String, String>,
) -> ApiResult {
    let report = latest(shared)?;
    let range = TimeRange::parse(query, shared)?;
    let (from, to, res) = (range.from, range.to, range.resolution);
    let key = path.clone();
    let (series, history) = with_store(shared, move |s| {
        Ok((s.series(&key)?, s.history(&key, from, to, res)?))
    })
    .await?;
    let current = report.snapshot.cgroups.iter().find(|c| c.path == path);
    if current.is_none() && series.is_none() {
        return Err(ApiError::not_found(format!(
            "no cgroup {path} now or in the history"
        )));
    }
    let pod = report.snapshot.pods.iter().find(|p| p.path == path);
    let containers: Vec<_> = pod
        .map(|p| {
            p.containers
                .iter()
                .filter_map(|c| report.snapshot.cgroups.iter().find(|x| &x.path == c))
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "taken_at": rfc3339(report.unix_seconds()),
        "path": path,
        "cgroup": current,
        "pod": pod,
        "containers": containers,
        "series": series.map(|(kind, first, last)| json!({
            "kind": kind, "first_seen": rfc3339(first), "last_seen": rfc3339(last)
        })),
        "range": range.json(),
        "history": history,
    })))
}

async fn oom_events(State(shared): State<Arc<Shared>>, Query(query): Params) -> ApiResult {
    counted(&shared);
    let mut query = query;
    // OOM events are looked back on over days: a week unless told otherwise.
    if !query.contains_key("from") {
        query.entry("range".into()).or_insert_with(|| "7d".into());
    }
    let range = TimeRange::parse(&query, &shared)?;
    let limit = params::limit(&query, 500)?;
    let (from, to) = (range.from, range.to);
    let events = with_store(&shared, move |s| s.oom_events(from, to, limit)).await?;
    let source = shared
        .oom_source
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    Ok(Json(
        json!({"source": source, "range": range.json(), "events": events}),
    ))
}

async fn oom_event(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    counted(&shared);
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("OOM event id {id:?} is not a number")))?;
    let event = with_store(&shared, move |s| s.oom_event(id)).await?;
    let event = event.ok_or_else(|| ApiError::not_found(format!("no OOM event {id}")))?;
    Ok(Json(json!({ "event": event })))
}

async fn cache(State(shared): State<Arc<Shared>>, Query(query): Params) -> ApiResult {
    counted(&shared);
    let path = params::cgroup_path(&query)?;
    let top = params::limit(&query, 200)?.min(200) as usize;
    if shared.file_cache.get().is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "per-file page cache is not available in this build (memglass cache)",
        ));
    }
    let report = latest(&shared)?;
    let cgroup = report
        .snapshot
        .cgroups
        .iter()
        .find(|c| c.path == path)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no cgroup {path} now")))?;
    let key = format!("{path}\u{0}{top}");
    if let Some(answer) = fresh_answer(&shared, &key) {
        return Ok(Json(answer));
    }
    let worker = Arc::clone(&shared);
    let answer = tokio::task::spawn_blocking(move || {
        // One scan at a time: the lock is held while scanning.
        let mut answers = worker
            .file_cache_answers
            .lock()
            .map_err(|_| ApiError::internal("file cache lock poisoned"))?;
        if let Some((at, answer)) = answers.get(&key) {
            if at.elapsed() < crate::shared::FILE_CACHE_TTL {
                return Ok(answer.clone());
            }
        }
        let scanner = worker
            .file_cache
            .get()
            .ok_or_else(|| ApiError::internal("no file cache scanner"))?;
        let answer = scanner
            .files(&cgroup, top)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        answers.retain(|_, (at, _)| at.elapsed() < crate::shared::FILE_CACHE_TTL);
        answers.insert(key, (std::time::Instant::now(), answer.clone()));
        Ok::<_, ApiError>(answer)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(answer))
}

/// A cached file-cache answer, if one is fresh (without waiting for a running scan).
fn fresh_answer(shared: &Shared, key: &str) -> Option<Value> {
    let answers = shared.file_cache_answers.try_lock().ok()?;
    let (at, answer) = answers.get(key)?;
    (at.elapsed() < crate::shared::FILE_CACHE_TTL).then(|| answer.clone())
}
