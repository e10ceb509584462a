//! The OOM report corpus: real reports from public bug reports, mailing lists and notes
//! (`fixtures/oom/*.txt`, each with its source in its header) and the recordings of this
//! project's own kills (`fixtures/hosts/*/dev/kmsg.txt`), each parsed into the events a
//! person reading the text finds in it. Expected values are written from the text.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use memglass_kernel::cgroup::Limit;
use memglass_kernel::kmsg::oom::{parse_lines, OomAssembler, OomKill};
use memglass_kernel::kmsg::saved;

const KIB: u64 = 1024;

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(relative)
}

/// The fixture's text without its `# ` header block.
fn log_text(relative: &str) -> String {
    let text = std::fs::read_to_string(fixture(relative)).unwrap();
    text.lines()
        .skip_while(|line| line.starts_with("# "))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn kills(relative: &str) -> Vec<OomKill> {
    parse_lines(&saved::parse(&log_text(relative), 2024))
}

/// What the event must say about its victim and cgroups.
struct Expect {
    pid: u32,
    comm: &'static str,
    constraint: &'static str,
    oom_memcg: Option<&'static str>,
    task_memcg: Option<&'static str>,
    /// anon-rss, file-rss, shmem-rss in kB as printed.
    rss_kb: [Option<u64>; 3],
}

#[track_caller]
fn check(kill: &OomKill, expect: &Expect) {
    let v = &kill.victim;
    assert_eq!(v.pid, expect.pid);
    assert_eq!(v.comm.as_deref(), Some(expect.comm), "pid {}", v.pid);
    assert_eq!(
        kill.constraint.as_ref().map(|c| c.as_str()),
        Some(expect.constraint),
        "pid {}",
        v.pid
    );
    assert_eq!(kill.oom_memcg.as_deref(), expect.oom_memcg, "pid {}", v.pid);
    assert_eq!(
        kill.task_memcg.as_deref(),
        expect.task_memcg,
        "pid {}",
        v.pid
    );
    let kb = |bytes: Option<u64>| bytes.map(|b| b / KIB);
    assert_eq!(
        [kb(v.anon_rss), kb(v.file_rss), kb(v.shmem_rss)],
        expect.rss_kb,
        "pid {}",
        v.pid
    );
}

fn counter<'k>(kill: &'k OomKill, name: &str) -> &'k memglass_kernel::kmsg::oom::UsageCounter {
    kill.counters.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn ubuntu_3_13_memcg_task_in_form() {
    let kills = kills("oom/cadvisor-3.13-ubuntu-memcg.txt");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    check(
        k,
        &Expect {
            pid: 13536,
            comm: "memorymonster",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some("/mem2"),
            task_memcg: Some("/mem2"),
            rss_kb: [Some(920), Some(452), None],
        },
    );
    assert!(!k.constraint_printed);
    let trigger = k.trigger.as_ref().unwrap();
    assert_eq!(
        (trigger.comm.as_str(), trigger.pid),
        ("memorymonster", Some(13536))
    );
    assert_eq!(trigger.gfp_mask.as_deref(), Some("0xd0"));
    assert_eq!(counter(k, "memory").usage, 980 * KIB);
    assert_eq!(counter(k, "memory").limit, Limit::Bytes(980 * KIB));
    assert_eq!(counter(k, "memory").failcnt, 4152239);
    assert_eq!(counter(k, "memory+swap").limit, Limit::Unlimited);
    assert_eq!(k.memcg_stats.len(), 1);
    assert!(k.memcg_stats[0].local);
    assert_eq!(k.memcg_stats[0].stat.get("rss"), Some(980 * KIB));
    assert_eq!(k.tasks.len(), 1);
    assert_eq!(
        (k.tasks[0].uid, k.tasks[0].rss_pages),
        (Some(275858), Some(343))
    );
    assert_eq!(
        k.selected.as_ref().map(|s| (s.pid, s.score)),
        Some((13536, Some(996)))
    );
    assert_eq!(
        (k.cpuset.as_deref(), k.mems_allowed.as_deref()),
        (Some("/"), Some("0"))
    );
}

#[test]
fn ubuntu_3_13_global_with_zone_counters() {
    let kills = kills("oom/cadvisor-3.13-ubuntu-global.txt");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    check(
        k,
        &Expect {
            pid: 1532,
            comm: "badsysprogram",
            constraint: "CONSTRAINT_NONE",
            oom_memcg: None,
            task_memcg: None,
            rss_kb: [Some(1595164), Some(76), None],
        },
    );
    assert!(k.counters.is_empty() && k.memcg_stats.is_empty());
    let pages = k.mem_info_pages.as_ref().unwrap();
    assert_eq!(pages.get("active_anon"), Some(405991));
    assert_eq!(pages.get("free_cma"), Some(0));
    // Before 4.8 the LRU sizes are per zone: DMA + DMA32.
    let node = k.node_stats.as_ref().unwrap();
    assert_eq!(node.get("active_anon"), Some((8508 + 1615456) * KIB));
    assert_eq!(node.get("shmem"), Some((4 + 276) * KIB));
    assert_eq!(k.tasks.len(), 28);
    assert_eq!(k.tasks.last().unwrap().name, "badsysprogram");
    assert_eq!(k.tasks[1].oom_score_adj, Some(-1000));
}

#[test]
fn gentoo_4_8_two_docker_containers_among_other_messages() {
    let kills = kills("oom/cadvisor-4.8-gentoo-docker.txt");
    assert_eq!(kills.len(), 2);
    let first = "/docker/2e088fe462e25e60be1dafafe2c05c47bda1a97978648d10ad2b7484fc0b8f50";
    let second = "/docker/6c6fcab8562fd3150854986b78552c732f234fd405b624207b8843528a145e70";
    check(
        &kills[0],
        &Expect {
            pid: 1381,
            comm: "gunpowder-memho",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some(first),
            task_memcg: Some(first),
            rss_kb: [Some(18624), Some(2140), Some(0)],
        },
    );
    check(
        &kills[1],
        &Expect {
            pid: 1667,
            comm: "gunpowder-memho",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some(second),
            task_memcg: Some(second),
            rss_kb: [Some(248180), Some(2048), Some(0)],
        },
    );
    for k in &kills {
        assert_eq!(k.reaped.as_ref().unwrap().anon_rss, Some(0));
        assert_eq!(k.tasks.len(), 1, "nr_pmds column understood");
        assert!(k.tasks[0].swapents_pages.is_some());
    }
    assert_eq!(counter(&kills[0], "memory+swap").usage, 40940 * KIB);
    assert_eq!(
        counter(&kills[0], "memory+swap").limit,
        Limit::Bytes(40960 * KIB)
    );
}

#[test]
fn rhel7_3_10_fragments_kubepods() {
    let text = log_text("oom/k8s-56891-rhel7-3.10.0-327-dmesg-T.txt");
    let mut assembler = OomAssembler::new();
    let mut kills: Vec<OomKill> = saved::parse(&text, 2024)
        .iter()
        .filter_map(|line| assembler.push(line))
        .collect();
    kills.extend(assembler.finish());
    assert_eq!(kills.len(), 2);
    assert_eq!(
        assembler.reports_without_kill, 1,
        "the report that stops after its header"
    );
    let pod = "/kubepods/pod95387fa4-da9c-11e7-9d36-5254b24cbf5e";
    let c1 = format!("{pod}/6895a3e13439535852d3184ac2aadd26d7363cc035f171545ec7d4ce74073b0b");
    let c2 = format!("{pod}/e84ed2eecf157a08df53ca510418796ccf5173f5d71e42133320e9178b9c8447");
    // Its "Task in" line is not in the excerpt: the first stats block is the OOM cgroup's.
    check(
        &kills[0],
        &Expect {
            pid: 28438,
            comm: "java",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some(Box::leak(c1.into_boxed_str())),
            task_memcg: None,
            rss_kb: [Some(466160), Some(13684), None],
        },
    );
    assert_eq!(kills[0].selected.as_ref().map(|s| s.pid), Some(24572));
    let wall = kills[0].time.wall.unwrap();
    assert_eq!(wall.unix_usec / 1_000_000, 1_512_605_115); // Thu Dec 7 00:05:15 2017
    assert_eq!(wall.utc_offset_secs, None, "dmesg -T prints local time");
    // Cut inside "Kill process 3068 ...": the chosen task is the victim we know of.
    check(
        &kills[1],
        &Expect {
            pid: 3068,
            comm: "java",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some(Box::leak(c2.clone().into_boxed_str())),
            task_memcg: Some(Box::leak(c2.into_boxed_str())),
            rss_kb: [None, None, None],
        },
    );
    let memsw = counter(&kills[1], "memory+swap");
    assert_eq!(
        Limit::Bytes(memsw.usage),
        memsw.limit,
        "memory+swap was at its limit"
    );
}

#[test]
fn ubuntu_global_kill_lines_only() {
    let kills = kills("oom/docker-for-linux-1001-global-syslog.txt");
    let pids: Vec<(u32, &str)> = kills
        .iter()
        .map(|k| (k.victim.pid, k.victim.comm.as_deref().unwrap()))
        .collect();
    assert_eq!(
        pids,
        [
            (15784, "python3"),
            (15925, "(resolved)"),
            (15783, "python3"),
            (15934, "(resolved)")
        ]
    );
    for k in &kills {
        assert_eq!(k.constraint.as_ref().unwrap().as_str(), "CONSTRAINT_NONE");
        assert!(k.reaped.is_some(), "pid {}", k.victim.pid);
        assert_eq!(k.message.as_deref(), Some("Out of memory"));
    }
    assert_eq!(kills[0].time.boot_usec, Some(518_050_606));
    check(
        &kills[1],
        &Expect {
            pid: 15925,
            comm: "(resolved)",
            constraint: "CONSTRAINT_NONE",
            oom_memcg: None,
            task_memcg: None,
            rss_kb: [Some(4064), Some(3584), Some(0)],
        },
    );
}

#[test]
fn lkml_5_2_first_memory_stat_dump() {
    let kills = kills("oom/lkml-5.2-memory-stat-dump.txt");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    check(
        k,
        &Expect {
            pid: 210,
            comm: "stress",
            constraint: "CONSTRAINT_NONE", // as printed, though /foo's limit was hit
            oom_memcg: Some("/foo"),
            task_memcg: Some("/foo"),
            rss_kb: [Some(0), Some(224), Some(0)],
        },
    );
    assert!(k.constraint_printed);
    let stats = &k.memcg_stats[0];
    assert!(!stats.local);
    assert_eq!(
        (stats.stat.get("slab"), stats.stat.get("anon")),
        (Some(274432), Some(0))
    );
    assert_eq!(stats.stat.len(), 31);
    assert_eq!(counter(k, "swap").limit, Limit::Unlimited);
    assert_eq!(k.tasks.len(), 3);
    assert_eq!(k.tasks[2].pgtables_bytes, Some(499712));
    assert!(k.reaped.is_some());
}

#[test]
fn lkml_sacrificed_child_and_5_3_global_summary() {
    let kills = kills("oom/lkml-4.x-and-5.3-rc5-global-syslog.txt");
    assert_eq!(kills.len(), 2);
    check(
        &kills[0],
        &Expect {
            pid: 31357,
            comm: "sh",
            constraint: "CONSTRAINT_NONE",
            oom_memcg: None,
            task_memcg: None,
            rss_kb: [Some(252), Some(4), Some(0)],
        },
    );
    let chosen = kills[0].selected.as_ref().unwrap();
    assert_eq!(
        (chosen.pid, chosen.comm.as_deref(), chosen.score),
        (19961, Some("python"), Some(17))
    );
    check(
        &kills[1],
        &Expect {
            pid: 3035,
            comm: "oomprocs",
            constraint: "CONSTRAINT_NONE",
            oom_memcg: None,
            task_memcg: Some("/user.slice/user-10383.slice/user@10383.service"),
            rss_kb: [Some(8), Some(4), Some(0)],
        },
    );
    assert!(kills[1].global_oom && kills[1].constraint_printed);
    assert_eq!(kills[1].victim.uid, Some(10383));
}

#[test]
fn centos7_global_messages_with_escaped_newlines() {
    let kills = kills("oom/centos7-3.10.0-693-global-messages.txt");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    check(
        k,
        &Expect {
            pid: 4402,
            comm: "mysqld",
            constraint: "CONSTRAINT_NONE",
            oom_memcg: None,
            task_memcg: None,
            rss_kb: [Some(1758772), Some(0), Some(0)],
        },
    );
    let pages = k.mem_info_pages.as_ref().unwrap();
    assert_eq!(pages.get("active_anon"), Some(737874));
    assert_eq!(
        pages.get("free"),
        Some(21086),
        "#012 split the summary into lines"
    );
    let node = k.node_stats.as_ref().unwrap();
    assert_eq!(
        node.get("active_anon"),
        Some((132 + 2747204 + 204160) * KIB)
    );
    assert_eq!(k.tasks.len(), 26);
    assert_eq!(k.trigger.as_ref().unwrap().pid, Some(1190));
}

#[test]
fn el7_kmem_fills_a_pod_backported_summary_without_constraint() {
    let kills = kills("oom/el7-3.10.0-514-pod-kmem-messages.txt");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    let pod = "/kubepods/burstable/pod6c4333b3-a663-11ea-b39f-6c92bf85beda";
    check(
        k,
        &Expect {
            pid: 12788,
            comm: "runc:[2:INIT]",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some(pod),
            task_memcg: Some(
                "/kubepods/burstable/pod6c4333b3-a663-11ea-b39f-6c92bf85beda/bbd5e4b5f9c13666dd0ec7ff7afb2c4c2b0ede40a4adf1de43cc31c606f283f5",
            ),
            rss_kb: [Some(3296), Some(276), Some(1012)],
        },
    );
    assert!(!k.constraint_printed);
    assert_eq!(k.selected.as_ref().map(|s| s.pid), Some(12800));
    assert_eq!(counter(k, "kmem").usage, 3143468 * KIB);
    assert_eq!(k.memcg_stats.len(), 5);
    assert!(k.memcg_stats.iter().all(|s| s.local));
    assert_eq!(k.memcg_stats[0].path, pod);
    assert_eq!(k.mems_allowed.as_deref(), Some("0-1"));
    assert_eq!(k.victim.uid, None, "the summary's uid is about pid 12800");
}

#[test]
fn el8_three_reports_of_a_tmpfs_heavy_container() {
    let kills = kills("oom/el8-4.18.0-147-container-shmem-dmesg.txt");
    let container = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podd63c4bbe_5f18_11ec_bdcd_d094668d7dd6.slice/docker-083afd1a06b8b612ab5d974e12200d7fd1d35be6a44f0e368179399ef6c6e84d.scope";
    let expected = [
        (7093, [Some(1968776), Some(0), Some(16356)], true),
        (321688, [Some(2740520), Some(0), Some(0)], false),
        (281482, [Some(3690112), Some(0), Some(0)], true),
    ];
    assert_eq!(kills.len(), expected.len());
    for (k, (pid, rss_kb, reaped)) in kills.iter().zip(expected) {
        check(
            k,
            &Expect {
                pid,
                comm: "java",
                constraint: "CONSTRAINT_MEMCG",
                oom_memcg: Some(container),
                task_memcg: Some(container),
                rss_kb,
            },
        );
        assert_eq!(k.reaped.is_some(), reaped, "pid {pid}");
        let memsw = counter(k, "memory+swap");
        assert_eq!(Limit::Bytes(memsw.usage), memsw.limit);
        assert!(k.memcg_stats[0].stat.get("shmem").unwrap() > 20 << 30);
        assert!(k.tasks.is_empty());
    }
}

#[test]
fn rhel8_report_without_its_head() {
    let kills = kills("oom/el8-4.18.0-372-crio-pod-truncated-dmesg.txt");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod58dc1221_d430_496e_951d_e8cb23caaead.slice";
    check(
        k,
        &Expect {
            pid: 184260,
            comm: "mimir",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some(pod),
            task_memcg: Some(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod58dc1221_d430_496e_951d_e8cb23caaead.slice/crio-8371caad8cc369f16c55ce039fbbe0e4fd1be88e72f119bce94ccd5d07d152fe.scope",
            ),
            rss_kb: [Some(900908), Some(45968), Some(0)],
        },
    );
    assert_eq!(k.victim.uid, Some(1001240000));
    assert_eq!(
        (k.victim.pgtables, k.victim.oom_score_adj),
        (Some(2476 * KIB), Some(999))
    );
    assert_eq!(k.tasks.len(), 2);
    assert_eq!(k.tasks[1].uid, Some(1001240000));
    assert!(k.trigger.is_none() && k.memcg_stats.is_empty());
    assert!(k.reaped.is_some());
}

#[test]
fn sles_kubevirt_pods_journal_and_dmesg_t() {
    let journal = kills("oom/sles-5.14.21-kubevirt-pod-journal.txt");
    assert_eq!(journal.len(), 1);
    let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod968a06fb_9ab9_4819_8caf_0392ddff3d9b.slice";
    check(
        &journal[0],
        &Expect {
            pid: 39079,
            comm: "qemu-system-x86",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some(pod),
            task_memcg: Some(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod968a06fb_9ab9_4819_8caf_0392ddff3d9b.slice/cri-containerd-0f32894de86edf3d3832702af794874ef8d400b4969acdea4976b12040756e0d.scope",
            ),
            rss_kb: [None, None, None],
        },
    );
    assert_eq!(journal[0].victim.uid, Some(107));
    assert_eq!(journal[0].tasks.len(), 6);
    assert_eq!(counter(&journal[0], "memory").usage, 17024340 * KIB);
    let dmesg = kills("oom/sles-5.3.18-kubevirt-pod-dmesg-T.txt");
    assert_eq!(dmesg.len(), 1);
    let k = &dmesg[0];
    assert_eq!(k.victim.pid, 70870);
    assert_eq!(k.victim.anon_rss, Some(66852088 * KIB));
    let trigger = k.trigger.as_ref().unwrap();
    assert_eq!(
        (trigger.comm.as_str(), trigger.pid),
        ("CPU 11/KVM", Some(70888))
    );
    assert_eq!(k.reaped.as_ref().unwrap().file_rss, Some(132 * KIB));
    assert_eq!(k.tasks.last().unwrap().rss_pages, Some(16718510));
}

#[test]
fn aks_node_allocatable_oom_with_oom_group() {
    let kills = kills("oom/aks-5.15-azure-kubepods-oom-group-syslog.txt");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    let container = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poda5d8fdd1_1369_469e_8a7d_2c1047529435.slice/cri-containerd-9192cb33411ff69d015a3577db136757f5b145064a1703efea3d0e12e8a64987.scope";
    check(
        k,
        &Expect {
            pid: 7788,
            comm: "bash",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some("/kubepods.slice"),
            task_memcg: Some(container),
            rss_kb: [Some(7165824), Some(956), Some(0)],
        },
    );
    assert_eq!(k.oom_group.as_deref(), Some(container));
    let group: Vec<u32> = k.group_kills.iter().map(|v| v.pid).collect();
    assert_eq!(group, [7620, 7656, 7657, 7712]);
    assert_eq!(k.memcg_stats[0].stat.get("anon"), Some(7601418240));
    assert_eq!(k.memcg_stats[0].stat.len(), 27, "printk cut the record");
    assert_eq!(k.tasks.len(), 28);
    assert_eq!(counter(k, "memory").limit, Limit::Bytes(7464436 * KIB));
    assert_eq!(
        k.time.boot_usec,
        Some(139_201_482),
        "the victim's kill, not the group's last"
    );
}

#[test]
fn grep_filtered_6_x_pod_oom_group() {
    let kills = kills("oom/k8s-6.x-pod-oom-group-dmesg-grep.txt");
    assert_eq!(kills.len(), 1);
    let k = &kills[0];
    check(
        k,
        &Expect {
            pid: 22609,
            comm: "node",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod94eb36cd_29e1_478b_b365_4cb5dfc7d6fb.slice"),
            task_memcg: Some("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod94eb36cd_29e1_478b_b365_4cb5dfc7d6fb.slice/cri-containerd-46b3e0a4df44b752b841aecca454e6e78995d567912a84950390bae6f6777a63.scope"),
            rss_kb: [Some(4116684), Some(23132), Some(0)],
        },
    );
    assert!(k.oom_group.is_some() && k.group_kills.is_empty());
    assert_eq!(k.trigger.as_ref().unwrap().oom_score_adj, Some(969));
}

/// This project's own recordings, in /dev/kmsg record format.
#[test]
fn recorded_hosts() {
    let v1 = kills("hosts/v1-hybrid-6.18/dev/kmsg.txt");
    assert_eq!(v1.len(), 1);
    let path = "/memglass-fixture-11292/kubepods/burstable/pod6a1d3c2e-9b4f-4e7a-8c5d-0f2b1a3e4d5c/e5f7a9c1b3d5e7f9a1c3b5d7e9f1a3c5b7d9e1f3a5c7b9d1e3f5a7c9b1d3e5f7";
    check(
        &v1[0],
        &Expect {
            pid: 11298,
            comm: "memglass-worklo",
            constraint: "CONSTRAINT_MEMCG",
            oom_memcg: Some(path),
            task_memcg: Some(path),
            rss_kb: [Some(16384), Some(1764), Some(0)],
        },
    );
    assert_eq!(
        (v1[0].seq, v1[0].time.boot_usec),
        (Some(497), Some(620_100_039))
    );
    let stats = &v1[0].memcg_stats[0].stat;
    assert_eq!(stats.get("total_rss"), Some(16740352), "v1 format of 6.x");
    assert_eq!(v1[0].tasks[0].rss_anon_pages, Some(4096));
    assert_eq!(counter(&v1[0], "kmem").usage, 36 * KIB);

    let container = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8d3c7f0e_5b1a_4f29_9c6e_2a7b4d1e0f93.slice/cri-containerd-b7e2d4a9c1f60358e9a7b2c4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a5c7b9d2e4.scope";
    for (host, pid, rss_kb, stat_keys) in [
        (
            "v2-debian-6.1.0-56-amd64",
            158,
            [Some(32368), Some(4), Some(1344)],
            51,
        ),
        (
            "v2-debian-6.12.95+deb12-amd64",
            199,
            [Some(32256), Some(0), Some(1324)],
            65,
        ),
    ] {
        let kills = kills(&format!("hosts/{host}/dev/kmsg.txt"));
        assert_eq!(kills.len(), 1, "{host}");
        check(
            &kills[0],
            &Expect {
                pid,
                comm: "tail",
                constraint: "CONSTRAINT_MEMCG",
                oom_memcg: Some(container),
                task_memcg: Some(container),
                rss_kb,
            },
        );
        // 6.1 prints the dump as one record with \x0a, 6.12 a record per line.
        let stats = &kills[0].memcg_stats[0].stat;
        assert_eq!(
            stats.get("anon").map(|a| a > 30 << 20),
            Some(true),
            "{host}"
        );
        assert_eq!(stats.len(), stat_keys, "{host}");
        assert_eq!(counter(&kills[0], "swap").limit, Limit::Bytes(0));
    }
}

/// Every corpus file is covered by a test above.
#[test]
fn corpus_is_covered() {
    let mut names: Vec<String> = std::fs::read_dir(fixture("oom"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    let source = include_str!("oom_corpus.rs");
    for name in &names {
        assert!(
            source.contains(&format!("\"oom/{name}\"")),
            "{name} has no test"
        );
        let head = std::fs::read_to_string(fixture(&format!("oom/{name}"))).unwrap();
        assert!(
            head.starts_with("# source: "),
            "{name} does not name its source"
        );
        let header: Vec<&str> = head.lines().take_while(|l| l.starts_with("# ")).collect();
        assert!(header.iter().any(|l| l.starts_with("# kernel: ")), "{name}");
    }
    assert!(names.len() >= 15, "{names:?}");
}
