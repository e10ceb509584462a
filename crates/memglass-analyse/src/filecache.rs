//! Ranking a cgroup's files by how much page cache they hold.

use memglass_kernel::filecache::CachedFile;

/// Largest cached first; files under `min_cached` bytes dropped unless `top` is `None`
/// (everything); at most `top` files.
pub fn rank_files(files: Vec<CachedFile>, top: Option<usize>, min_cached: u64) -> Vec<CachedFile> {
    // Sort positions, not the files: a file is a few hundred bytes, and a `--path` scan
    // can rank a hundred thousand of them.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        let (a, b) = (&files[a], &files[b]);
        b.cache
            .cached
            .cmp(&a.cache.cached)
            .then_with(|| a.candidate.container_path.cmp(&b.candidate.container_path))
    });
    if let Some(top) = top {
        order.retain(|&i| files[i].cache.cached >= min_cached);
        order.truncate(top);
    }
    let mut slots: Vec<Option<CachedFile>> = files.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}
