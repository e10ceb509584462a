//! The kernel log: /dev/kmsg records, saved logs (dmesg, journal, syslog), OOM reports.

use memglass_kernel::kmsg::oom::{parse_lines, OomAssembler};
use memglass_kernel::kmsg::{saved, KmsgRecord, LogLine};

use super::text;
use crate::seeds::{lines_of, Fixtures};
use crate::Target;

/// Words of OOM reports across kernel versions (3.10 to 6.x).
const REPORT_WORDS: &[&str] = &[
    "invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "Memory cgroup out of memory: Killed process ",
    "Out of memory: Kill process 1 (",
    "Killed process 1234 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:0",
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=x,pid=1,uid=0",
    "Memory cgroup stats for /kubepods.slice:",
    "Tasks state (memory values in pages):",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    "[   1234]     0  1234     1000      500    65536        0             0 x",
    "memory: usage 1048576kB, limit 1048576kB, failcnt 10",
    "memory+swap: usage 1kB, limit 9007199254740988kB, failcnt 0",
    "kmem: usage 1kB, limit 9007199254740988kB, failcnt 0",
    "oom_reaper: reaped process 1234 (x), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    "Tasks in /x are going to be killed due to memory.oom.group set",
    "Task in /a killed as a result of limit of /a",
    "Mem-Info:",
    "active_anon:1 inactive_anon:2 isolated_anon:0",
    "Node 0 active_anon:4kB inactive_anon:8kB",
    "Node 0 DMA32 free:1kB min:2kB low:3kB high:4kB",
    "CPU: 0 PID: 1 Comm: x Not tainted 6.1.0 #1",
    "Out of memory and no killable processes...",
    "anon 33234944",
    "cpuset=/ mems_allowed=0",
    "kB", "(", ")", ":", ",", "=", "[", "]", "pid=", "oom_memcg=", "task_memcg=",
];

/// One /dev/kmsg record, as read().
pub static KMSG_RECORD: Target = Target {
    name: "kmsg-record",
    about: "/dev/kmsg records: KmsgRecord::parse, lines(), OOM assembly",
    seeds: |f: &Fixtures| {
        let mut seeds = lines_of(&f.kmsg());
        seeds.push(
            b"14,1000,12345,+,extra;usb 1-1: new device\n SUBSYSTEM=usb\n DEVICE=c189:1\n".to_vec(),
        );
        seeds.push(b"6,439,5574380,-;anon 33234944\\x0afile 0\\x0aback\\x5cslash".to_vec());
        seeds
    },
    tokens: &[
        ";",
        ",",
        "-",
        "+",
        "c",
        "\\x0a",
        "\\x5c",
        "\\x",
        "\\xff",
        "\\xc3",
        " SUBSYSTEM=",
        " DEVICE=",
        "\n ",
        "invoked oom-killer:",
        "Killed process ",
    ],
    mutate: None,
    run: |input| {
        if let Ok(record) = KmsgRecord::parse(input) {
            let lines: Vec<LogLine> = record.lines().collect();
            std::hint::black_box(parse_lines(&lines));
        }
    },
};

/// Saved kernel logs: dmesg, dmesg -T, journalctl -k, syslog, kern.log.
pub static SAVED_LOG: Target = Target {
    name: "saved-log",
    about: "saved dmesg/journal/syslog text: saved::parse, then parse_lines (--from-file)",
    seeds: |f: &Fixtures| {
        let mut seeds = f.oom_logs();
        seeds.extend(f.kmsg());
        seeds
    },
    tokens: &[
        "[  620.099291] ",
        "[Mon Nov 25 07:50:37 2024] ",
        "<4>",
        "kern  :warn  : ",
        "Nov 25 07:50:37 host kernel: ",
        "Dec 31 23:59:59 host kernel: ",
        "Jan  1 00:00:00 h kernel: ",
        "2024-11-25T07:50:37.123456+00:00 host kernel: ",
        "2024-02-30T25:61:61Z h kernel: ",
        "+99:99",
        "-0000",
        "Z",
        "[  386.5][  T709] ",
        "#012",
        " kernel: ",
        "4,420,620099291,-;",
        "invoked oom-killer:",
        "Killed process 1 (x)",
    ],
    mutate: None,
    run: |input| {
        let lines = saved::parse(&text(input), 2024);
        std::hint::black_box(parse_lines(&lines));
    },
};

/// OOM report lines, without any log prefix, fed line by line as `memglass oom --follow`
/// does (the assembler flushed after each line).
pub static OOM_REPORT: Target = Target {
    name: "oom-report",
    about: "OOM report lines: OomAssembler::push/flush_completed/finish, parse_lines",
    seeds: |f: &Fixtures| {
        let mut seeds: Vec<Vec<u8>> = f
            .oom_logs()
            .iter()
            .chain(f.kmsg().iter())
            .map(|log| {
                let lines = saved::parse(&String::from_utf8_lossy(log), 2024);
                let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
                texts.join("\n").into_bytes()
            })
            .collect();
        seeds.push(REPORT_WORDS.join("\n").into_bytes());
        seeds
    },
    tokens: REPORT_WORDS,
    mutate: None,
    run: |input| {
        let text = text(input);
        let lines: Vec<LogLine> = text.lines().map(LogLine::plain).collect();
        let mut assembler = OomAssembler::new();
        let mut kills = Vec::new();
        for line in &lines {
            kills.extend(assembler.push(line));
            kills.extend(assembler.flush_completed());
        }
        kills.extend(assembler.finish());
        std::hint::black_box((kills, parse_lines(&lines)));
    },
};
