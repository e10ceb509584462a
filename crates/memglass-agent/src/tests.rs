//! Store and OOM-detection tests on a host recorded from a real kernel (Debian 6.12,
//! cgroup v2, a kubepods tree with one real OOM kill; fixtures/hosts/README.md).

use std::path::PathBuf;

use memglass_analyse::Snapshot;

use crate::config::Retention;
use crate::oom::{CounterWatch, OomSource};
use crate::store::{Resolution, Store, Writer};

pub(crate) fn recorded() -> Snapshot {
    let host = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/hosts/v2-debian-6.12.95+deb12-amd64");
    let roots = memglass_kernel::Roots {
        proc: host.join("proc"),
        cgroup: Some(host.join("sys/fs/cgroup")),
    };
    let sample = memglass_kernel::collect(&roots).unwrap();
    let identities: Vec<_> = sample
        .cgroups
        .iter()
        .map(|c| memglass_identify::identify(&c.path))
        .collect();
    memglass_analyse::snapshot(&sample, &identities, &memglass_identify::Directory::new())
}

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memglass-agent-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("h.db")
}

#[test]
fn history_round_trip_downsampling_and_retention() {
    let snapshot = recorded();
    let db = temp_db("store");
    let mut writer = Writer::open(&db).unwrap();
    // Three minutes of collections every 10 s, starting on a minute boundary.
    for i in 0..18 {
        assert_eq!(
            writer.write(6000 + i * 10, &snapshot).unwrap(),
            snapshot.cgroups.len()
        );
    }
    let reader = Store::open(&db).unwrap();
    let victim = snapshot
        .cgroups
        .iter()
        .find(|c| c.events_local.and_then(|e| e.oom_kill) == Some(1))
        .unwrap();
    let raw = reader
        .history(&victim.path, 0, 10_000, Resolution::Raw)
        .unwrap();
    assert_eq!(raw.len(), 18);
    let point = &raw[0];
    // Stored in KiB: within 512 bytes of the kernel's figures, working sets recomputed.
    let m = &victim.memory;
    assert!(point.anon.unwrap().abs_diff(m.anon.unwrap()) <= 512);
    assert!(point.usage.unwrap().abs_diff(m.usage.unwrap()) <= 512);
    assert!(point.working_set.unwrap().abs_diff(m.working_set.unwrap()) <= 1536);
    assert_eq!(point.oom_kill, Some(1));
    // The two completed minutes are averaged; the current one is not yet.
    let minutes = reader
        .history(&victim.path, 0, 10_000, Resolution::Minute)
        .unwrap();
    assert_eq!(
        minutes.iter().map(|p| p.t).collect::<Vec<_>>(),
        [6000, 6060]
    );
    assert_eq!(minutes[0].anon, point.anon);
    assert_eq!(
        reader
            .node_history(0, 10_000, Resolution::Raw)
            .unwrap()
            .len(),
        18
    );
    // Reopening finds its place (no second average of the same minute).
    drop(writer);
    let mut writer = Writer::open(&db).unwrap();
    writer.write(6180, &snapshot).unwrap();
    let minutes = reader
        .history(&victim.path, 0, 10_000, Resolution::Minute)
        .unwrap();
    assert_eq!(minutes.len(), 3);
    // Retention: raw kept 60 s, averages 120 s.
    let retention = Retention {
        raw: std::time::Duration::from_secs(60),
        minute: std::time::Duration::from_secs(120),
        oom: std::time::Duration::from_secs(3600),
    };
    writer.prune(6190, &retention).unwrap();
    let raw = reader
        .history(&victim.path, 0, 10_000, Resolution::Raw)
        .unwrap();
    assert!(
        raw.iter().all(|p| p.t >= 6130),
        "{:?}",
        raw.iter().map(|p| p.t).collect::<Vec<_>>()
    );
    let minutes = reader
        .history(&victim.path, 0, 10_000, Resolution::Minute)
        .unwrap();
    assert_eq!(minutes.iter().map(|p| p.t).collect::<Vec<_>>(), [6120]);
    reader.set_meta("k", "v1").unwrap();
    reader.set_meta("k", "v2").unwrap();
    assert_eq!(reader.meta("k").unwrap().as_deref(), Some("v2"));
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn counters_name_the_victim_and_the_limit_it_hit() {
    let after = recorded();
    let victim = after
        .cgroups
        .iter()
        .find(|c| c.events_local.and_then(|e| e.oom_kill) == Some(1))
        .unwrap()
        .clone();
    // The collection before the kill: one kill less in the victim and above it, and one
    // OOM less where the limit was hit (v2 counts `oom` where the limit is).
    let mut before = after.clone();
    let hit: Vec<String> = after
        .cgroups
        .iter()
        .filter(|c| c.events_local.and_then(|e| e.oom).unwrap_or(0) > 0)
        .map(|c| c.path.clone())
        .collect();
    for c in &mut before.cgroups {
        let above = victim.path.starts_with(&format!("{}/", c.path)) || c.path == "/";
        if c.path == victim.path || above {
            c.events.oom_kill = c.events.oom_kill.map(|k| k.saturating_sub(1));
        }
        if let Some(local) = &mut c.events_local {
            if c.path == victim.path {
                local.oom_kill = local.oom_kill.map(|k| k - 1);
            }
            if hit.contains(&c.path) {
                local.oom = local.oom.map(|k| k.saturating_sub(1));
            }
        }
    }
    before.node.oom_kill = after.node.oom_kill.map(|k| k - 1);
    let mut watch = CounterWatch::default();
    assert!(
        watch.observe(100, &before, None).is_empty(),
        "the first collection is a baseline"
    );
    let events = watch.observe(110, &after, Some(&before));
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.source, OomSource::CgroupCounters);
    assert_eq!(event.kills, 1);
    assert_eq!(event.cgroup.as_deref(), Some(victim.path.as_str()));
    assert_eq!(event.container_id, victim.container_id);
    assert_eq!(event.pod_uid, victim.pod_uid);
    let oom_memcg = event
        .oom_memcg
        .as_ref()
        .expect("the limit-hit cgroup is named");
    assert!(hit.contains(oom_memcg), "{oom_memcg} not among {hit:?}");
    assert_eq!(event.scope, crate::oom::scope_of(Some(oom_memcg)));
    // The limit and what filled it come from the collection before the kill.
    assert_eq!(event.limit, victim.memory.limit);
    // Nothing new: no event.
    assert!(watch.observe(120, &after, Some(&after)).is_empty());
}

/// The counters of the recorded kill, and the collection before it.
fn kill_and_before() -> (Snapshot, Snapshot, String) {
    let after = recorded();
    let victim = after
        .cgroups
        .iter()
        .find(|c| c.events_local.and_then(|e| e.oom_kill) == Some(1))
        .unwrap()
        .path
        .clone();
    let mut before = after.clone();
    for c in &mut before.cgroups {
        let above = victim.starts_with(&format!("{}/", c.path)) || c.path == "/";
        if c.path == victim || above {
            c.events.oom_kill = c.events.oom_kill.map(|k| k.saturating_sub(1));
        }
        if let Some(local) = &mut c.events_local {
            if c.path == victim {
                local.oom_kill = local.oom_kill.map(|k| k - 1);
            }
            local.oom = local.oom.map(|k| k.saturating_sub(1));
        }
    }
    before.node.oom_kill = after.node.oom_kill.map(|k| k - 1);
    (before, after, victim)
}

fn report(task_memcg: &str, time: i64) -> crate::oom::KernelOom {
    crate::oom::KernelOom {
        time,
        pid: Some(4242),
        comm: Some("victim".into()),
        task_memcg: Some(task_memcg.into()),
        ..Default::default()
    }
}

#[test]
fn with_the_kernel_log_a_reported_kill_is_counted_once() {
    let (before, after, victim) = kill_and_before();
    let mut watch = CounterWatch::default();
    assert!(watch.reconcile(100, &before, None, &[], 0).is_empty());
    // Read before the counters: the report and the count come in the same collection.
    let events = watch.reconcile(101, &after, Some(&before), &[report(&victim, 101)], 0);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source, OomSource::KernelLog);
    assert_eq!(events[0].kills, 1);
    // Or the count first and the report later (its last lines were still coming).
    let mut watch = CounterWatch::default();
    watch.reconcile(100, &before, None, &[], 0);
    assert!(watch
        .reconcile(101, &after, Some(&before), &[], 0)
        .is_empty());
    let events = watch.reconcile(102, &after, Some(&after), &[report(&victim, 101)], 0);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kills, 1);
    for t in 103..120 {
        assert!(watch.reconcile(t, &after, Some(&after), &[], 3).is_empty());
    }
}

#[test]
fn a_kill_whose_report_was_lost_is_counted_from_the_counters_once() {
    let (before, after, victim) = kill_and_before();
    let mut watch = CounterWatch::default();
    watch.reconcile(100, &before, None, &[], 0);
    let mut events = Vec::new();
    // The ring buffer overran (the overrun count went up): no report ever comes.
    for (i, t) in (101..110).enumerate() {
        events.extend(watch.reconcile(t, &after, Some(&before), &[], i as u64));
    }
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.source, OomSource::CgroupCounters);
    assert_eq!(event.kills, 1);
    assert_eq!(event.time, 101, "dated at the collection that counted it");
    assert_eq!(event.cgroup.as_deref(), Some(victim.as_str()));
    assert!(
        event.note.as_deref().unwrap().contains("report was lost"),
        "{event:?}"
    );
    // A report read after all keeps its details, and its kill is not counted again.
    let late = watch.reconcile(110, &after, Some(&after), &[report(&victim, 101)], 8);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].source, OomSource::KernelLog);
    assert_eq!(late[0].kills, 0);
    assert!(late[0].note.as_deref().unwrap().contains("already counted"));
    // Without an overrun the note does not blame one.
    let mut watch = CounterWatch::default();
    watch.reconcile(100, &before, None, &[], 5);
    let events: Vec<_> = (101..110)
        .flat_map(|t| watch.reconcile(t, &after, Some(&before), &[], 5))
        .collect();
    assert_eq!(events.len(), 1);
    assert!(events[0]
        .note
        .as_deref()
        .unwrap()
        .starts_with("no kernel report"));
}

/// The recorded host with every cgroup's figures moved for collection `i` (whole pages,
/// up and down, different per cgroup): history that seals into blocks must read back
/// exactly as written.
fn moved(base: &Snapshot, i: u64) -> Snapshot {
    let mut s = base.clone();
    for (k, c) in s.cgroups.iter_mut().enumerate() {
        let wobble = ((i * 7919 + k as u64 * 104_729) % 17) * 4096;
        c.memory.usage = c.memory.usage.map(|u| u + wobble + i * 8192);
        c.memory.active_file = c.memory.active_file.map(|u| u + wobble);
    }
    s
}

fn kib(bytes: Option<u64>) -> Option<u64> {
    bytes.map(|b| (b + 512) / 1024 * 1024)
}

#[test]
fn sealed_history_reads_as_written_and_minutes_average_every_sample() {
    let base = recorded();
    let db = temp_db("seal");
    let victim = base.cgroups[base.cgroups.len() / 2].path.clone();
    let at = |i: u64| 6000 + i as i64 * 10;
    let mut writer = Writer::open(&db).unwrap();
    // 95 collections: three seals (30, 60, 90), five in the head.
    for i in 0..95 {
        writer.write(at(i), &moved(&base, i)).unwrap();
    }
    let reader = Store::open(&db).unwrap();
    let expect = |i: u64| {
        let s = moved(&base, i);
        let c = s.cgroups.iter().find(|c| c.path == victim).unwrap().clone();
        (
            kib(c.memory.usage),
            kib(c.memory.active_file),
            kib(c.memory.anon),
        )
    };
    let check_raw = |reader: &Store, n: u64| {
        let raw = reader
            .history(&victim, 0, 100_000, Resolution::Raw)
            .unwrap();
        assert_eq!(raw.len() as u64, n);
        for (i, p) in raw.iter().enumerate() {
            assert_eq!(p.t, at(i as u64));
            assert_eq!(
                (p.usage, p.active_file, p.anon),
                expect(i as u64),
                "sample {i}"
            );
        }
    };
    check_raw(&reader, 95);
    // Minutes: the newest collection is at 6940, so 6000..=6840 are complete (sealed ones
    // and those averaged on read alike), each the mean of its six samples.
    let minutes = reader
        .history(&victim, 0, 100_000, Resolution::Minute)
        .unwrap();
    assert_eq!(minutes.len(), 15);
    for (m, p) in minutes.iter().enumerate() {
        assert_eq!(p.t, 6000 + m as i64 * 60);
        let mean = (0..6)
            .map(|k| expect(m as u64 * 6 + k).0.unwrap() / 1024)
            .sum::<u64>()
            / 6
            * 1024;
        assert_eq!(p.usage, Some(mean), "minute {m}");
    }
    // A range inside the blocks, and identity from the head.
    let part = reader
        .history(&victim, at(40), at(44), Resolution::Raw)
        .unwrap();
    assert_eq!(
        part.iter().map(|p| p.t).collect::<Vec<_>>(),
        (40..=44).map(at).collect::<Vec<_>>()
    );
    assert_eq!(reader.series(&victim).unwrap().unwrap().2, at(94));
    // Reopened, the writer finds its head and seals it on time; nothing doubles.
    drop(writer);
    let mut writer = Writer::open(&db).unwrap();
    for i in 95..130 {
        writer.write(at(i), &moved(&base, i)).unwrap();
    }
    check_raw(&reader, 130);
    let minutes = reader
        .history(&victim, 0, 100_000, Resolution::Minute)
        .unwrap();
    assert_eq!(minutes.len(), 21);
    // Retention cuts inside a block: raw from 7100, minutes from 6600.
    let retention = Retention {
        raw: std::time::Duration::from_secs(200),
        minute: std::time::Duration::from_secs(700),
        oom: std::time::Duration::from_secs(3600),
    };
    writer.prune(7300, &retention).unwrap();
    let raw = reader
        .history(&victim, 0, 100_000, Resolution::Raw)
        .unwrap();
    assert_eq!(raw.first().map(|p| p.t), Some(7100));
    assert_eq!(raw.len(), 20);
    let minutes = reader
        .history(&victim, 0, 100_000, Resolution::Minute)
        .unwrap();
    assert_eq!(minutes.first().map(|p| p.t), Some(6600));
    assert_eq!(minutes.last().map(|p| p.t), Some(7200));
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn a_history_of_rows_is_converted_to_blocks() {
    let db = temp_db("convert");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    {
        // The earlier format, as memglass wrote it before blocks.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE series (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
               pod_uid TEXT, namespace TEXT, pod TEXT, container TEXT, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
             CREATE TABLE samples (series INTEGER NOT NULL, res INTEGER NOT NULL, t INTEGER NOT NULL,
               usage INTEGER, lim INTEGER, anon INTEGER, active_anon INTEGER, inactive_anon INTEGER,
               file INTEGER, active_file INTEGER, inactive_file INTEGER, shmem INTEGER,
               file_dirty INTEGER, kernel INTEGER, oom_kill INTEGER,
               PRIMARY KEY (series, res, t)) WITHOUT ROWID;
             INSERT INTO series VALUES (1, '/a', 'cgroup', NULL, NULL, NULL, NULL, 0, 120);
             INSERT INTO samples VALUES (1, 0, 0, 100, NULL, 40, 1, 2, 3, 4, 5, 6, 7, 8, 0);
             INSERT INTO samples VALUES (1, 0, 60, 104, NULL, 44, 1, 2, 3, 4, 5, 6, 7, 8, 1);
             INSERT INTO samples VALUES (1, 1, 0, 100, NULL, 40, 1, 2, 3, 4, 5, 6, 7, 8, 0);",
        )
        .unwrap();
    }
    let writer = Writer::open(&db).unwrap();
    let raw = writer
        .store()
        .history("/a", 0, 1000, Resolution::Raw)
        .unwrap();
    assert_eq!(
        raw.iter().map(|p| (p.t, p.usage)).collect::<Vec<_>>(),
        [(0, Some(100 * 1024)), (60, Some(104 * 1024))]
    );
    assert_eq!(raw[1].oom_kill, Some(1));
    assert_eq!(raw[0].limit, None);
    let minutes = writer
        .store()
        .history("/a", 0, 1000, Resolution::Minute)
        .unwrap();
    assert_eq!(minutes[0].anon, Some(40 * 1024));
    let gone: i64 = writer
        .store()
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'samples'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gone, 0);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}
