//! One pass over every source: the node's /proc files and every memory cgroup.

use std::path::PathBuf;

use crate::cgroup::{self, CgroupSample, MemoryHierarchy};
use crate::error::Result;
use crate::gap::Gap;
use crate::proc::{meminfo, vmstat, MemInfo, VmStat};

/// Where the readers look. Only [`Roots::host`] names the live system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The proc filesystem (`/proc`, or a recorded copy).
    pub proc: PathBuf,
    /// The memory hierarchy's root directory; `None` finds it from `<proc>/self/mountinfo`.
    pub cgroup: Option<PathBuf>,
}

impl Roots {
    /// This machine.
    pub fn host() -> Roots {
        Roots {
            proc: PathBuf::from("/proc"),
            cgroup: None,
        }
    }

    /// Locate the memory hierarchy these roots describe.
    pub fn memory_hierarchy(&self) -> Result<MemoryHierarchy> {
        match &self.cgroup {
            Some(dir) => cgroup::hierarchy::at_directory(dir),
            None => cgroup::hierarchy::detect(&self.proc),
        }
    }
}

/// Everything read in one pass, exactly as read (no derived figures).
#[derive(Debug, Clone)]
pub struct HostSample {
    /// The memory hierarchy that was walked.
    pub hierarchy: MemoryHierarchy,
    /// /proc/meminfo.
    pub meminfo: MemInfo,
    /// /proc/vmstat (`None` if it could not be read; see `gaps`).
    pub vmstat: Option<VmStat>,
    /// Every memory cgroup, parents before children.
    pub cgroups: Vec<CgroupSample>,
    /// What could not be read.
    pub gaps: Vec<Gap>,
    /// Cgroups that vanished while being read.
    pub vanished: usize,
}

/// Read the node and every memory cgroup. Fails only if /proc/meminfo or the
/// hierarchy's root cannot be read; anything smaller becomes a [`Gap`].
pub fn collect(roots: &Roots) -> Result<HostSample> {
    let hierarchy = roots.memory_hierarchy()?;
    let mut buf = Vec::with_capacity(8 << 10);
    let meminfo = meminfo::read(&roots.proc, &mut buf)?;
    let mut gaps = Vec::new();
    let vmstat = match vmstat::read(&roots.proc, &mut buf) {
        Ok(vmstat) => Some(vmstat),
        Err(error) => {
            gaps.push(Gap::from_error("vmstat", &error));
            None
        }
    };
    let walked = cgroup::walk(&hierarchy)?;
    gaps.extend(walked.gaps);
    Ok(HostSample {
        hierarchy,
        meminfo,
        vmstat,
        cgroups: walked.cgroups,
        gaps,
        vanished: walked.vanished,
    })
}
