//! Property tests of the kernel-log parsers (PRODUCT.md §7: parsers are fuzzed): arbitrary
//! bytes, truncated and mangled corpus reports, and arbitrary interleavings of corpus lines
//! never panic, and every event they give names a victim.
//!
//! Case counts are modest so the suite stays within a few seconds in debug builds; raise
//! them with `PROPTEST_CASES=10000 cargo test -p memglass-kernel --test kmsg_fuzz`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::sync::OnceLock;

use memglass_kernel::kmsg::oom::{parse_lines, OomAssembler};
use memglass_kernel::kmsg::record::KmsgRecord;
use memglass_kernel::kmsg::{saved, LogLine};
use proptest::prelude::*;

/// Every line of every corpus report and recorded kmsg file.
fn corpus_lines() -> &'static [String] {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut files: Vec<_> = std::fs::read_dir(root.join("oom"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        for host in std::fs::read_dir(root.join("hosts")).unwrap() {
            let kmsg = host.unwrap().path().join("dev/kmsg.txt");
            if kmsg.exists() {
                files.push(kmsg);
            }
        }
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.starts_with("# "))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

/// Parse saved text and assemble it, checking what must hold of any output.
fn assemble(text: &str) {
    let lines = saved::parse(text, 2024);
    let kills = parse_lines(&lines);
    let kill_lines = lines
        .iter()
        .filter(|l| {
            let t = &l.text;
            t.contains("illed process ") || t.contains("ill process ") || t.contains("oom-kill:")
        })
        .count();
    assert!(
        kills.len() <= kill_lines,
        "{} events from {kill_lines} kill lines",
        kills.len()
    );
    for kill in &kills {
        assert!(kill.group_kills.iter().all(|v| v.pid != kill.victim.pid));
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_as_a_record(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(record) = KmsgRecord::parse(&bytes) {
            let lines: Vec<LogLine> = record.lines().collect();
            let _ = parse_lines(&lines);
        }
    }

    #[test]
    fn arbitrary_text_as_a_saved_log(text in "\\PC{0,400}") {
        assemble(&text);
    }

    #[test]
    fn arbitrary_text_with_report_words(
        words in proptest::collection::vec(
            prop_oneof![
                Just("invoked oom-killer: gfp_mask=0xcc0, order=0".to_owned()),
                Just("Killed process ".to_owned()),
                Just("Kill process 1 (".to_owned()),
                Just("oom-kill:constraint=CONSTRAINT_MEMCG,pid=".to_owned()),
                Just("Memory cgroup stats for /a:".to_owned()),
                Just("Tasks state (memory values in pages):".to_owned()),
                Just("[  pid  ]   uid  tgid total_vm      rss name".to_owned()),
                Just("memory: usage 1kB, limit ".to_owned()),
                Just("oom_reaper: reaped process ".to_owned()),
                Just("Tasks in /x are going to be killed due to memory.oom.group set".to_owned()),
                Just("Mem-Info:".to_owned()),
                Just("\n".to_owned()),
                "[0-9]{1,20}",
                "[ (),:=kB\\[\\]a-z_/#]{0,12}",
                "\\PC{0,8}",
            ],
            0..60,
        )
    ) {
        assemble(&words.concat());
    }

    #[test]
    fn corpus_lines_in_any_order(picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..300)) {
        let corpus = corpus_lines();
        let text: String = picks.iter().map(|i| format!("{}\n", i.get(corpus))).collect();
        assemble(&text);
    }

    #[test]
    fn corpus_lines_truncated_anywhere(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..400), 1..200)
    ) {
        let corpus = corpus_lines();
        let text: String = picks
            .iter()
            .map(|(i, cut)| {
                let line = i.get(corpus);
                let cut = (0..=*cut.min(&line.len())).rev().find(|&c| line.is_char_boundary(c)).unwrap_or(0);
                format!("{}\n", &line[..cut])
            })
            .collect();
        assemble(&text);
    }

    #[test]
    fn corpus_lines_with_a_byte_changed(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..100)
    ) {
        let corpus = corpus_lines();
        let mut assembler = OomAssembler::new();
        for (line, at, byte) in &picks {
            let mut bytes = line.get(corpus).clone().into_bytes();
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            for parsed in saved::parse(&text, 2024) {
                let _ = assembler.push(&parsed);
            }
            let _ = assembler.flush_completed();
        }
        let _ = assembler.finish();
    }
}
