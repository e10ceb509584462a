//! The agent's kernel-log follower: /dev/kmsg → OOM reports (memglass-kernel's reader and
//! assembler) → explained kills (memglass-analyse) → the agent's `KernelOom` seam.
//!
//! It resumes after the last report whose event was stored (boot id + sequence number,
//! kept in the history's `meta` table), so a restart neither loses nor repeats a kill
//! still in the ring buffer; on a new boot it starts from the ring buffer's beginning.
//!
//! When the ring buffer overruns (the kernel overwrote records before they were read:
//! EPIPE), reading goes on after the gap and the loss is counted (overruns, and the records
//! skipped, from the gap in sequence numbers); the kills whose reports went with it are
//! still counted from the cgroup counters (memglass-agent's `CounterWatch::reconcile`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use memglass_agent::collector::KmsgLosses;
use memglass_agent::oom::KernelOom;
use memglass_analyse::oom::explain_oom;
use memglass_identify::Directory;
use memglass_kernel::kmsg::reader::{self, KmsgReader, Next, Start, DEV_KMSG};
use memglass_kernel::kmsg::{OomAssembler, OomKill};

/// A report whose last line is older than this is complete even without a closing line.
const QUIET: Duration = Duration::from_secs(1);

/// At most this many records per drain: a log written faster than it is read must not hold
/// the collection up; the rest is read at the next one (or overrun, and counted).
const MAX_RECORDS_PER_DRAIN: usize = 100_000;

pub struct KernelLog {
    reader: KmsgReader,
    assembler: OomAssembler,
    boot_id: String,
    /// Kills at or before this sequence number were stored by an earlier run.
    skip_through: Option<u64>,
    /// printk time (µs since boot) of the newest record read.
    newest_usec: u64,
    /// Boot time on the wall clock (for event times).
    boot: Option<SystemTime>,
    /// Sequence number of the newest record read.
    last_seq: Option<u64>,
    /// What was lost since the last [`KernelLog::take_losses`].
    losses: KmsgLosses,
    /// The live subtree this agent's root is (`--cgroup-root`): only kills inside it are
    /// its own, with paths relative to it.
    subtree: Option<String>,
}

impl KernelLog {
    /// Open /dev/kmsg; `resume` is what an earlier run stored ("<boot id> <seq>");
    /// `subtree`: the kernel path of the agent's root when it is a subtree.
    pub fn open(
        proc_root: &Path,
        resume: Option<&str>,
        subtree: Option<&str>,
    ) -> Result<KernelLog, String> {
        let reader = KmsgReader::open(Path::new(DEV_KMSG), Start::Beginning).map_err(|e| {
            format!(
                "{e} (the kernel log needs root, or CAP_SYSLOG when kernel.dmesg_restrict is 1)"
            )
        })?;
        let boot_id = std::fs::read_to_string(proc_root.join("sys/kernel/random/boot_id"))
            .map(|id| id.trim().to_owned())
            .unwrap_or_default();
        let skip_through = resume
            .and_then(|r| r.split_once(' '))
            .filter(|(boot, _)| *boot == boot_id)
            .and_then(|(_, seq)| seq.parse().ok());
        let boot = reader::read_uptime(proc_root, &mut Vec::new())
            .ok()
            .and_then(|uptime| SystemTime::now().checked_sub(uptime));
        Ok(KernelLog {
            reader,
            assembler: OomAssembler::new(),
            boot_id,
            skip_through,
            newest_usec: 0,
            boot,
            last_seq: None,
            losses: KmsgLosses::default(),
            subtree: subtree.map(str::to_owned),
        })
    }

    /// Every kill completed since the last call, explained.
    pub fn drain(&mut self, directory: &Directory) -> Vec<KernelOom> {
        let mut kills = Vec::new();
        for _ in 0..MAX_RECORDS_PER_DRAIN {
            match self.reader.read_next() {
                Ok(Next::Record(record)) => {
                    self.newest_usec = record.usec;
                    // Records are numbered without gaps: a jump is what an overrun skipped.
                    if let Some(last) = self.last_seq {
                        let skipped = record.seq.saturating_sub(last.saturating_add(1));
                        self.losses.records = self.losses.records.saturating_add(skipped);
                    }
                    self.last_seq = Some(record.seq);
                    kills.extend(record.lines().filter_map(|line| self.assembler.push(&line)));
                }
                Ok(Next::Overrun) => self.losses.overruns += 1,
                Ok(Next::Malformed(_)) => {}
                Ok(Next::Empty) | Err(_) => break,
            }
        }
        let now_usec = self
            .boot
            .and_then(|boot| boot.elapsed().ok())
            .map_or(u64::MAX, |up| {
                u64::try_from(up.as_micros()).unwrap_or(u64::MAX)
            });
        let quiet = |usec: u64| now_usec.saturating_sub(usec) >= QUIET.as_micros() as u64;
        // A report with its kill is complete once its own last line is old enough, also
        // while other messages keep coming (a flooded log).
        let report_done = self
            .assembler
            .completed_at()
            .is_some_and(|t| t.boot_usec.is_none_or(quiet));
        if report_done || quiet(self.newest_usec) {
            kills.extend(self.assembler.flush_completed());
        }
        kills
            .into_iter()
            .filter(|kill| match (kill.seq, self.skip_through) {
                (Some(seq), Some(done)) => seq > done,
                _ => true,
            })
            .filter_map(|kill| match &self.subtree {
                Some(subtree) => kill.within(subtree),
                None => Some(kill),
            })
            .map(|kill| self.convert(kill, directory))
            .collect()
    }

    /// Overruns and records lost since the last call.
    pub fn take_losses(&mut self) -> KmsgLosses {
        std::mem::take(&mut self.losses)
    }

    fn convert(&self, kill: OomKill, directory: &Directory) -> KernelOom {
        let time = kill
            .time
            .boot_usec
            .zip(self.boot)
            .and_then(|(usec, boot)| boot.checked_add(Duration::from_micros(usec)))
            .unwrap_or_else(SystemTime::now);
        let resume = kill.seq.map(|seq| format!("{} {seq}", self.boot_id));
        let report = explain_oom(kill, directory);
        let victim = &report.kill.victim;
        KernelOom {
            time: memglass_agent::shared::unix_seconds(time),
            pid: Some(victim.pid),
            comm: victim.comm.clone(),
            constraint: report
                .kill
                .constraint
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            oom_memcg: report.kill.oom_memcg.clone(),
            task_memcg: report.kill.task_memcg.clone(),
            anon_rss: victim.anon_rss,
            file_rss: victim.file_rss,
            shmem_rss: victim.shmem_rss,
            scope: serde_name(&report.scope),
            cause: report.dominant.as_ref().and_then(serde_name),
            limit: report.limit_hit.as_ref().map(|l| l.limit),
            peak: report.limit_hit.as_ref().map(|l| l.usage),
            names: (report.namespace, report.pod, report.container),
            resume,
        }
    }
}

/// The serialized (lower-case) name of an analysis enum: the same word the CLI prints.
fn serde_name<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}
