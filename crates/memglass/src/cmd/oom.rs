//! `memglass oom`: the OOM kills in the kernel log (or a saved log), explained; with
//! `--follow`, as they happen. Next to the events, the kernel's kill counters, so kills
//! whose report the log lost are still counted.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use memglass_analyse::oom::{check_counters, explain_oom, CgroupKills, CounterCheck, OomReport};
use memglass_identify::Directory;
use memglass_kernel::kmsg::oom::{OomAssembler, OomKill};
use memglass_kernel::kmsg::reader::{self, KmsgReader, Next, Start};
use memglass_kernel::kmsg::{saved, LogTime};
use memglass_kernel::Roots;

use crate::cli::{IdentityArgs, SourceArgs};
use crate::identity;
use crate::render::oom::{self as render, Counters, EventTime};

/// How often `--follow` looks for new records, and how long the log must stay quiet
/// before a kill whose oom_reaper line has not come yet is printed anyway.
const POLL: Duration = Duration::from_millis(250);
const QUIET: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Args)]
pub struct OomArgs {
    /// Emit a JSON array of events (docs/json-format.md); with --follow, one JSON object
    /// per line.
    #[arg(long)]
    pub json: bool,
    /// Keep reading the kernel log and show each kill as it happens (from now on, or from
    /// --since).
    #[arg(long)]
    pub follow: bool,
    /// Only kills at or after this: a duration back from now (30m, 2h, 7d) or a time
    /// (2026-11-25T07:50:37Z, "2026-11-25 07:50:37").
    #[arg(long, value_name = "DURATION|TIMESTAMP", value_parser = parse_since)]
    pub since: Option<SystemTime>,
    /// Read a saved kernel log instead of /dev/kmsg: dmesg (plain, -T, -r, -x), journalctl
    /// -k (short, short-precise, short-iso, short-monotonic), /var/log/syslog, kern.log or
    /// messages, or /dev/kmsg records; `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with = "follow")]
    pub from_file: Option<PathBuf>,
    /// The kernel log device.
    #[arg(long, hide = true, value_name = "PATH", default_value = reader::DEV_KMSG)]
    pub kmsg: PathBuf,
}

fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Ok(back) = humantime::parse_duration(text) {
        return SystemTime::now()
            .checked_sub(back)
            .ok_or_else(|| format!("{text} reaches back before 1970"));
    }
    humantime::parse_rfc3339_weak(text).map_err(|_| {
        format!("expected a duration (30m, 2h) or a time (2026-11-25T07:50:37Z), got {text:?}")
    })
}

pub fn run(
    sources: &SourceArgs,
    identity_args: &IdentityArgs,
    args: &OomArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let gathered = identity::gather(sources, identity_args)?;
    for warning in &gathered.warnings {
        eprintln!("memglass: warning: {warning}");
    }
    let directory = gathered.directory;
    match &args.from_file {
        Some(file) => from_file(file, &directory, args, out),
        None if args.follow => follow(sources, &directory, args, out),
        None => from_kmsg(sources, &directory, args, out),
    }
}

/// A saved log: its times are its own (no boot time is known), and no counters apply.
fn from_file(
    file: &Path,
    directory: &Directory,
    args: &OomArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    // Year-less lines (syslog, journal `short`) are dated no later than this: the file's
    // modification time (when it was last written), else now.
    let anchor = if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes)?;
        SystemTime::now()
    } else {
        bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        std::fs::metadata(file)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now())
    };
    let anchor_unix = anchor
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (lines, year) = saved::parse_anchored(&String::from_utf8_lossy(&bytes), anchor_unix);
    if let Some(year) = year {
        let from = if file == Path::new("-") {
            "now".to_owned()
        } else {
            format!(
                "{}'s modification time, {}",
                file.display(),
                humantime::format_rfc3339_seconds(anchor)
            )
        };
        eprintln!(
            "memglass: note: the log's dates print no year: read from {year} on, the latest that puts none after {from}"
        );
    }
    let mut assembler = OomAssembler::new();
    let mut kills: Vec<OomKill> = lines.iter().filter_map(|l| assembler.push(l)).collect();
    kills.extend(assembler.finish());
    let clock = Clock { boot: None };
    let events = explain(kills, directory, &clock, args.since);
    write(out, args, &events, None, &file.display().to_string())
}

/// The kernel's ring buffer as it is now, and its counters.
fn from_kmsg(
    sources: &SourceArgs,
    directory: &Directory,
    args: &OomArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let clock = Clock::of_this_boot(&sources.proc_root);
    let mut kmsg = Kmsg::open(&args.kmsg, Start::Beginning)?;
    let mut kills = kmsg.drain()?;
    kills.extend(kmsg.assembler.finish());
    kmsg.warn();
    let all = explain(kills, directory, &clock, None);
    let counters = counters(sources, &all);
    let events: Vec<(OomReport, EventTime)> = all
        .into_iter()
        .filter(|(_, time)| args.since.is_none_or(|since| time.is_since(since)))
        .collect();
    write(
        out,
        args,
        &events,
        counters.as_ref(),
        &args.kmsg.display().to_string(),
    )
}

/// The kills in the kernel's ring buffer at or after `since`, explained, with Unix seconds
/// where the time is known (`memglass diagnose`, `memglass top`). With `subtree` (a live
/// `--cgroup-root`), only kills inside it, their paths made relative to it, as the agent
/// does. `quiet`: say nothing on stderr (top's screen).
pub fn recent(
    proc_root: &Path,
    directory: &Directory,
    since: SystemTime,
    subtree: Option<&str>,
    quiet: bool,
) -> anyhow::Result<Vec<(OomReport, Option<i64>)>> {
    let clock = Clock::of_this_boot(proc_root);
    let mut kmsg = Kmsg::open(Path::new(reader::DEV_KMSG), Start::Beginning)?;
    let mut kills = kmsg.drain()?;
    kills.extend(kmsg.assembler.finish());
    if !quiet {
        kmsg.warn();
    }
    let kills = kills
        .into_iter()
        .filter_map(|kill| match subtree {
            Some(subtree) => kill.within(subtree),
            None => Some(kill),
        })
        .collect();
    Ok(explain(kills, directory, &clock, Some(since))
        .into_iter()
        .map(|(report, time)| {
            let unix = time
                .wall
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok());
            (report, unix)
        })
        .collect())
}

/// Stream kills as they are logged (history first when --since reaches back).
fn follow(
    sources: &SourceArgs,
    directory: &Directory,
    args: &OomArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let clock = Clock::of_this_boot(&sources.proc_root);
    let start = if args.since.is_some() {
        Start::Beginning
    } else {
        Start::End
    };
    let mut kmsg = Kmsg::open(&args.kmsg, start)?;
    let mut quiet_since = Instant::now();
    loop {
        let mut kills = kmsg.drain()?;
        if kills.is_empty() && quiet_since.elapsed() >= QUIET {
            kills.extend(kmsg.assembler.flush_completed());
        }
        if kmsg.had_records {
            quiet_since = Instant::now();
        }
        kmsg.warn();
        for (report, time) in explain(kills, directory, &clock, args.since) {
            if args.json {
                render::write_json_line(out, &report, &time)?;
            } else {
                render::write_event(out, &report, &time)?;
            }
            out.flush()?;
        }
        std::thread::sleep(POLL);
    }
}

/// /dev/kmsg with the assembler fed from it and what went wrong along the way.
struct Kmsg {
    reader: KmsgReader,
    assembler: OomAssembler,
    overruns: usize,
    malformed: usize,
    had_records: bool,
}

impl Kmsg {
    fn open(path: &Path, start: Start) -> anyhow::Result<Kmsg> {
        let reader = KmsgReader::open(path, start).with_context(|| {
            "cannot read the kernel log (it needs root, or CAP_SYSLOG when kernel.dmesg_restrict is 1)"
        })?;
        Ok(Kmsg {
            reader,
            assembler: OomAssembler::new(),
            overruns: 0,
            malformed: 0,
            had_records: false,
        })
    }

    /// Read every record waiting; the kills they completed.
    fn drain(&mut self) -> anyhow::Result<Vec<OomKill>> {
        let mut kills = Vec::new();
        self.had_records = false;
        loop {
            match self.reader.read_next()? {
                Next::Record(record) => {
                    self.had_records = true;
                    kills.extend(record.lines().filter_map(|line| self.assembler.push(&line)));
                }
                Next::Overrun => self.overruns += 1,
                Next::Malformed(_) => self.malformed += 1,
                Next::Empty => return Ok(kills),
            }
        }
    }

    /// Say once what the log lost (stderr: stdout may be JSON).
    fn warn(&mut self) {
        if self.overruns > 0 {
            eprintln!(
                "memglass: warning: the kernel overwrote log records before they were read \
                 ({} time(s)); reports in the gap are lost, the counters still count them",
                self.overruns
            );
        }
        if self.malformed > 0 {
            eprintln!(
                "memglass: warning: {} kernel log record(s) could not be parsed",
                self.malformed
            );
        }
        self.overruns = 0;
        self.malformed = 0;
    }
}

/// When this boot started, to put wall-clock times on printk timestamps.
struct Clock {
    boot: Option<SystemTime>,
}

impl Clock {
    fn of_this_boot(proc_root: &Path) -> Clock {
        let now = SystemTime::now();
        let boot = reader::read_uptime(proc_root, &mut Vec::new())
            .ok()
            .and_then(|uptime| now.checked_sub(uptime));
        Clock { boot }
    }

    fn time_of(&self, time: &LogTime) -> EventTime {
        let uptime = time.boot_usec.map(Duration::from_micros);
        if let Some(wall) = time.wall {
            let at = u64::try_from(wall.unix_usec)
                .ok()
                .and_then(|usec| UNIX_EPOCH.checked_add(Duration::from_micros(usec)));
            return EventTime {
                wall: at,
                zone_known: wall.utc_offset_secs.is_some(),
                uptime,
            };
        }
        EventTime {
            wall: self
                .boot
                .zip(uptime)
                .and_then(|(boot, up)| boot.checked_add(up)),
            zone_known: true,
            uptime,
        }
    }
}

/// Explain kills and keep those at or after `since` (a kill of unknown time is kept only
/// when no --since was given).
fn explain(
    kills: Vec<OomKill>,
    directory: &Directory,
    clock: &Clock,
    since: Option<SystemTime>,
) -> Vec<(OomReport, EventTime)> {
    let mut undated = 0;
    let events: Vec<(OomReport, EventTime)> = kills
        .into_iter()
        .map(|kill| {
            let time = clock.time_of(&kill.time);
            (explain_oom(kill, directory), time)
        })
        .filter(|(_, time)| match since {
            None => true,
            Some(_) if time.wall.is_none() => {
                undated += 1;
                false
            }
            Some(since) => time.is_since(since),
        })
        .collect();
    if undated > 0 {
        eprintln!(
            "memglass: warning: {undated} kill(s) left out by --since: their log has no wall-clock time (use dmesg -T or the journal)"
        );
    }
    events
}

/// The node's and each cgroup's kill counters (this machine, this boot).
fn counters(sources: &SourceArgs, reports: &[(OomReport, EventTime)]) -> Option<Counters> {
    let roots = Roots {
        proc: sources.proc_root.clone(),
        cgroup: sources.cgroup_root.clone(),
    };
    let sample = match memglass_kernel::collect(&roots) {
        Ok(sample) => sample,
        Err(error) => {
            eprintln!("memglass: warning: kill counters unavailable: {error:#}");
            return None;
        }
    };
    let identities: Vec<_> = sample
        .cgroups
        .iter()
        .map(|cgroup| memglass_identify::identify(&cgroup.path))
        .collect();
    // Counters need no names: an empty directory spares a second runtime query.
    let snapshot = memglass_analyse::snapshot(&sample, &identities, &Directory::new());
    let reports: Vec<OomReport> = reports.iter().map(|(r, _)| r.clone()).collect();
    let check: CounterCheck = check_counters(
        &reports,
        snapshot.node.oom_kill,
        snapshot.cgroups.iter().map(|c| CgroupKills {
            path: &c.path,
            oom_kill: c.events.oom_kill,
            oom_kill_local: c.events_local.and_then(|e| e.oom_kill),
            oom: c.events.oom,
        }),
    );
    Some(Counters {
        check,
        cgroup_version: snapshot.cgroup_version,
    })
}

fn write(
    out: &mut impl Write,
    args: &OomArgs,
    events: &[(OomReport, EventTime)],
    counters: Option<&Counters>,
    source: &str,
) -> anyhow::Result<()> {
    if args.json {
        render::write_json(out, events)?;
        if let Some(counters) = counters {
            let missing = counters.check.missing_from_log();
            if missing > 0 {
                eprintln!("memglass: note: {}", render::missing_sentence(counters));
            }
        }
    } else {
        render::write_table(out, events, counters, source, args.since.is_some())?;
    }
    Ok(())
}
