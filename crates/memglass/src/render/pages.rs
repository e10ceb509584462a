//! `memglass pages` output.

use std::io::Write;
use std::time::Duration;

use memglass_analyse::pages::{CgroupPages, PageReport};
use memglass_analyse::Snapshot;

use crate::render::human::bytes;

pub fn json(out: &mut impl Write, report: &PageReport, elapsed: Duration) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(report)?;
    value["scan_seconds"] = serde_json::json!(elapsed.as_secs_f64());
    serde_json::to_writer(&mut *out, &value)?;
    writeln!(out)?;
    Ok(())
}

pub fn table(
    out: &mut impl Write,
    report: &PageReport,
    snapshot: &Snapshot,
    top: usize,
    elapsed: Duration,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "scanned {} page frames in {:.2} s{}",
        report.frames_scanned,
        elapsed.as_secs_f64(),
        if report.sample_every > 1 {
            format!(" (one chunk in {}, scaled)", report.sample_every)
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "{:<60} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}   (pages charged to the cgroup and below; memory.stat anon+file)",
        "CGROUP", "TOTAL", "ANON", "FILE", "SHMEM", "DIRTY", "ACTIVE", "STAT"
    )?;
    let mut rows: Vec<&CgroupPages> = report.cgroups.iter().filter(|r| r.path != "/").collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.subtree.total));
    for row in rows.into_iter().take(top) {
        let stat = snapshot
            .cgroups
            .iter()
            .find(|c| c.path == row.path)
            .map(|c| c.memory.anon.unwrap_or(0) + c.memory.file.unwrap_or(0));
        let s = &row.subtree;
        writeln!(
            out,
            "{:<60} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            row.path,
            bytes(Some(s.total)),
            bytes(Some(s.anon)),
            bytes(Some(s.file)),
            bytes(Some(s.shmem)),
            bytes(Some(s.dirty)),
            bytes(Some(s.active)),
            bytes(stat),
        )?;
    }
    let below: Vec<&CgroupPages> = report
        .cgroups
        .iter()
        .filter(|r| r.dying_descendants > 0)
        .collect();
    let dying_total: u64 = report.dying.iter().map(|d| d.pages.total).sum::<u64>()
        + below.iter().map(|r| r.dying_descendants).sum::<u64>();
    writeln!(
        out,
        "\nmemory still charged to deleted (dying) cgroups: {}",
        bytes(Some(dying_total))
    )?;
    for row in below.iter().take(top) {
        writeln!(
            out,
            "  {:>10}  left by deleted cgroups below {}",
            bytes(Some(row.dying_descendants)),
            row.path
        )?;
    }
    for dying in report.dying.iter().take(top) {
        writeln!(
            out,
            "  inode {:<12} {:>10}  (file {}, anon {}, shmem {})",
            dying.inode,
            bytes(Some(dying.pages.total)),
            bytes(Some(dying.pages.file)),
            bytes(Some(dying.pages.anon)),
            bytes(Some(dying.pages.shmem))
        )?;
    }
    writeln!(
        out,
        "charged to no cgroup: {}",
        bytes(Some(report.uncharged.total))
    )?;
    Ok(())
}
