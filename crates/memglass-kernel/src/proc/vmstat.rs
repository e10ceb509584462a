//! `/proc/vmstat`: node-wide VM counters (page counts and event counters).

use std::path::Path;

use crate::cgroup::KeyedValues;
use crate::error::{Error, Result};

/// The file name under the proc root.
pub const FILE: &str = "vmstat";

/// The counters of /proc/vmstat, kept whole.
#[derive(Debug, Clone, PartialEq)]
pub struct VmStat {
    /// Every counter as read (units vary: `nr_*` are pages, others are event counts).
    pub all: KeyedValues,
}

impl VmStat {
    /// OOM kills since boot, node-wide (4.13+).
    pub fn oom_kill(&self) -> Option<u64> {
        self.all.get("oom_kill")
    }
}

/// Read `<proc_root>/vmstat`.
pub fn read(proc_root: &Path, buf: &mut Vec<u8>) -> Result<VmStat> {
    let path = proc_root.join(FILE);
    let text = crate::dir::read_path(&path, buf)?;
    let all = KeyedValues::parse(text).map_err(|e| Error::malformed(&path, e.0))?;
    Ok(VmStat { all })
}
