//! cgroup v1 memory controller files (Documentation/admin-guide/cgroup-v1/memory.rst).
//!
//! `memory.stat` is read for its hierarchical `total_*` keys, so a pod cgroup includes its
//! containers exactly as on v2. Kernel memory is charged to `memory.usage_in_bytes` and
//! also counted in `memory.kmem.usage_in_bytes`; TCP buffers only in `memory.kmem.tcp.*`.

use crate::cgroup::limit::Limit;
use crate::cgroup::stat::KeyedValues;
use crate::dir::Dir;
use crate::error::{Error, Result};
use crate::parse;

/// The v1 files of one memory cgroup, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct V1Files {
    /// `memory.stat`: local and `total_*` (hierarchical) keys, in bytes.
    pub stat: KeyedValues,
    /// `memory.usage_in_bytes`.
    pub usage_in_bytes: Option<u64>,
    /// `memory.limit_in_bytes`.
    pub limit_in_bytes: Option<Limit>,
    /// `memory.soft_limit_in_bytes`.
    pub soft_limit_in_bytes: Option<Limit>,
    /// `memory.max_usage_in_bytes` (peak since creation or reset).
    pub max_usage_in_bytes: Option<u64>,
    /// `memory.failcnt`: times usage hit the limit.
    pub failcnt: Option<u64>,
    /// `memory.oom_control` (oom_kill since Linux 4.13).
    pub oom_control: Option<KeyedValues>,
    /// `memory.kmem.usage_in_bytes` (absent when kmem accounting is compiled out).
    pub kmem_usage_in_bytes: Option<u64>,
    /// `memory.kmem.tcp.usage_in_bytes`.
    pub kmem_tcp_usage_in_bytes: Option<u64>,
}

/// Every v1 file this reader opens, relative to the cgroup directory.
pub const FILES: [&str; 9] = [
    "memory.stat",
    "memory.usage_in_bytes",
    "memory.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.failcnt",
    "memory.oom_control",
    "memory.kmem.usage_in_bytes",
    "memory.kmem.tcp.usage_in_bytes",
];

/// Read one v1 memory cgroup. A missing `memory.stat` means the cgroup vanished.
pub fn read(dir: &Dir, buf: &mut Vec<u8>) -> Result<V1Files> {
    let stat = keyed(dir, "memory.stat", buf)?.ok_or_else(|| Error::Vanished {
        path: dir.path().join("memory.stat"),
    })?;
    Ok(V1Files {
        stat,
        usage_in_bytes: number(dir, "memory.usage_in_bytes", buf)?,
        limit_in_bytes: number(dir, "memory.limit_in_bytes", buf)?.map(Limit::from_v1),
        soft_limit_in_bytes: number(dir, "memory.soft_limit_in_bytes", buf)?.map(Limit::from_v1),
        max_usage_in_bytes: number(dir, "memory.max_usage_in_bytes", buf)?,
        failcnt: number(dir, "memory.failcnt", buf)?,
        oom_control: keyed(dir, "memory.oom_control", buf)?,
        kmem_usage_in_bytes: number(dir, "memory.kmem.usage_in_bytes", buf)?,
        kmem_tcp_usage_in_bytes: number(dir, "memory.kmem.tcp.usage_in_bytes", buf)?,
    })
}

pub(crate) fn number(dir: &Dir, name: &str, buf: &mut Vec<u8>) -> Result<Option<u64>> {
    match dir.read_optional(name, buf)? {
        None => Ok(None),
        Some(text) => parse::single_u64(text)
            .map(Some)
            .map_err(|e| Error::malformed(&dir.path().join(name), e.0)),
    }
}

pub(crate) fn keyed(dir: &Dir, name: &str, buf: &mut Vec<u8>) -> Result<Option<KeyedValues>> {
    match dir.read_optional(name, buf)? {
        None => Ok(None),
        Some(text) => KeyedValues::parse(text)
            .map(Some)
            .map_err(|e| Error::malformed(&dir.path().join(name), e.0)),
    }
}
