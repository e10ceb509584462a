//! /proc/PID/mountinfo, for finding a container's filesystems and their host paths.

use std::path::Path;

/// One mount as a process sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem.
    pub device: String,
    /// The directory of the filesystem that is mounted here.
    pub root: String,
    /// Where it is mounted, in the process's view.
    pub mount_point: String,
    /// Filesystem type.
    pub fstype: String,
    /// Superblock options (overlay: lowerdir=…,upperdir=…).
    pub super_options: String,
}

/// Filesystems whose files are not page cache worth listing.
const VIRTUAL: [&str; 14] = [
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "devtmpfs",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
];

impl Mount {
    /// A filesystem with file contents (not /proc, /sys, /dev except /dev/shm).
    pub fn is_content(&self) -> bool {
        if VIRTUAL.contains(&self.fstype.as_str()) {
            return false;
        }
        let under =
            |dir: &str| self.mount_point == dir || self.mount_point.starts_with(&format!("{dir}/"));
        if under("/proc") || under("/sys") {
            return false;
        }
        !under("/dev") || self.mount_point == "/dev/shm"
    }

    /// The overlay upper directory (a container's writable layer), if this is overlay.
    pub fn overlay_upper(&self) -> Option<&str> {
        if self.fstype != "overlay" {
            return None;
        }
        self.super_options
            .split(',')
            .find_map(|o| o.strip_prefix("upperdir="))
    }

    /// This mount's directory as a host path, found through a host mount of the same
    /// filesystem whose root contains ours (bind mounts of host directories).
    pub fn host_path(&self, host_mounts: &[Mount]) -> Option<String> {
        host_mounts
            .iter()
            .filter(|h| h.device == self.device && self.root.starts_with(h.root.as_str()))
            .max_by_key(|h| h.root.len())
            .map(|h| {
                let rest = self.root[h.root.len()..].trim_start_matches('/');
                match (h.mount_point.as_str(), rest) {
                    (point, "") => point.to_owned(),
                    ("/", rest) => format!("/{rest}"),
                    (point, rest) => format!("{point}/{rest}"),
                }
            })
    }
}

/// Parse mountinfo text.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                device: left.get(2)?.to_string(),
                root: unescape(left.get(3)?),
                mount_point: unescape(left.get(4)?),
                fstype: right.first()?.to_string(),
                super_options: right.get(2).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// The mounts of `/proc/<pid>` (empty if it exited).
pub fn of_process(proc_pid: &Path) -> Vec<Mount> {
    std::fs::read_to_string(proc_pid.join("mountinfo"))
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` (octal).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_mounts() {
        let text = "\
1 0 0:50 / / rw - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/var/lib/containerd/snap/9/fs,workdir=/w\n\
2 1 0:51 / /proc rw - proc proc rw\n\
3 1 0:52 / /dev/shm rw - tmpfs shm rw,size=65536k\n\
4 1 254:0 /var/lib/kubelet/pods/u/volumes/x /data rw - ext4 /dev/vda rw\n";
        let mounts = parse(text);
        assert_eq!(
            mounts[0].overlay_upper(),
            Some("/var/lib/containerd/snap/9/fs")
        );
        assert!(!mounts[1].is_content());
        assert!(mounts[2].is_content());
        let host = parse("9 1 254:0 / / rw - ext4 /dev/vda rw\n");
        assert_eq!(
            mounts[3].host_path(&host).as_deref(),
            Some("/var/lib/kubelet/pods/u/volumes/x")
        );
        assert_eq!(mounts[2].host_path(&host), None);
    }
}
