//! Per-request limits and the security headers, in one middleware around every route:
//! the target's length (414), the body's length (413, declared or read), the requests in
//! flight (503 at once beyond [`Limits::max_in_flight`]), the time to receive the body
//! (408) and to answer (503) within [`Limits::request_timeout`]. Every refusal is the API's JSON error. Sizes of the head
//! (431) and the time to read it are hyper's (see `conn`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use crate::api::ApiError;
use crate::config::{Limits, RECLAIM_EXTRA};

/// The dashboard loads only its own page, scripts and style sheet and asks only its own
/// API; nothing may frame it. Inline `style` attributes are allowed (its tables and charts
/// set colours and widths with them); inline scripts are not.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The state of [`guard`]: the limits and the in-flight slots.
#[derive(Debug)]
pub struct Guard {
    limits: Limits,
    in_flight: Arc<Semaphore>,
}

impl Guard {
    /// Slots for `limits.max_in_flight` requests.
    pub fn new(limits: Limits) -> Guard {
        Guard {
            limits,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        }
    }
}

/// The middleware: refuse what is over a limit, answer the rest within the request
/// timeout, and add the security headers to every answer.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let mut response = limit(&guard, request, next).await;
    secure(response.headers_mut());
    response
}

async fn limit(guard: &Guard, request: Request, next: Next) -> Response {
    let limits = &guard.limits;
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len())
        + request.uri().authority().map_or(0, |a| a.as_str().len());
    if target > limits.max_uri_bytes {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target is {target} bytes; this agent takes at most {} (--max-uri-bytes)",
                limits.max_uri_bytes
            ),
        )
        .into_response();
    }
    if let Some(length) = content_length(request.headers()) {
        if length > limits.max_body_bytes as u64 {
            return too_large(limits);
        }
    }
    let Ok(_slot) = Arc::clone(&guard.in_flight).try_acquire_owned() else {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} requests are being answered, the most this agent takes at once (--max-in-flight); retry",
                limits.max_in_flight
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    // The body first, whole and bounded, within the request timeout: a client that
    // declares a body and sends it slowly (or never) holds its slot no longer than that,
    // and gets 408, its own fault; an answer that takes too long is the agent's, 503.
    let started = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, limits.max_body_bytes);
    let body = match tokio::time::timeout(limits.request_timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return too_large(limits)
        }
        Ok(Err(error)) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {error}"),
            )
            .into_response()
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} (--request-timeout)",
                    humantime::format_duration(limits.request_timeout)
                ),
            )
            .into_response()
        }
    };
    let request = Request::from_parts(parts, Body::from(body));
    let mut timeout = limits.request_timeout;
    if request.method() == Method::POST && request.uri().path() == "/api/v1/reclaim" {
        timeout += RECLAIM_EXTRA;
    }
    let left = timeout.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no answer within {} (--request-timeout)",
                humantime::format_duration(timeout)
            ),
        )
        .into_response(),
    }
}

fn too_large(limits: &Limits) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is over {} bytes (--max-body-bytes)",
            limits.max_body_bytes
        ),
    )
    .into_response()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The headers every answer carries: the dashboard's content policy, no MIME sniffing, no
/// framing, no referrer (its URLs name pods).
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
