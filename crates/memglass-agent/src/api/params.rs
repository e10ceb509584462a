//! Query parameters: time ranges, cgroup paths, limits. Bad values are 400s that say why.
//!
//! Public (hidden from the docs) so that `memglass-fuzz` can feed them arbitrary query
//! strings; the handlers in [`super`] are their only other callers.

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
    /// First second of the range (Unix seconds).
    pub from: i64,
    /// Last second of the range (Unix seconds).
    pub to: i64,
    /// Raw samples or one-minute averages.
    pub resolution: Resolution,
}

impl TimeRange {
    /// The range a request asks for, now.
    pub fn parse(query: &HashMap<String, String>, shared: &Shared) -> Result<TimeRange, ApiError> {
        let now = unix_seconds(SystemTime::now());
        TimeRange::parse_at(query, now, shared.retention.raw)
    }

    /// The range a request asks for at `now` (Unix seconds), raw samples being kept for
    /// `raw_retention`.
    pub fn parse_at(
        query: &HashMap<String, String>,
        now: i64,
        raw_retention: Duration,
    ) -> Result<TimeRange, ApiError> {
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
        // Found by fuzzing (memglass-fuzz, api-query): `from=-1&to=9223372036854775807`
        // overflowed `to - from`; from <= to here, so a saturated span is just too long.
        if to.saturating_sub(from) > MAX_SPAN {
            return Err(ApiError::bad_request("a range may span at most 366 days"));
        }
        let raw_kept_from = now.saturating_sub(secs(raw_retention));
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

    /// The range as the API answers it (`from`, `to` in RFC 3339, `resolution`).
    pub fn json(&self) -> Value {
        json!({"from": rfc3339(self.from), "to": rfc3339(self.to), "resolution": self.resolution})
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// 9999-12-31T23:59:59Z, the last time RFC 3339 (and the answers' `rfc3339`) can write.
const LAST_RFC3339: i64 = 253_402_300_799;

/// Unix seconds, or an RFC 3339 time.
fn time(text: &str, name: &str) -> Result<i64, ApiError> {
    if let Ok(seconds) = text.parse::<i64>() {
        // Found by fuzzing (memglass-fuzz, api-query): `to=17000036017000` (year 540,000)
        // was accepted, and writing it back as RFC 3339 in the answer panicked.
        if seconds > LAST_RFC3339 {
            return Err(ApiError::bad_request(format!(
                "{name} {text:?}: after the year 9999"
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn range(query: &str) -> Result<TimeRange, ApiError> {
        let query: HashMap<String, String> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        TimeRange::parse_at(&query, 1_732_521_037, Duration::from_secs(86_400))
    }

    #[test]
    fn extreme_times_are_400s_not_panics() {
        // Found by fuzzing (memglass-fuzz, api-query); each used to panic.
        for query in [
            "from=-1&to=9223372036854775807",
            "from=-9223372036854775808&to=253402300799",
            "to=17000036017000",
            "from=253402300800&to=253402300800",
        ] {
            let refused = range(query).map(|r| r.json()).err();
            assert!(
                refused.is_some_and(|e| e.status == axum::http::StatusCode::BAD_REQUEST),
                "{query}"
            );
        }
        let last = range("from=253402300000&to=253402300799").map(|r| r.json());
        assert!(last.is_ok_and(|json| json["to"] == "9999-12-31T23:59:59Z"));
    }
}
