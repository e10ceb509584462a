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
    fn loopback() {
        assert!(is_loopback(&"127.0.0.1:1".parse().unwrap()));
        assert!(is_loopback(&"[::1]:1".parse().unwrap()));
        assert!(!is_loopback(&"0.0.0.0:1".parse().unwrap()));
    }
}
