//! The HTTP server: routes, bearer-token checks, JSON errors, the embedded dashboard;
//! and around them the limits of [`Limits`] ([`limits`] per request, [`conn`] per
//! connection) and TLS ([`tls`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::{self, ApiError};
use crate::assets;
use crate::config::{Limits, TlsFiles};
use crate::metrics::{self, Format};
use crate::shared::{Health, Shared};

mod conn;
pub mod limits;
mod tls;

/// How the server listens: its limits, and TLS when given.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Time, connection, request and size limits.
    pub limits: Limits,
    /// Serve HTTPS with this certificate and key (read again when they change).
    pub tls: Option<TlsFiles>,
}

/// A server ready to run: the certificate, when there is one, is read at once, so a bad
/// file stops the agent's start rather than its first handshake.
pub struct Server {
    app: Router,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Server {
    /// The routes of `shared` behind `settings`' limits.
    pub fn new(shared: Arc<Shared>, settings: &Settings) -> crate::Result<Server> {
        settings.limits.validate()?;
        let tls = match &settings.tls {
            Some(files) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(files)?)),
            None => None,
        };
        Ok(Server {
            app: guarded(router(shared), settings.limits),
            limits: settings.limits,
            tls,
        })
    }

    /// Serve until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> crate::Result<()> {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        conn::accept_loop(listener, self.app, self.limits, self.tls)
            .await
            .map_err(|source| crate::Error::Serve { addr, source })
    }
}

/// `app` behind the per-request limits and security headers, which run before routing
/// (`Router::layer` alone would run them inside each route).
fn guarded(app: Router, limits: Limits) -> Router {
    Router::new()
        .fallback_service(app)
        .layer(middleware::from_fn_with_state(
            Arc::new(limits::Guard::new(limits)),
            limits::guard,
        ))
}

/// Every route of the agent.
pub fn router(shared: Arc<Shared>) -> Router {
    let data = Router::new()
        .route("/metrics", get(metrics_handler))
        .nest("/api/v1", api::router())
        .route("/api", get(api::not_found))
        .route("/api/*rest", get(api::not_found))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_token,
        ));
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/:name", get(assets::asset))
        .route("/healthz", get(healthz))
        .merge(data)
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(shared)
}

/// The exposition rendered after the latest collection (gzip when the client takes it, as
/// Prometheus and VictoriaMetrics do); rendered now only before the first one.
async fn metrics_handler(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    Health::add(&shared.health.scrapes, 1);
    let Some(exposition) = shared.exposition.load_full() else {
        let body = metrics::render(&shared, format);
        return ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
    };
    let (body, compressed) = exposition.body(format, gzip);
    let mut response = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
    if compressed {
        response.headers_mut().insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    response
}

/// `Accept-Encoding` names gzip (or `*`) without `q=0`.
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// For kubelet's probes, which cannot send a token from a Secret: only the status word of
/// /api/v1/health (200 `ok`; 503 `starting` or `stale`), so it needs no token.
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let report = shared.latest();
    let status = api::status(&shared, report.as_deref());
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{status}\n"),
    )
        .into_response()
}

/// With a token configured, `/metrics` and `/api` need `Authorization: Bearer <token>`.
/// The dashboard's static files do not (they hold no data); its scripts send the token.
async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &shared.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        _ => {
            Health::add(&shared.health.unauthorized, 1);
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this agent needs a bearer token: send Authorization: Bearer <token>",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"memglass\""),
            );
            response
        }
    }
}

/// Compare without an early exit, so response time does not tell how much of a guess
/// was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// A handler slower than the request timeout gets 503 (the agent's fault, not the
    /// client's: 408 is for a body that does not arrive, tests/agent_hardening.rs).
    #[tokio::test]
    async fn a_slow_answer_gets_503_and_headers() {
        let limits = Limits {
            request_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/fast", get(|| async { "ok" }));
        let app = guarded(app, limits);
        let request = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let slow = app.clone().oneshot(request("/slow")).await.unwrap();
        assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(slow.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let body = axum::body::to_bytes(slow.into_body(), 1 << 16)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("--request-timeout"));
        let fast = app.oneshot(request("/fast")).await.unwrap();
        assert_eq!(fast.status(), StatusCode::OK);
        assert_eq!(fast.headers()[header::X_FRAME_OPTIONS], "DENY");
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
