//! Ranking a cgroup's files by how much page cache they hold.

use memglass_kernel::filecache::CachedFile;

/// Largest cached first; files under `min_cached` bytes dropped unless `top` is `None`
/// (everything); at most `top` files.
pub fn rank_files(
    mut files: Vec<CachedFile>,
    top: Option<usize>,
    min_cached: u64,
) -> Vec<CachedFile> {
    files.sort_by(|a, b| {
        b.cache
            .cached
            .cmp(&a.cache.cached)
            .then_with(|| a.candidate.container_path.cmp(&b.candidate.container_path))
    });
    if let Some(top) = top {
        files.retain(|f| f.cache.cached >= min_cached);
        files.truncate(top);
    }
    files
}
