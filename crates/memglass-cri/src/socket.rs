//! Where the container runtime listens.

use std::path::{Path, PathBuf};

/// The default CRI sockets of the common runtimes, in the order they are tried.
pub const DEFAULT_SOCKETS: [&str; 6] = [
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/snap/microk8s/common/run/containerd.sock",
    "/run/cri-dockerd.sock",
];

/// A socket named by the user: a path or a `unix://` URL (`unix:///run/x.sock`).
pub fn parse(value: &str) -> PathBuf {
    PathBuf::from(value.strip_prefix("unix://").unwrap_or(value))
}

/// The first default socket present under `root` ("/" on a host; a node's root
/// filesystem mounted elsewhere when running in a container).
pub fn detect(root: &Path) -> Option<PathBuf> {
    DEFAULT_SOCKETS
        .iter()
        .map(|socket| root.join(socket.trim_start_matches('/')))
        .find(|path| {
            std::fs::metadata(path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        assert_eq!(
            parse("unix:///run/containerd/containerd.sock"),
            PathBuf::from("/run/containerd/containerd.sock")
        );
        assert_eq!(
            parse("/run/crio/crio.sock"),
            PathBuf::from("/run/crio/crio.sock")
        );
        assert_eq!(detect(Path::new("/nonexistent-root")), None);
    }
}
