//! How the agent runs: address, database, interval, retention, token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// The agent's settings, validated by the binary from its flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The SQLite history file.
    pub db: PathBuf,
    /// Time between collections.
    pub interval: Duration,
    /// How long history is kept at each resolution.
    pub retention: Retention,
    /// When set, every data request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// How many minutes of the victim's samples an OOM event keeps (the flight recorder).
    pub flight_minutes: u32,
    /// kubelet's hard eviction threshold for the eviction signals (default 100Mi).
    pub eviction_threshold: memglass_analyse::eviction::Threshold,
    /// Who this agent is, for `memglass_node_info`.
    pub node: NodeLabels,
    /// Which opt-in metric families /metrics adds to the default budget.
    pub metrics: MetricFamilies,
}

/// The opt-in metric families (`--metrics-families`): a container cgroup gets 12 series by
/// default (docs/metrics.md, "Cardinality"); each of these adds its part for containers.
/// Pods and the cgroups above them always get everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricFamilies {
    /// Every memory.stat type (`memglass_cgroup_memory_bytes`), not only the seven default.
    pub container_types: bool,
    /// Every memory event, not only `oom_kill`.
    pub container_events: bool,
    /// PSI memory pressure (v2).
    pub container_pressure: bool,
    /// Request, limit, suggestions and verdicts per container (pods always have theirs).
    pub container_sizing: bool,
}

impl MetricFamilies {
    /// The names `--metrics-families` takes (and `all`).
    pub const NAMES: [&'static str; 4] = [
        "container_types",
        "container_events",
        "container_pressure",
        "container_sizing",
    ];

    /// Parse `container_types,container_sizing` (or `all`, or empty for none).
    pub fn parse(spec: &str) -> Result<MetricFamilies> {
        let mut families = MetricFamilies::default();
        for name in spec.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "all" => {
                    families = MetricFamilies {
                        container_types: true,
                        container_events: true,
                        container_pressure: true,
                        container_sizing: true,
                    }
                }
                "container_types" => families.container_types = true,
                "container_events" => families.container_events = true,
                "container_pressure" => families.container_pressure = true,
                "container_sizing" => families.container_sizing = true,
                other => {
                    return Err(Error::Config(format!(
                        "metric family {other:?}: expected all or some of {}",
                        MetricFamilies::NAMES.join(", ")
                    )))
                }
            }
        }
        Ok(families)
    }
}

/// The node an agent describes, as `memglass_node_info{node,kernel,cgroup_version}` says:
/// the join key from any memglass series (by `instance`) to its node, for scrape configs
/// that set no `node` label themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeLabels {
    /// The node's name (`--node-name`, else `$NODE_NAME`, else the hostname).
    pub node: String,
    /// The kernel release (/proc/sys/kernel/osrelease).
    pub kernel: String,
    /// `1` or `2`: the memory controller's hierarchy.
    pub cgroup_version: String,
}

/// How long each kind of history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Samples at the collection interval.
    pub raw: Duration,
    /// One-minute averages.
    pub minute: Duration,
    /// OOM events (with their flight recorder).
    pub oom: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw: Duration::from_secs(86_400),
            minute: Duration::from_secs(7 * 86_400),
            oom: Duration::from_secs(365 * 86_400),
        }
    }
}

impl Retention {
    /// Parse `raw=1d,1m=7d,oom=365d` (any subset; the rest keep their defaults).
    pub fn parse(spec: &str) -> Result<Retention> {
        let mut retention = Retention::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                Error::Config(format!("retention {part:?}: expected KEY=DURATION"))
            })?;
            let duration = humantime::parse_duration(value.trim())
                .map_err(|e| Error::Config(format!("retention {part:?}: {e}")))?;
            match key.trim() {
                "raw" => retention.raw = duration,
                "1m" | "minute" => retention.minute = duration,
                "oom" => retention.oom = duration,
                other => {
                    return Err(Error::Config(format!(
                        "retention key {other:?}: expected raw, 1m or oom"
                    )))
                }
            }
        }
        if retention.minute < retention.raw {
            return Err(Error::Config(
                "retention: 1m history must be kept at least as long as raw samples".into(),
            ));
        }
        Ok(retention)
    }
}

/// What the HTTP server bounds, each with a flag of `memglass agent` (docs/api.md,
/// "Limits"). A node agent listens for months on the node's network: no client may hold
/// a connection, a request slot or memory for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's head (request line and headers) must have arrived this long after the
    /// agent began waiting for it: on a new connection (the TLS handshake gets the same
    /// time), or on a kept-alive one after its previous answer. Past it the connection is
    /// closed without an answer (hyper's header-read timeout).
    pub header_read_timeout: Duration,
    /// A client that takes no byte of an answer for this long loses its connection.
    pub idle_timeout: Duration,
    /// From a request's head to its answer (body read and handler): 503 beyond.
    /// `POST /api/v1/reclaim` gets [`RECLAIM_EXTRA`] more (its own deadline is at most that).
    pub request_timeout: Duration,
    /// Connections open at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Requests being answered at once; further ones get 503 at once.
    pub max_in_flight: usize,
    /// The request target (path and query): 414 beyond.
    pub max_uri_bytes: usize,
    /// The request line and headers together: 431 beyond (hyper answers it).
    pub max_header_bytes: usize,
    /// A request body: 413 beyond.
    pub max_body_bytes: usize,
}

/// The time `POST /api/v1/reclaim` gets beyond the request timeout: its `timeout_seconds`
/// is at most 300.
pub const RECLAIM_EXTRA: Duration = Duration::from_secs(300);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_connections: 512,
            max_in_flight: 64,
            max_uri_bytes: 4096,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// Refuse values the server cannot work with (zero, or a header limit below what a
    /// bearer token needs).
    pub fn validate(&self) -> Result<()> {
        let durations = [
            ("--header-read-timeout", self.header_read_timeout),
            ("--idle-timeout", self.idle_timeout),
            ("--request-timeout", self.request_timeout),
        ];
        for (flag, value) in durations {
            if value < Duration::from_millis(100) {
                return Err(Error::Config(format!("{flag} must be at least 100ms")));
            }
        }
        let counts = [
            ("--max-connections", self.max_connections, 1),
            ("--max-in-flight", self.max_in_flight, 1),
            ("--max-uri-bytes", self.max_uri_bytes, 256),
            ("--max-header-bytes", self.max_header_bytes, 4096),
            ("--max-body-bytes", self.max_body_bytes, 1024),
        ];
        for (flag, value, least) in counts {
            if value < least {
                return Err(Error::Config(format!("{flag} must be at least {least}")));
            }
        }
        // tokio's semaphore holds at most usize::MAX >> 3 permits.
        if self.max_connections > 1 << 20 || self.max_in_flight > 1 << 20 {
            return Err(Error::Config(
                "--max-connections and --max-in-flight must be at most 1048576".into(),
            ));
        }
        Ok(())
    }
}

/// The server's certificate chain and private key (PEM files), served over TLS and read
/// again when they change (a mounted Secret is replaced by the kubelet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (`tls.crt` of a `kubernetes.io/tls` Secret).
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`tls.key`).
    pub key: PathBuf,
}

/// True when `addr` is reachable only from this machine (127.0.0.0/8 or ::1).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_specs() {
        let r = Retention::parse("raw=6h,oom=30d").unwrap();
        assert_eq!(r.raw, Duration::from_secs(6 * 3600));
        assert_eq!(r.minute, Retention::default().minute);
        assert_eq!(r.oom, Duration::from_secs(30 * 86_400));
        assert!(Retention::parse("raw").is_err());
        assert!(Retention::parse("hourly=1d").is_err());
        assert!(Retention::parse("raw=8d").is_err());
    }

    #[test]
    fn metric_families() {
        assert_eq!(
            MetricFamilies::parse("").unwrap(),
            MetricFamilies::default()
        );
        let some = MetricFamilies::parse("container_sizing, container_types").unwrap();
        assert!(some.container_sizing && some.container_types && !some.container_events);
        let all = MetricFamilies::parse("all").unwrap();
        assert!(all.container_events && all.container_pressure);
        assert!(MetricFamilies::parse("containers").is_err());
    }

    #[test]
    fn limits() {
        assert!(Limits::default().validate().is_ok());
        let zero = Limits {
            header_read_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(zero.validate().is_err());
        let none = Limits {
            max_in_flight: 0,
            ..Limits::default()
        };
        assert!(none.validate().is_err());
    }

    #[test]
    fn loopback() {
        assert!(is_loopback(&"127.0.0.1:1".parse().unwrap()));
        assert!(is_loopback(&"[::1]:1".parse().unwrap()));
        assert!(!is_loopback(&"0.0.0.0:1".parse().unwrap()));
    }
}
