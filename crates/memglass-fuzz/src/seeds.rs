//! Seeds: the repository's recordings of real kernels and API servers (`fixtures/hosts/*`,
//! `fixtures/oom/*`, `fixtures/kube/*`), read as they are.

use std::path::{Path, PathBuf};

/// The fixtures directory.
#[derive(Debug, Clone)]
pub struct Fixtures {
    root: PathBuf,
}

impl Fixtures {
    /// Fixtures under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Fixtures {
        Fixtures { root: root.into() }
    }

    /// The repository's `fixtures/`, found from this crate's source directory.
    pub fn of_repository() -> Fixtures {
        Fixtures::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures"))
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every file under `fixtures/hosts` whose name is `name`, read whole.
    pub fn host_files(&self, name: &str) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        walk(&self.root.join("hosts"), &mut |path| {
            if path.file_name().is_some_and(|n| n == name) {
                found.push(path.to_path_buf());
            }
        });
        found.sort();
        found.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    /// Every cgroup directory of the recorded hosts, as a path from its hierarchy's root.
    pub fn cgroup_paths(&self) -> Vec<String> {
        let mut found = Vec::new();
        walk(&self.root.join("hosts"), &mut |path| {
            if path.file_name().is_some_and(|n| n == "memory.stat") {
                let dir = path.parent().unwrap_or(path).to_string_lossy().into_owned();
                for root in ["/sys/fs/cgroup/memory", "/sys/fs/cgroup"] {
                    if let Some((_, rest)) = dir.split_once(root) {
                        found.push(if rest.is_empty() {
                            "/".to_owned()
                        } else {
                            rest.to_owned()
                        });
                        break;
                    }
                }
            }
        });
        found.sort();
        found.dedup();
        found
    }

    /// The recorded OOM reports (`fixtures/oom/*.txt`), as saved.
    pub fn oom_logs(&self) -> Vec<Vec<u8>> {
        self.dir_files("oom", "txt")
    }

    /// The recorded `/dev/kmsg` contents (one record per line).
    pub fn kmsg(&self) -> Vec<Vec<u8>> {
        self.host_files("kmsg.txt")
    }

    /// Every recorded Kubernetes API document (`fixtures/kube/**/*.json`).
    pub fn kube_json(&self) -> Vec<(String, Vec<u8>)> {
        let mut found = Vec::new();
        walk(&self.root.join("kube"), &mut |path| {
            if path.extension().is_some_and(|e| e == "json") {
                found.push(path.to_path_buf());
            }
        });
        found.sort();
        found
            .iter()
            .filter_map(|p| {
                Some((
                    p.file_name()?.to_string_lossy().into_owned(),
                    std::fs::read(p).ok()?,
                ))
            })
            .collect()
    }

    fn dir_files(&self, dir: &str, ext: &str) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        walk(&self.root.join(dir), &mut |path| {
            if path.extension().is_some_and(|e| e == ext) {
                found.push(path.to_path_buf());
            }
        });
        found.sort();
        found.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }
}

fn walk(dir: &Path, found: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found(&path);
        }
    }
}

/// Lines of `texts` (seeds made of single lines).
pub fn lines_of(texts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    texts
        .iter()
        .flat_map(|t| t.split(|&b| b == b'\n').map(<[u8]>::to_vec))
        .filter(|l| !l.is_empty())
        .collect()
}
