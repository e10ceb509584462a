//! Query parameters: time ranges, cgroup paths, limits. Bad values are 400s that say why.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::ApiError;
use crate::shared::{rfc3339, unix_seconds, Shared};
use crate::store::Resolution;

/// Above this span, history comes from one-minute averages.
const RAW_SPAN_LIMIT: i64 = 6 * 3600;
/// The longest range one request may ask for.
const MAX_SPAN: i64 = 366 * 86_400;

/// `from`/`to` (Unix seconds or RFC 3339) or `range` (e.g. `1h`, ending at `to` or now),
/// and the resolution to read (`resolution=raw|1m`, else chosen from the span).
#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
    pub resolution: Resolution,
}

impl TimeRange {
    pub fn parse(query: &HashMap<String, String>, shared: &Shared) -> Result<TimeRange, ApiError> {
        let now = unix_seconds(SystemTime::now());
        let to = match query.get("to") {
            Some(text) => time(text, "to")?,
            None => now,
        };
        let from = match (query.get("from"), query.get("range")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request("give from or range, not both"))
            }
            (Some(text), None) => time(text, "from")?,
            (None, range) => {
                let range = range.map_or("1h", String::as_str);
                let span = humantime::parse_duration(range).map_err(|e| {
                    ApiError::bad_request(format!("range {range:?}: {e} (e.g. 15m, 1h, 7d)"))
                })?;
                to.saturating_sub(i64::try_from(span.as_secs()).unwrap_or(i64::MAX))
            }
        };
        if from > to {
            return Err(ApiError::bad_request("from is after to"));
        }
        if to - from > MAX_SPAN {
            return Err(ApiError::bad_request("a range may span at most 366 days"));
        }
        let raw_kept_from = now.saturating_sub(secs(shared.retention.raw));
        let resolution = match query.get("resolution").map(String::as_str) {
            Some("raw") => Resolution::Raw,
            Some("1m") => Resolution::Minute,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "resolution {other:?}: expected raw or 1m"
                )))
            }
            None if to - from > RAW_SPAN_LIMIT || from < raw_kept_from => Resolution::Minute,
            None => Resolution::Raw,
        };
        Ok(TimeRange {
            from,
            to,
            resolution,
        })
    }

    pub fn json(&self) -> Value {
        json!({"from": rfc3339(self.from), "to": rfc3339(self.to), "resolution": self.resolution})
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Unix seconds, or an RFC 3339 time.
fn time(text: &str, name: &str) -> Result<i64, ApiError> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    humantime::parse_rfc3339_weak(text)
        .map(unix_seconds)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name} {text:?}: expected Unix seconds or an RFC 3339 time"
            ))
        })
}

/// The `path` parameter: a cgroup path as memglass prints it ("/" first).
pub fn cgroup_path(query: &HashMap<String, String>) -> Result<String, ApiError> {
    let path = query
        .get("path")
        .ok_or_else(|| ApiError::bad_request("give path=/the/cgroup (as in the snapshot)"))?;
    if !path.starts_with('/') || path.contains("/../") || path.ends_with("/..") {
        return Err(ApiError::bad_request(format!(
            "path {path:?}: a cgroup path starts with / and has no .."
        )));
    }
    Ok(path.clone())
}

/// `limit=N` (1..=max).
pub fn limit(query: &HashMap<String, String>, max: u32) -> Result<u32, ApiError> {
    match query.get("limit") {
        None => Ok(max),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "limit {text:?}: expected 1 to {max}"
            ))),
        },
    }
}
