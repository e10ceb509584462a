//! Depth-first walk of the memory hierarchy, one directory fd at a time.

use crate::cgroup::hierarchy::{CgroupVersion, MemoryHierarchy};
use crate::cgroup::{normalize, v1, v2, CgroupSample};

use crate::dir::Dir;
use crate::error::{Error, Result};
use crate::gap::Gap;

/// Everything the walk found.
#[derive(Debug, Default)]
pub struct WalkOutcome {
    /// Memory cgroups in depth-first order (parents before children, siblings by name).
    pub cgroups: Vec<CgroupSample>,
    /// Files that could not be read (other than cgroups vanishing).
    pub gaps: Vec<Gap>,
    /// Cgroups that disappeared while being read (normal under churn).
    pub vanished: usize,
}

/// Read every memory cgroup of `hierarchy`. Fails only when the root cannot be read.
pub fn walk(hierarchy: &MemoryHierarchy) -> Result<WalkOutcome> {
    let root = Dir::open(&hierarchy.mount_point)?;
    let root_inode = rustix::fs::fstat(root.as_fd()).map_or(0, |stat| stat.st_ino);
    let mut outcome = WalkOutcome::default();
    let mut buf = Vec::with_capacity(16 << 10);
    let root_path = hierarchy.mount_root.trim_end_matches('/').to_owned();
    let display_root = if root_path.is_empty() {
        "/".to_owned()
    } else {
        root_path.clone()
    };
    match read_one(hierarchy.version, &root, true, &mut buf) {
        Ok(Some(memory)) => outcome.cgroups.push(CgroupSample {
            path: display_root,
            version: hierarchy.version,
            inode: root_inode,
            memory,
        }),
        Ok(None) => {}
        Err(error) => return Err(error),
    }
    let mut stack = vec![(root, root_path)];
    while let Some((dir, path)) = stack.pop() {
        let children = match dir.subdirectories_with_inodes() {
            Ok(children) => children,
            Err(error) => {
                outcome.note(error);
                continue;
            }
        };
        // Pushed in reverse so that siblings come out in name order.
        for (name, inode) in children.into_iter().rev() {
            let child_path = format!("{path}/{name}");
            let child = match dir.open_child(&name) {
                Ok(child) => child,
                Err(error) => {
                    outcome.note(error);
                    continue;
                }
            };
            match read_one(hierarchy.version, &child, false, &mut buf) {
                Ok(Some(memory)) => {
                    outcome.cgroups.push(CgroupSample {
                        path: child_path.clone(),
                        version: hierarchy.version,
                        inode,
                        memory,
                    });
                    stack.push((child, child_path));
                }
                // v2 without the memory controller here: nothing below can have it either.
                Ok(None) => {}
                Err(error) => outcome.note(error),
            }
        }
    }
    // Siblings were read in name order but levels interleave: restore depth-first order.
    outcome.cgroups.sort_by(|a, b| path_order(&a.path, &b.path));
    Ok(outcome)
}

/// Order paths so that a parent precedes its children and siblings sort by name.
fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

fn read_one(
    version: CgroupVersion,
    dir: &Dir,
    is_root: bool,
    buf: &mut Vec<u8>,
) -> Result<Option<crate::cgroup::CgroupMemory>> {
    match version {
        CgroupVersion::V1 => v1::read(dir, buf).map(|files| Some(normalize::from_v1(files))),
        CgroupVersion::V2 => Ok(v2::read(dir, is_root, buf)?.map(normalize::from_v2)),
    }
}

impl WalkOutcome {
    fn note(&mut self, error: Error) {
        if error.is_vanished() {
            self.vanished += 1;
        } else {
            self.gaps.push(Gap::from_error("cgroup", &error));
        }
    }
}
