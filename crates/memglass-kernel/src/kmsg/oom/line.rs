//! The shapes of the lines an OOM report is made of, one parser each (mm/oom_kill.c,
//! mm/memcontrol.c). Each returns `None` for a line of another shape; none panics.
//!
//! Sizes the kernel prints in kB (or `KB`) are converted to bytes here.

use crate::cgroup::{KeyedValues, Limit};
use crate::kmsg::oom::{Reaped, Selected, TaskRow, Trigger, UsageCounter, Victim};

/// `<comm> invoked oom-killer: gfp_mask=0x…(…), [nodemask=…, ]order=N, oom_score_adj=N`.
pub fn trigger(text: &str) -> Option<Trigger> {
    let (comm, fields) = text.split_once(" invoked oom-killer:")?;
    let mut trigger = Trigger {
        comm: comm.trim().to_owned(),
        pid: None,
        gfp_mask: None,
        order: None,
        oom_score_adj: None,
    };
    for field in fields.split(", ") {
        match field.trim().split_once('=') {
            Some(("gfp_mask", value)) => trigger.gfp_mask = Some(value.to_owned()),
            Some(("order", value)) => trigger.order = value.parse().ok(),
            Some(("oom_score_adj", value)) => trigger.oom_score_adj = value.parse().ok(),
            _ => {}
        }
    }
    Some(trigger)
}

/// The PID in `CPU: 1 [UID: 0 ]PID: 198 Comm: head …` (2.6.32: `Pid: 1743, comm: sshd`).
pub fn cpu_line_pid(text: &str) -> Option<u32> {
    let rest = text
        .strip_prefix("CPU: ")
        .and_then(|rest| rest.split_once(" PID: ").map(|(_, pid)| pid))
        .or_else(|| text.strip_prefix("Pid: "))?;
    leading_number(rest)
}

/// `memory: usage 16384kB, limit 16384kB, failcnt 19` (also `memory+swap:`, `kmem:`, `swap:`).
pub fn usage_counter(text: &str) -> Option<UsageCounter> {
    let (name, rest) = text.split_once(": usage ")?;
    if !matches!(
        name,
        "memory" | "memory+swap" | "kmem" | "swap" | "kmem.tcp"
    ) {
        return None;
    }
    let mut parts = rest.split(", ");
    let usage = kib(parts.next()?)?;
    let limit = kib(parts.next()?.strip_prefix("limit ")?)?;
    let failcnt = parts
        .next()?
        .strip_prefix("failcnt ")?
        .trim()
        .parse()
        .ok()?;
    Some(UsageCounter {
        name: name.to_owned(),
        usage,
        limit: Limit::from_v1(limit),
        failcnt,
    })
}

/// `Memory cgroup stats for PATH:` (multi-line memory.stat follows, bytes) or, before 5.3,
/// `Memory cgroup stats for PATH: cache:0KB rss:980KB …` (one line, local to PATH).
pub fn stats_header(text: &str) -> Option<(String, Option<KeyedValues>)> {
    let rest = text.strip_prefix("Memory cgroup stats for ")?;
    if let Some(path) = rest.trim_end().strip_suffix(':') {
        return Some((path.to_owned(), None));
    }
    let (path, values) = rest.split_once(": ")?;
    let mut entries = Vec::new();
    for token in values.split_whitespace() {
        if let Some((key, value)) = token.split_once(':') {
            if let Some(bytes) = kib(value).or_else(|| value.parse().ok()) {
                entries.push((key, bytes));
            }
        }
    }
    Some((path.to_owned(), Some(KeyedValues::from_entries(entries))))
}

/// `anon 33202176`: one line of a multi-line memory.stat dump.
pub fn stat_line(text: &str) -> Option<(&str, u64)> {
    let (key, value) = text.trim().split_once(' ')?;
    let plausible_key = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plausible_key.then_some(())?;
    Some((key, value.trim().parse().ok()?))
}

/// `active_anon:737874 inactive_anon:188536 isolated_anon:0`: the Mem-Info summary, in pages.
pub fn page_counts(text: &str) -> Option<Vec<(&str, u64)>> {
    let entries: Vec<(&str, u64)> = text
        .split_whitespace()
        .map(|token| {
            let (key, value) = token.split_once(':')?;
            Some((key, value.parse().ok()?))
        })
        .collect::<Option<_>>()?;
    (!entries.is_empty()).then_some(entries)
}

/// `Node 0 active_anon:968kB inactive_anon:32280kB …` (4.8+): the node's LRU sizes in bytes.
pub fn node_line(text: &str) -> Option<Vec<(&str, u64)>> {
    let mut words = text.split_whitespace();
    (words.next()? == "Node").then_some(())?;
    words.next()?.parse::<u32>().ok()?;
    let rest: Vec<&str> = words.collect();
    rest.first()?.starts_with("active_anon:").then_some(())?;
    let entries: Vec<(&str, u64)> = rest
        .iter()
        .filter_map(|token| {
            let (key, value) = token.split_once(':')?;
            Some((key, kib(value)?))
        })
        .collect();
    Some(entries)
}

/// `Node 0 DMA32 free:44592kB min:… active_anon:1615456kB …` (or `DMA free:…` on 6.x):
/// one memory zone's counters in bytes.
pub fn zone_line(text: &str) -> Option<Vec<(&str, u64)>> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let free_at = words.iter().take(4).position(|w| w.starts_with("free:"))?;
    let entries: Vec<(&str, u64)> = words[free_at..]
        .iter()
        .filter_map(|token| {
            let (key, value) = token.split_once(':')?;
            Some((key, kib(value)?))
        })
        .collect();
    (!entries.is_empty()).then_some(entries)
}

/// The task table header, as column names after `pid` (`uid tgid total_vm rss …`); the
/// columns changed in 3.x, 4.15 (pgtables_bytes) and 6.8 (rss_anon, rss_file, rss_shmem).
pub fn task_header(text: &str) -> Option<Vec<String>> {
    let cleaned = text.replace(['[', ']'], " ");
    let mut words = cleaned.split_whitespace();
    (words.next()? == "pid").then_some(())?;
    let columns: Vec<String> = words.map(str::to_owned).collect();
    (columns.first()? == "uid" && columns.last()? == "name").then_some(())?;
    Some(columns[..columns.len() - 1].to_vec())
}

/// `[  11298]     0 11298    17142     4537 … memglass-worklo` under `columns`.
pub fn task_row(text: &str, columns: &[String]) -> Option<TaskRow> {
    let (pid, rest) = text.strip_prefix('[')?.split_once(']')?;
    let pid = pid.trim().parse().ok()?;
    let (values, name) = split_words(rest, columns.len())?;
    let mut row = TaskRow {
        pid,
        uid: None,
        tgid: None,
        total_vm_pages: None,
        rss_pages: None,
        rss_anon_pages: None,
        rss_file_pages: None,
        rss_shmem_pages: None,
        pgtables_bytes: None,
        swapents_pages: None,
        oom_score_adj: None,
        name: name.to_owned(),
    };
    for (column, value) in columns.iter().zip(values) {
        let number = value.parse::<u64>().ok();
        match column.as_str() {
            "uid" => row.uid = value.parse().ok(),
            "tgid" => row.tgid = value.parse().ok(),
            "total_vm" => row.total_vm_pages = number,
            "rss" => row.rss_pages = number,
            "rss_anon" => row.rss_anon_pages = number,
            "rss_file" => row.rss_file_pages = number,
            "rss_shmem" => row.rss_shmem_pages = number,
            "pgtables_bytes" => row.pgtables_bytes = number,
            "swapents" => row.swapents_pages = number,
            "oom_score_adj" => row.oom_score_adj = value.parse().ok(),
            _ => {}
        }
    }
    Some(row)
}

/// `[MESSAGE: ]Killed process PID (COMM) total-vm:…kB, anon-rss:…kB, file-rss:…kB[,
/// shmem-rss:…kB][, UID:N pgtables:…kB oom_score_adj:N]`; RHEL 7 writes `(COMM), UID N,`
/// and 2.6.32 `PID, UID N, (COMM)`. Returns the message before it (`Memory cgroup out of
/// memory`, `Out of memory`…) and the victim.
pub fn killed(text: &str) -> Option<(&str, Victim)> {
    let (message, rest) = text.split_once("Killed process ")?;
    let pid = leading_number(rest)?;
    let (comm, fields) = comm_in_parens(rest, &["total-vm:", ", UID"]);
    let mut victim = Victim {
        pid,
        comm,
        uid: None,
        total_vm: field_kib(fields, "total-vm:"),
        anon_rss: field_kib(fields, "anon-rss:"),
        file_rss: field_kib(fields, "file-rss:"),
        shmem_rss: field_kib(fields, "shmem-rss:"),
        pgtables: field_kib(fields, "pgtables:"),
        oom_score_adj: field(fields, "oom_score_adj:").and_then(|v| v.parse().ok()),
    };
    victim.uid = field(fields, "UID:")
        .or_else(|| field(rest, "UID "))
        .and_then(leading_number);
    Some((message.trim_end_matches([':', ' ']), victim))
}

/// `[MESSAGE: ]Kill process PID (COMM) score N or sacrifice child` (before 5.0): the task
/// the killer chose; it may then kill one of its children instead.
pub fn selected(text: &str) -> Option<(&str, Selected)> {
    let (message, rest) = text
        .split_once("Kill process ")
        .or_else(|| text.split_once("kill process "))?;
    if rest.contains("sharing same memory") {
        return None;
    }
    let pid = leading_number(rest)?;
    let (comm, after) = comm_in_parens(rest, &[" score "]);
    let score = after
        .strip_prefix(" score ")
        .or_else(|| after.split_once("score ").map(|(_, s)| s))
        .and_then(leading_number);
    Some((
        message.trim_end_matches([':', ' ']),
        Selected { pid, comm, score },
    ))
}

/// `oom_reaper: reaped process PID (COMM), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB`.
pub fn reaped(text: &str) -> Option<(u32, Reaped)> {
    let rest = text.split_once("oom_reaper: reaped process ")?.1;
    let pid = leading_number(rest)?;
    let fields = rest.split_once(", now ").map_or(rest, |(_, f)| f);
    Some((
        pid,
        Reaped {
            anon_rss: field_kib(fields, "anon-rss:"),
            file_rss: field_kib(fields, "file-rss:"),
            shmem_rss: field_kib(fields, "shmem-rss:"),
        },
    ))
}

/// `Tasks in PATH are going to be killed due to memory.oom.group set` (4.19+).
pub fn oom_group(text: &str) -> Option<&str> {
    text.strip_prefix("Tasks in ")?
        .strip_suffix(" are going to be killed due to memory.oom.group set")
}

/// `Task in X killed as a result of limit of Y` (before 4.19): (task memcg, OOM memcg).
pub fn task_in(text: &str) -> Option<(&str, &str)> {
    text.strip_prefix("Task in ")?
        .split_once(" killed as a result of limit of ")
}

/// The fields of `oom-kill:constraint=…,nodemask=…,cpuset=…,mems_allowed=…,
/// oom_memcg=…|global_oom,task_memcg=…,task=…,pid=…,uid=…` (4.19+), in any subset: values
/// are cut at the next known key, so a partial or reordered line still gives what it has.
pub fn summary(text: &str) -> Option<Vec<(&'static str, &str)>> {
    let body = text.strip_prefix("oom-kill:")?;
    const KEYS: [&str; 10] = [
        "constraint=",
        ",nodemask=",
        ",cpuset=",
        ",mems_allowed=",
        ",oom_memcg=",
        ",global_oom",
        ",task_memcg=",
        ",task=",
        ",pid=",
        ",uid=",
    ];
    let mut found: Vec<(usize, &'static str)> = KEYS
        .iter()
        .filter_map(|key| body.find(key).map(|at| (at, *key)))
        .collect();
    found.sort_unstable();
    let mut fields = Vec::with_capacity(found.len());
    for (i, &(at, key)) in found.iter().enumerate() {
        let end = found.get(i + 1).map_or(body.len(), |&(next, _)| next);
        let value = body
            .get(at + key.len()..end.max(at + key.len()))
            .unwrap_or("");
        fields.push((key.trim_start_matches(',').trim_end_matches('='), value));
    }
    Some(fields)
}

/// `N` at the start of `text`.
pub fn leading_number<T: std::str::FromStr>(text: &str) -> Option<T> {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// `123kB`/`123KB` → bytes.
fn kib(text: &str) -> Option<u64> {
    let digits = text
        .trim()
        .strip_suffix("kB")
        .or_else(|| text.trim().strip_suffix("KB"))?;
    digits.parse::<u64>().ok().map(|k| k.saturating_mul(1024))
}

/// The text after `key` up to the next separator.
fn field<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let value = text.split_once(key)?.1;
    let end = value.find([',', ' ']).unwrap_or(value.len());
    Some(&value[..end])
}

fn field_kib(text: &str, key: &str) -> Option<u64> {
    kib(field(text, key)?)
}

/// The command name between the first `(` and the last `)` before the first of
/// `followers` (comm may itself hold spaces and parentheses); the text after it.
fn comm_in_parens<'t>(text: &'t str, followers: &[&str]) -> (Option<String>, &'t str) {
    let Some(open) = text.find('(') else {
        return (None, text);
    };
    let bound = followers
        .iter()
        .filter_map(|f| text[open..].find(f).map(|at| open + at))
        .min()
        .unwrap_or(text.len());
    match text[open..bound].rfind(')') {
        Some(close) => (
            Some(text[open + 1..open + close].to_owned()),
            &text[open + close + 1..],
        ),
        None => (None, text),
    }
}

/// The first `n` whitespace-separated words of `text` and the rest (spaces kept inside).
fn split_words(text: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut words = Vec::with_capacity(n);
    let mut rest = text;
    for _ in 0..n {
        let trimmed = rest.trim_start();
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        if end == 0 {
            return None;
        }
        words.push(&trimmed[..end]);
        rest = &trimmed[end..];
    }
    Some((words, rest.trim()))
}
