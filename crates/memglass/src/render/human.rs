//! The view for a person: node breakdown, then the largest cgroups.

use std::io::Write;

use memglass_analyse::filecache::CacheHolder;
use memglass_analyse::{CgroupReport, Snapshot};

/// Bytes in binary units ("512.0 MiB"); "-" when unknown.
pub fn bytes(value: Option<u64>) -> String {
    let Some(value) = value else {
        return "-".into();
    };
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

fn signed_bytes(value: i64) -> String {
    let sign = if value < 0 { "−" } else { "+" };
    format!("{sign}{}", bytes(Some(value.unsigned_abs())))
}

/// Write the node breakdown and the `top` cgroups with the largest working sets.
pub fn write_snapshot(
    out: &mut impl Write,
    snapshot: &Snapshot,
    holders: Option<&[CacheHolder]>,
    top: usize,
) -> std::io::Result<()> {
    let n = &snapshot.node;
    let b = |v: u64| bytes(Some(v));
    writeln!(
        out,
        "NODE  {} total, cgroup v{} memory hierarchy",
        b(n.mem_total),
        snapshot.cgroup_version
    )?;
    writeln!(
        out,
        "  application {:>10}  anon: active {}, inactive {} · file: active {}, inactive {} · unevictable {} · hugetlb {}",
        b(n.application),
        bytes(n.active_anon),
        bytes(n.inactive_anon),
        bytes(n.active_file),
        bytes(n.inactive_file),
        bytes(n.unevictable),
        bytes(n.hugetlb),
    )?;
    writeln!(
        out,
        "  {:>22}  of which shmem/tmpfs {} (anon lists), buffers {} (file lists), dirty {}",
        "",
        bytes(n.shmem),
        bytes(n.buffers),
        bytes(n.dirty),
    )?;
    writeln!(
        out,
        "  kernel      {:>10}  slab: reclaimable {}, unreclaimable {} · kernel_stack {} · pagetables {} · vmalloc {} · percpu {} · alloc_page {}",
        b(n.kernel),
        bytes(n.slab_reclaimable),
        bytes(n.slab_unreclaimable),
        bytes(n.kernel_stack),
        bytes(n.pagetables),
        bytes(n.vmalloc),
        bytes(n.percpu),
        b(n.alloc_page),
    )?;
    writeln!(
        out,
        "  free        {:>10}  MemAvailable {}",
        b(n.mem_free),
        bytes(n.mem_available)
    )?;
    writeln!(
        out,
        "  memory_available {} (kubelet's eviction signal: MemTotal − (root usage {} − root inactive_file))",
        bytes(n.memory_available),
        bytes(snapshot.cgroups.iter().find(|c| c.is_root()).and_then(|c| c.memory.usage)),
    )?;
    let r = &snapshot.reconciliation;
    writeln!(
        out,
        "  reconciled  top-level cgroups {} + user memory outside them {} + kernel outside them {} + free {} = {} (residual {})",
        b(r.top_level_cgroups),
        b(r.user_outside_cgroups),
        b(r.kernel_outside_cgroups),
        b(r.free),
        b(r.mem_total),
        signed_bytes(r.residual),
    )?;
    if let Some(oom_kill) = n.oom_kill {
        writeln!(out, "  oom kills   {oom_kill} since boot")?;
    }
    writeln!(out)?;
    write_cgroups(out, &snapshot.top_with_containers(top))?;
    if let Some(holders) = holders.filter(|h| !h.is_empty()) {
        writeln!(out)?;
        write_cache_holders(out, snapshot, holders)?;
    }
    if snapshot.vanished > 0 {
        writeln!(
            out,
            "({} cgroups vanished while being read)",
            snapshot.vanished
        )?;
    }
    Ok(())
}

/// The largest files behind each cache holder's page cache.
fn write_cache_holders(
    out: &mut impl Write,
    snapshot: &Snapshot,
    holders: &[CacheHolder],
) -> std::io::Result<()> {
    let method = holders
        .iter()
        .flat_map(|h| h.files.first())
        .map(|f| format!("{:?}", f.cache.method).to_lowercase())
        .next()
        .unwrap_or_else(|| "cachestat".into());
    writeln!(
        out,
        "PAGE CACHE OF THE LARGEST HOLDERS  (files open, mapped, or in a container's writable layer and volumes; CACHED = the file's pages in the cache ({method}), whichever cgroup they are charged to; more: memglass cache --cgroup PATH)"
    )?;
    for holder in holders {
        let cgroup = snapshot.cgroups.iter().find(|c| c.path == holder.cgroup);
        let (file, version, name) = cgroup.map_or((None, 2, String::new()), |c| {
            (c.memory.file, c.cgroup_version, workload(c))
        });
        writeln!(
            out,
            "{}{}  file {} ({}); the files below hold {}",
            holder.cgroup,
            if name.is_empty() {
                String::new()
            } else {
                format!("  {name}")
            },
            bytes(file),
            crate::render::json::file_source(version),
            bytes(Some(holder.files_cached())),
        )?;
        if holder.files.is_empty() {
            writeln!(
                out,
                "      no file of 64 KiB or more in the cache is open or mapped by its processes: the cache is of files read or written and closed"
            )?;
        }
        for file in &holder.files {
            let mut flags = Vec::new();
            if file.cache.dirty.is_some_and(|d| d > 0) {
                flags.push(format!("dirty {}", bytes(file.cache.dirty)));
            }
            if file.candidate.deleted {
                flags.push("deleted".into());
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  ({})", flags.join(", "))
            };
            writeln!(
                out,
                "  {:>10}  {}{flags}",
                bytes(Some(file.cache.cached)),
                file.candidate.container_path
            )?;
        }
        for warning in &holder.warnings {
            writeln!(out, "      ({warning})")?;
        }
    }
    Ok(())
}

fn write_cgroups(
    out: &mut impl Write,
    ranked: &[(&CgroupReport, Vec<&CgroupReport>)],
) -> std::io::Result<()> {
    writeln!(
        out,
        "TOP CGROUPS BY WORKING SET  (ws_kubelet = usage − inactive_file; ws = anon + active_file; a pod's containers under it)"
    )?;
    write_row(
        out,
        &[
            "CGROUP",
            "KIND",
            "NAMESPACE/POD/CONTAINER",
            "WS_KUBELET",
            "WS",
            "ANON",
            "ACT_FILE",
            "INACT_FILE",
            "SHMEM",
            "DIRTY",
            "KERNEL",
            "USAGE",
            "LIMIT",
        ],
    )?;
    for (cgroup, containers) in ranked {
        write_cgroup(out, cgroup, &shorten(&cgroup.path, 44))?;
        for container in containers {
            let name = container.path.rsplit('/').next().unwrap_or_default();
            write_cgroup(out, container, &format!("  └ {}", shorten(name, 40)))?;
        }
    }
    Ok(())
}

fn write_cgroup(out: &mut impl Write, cgroup: &CgroupReport, label: &str) -> std::io::Result<()> {
    let m = &cgroup.memory;
    write_row(
        out,
        &[
            label,
            cgroup.kind.as_str(),
            &shorten(&workload(cgroup), 32),
            &bytes(m.working_set_kubelet),
            &bytes(m.working_set),
            &bytes(m.anon),
            &bytes(m.active_file),
            &bytes(m.inactive_file),
            &bytes(m.shmem),
            &bytes(m.file_dirty),
            &bytes(m.kernel),
            &bytes(m.usage),
            &limit(m.limit, m.usage),
        ],
    )
}

fn write_row(out: &mut impl Write, cells: &[&str; 13]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<44} {:<9} {:<32} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>16}",
        cells[0],
        cells[1],
        cells[2],
        cells[3],
        cells[4],
        cells[5],
        cells[6],
        cells[7],
        cells[8],
        cells[9],
        cells[10],
        cells[11],
        cells[12]
    )
}

/// "namespace/pod/container" where known, else the ids from the path.
fn workload(cgroup: &CgroupReport) -> String {
    let short = |id: &Option<String>, n: usize| {
        id.as_deref()
            .map(|id| id.chars().take(n).collect::<String>())
    };
    match (&cgroup.namespace, &cgroup.pod, &cgroup.container) {
        (Some(ns), Some(pod), Some(container)) => format!("{ns}/{pod}/{container}"),
        (Some(ns), Some(pod), None) => format!("{ns}/{pod}"),
        _ => match (short(&cgroup.pod_uid, 8), short(&cgroup.container_id, 12)) {
            (Some(pod), Some(container)) => format!("pod {pod}/{container}"),
            (Some(pod), None) => format!("pod {pod}"),
            (None, Some(container)) => container,
            (None, None) => String::new(),
        },
    }
}

fn limit(limit: Option<u64>, usage: Option<u64>) -> String {
    match (limit, usage) {
        (None, _) => "-".into(),
        (Some(limit), Some(usage)) if limit > 0 => {
            format!(
                "{} ({:.0}%)",
                bytes(Some(limit)),
                usage as f64 * 100.0 / limit as f64
            )
        }
        (Some(limit), _) => bytes(Some(limit)),
    }
}

/// Keep the end of a long path, which names the workload.
pub fn shorten(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = text.chars().skip(count - (width - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units() {
        assert_eq!(bytes(None), "-");
        assert_eq!(bytes(Some(0)), "0 B");
        assert_eq!(bytes(Some(1023)), "1023 B");
        assert_eq!(bytes(Some(1536)), "1.5 KiB");
        assert_eq!(bytes(Some(64 << 20)), "64.0 MiB");
        assert_eq!(bytes(Some(u64::MAX)), "16384.0 PiB");
        assert_eq!(signed_bytes(-2048), "−2.0 KiB");
    }

    #[test]
    fn shortening_keeps_the_tail() {
        assert_eq!(shorten("/a/b", 10), "/a/b");
        assert_eq!(shorten("/kubepods/burstable/podabc", 10), "…le/podabc");
        assert_eq!(shorten("/kubepods", 1), "…");
        assert_eq!(shorten("/kubepods", 0), "");
    }
}
