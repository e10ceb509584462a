//! `leak`: a working set that grows steadily toward its limit.
//!
//! A least-squares line through kubelet's working set over the history given (the agent's
//! last hour; the CLI's `--history DB`). It is a leak when the line explains the samples
//! well (R² ≥ 0.8), it rises, the rise over the window is at least 16 MiB and 5% of the
//! limit, and at that rate the limit is reached within a week. The finding says when.

use super::{mib, Evidence, Finding, Index, Inputs, Kind, Remedy, Severity};

/// Fewest samples a trend is drawn from.
pub const MIN_POINTS: usize = 10;
/// R² from which growth counts as steady.
pub const MIN_R2: f64 = 0.8;
/// Least rise over the window, bytes...
const MIN_RISE: u64 = 16 << 20;
/// ...and as a share of the limit.
const MIN_RISE_PERCENT: f64 = 5.0;
/// Farthest time to the limit still reported.
const HORIZON_SECS: f64 = 7.0 * 86_400.0;
/// Under this time to the limit, the finding is critical.
const CRITICAL_SECS: f64 = 3_600.0;

/// Samples of one cgroup's working set, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The cgroup path.
    pub cgroup: String,
    /// (Unix seconds, kubelet's working set in bytes).
    pub points: Vec<(i64, u64)>,
}

/// A straight line through a [`History`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Growth, bytes per second.
    pub slope: f64,
    /// How well the line fits (1 = perfectly).
    pub r2: f64,
    /// The line's value at the last sample.
    pub now: f64,
    /// Seconds the samples span.
    pub span: i64,
    /// Rising, and fitting well enough to call steady.
    pub steady: bool,
}

/// The least-squares line through `history` (None with fewer than [`MIN_POINTS`] samples
/// or no time between them). `_now` is reserved for weighting recent samples.
pub fn trend(history: &History, _now: i64) -> Option<Trend> {
    let points = &history.points;
    if points.len() < MIN_POINTS {
        return None;
    }
    let t0 = points.first()?.0;
    let n = points.len() as f64;
    let xs = points.iter().map(|&(t, _)| (t - t0) as f64);
    let mean_x = xs.clone().sum::<f64>() / n;
    let mean_y = points.iter().map(|&(_, y)| y as f64).sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (x, &(_, y)) in xs.zip(points) {
        let (dx, dy) = (x - mean_x, y as f64 - mean_y);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy == 0.0 {
        0.0
    } else {
        sxy * sxy / (sxx * syy)
    };
    let span = points.last()?.0 - t0;
    let now = mean_y + slope * (span as f64 - mean_x);
    Some(Trend {
        slope,
        r2,
        now,
        span,
        steady: slope > 0.0 && r2 >= MIN_R2,
    })
}

pub(super) fn check(inputs: &Inputs<'_>, index: &Index<'_>, findings: &mut Vec<Finding>) {
    for history in inputs.histories {
        let Some(c) = index.get(history.cgroup.as_str()).copied() else {
            continue;
        };
        let Some(limit) = c.memory.limit else {
            continue;
        };
        let Some(t) = trend(history, inputs.settings.now).filter(|t| t.steady) else {
            continue;
        };
        let rise = t.slope * t.span as f64;
        if rise < MIN_RISE as f64 || rise < limit as f64 * MIN_RISE_PERCENT / 100.0 {
            continue;
        }
        let left = (limit as f64 - t.now).max(0.0);
        let eta = left / t.slope;
        if eta > HORIZON_SECS {
            continue;
        }
        let severity = if eta < CRITICAL_SECS {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let mut f = Finding::about(Kind::Leak, severity, c);
        let rate = t.slope * 3600.0;
        f.summary = format!(
            "Working set grows steadily by {}/h (R² {:.2} over {}): at this rate it reaches its {} limit in {}.",
            mib(rate as u64),
            t.r2,
            duration(t.span as f64),
            mib(limit),
            duration(eta)
        );
        f.evidence = vec![
            Evidence {
                name: "growth".into(),
                value: super::Value::Float(t.slope.round()),
                unit: "bytes_per_second",
                source: "least-squares slope of working_set_kubelet history".into(),
            },
            Evidence {
                name: "r2".into(),
                value: super::Value::Float((t.r2 * 1000.0).round() / 1000.0),
                unit: "ratio",
                source: "fit of that line".into(),
            },
            Evidence::count(
                "samples",
                history.points.len() as u64,
                "history of working_set_kubelet",
            ),
            Evidence::bytes(
                "working_set_kubelet",
                t.now.max(0.0) as u64,
                "the line at the last sample",
            ),
            Evidence::bytes("limit", limit, "memory.max / memory.limit_in_bytes"),
            Evidence {
                name: "time_to_limit".into(),
                value: super::Value::Integer(eta as u64),
                unit: "seconds",
                source: "(limit − working set) / growth".into(),
            },
        ];
        f.remedy = Remedy {
            text: "Find what the process keeps allocating (heap profile, caches without bounds, connections kept); a larger limit only moves the kill later.".into(),
            set: Vec::new(),
            command: None,
        };
        findings.push(f);
    }
}

/// `3h 20m`, `45m`, `50s`.
fn duration(secs: f64) -> String {
    let secs = secs.max(0.0) as u64;
    match secs {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
