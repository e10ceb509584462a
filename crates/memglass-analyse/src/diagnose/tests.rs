//! The rules on a tree recorded from a real kernel (fixtures/hosts/v2-debian-6.12…: a
//! kubelet systemd tree with one pod of two containers), with single figures changed to
//! cross one rule's line at a time. The real-kernel scenarios are in
//! crates/memglass/tests/kernel/diagnose.rs.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use memglass_identify::Directory;
use memglass_kernel::Roots;

use super::*;
use crate::eviction::{self, Threshold};
use crate::sizing;

const FIXTURE: &str = "../../fixtures/hosts/v2-debian-6.12.95+deb12-amd64";
const APP: &str =
    "cri-containerd-4f1e9c2b7a6d3e8f0a5b1c9d2e7f4a6b8c3d0e1f5a9b2c7d6e4f8a1b3c5d7e9f.scope";

fn recorded() -> Snapshot {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let roots = Roots {
        proc: dir.join("proc"),
        cgroup: Some(dir.join("sys/fs/cgroup")),
    };
    let sample = memglass_kernel::collect(&roots).unwrap();
    let identities: Vec<_> = sample
        .cgroups
        .iter()
        .map(|c| memglass_identify::identify(&c.path))
        .collect();
    crate::snapshot(&sample, &identities, &Directory::new())
}

fn find(snapshot: &mut Snapshot, suffix: &str) -> usize {
    snapshot
        .cgroups
        .iter()
        .position(|c| c.path.ends_with(suffix))
        .unwrap()
}

fn run(snapshot: &Snapshot, kills: &[RecentKill], histories: &[History]) -> Vec<Finding> {
    let directory = Directory::new();
    let eviction = eviction::analyse(snapshot, &directory, Threshold::Bytes(100 << 20));
    let sizing = sizing::analyse(snapshot, &directory);
    diagnose(&Inputs {
        snapshot,
        directory: &directory,
        eviction: &eviction,
        sizing: &sizing,
        kills,
        cache_holders: &[],
        histories,
        settings: Settings {
            now: 1_000_000,
            ..Settings::default()
        },
    })
}

fn kinds(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.kind.as_str()).collect()
}

#[test]
fn the_recorded_tree_is_healthy() {
    assert_eq!(kinds(&run(&recorded(), &[], &[])), Vec::<&str>::new());
}

#[test]
fn a_container_at_95_percent_of_its_limit_is_near_it() {
    let mut s = recorded();
    let i = find(&mut s, APP);
    let ws = s.cgroups[i].memory.working_set_kubelet.unwrap();
    s.cgroups[i].memory.limit = Some(ws * 100 / 95);
    let found = run(&s, &[], &[]);
    assert_eq!(kinds(&found), ["near_limit"]);
    assert_eq!(found[0].cgroup.as_deref(), Some(s.cgroups[i].path.as_str()));
    assert!(found[0].summary.contains("95%"), "{}", found[0].summary);
    // 89%: nothing.
    s.cgroups[i].memory.limit = Some(ws * 100 / 89);
    assert!(run(&s, &[], &[]).is_empty());
}

#[test]
fn active_page_cache_tmpfs_dirty_and_kernel_each_have_their_finding() {
    let mut s = recorded();
    let i = find(&mut s, APP);
    let m = &mut s.cgroups[i].memory;
    m.active_file = Some(300 << 20);
    m.working_set_kubelet = Some(400 << 20);
    m.limit = None;
    assert_eq!(kinds(&run(&s, &[], &[])), ["page_cache_working_set"]);

    let mut s = recorded();
    let m = &mut s.cgroups[i].memory;
    m.usage = Some(200 << 20);
    m.shmem = Some(100 << 20);
    assert_eq!(kinds(&run(&s, &[], &[])), ["tmpfs"]);

    let mut s = recorded();
    let m = &mut s.cgroups[i].memory;
    m.usage = Some(200 << 20);
    m.file_dirty = Some(60 << 20);
    assert_eq!(kinds(&run(&s, &[], &[])), ["dirty_backlog"]);

    let mut s = recorded();
    let m = &mut s.cgroups[i].memory;
    m.usage = Some(200 << 20);
    m.kernel = Some(120 << 20);
    assert_eq!(kinds(&run(&s, &[], &[])), ["kernel_memory"]);
}

#[test]
fn memory_charged_to_a_removed_container_shows_at_its_pod() {
    let mut s = recorded();
    let pod = s
        .cgroups
        .iter()
        .position(|c| c.kind == memglass_identify::CgroupKind::Pod)
        .unwrap();
    let usage = s.cgroups[pod].memory.usage.unwrap();
    s.cgroups[pod].memory.usage = Some(usage + (100 << 20));
    // The QoS and kubepods cgroups above it count the same pages.
    let pod_path = s.cgroups[pod].path.clone();
    for c in s.cgroups.iter_mut().filter(|c| {
        c.path != "/" && c.path != pod_path && pod_path.starts_with(&format!("{}/", c.path))
    }) {
        c.memory.usage = c.memory.usage.map(|u| u + (100 << 20));
    }
    let found = run(&s, &[], &[]);
    assert_eq!(kinds(&found), ["dying_cgroups"], "{found:#?}");
    assert_eq!(found[0].subject, SubjectKind::Pod);
}

#[test]
fn a_kill_is_one_finding_per_victim_with_the_limit_to_set() {
    let s = recorded();
    let victim = s
        .cgroups
        .iter()
        .find(|c| c.kind == memglass_identify::CgroupKind::Container && !c.path.ends_with(APP))
        .unwrap();
    let kill = RecentKill {
        time: Some(999_000),
        cgroup: Some(victim.path.clone()),
        oom_memcg: Some(victim.path.clone()),
        scope: "container".into(),
        namespace: None,
        pod: None,
        container: None,
        pod_uid: victim.pod_uid.clone(),
        comm: Some("tail".into()),
        anon_rss: Some(30 << 20),
        cause: Some("anon".into()),
        limit: Some(32 << 20),
        usage: Some(32 << 20),
        from_counter: false,
    };
    let found = run(&s, &[kill.clone(), kill], &[]);
    assert_eq!(kinds(&found), ["oom_killed"]);
    let f = &found[0];
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.summary.contains("2 times"), "{}", f.summary);
    assert!(f.summary.contains("container's own limit"), "{}", f.summary);
    let limit = &f.remedy.set[0];
    assert_eq!(limit.name, "resources.limits.memory");
    assert!(limit.bytes > 32 << 20, "{limit:?}");
}

#[test]
fn steady_growth_toward_the_limit_is_a_leak_with_its_eta() {
    let mut s = recorded();
    let i = find(&mut s, APP);
    s.cgroups[i].memory.limit = Some(1 << 30);
    let path = s.cgroups[i].path.clone();
    // 1 MiB/s for 120 s from 100 MiB, with a little noise: ~700 MiB left, ~12 min.
    let points: Vec<(i64, u64)> = (0..120)
        .map(|t| {
            (
                999_880 + t,
                (100 << 20) + (t as u64) * (1 << 20) + (t as u64 % 3) * 4096,
            )
        })
        .collect();
    let found = run(
        &s,
        &[],
        &[History {
            cgroup: path.clone(),
            points: points.clone(),
        }],
    );
    assert_eq!(kinds(&found), ["leak"]);
    assert_eq!(found[0].severity, Severity::Critical);
    let eta = found[0]
        .evidence
        .iter()
        .find(|e| e.name == "time_to_limit")
        .unwrap();
    let Value::Integer(eta) = eta.value else {
        panic!("{eta:?}")
    };
    assert!((700..=860).contains(&eta), "{eta}");
    // Flat with noise: no leak.
    let flat: Vec<(i64, u64)> = (0..120)
        .map(|t| (999_880 + t, (100 << 20) + (t as u64 % 7) * (1 << 20)))
        .collect();
    let none = run(
        &s,
        &[],
        &[History {
            cgroup: path,
            points: flat,
        }],
    );
    assert!(none.is_empty(), "{:?}", kinds(&none));
}

#[test]
fn memory_qos_as_kubelet_computes_it() {
    let settings = Settings::default();
    // KEP-2570: request 256Mi, limit 512Mi, factor 0.9 → floor(486.4Mi / 4Ki) × 4Ki.
    let qos = memory_qos(Some(256 << 20), Some(512 << 20), None, &settings).unwrap();
    assert_eq!(qos.min, 256 << 20);
    assert_eq!(qos.high, 510_025_728);
    // No limit: node allocatable stands in.
    let qos = memory_qos(None, None, Some(8 << 30), &settings).unwrap();
    assert_eq!(
        qos.high,
        ((8u64 << 30) as f64 * 0.9 / 4096.0).floor() as u64 * 4096
    );
    // Guaranteed (request = limit), or nothing to compute from: none.
    assert_eq!(
        memory_qos(Some(1 << 30), Some(1 << 30), None, &settings),
        None
    );
    assert_eq!(memory_qos(Some(1 << 30), None, None, &settings), None);
}

#[test]
fn quantities_are_whole_units() {
    assert_eq!(quantity(640 << 20), "640Mi");
    assert_eq!(quantity(2 << 30), "2Gi");
    assert_eq!(quantity(1536), "1536");
    assert_eq!(quantity(4096), "4Ki");
}

#[test]
fn findings_are_ordered_most_severe_first_and_kinds_are_named_once() {
    let names: std::collections::HashSet<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), Kind::ALL.len());
    assert!(Severity::Critical < Severity::Warning && Severity::Warning < Severity::Info);
}
