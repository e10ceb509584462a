//! cgroup v2 memory controller files (Documentation/admin-guide/cgroup-v2.rst).
//!
//! The root cgroup has no `memory.current`, limits or events; its `memory.stat` exists
//! on current kernels. Files newer than the running kernel (`memory.peak`: 5.19,
//! `memory.events.local`: 5.2) read as `None`.

use crate::cgroup::limit::Limit;
use crate::cgroup::stat::KeyedValues;
use crate::cgroup::v1::{keyed, number};
use crate::dir::Dir;
use crate::error::{Error, Result};
use crate::parse::{self, Pressure};

/// The v2 files of one memory cgroup, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct V2Files {
    /// `memory.stat` in bytes (hierarchical, as every v2 figure is).
    pub stat: Option<KeyedValues>,
    /// `memory.current`.
    pub current: Option<u64>,
    /// `memory.max`.
    pub max: Option<Limit>,
    /// `memory.high`.
    pub high: Option<Limit>,
    /// `memory.low`.
    pub low: Option<Limit>,
    /// `memory.min`.
    pub min: Option<Limit>,
    /// `memory.peak`.
    pub peak: Option<u64>,
    /// `memory.swap.current`.
    pub swap_current: Option<u64>,
    /// `memory.swap.max`.
    pub swap_max: Option<Limit>,
    /// `memory.events` (hierarchical counters).
    pub events: Option<KeyedValues>,
    /// `memory.events.local` (this cgroup only).
    pub events_local: Option<KeyedValues>,
    /// `memory.pressure` (PSI).
    pub pressure: Option<Pressure>,
}

/// Every v2 file this reader opens, relative to the cgroup directory.
pub const FILES: [&str; 12] = [
    "memory.stat",
    "memory.current",
    "memory.max",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.peak",
    "memory.swap.current",
    "memory.swap.max",
    "memory.events",
    "memory.events.local",
    "memory.pressure",
];

/// Read one v2 cgroup. `is_root` tolerates the files the root does not have; elsewhere a
/// missing `memory.stat` means the memory controller is off here (or the cgroup vanished),
/// and the result is `Ok(None)`.
pub fn read(dir: &Dir, is_root: bool, buf: &mut Vec<u8>) -> Result<Option<V2Files>> {
    let stat = keyed(dir, "memory.stat", buf)?;
    if stat.is_none() && !is_root {
        return Ok(None);
    }
    Ok(Some(V2Files {
        stat,
        current: number(dir, "memory.current", buf)?,
        max: limit(dir, "memory.max", buf)?,
        high: limit(dir, "memory.high", buf)?,
        low: limit(dir, "memory.low", buf)?,
        min: limit(dir, "memory.min", buf)?,
        peak: number(dir, "memory.peak", buf)?,
        swap_current: number(dir, "memory.swap.current", buf)?,
        swap_max: limit(dir, "memory.swap.max", buf)?,
        events: keyed(dir, "memory.events", buf)?,
        events_local: keyed(dir, "memory.events.local", buf)?,
        pressure: pressure(dir, "memory.pressure", buf)?,
    }))
}

fn limit(dir: &Dir, name: &str, buf: &mut Vec<u8>) -> Result<Option<Limit>> {
    match dir.read_optional(name, buf)? {
        None => Ok(None),
        Some(text) => parse::u64_or_max(text)
            .map(|value| Some(Limit::from_v2(value)))
            .map_err(|e| Error::malformed(&dir.path().join(name), e.0)),
    }
}

fn pressure(dir: &Dir, name: &str, buf: &mut Vec<u8>) -> Result<Option<Pressure>> {
    // PSI can be compiled in but disabled (psi=0): reading then fails with EOPNOTSUPP.
    match dir.read_optional(name, buf) {
        Ok(None) | Err(Error::Unsupported { .. }) => Ok(None),
        Ok(Some(text)) => parse::pressure(text)
            .map(Some)
            .map_err(|e| Error::malformed(&dir.path().join(name), e.0)),
        Err(other) => Err(other),
    }
}
