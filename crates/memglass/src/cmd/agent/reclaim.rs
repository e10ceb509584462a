//! The agent's `POST /api/v1/reclaim`: `memglass reclaim --json` for one cgroup of the
//! latest collection (the library calls it on a blocking thread, one at a time).

use std::time::Duration;

use memglass_agent::{Reclaim, ReclaimFailure};
use memglass_analyse::CgroupReport;
use memglass_kernel::Roots;
use serde_json::Value;

use crate::cmd::reclaim::{self, Request};

#[derive(Debug)]
pub struct Reclaimer {
    pub roots: Roots,
}

impl Reclaim for Reclaimer {
    fn reclaim(
        &self,
        cgroup: &CgroupReport,
        bytes: u64,
        timeout: Duration,
    ) -> Result<Value, ReclaimFailure> {
        let hierarchy = self.roots.memory_hierarchy().map_err(|e| {
            ReclaimFailure::Failed(format!("cannot find the memory cgroup hierarchy: {e}"))
        })?;
        let request = Request { bytes, timeout };
        let failure = |error: anyhow::Error| {
            if reclaim::is_refusal(&error) {
                ReclaimFailure::Refused(format!("{error:#}"))
            } else {
                ReclaimFailure::Failed(format!("{error:#}"))
            }
        };
        let outcome =
            reclaim::perform(&self.roots, &hierarchy, cgroup.clone(), request).map_err(failure)?;
        // The same document as `memglass reclaim --json`, so scripts read one format.
        crate::render::reclaim::document(&outcome).map_err(failure)
    }

    fn quantity(&self, text: &str) -> Result<u64, String> {
        reclaim::parse_bytes(text)
    }
}
