//! The detail view's cached files: measured on demand (`f`) in the background, listed
//! largest first next to the cgroup's own page-cache figure.

use memglass_analyse::CgroupReport;
use memglass_kernel::pagecache::Method;
use ratatui::style::{Style, Stylize};
use ratatui::text::Line;

use super::app::{App, Files};
use super::draw::red;
use crate::render::human::bytes;

pub fn section(app: &App, c: &CgroupReport) -> Vec<Line<'static>> {
    let title = Line::from(
        "CACHED FILES  (files its processes hold open or mapped, container rootfs and volumes)",
    )
    .bold();
    let body = match &app.files {
        Files::Measuring { path } if *path == c.path => {
            vec![Line::from("  measuring… (the view stays live)")]
        }
        Files::Failed { path, message } if *path == c.path => {
            vec![Line::styled(
                format!("  cannot list files: {message}"),
                red(),
            )]
        }
        Files::Ready {
            path,
            files,
            method,
        } if *path == c.path => {
            let total: u64 = files.iter().map(|f| f.cache.cached).sum();
            let method = match method {
                Method::Cachestat => "cachestat(2)",
                Method::Mincore => "mincore(2)",
            };
            // A shared file's cache is charged to whoever read it first, maybe not here.
            let mut lines = vec![
                Line::from(format!(
                    "  {} cached in the {} largest files ({method}), whoever it is charged to; memory.stat file {} · f measures again · `memglass cache --exact` tells the charge",
                    bytes(Some(total)),
                    files.len(),
                    bytes(c.memory.file),
                )),
                Line::from(format!("  {:>10} {:>10} {:>10}  FILE", "CACHED", "DIRTY", "WRITEBACK")).bold(),
            ];
            lines.extend(files.iter().map(|f| {
                let deleted = if f.candidate.deleted {
                    " (deleted)"
                } else {
                    ""
                };
                Line::from(format!(
                    "  {:>10} {:>10} {:>10}  {}{deleted}",
                    bytes(Some(f.cache.cached)),
                    bytes(f.cache.dirty),
                    bytes(f.cache.writeback),
                    f.candidate.container_path,
                ))
            }));
            if files.is_empty() {
                lines.push(Line::from("  no file with 64 KiB or more cached was found"));
            }
            lines
        }
        _ => vec![Line::styled(
            "  press f to list them (cachestat(2), or mincore(2) before 6.5)",
            Style::new().dark_gray(),
        )],
    };
    std::iter::once(title).chain(body).collect()
}
