//! SOURCE: instant queries against the Prometheus HTTP API (`GET /api/v1/query`), answered
//! by Prometheus or any compatible store, into typed [`Series`].
//!
//! The HTTP stack is kube's client (hyper + rustls), already in the binary for the
//! Kubernetes API: TLS against the system roots or a CA file (or unverified), a bearer token
//! file, basic auth, and connect/read timeouts. The URL may carry a
//! path prefix (`https://host/prometheus`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::series::Series;

/// How to reach the store.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL (`http://prometheus:9090`, `https://vm.example/select/0/prometheus`).
    pub url: String,
    /// A file holding a bearer token (`Authorization: Bearer …`).
    pub bearer_token_file: Option<PathBuf>,
    /// Basic auth: the user and a file holding the password.
    pub basic_auth: Option<(String, PathBuf)>,
    /// PEM file with the CA certificate(s) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate.
    pub insecure_skip_tls_verify: bool,
    /// Timeout of each query (connect, and the whole answer).
    pub timeout: Duration,
    /// Extra headers on every request (e.g. `X-Scope-OrgID` for Mimir, Cortex and Thanos
    /// tenants).
    pub headers: Vec<(String, String)>,
}

/// What went wrong asking the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL or a TLS/auth file is unusable.
    #[error("{0}")]
    Config(String),
    /// The store could not be reached or the connection failed.
    #[error("{url}: {reason}")]
    Http {
        /// The base URL.
        url: String,
        /// The causes, joined.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// The base URL.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The store refused the query (`"status": "error"`).
    #[error("{url}: {error_type}: {error} (query: {query})")]
    Query {
        /// The base URL.
        url: String,
        /// The query sent.
        query: String,
        /// `errorType` (`bad_data`, `execution`, `timeout`, …).
        error_type: String,
        /// `error`.
        error: String,
    },
    /// An answer that is not the API's JSON (a proxy's page, a wrong URL).
    #[error("{url}: HTTP {status} is not a Prometheus API answer: {body}")]
    NotApi {
        /// The base URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body's first line, shortened.
        body: String,
    },
}

/// A connection to one store; queries block (a small current-thread runtime of its own).
pub struct Prometheus {
    client: kube::Client,
    runtime: tokio::runtime::Runtime,
    url: String,
    timeout: Duration,
}

impl Prometheus {
    /// Prepare a client (nothing is sent yet).
    pub fn new(options: &Options) -> Result<Prometheus, Error> {
        let url = options.url.trim_end_matches('/').to_owned();
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Error::Config(format!("--prometheus {url:?}: {e}")))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => {
                return Err(Error::Config(format!(
                    "--prometheus {url:?}: expected an http:// or https:// URL"
                )))
            }
        }
        let mut config = kube::Config::new(uri);
        config.connect_timeout = Some(options.timeout);
        config.read_timeout = Some(options.timeout);
        config.reset_reader_on_write = true;
        config.default_retry = false;
        config.accept_invalid_certs = options.insecure_skip_tls_verify;
        if let Some(file) = &options.ca_file {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| Error::Config(format!("--ca-file {}: {e}", file.display())))?;
            let certs = pem_certificates(&pem);
            if certs.is_empty() {
                return Err(Error::Config(format!(
                    "--ca-file {}: no PEM certificate in it",
                    file.display()
                )));
            }
            config.root_cert = Some(certs);
        }
        if let Some(file) = &options.bearer_token_file {
            // Read once and trimmed, as Prometheus reads credentials files (kube's own
            // token_file keeps a trailing newline, which is no valid header value).
            let token = std::fs::read_to_string(file).map_err(|e| {
                Error::Config(format!("--bearer-token-file {}: {e}", file.display()))
            })?;
            config.auth_info.token = Some(secrecy::SecretString::from(token.trim().to_owned()));
        }
        if let Some((user, file)) = &options.basic_auth {
            let password = std::fs::read_to_string(file).map_err(|e| {
                Error::Config(format!("--basic-auth {user}:{}: {e}", file.display()))
            })?;
            config.auth_info.username = Some(user.clone());
            config.auth_info.password = Some(secrecy::SecretString::from(
                password.trim_end_matches(['\r', '\n']).to_owned(),
            ));
        }
        for (name, value) in &options.headers {
            let header = (
                http::HeaderName::try_from(name.as_str()),
                http::HeaderValue::try_from(value.as_str()),
            );
            match header {
                (Ok(name), Ok(value)) => config.headers.push((name, value)),
                _ => {
                    return Err(Error::Config(format!(
                        "--header {name}:{value}: not a valid HTTP header"
                    )))
                }
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the I/O runtime: {e}")))?;
        // kube builds its TLS connector (rustls) inside the runtime.
        let client = {
            let _guard = runtime.enter();
            kube::Client::try_from(config).map_err(|e| Error::Config(causes(&e)))?
        };
        Ok(Prometheus {
            client,
            runtime,
            url,
            timeout: options.timeout,
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One instant query, evaluated now.
    pub fn query(&self, query: &str) -> Result<Vec<Series>, Error> {
        self.query_all(&[query.to_owned()])
            .pop()
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Several instant queries, sent at once; the answers in the same order.
    pub fn query_all(&self, queries: &[String]) -> Vec<Result<Vec<Series>, Error>> {
        self.runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, query) in queries.iter().enumerate() {
                let client = self.client.clone();
                let url = self.url.clone();
                let query = query.clone();
                let timeout = self.timeout;
                tasks.spawn(async move {
                    let answer =
                        match tokio::time::timeout(timeout, ask(&client, &url, &query)).await {
                            Ok(answer) => answer,
                            Err(_) => Err(Error::Timeout { url, timeout }),
                        };
                    (index, answer)
                });
            }
            let mut answers: Vec<Option<Result<Vec<Series>, Error>>> =
                (0..queries.len()).map(|_| None).collect();
            while let Some(joined) = tasks.join_next().await {
                if let Ok((index, answer)) = joined {
                    if let Some(slot) = answers.get_mut(index) {
                        *slot = Some(answer);
                    }
                }
            }
            answers
                .into_iter()
                .map(|a| {
                    a.unwrap_or_else(|| {
                        Err(Error::Http {
                            url: self.url.clone(),
                            reason: "the query task ended without an answer".into(),
                        })
                    })
                })
                .collect()
        })
    }
}

async fn ask(client: &kube::Client, url: &str, query: &str) -> Result<Vec<Series>, Error> {
    let path = format!("/api/v1/query?query={}", form_encode(query));
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, "application/json")
        .body(kube::client::Body::empty())
        .map_err(|e| Error::Config(e.to_string()))?;
    let http_error = |reason: String| Error::Http {
        url: url.to_owned(),
        reason,
    };
    let response = client
        .send(request)
        .await
        .map_err(|e| http_error(causes(&e)))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| http_error(causes(&e)))?;
    parse_answer(&body, status).map_err(|e| match e {
        Answer::Refused { error_type, error } => Error::Query {
            url: url.to_owned(),
            query: query.to_owned(),
            error_type,
            error,
        },
        Answer::NotApi(body) => Error::NotApi {
            url: url.to_owned(),
            status,
            body,
        },
    })
}

/// Why an answer holds no vector.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// `"status": "error"` with its type and message.
    Refused { error_type: String, error: String },
    /// Not the API's JSON: the start of the body.
    NotApi(String),
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorElement {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (serde_json::Value, String),
}

/// An API answer (any HTTP status: errors come as 400/422/503 with the same envelope) →
/// the vector (a scalar answer is one series without labels).
pub(crate) fn parse_answer(body: &[u8], status: u16) -> Result<Vec<Series>, Answer> {
    let not_api = || {
        let text = String::from_utf8_lossy(body);
        let first = text.lines().next().unwrap_or("").trim();
        let mut short: String = first.chars().take(160).collect();
        if short.is_empty() {
            short = format!("(empty body, HTTP {status})");
        }
        Answer::NotApi(short)
    };
    let envelope: Envelope = serde_json::from_slice(body).map_err(|_| not_api())?;
    if envelope.status != "success" {
        return Err(Answer::Refused {
            error_type: envelope.error_type.unwrap_or_else(|| "error".into()),
            error: envelope.error.unwrap_or_default(),
        });
    }
    let data = envelope.data.ok_or_else(not_api)?;
    match data.result_type.as_str() {
        "vector" => {
            let elements: Vec<VectorElement> =
                serde_json::from_value(data.result).map_err(|_| not_api())?;
            Ok(elements
                .into_iter()
                .map(|e| Series {
                    labels: e.metric,
                    value: parse_value(&e.value.1),
                })
                .collect())
        }
        "scalar" => {
            let (_, value): (serde_json::Value, String) =
                serde_json::from_value(data.result).map_err(|_| not_api())?;
            Ok(vec![Series {
                labels: BTreeMap::new(),
                value: parse_value(&value),
            }])
        }
        other => Err(Answer::Refused {
            error_type: "unexpected_result".into(),
            error: format!("expected an instant vector, got a {other}"),
        }),
    }
}

/// Prometheus' sample text: a float, `NaN`, `+Inf`, `-Inf`.
fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        text => text.parse().unwrap_or(f64::NAN),
    }
}

/// `application/x-www-form-urlencoded` for a query parameter.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The DER bodies of every `CERTIFICATE` block of a PEM file.
fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    let mut certs = Vec::new();
    let mut inside = false;
    let mut text = String::new();
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = true;
            text.clear();
        } else if line == "-----END CERTIFICATE-----" {
            inside = false;
            if let Some(der) = base64_decode(&text) {
                certs.push(der);
            }
        } else if inside {
            text.push_str(line);
        }
    }
    certs
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// An error and its causes on one line.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_answer() {
        // As Prometheus 2.x answers (recorded shape; values are strings).
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"memglass_node_info","instance":"127.0.0.1:9851","node":"a"},"value":[1765100000.123,"1"]},
            {"metric":{},"value":[1765100000.123,"NaN"]},
            {"metric":{"x":"y"},"value":[1765100000.123,"+Inf"]}]}}"#;
        let series = parse_answer(body, 200).unwrap_or_default();
        assert_eq!(series.len(), 3);
        assert_eq!(series[0].label("node"), "a");
        assert_eq!(series[0].value, 1.0);
        assert!(series[1].value.is_nan());
        assert_eq!(series[2].value, f64::INFINITY);
    }

    #[test]
    fn refusals_carry_error_type_and_error() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected <EOF>"}"#;
        assert_eq!(
            parse_answer(body, 400),
            Err(Answer::Refused {
                error_type: "bad_data".into(),
                error: "invalid parameter \"query\": 1:5: parse error: unexpected <EOF>".into()
            })
        );
        assert_eq!(
            parse_answer(b"<html>\n<body>Bad Gateway</body>", 502),
            Err(Answer::NotApi("<html>".into()))
        );
        assert_eq!(
            parse_answer(b"", 404),
            Err(Answer::NotApi("(empty body, HTTP 404)".into()))
        );
    }

    #[test]
    fn scalars_and_other_types() {
        let body =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1765100000,"3"]}}"#;
        assert_eq!(parse_answer(body, 200).map(|s| s[0].value), Ok(3.0));
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(
            parse_answer(body, 200),
            Err(Answer::Refused { .. })
        ));
    }

    #[test]
    fn query_text_is_form_encoded() {
        assert_eq!(
            form_encode("a{b=\"c d\"}[5m]"),
            "a%7Bb%3D%22c%20d%22%7D%5B5m%5D"
        );
    }

    #[test]
    fn pem_bodies_decode() {
        // "hello" in base64, split across lines.
        let pem = "x\n-----BEGIN CERTIFICATE-----\naGVs\nbG8=\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem), vec![b"hello".to_vec()]);
        assert!(pem_certificates("nothing").is_empty());
    }
}
