//! The agent's `/api/v1/cache`: `memglass cache --cgroup PATH --json`, run on demand for
//! one cgroup (the library calls it on a blocking thread, one scan at a time).

use memglass_agent::FileCache;
use memglass_analyse::filecache::rank_files;
use memglass_analyse::CgroupReport;
use memglass_kernel::filecache::{self, Budget};
use memglass_kernel::pagecache::Prober;
use memglass_kernel::Roots;
use serde_json::Value;

/// Files smaller in the cache than this are left out (as `memglass cache` does).
const MIN_CACHED: u64 = 64 << 10;

#[derive(Debug)]
pub struct Scanner {
    pub roots: Roots,
}

impl FileCache for Scanner {
    fn files(&self, cgroup: &CgroupReport, top: usize) -> Result<Value, String> {
        let page_size = rustix::param::page_size() as u64;
        let prober = Prober::new(page_size);
        let hierarchy = self
            .roots
            .memory_hierarchy()
            .map_err(|e| format!("cannot find the memory cgroup hierarchy: {e}"))?;
        let dir = hierarchy
            .mount_point
            .join(cgroup.path.trim_start_matches('/'));
        let (files, gaps) =
            filecache::scan_cgroup(&self.roots.proc, &dir, Budget::default(), &prober);
        let files = rank_files(files, Some(top), MIN_CACHED);
        let target = crate::cmd::cache::Target {
            cgroup: Some(cgroup.path.clone()),
            cgroup_report: Some(cgroup.clone()),
            path: None,
        };
        // The same document as `memglass cache --json`, so scripts read one format.
        let mut json = Vec::new();
        crate::render::cache::json(&mut json, &target, &files, prober.method())
            .map_err(|e| e.to_string())?;
        let mut document: Value = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        document["warnings"] = gaps
            .iter()
            .map(|g| Value::from(g.message.clone()))
            .collect();
        Ok(document)
    }
}
