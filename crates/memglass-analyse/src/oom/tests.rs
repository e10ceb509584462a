//! Explanations of reports cut from the corpus (fixtures/oom), parsed by the kernel crate's
//! pure parser: scope, attribution and what dominated.

use super::counters::is_below;
use super::*;
use memglass_identify::{ContainerInfo, PodInfo};
use memglass_kernel::kmsg::{oom, saved};

const KIB: u64 = 1024;

fn report(text: &str) -> OomReport {
    report_with(text, &Directory::new())
}

fn report_with(text: &str, directory: &Directory) -> OomReport {
    let mut kills = oom::parse_lines(&saved::parse(text, 2024));
    assert_eq!(kills.len(), 1, "{text}");
    explain_oom(kills.remove(0), directory)
}

const CONTAINER_V1: &str = "\
6,447,620099741,-;memory: usage 16384kB, limit 16384kB, failcnt 19
6,449,620099744,-;kmem: usage 36kB, limit 9007199254740988kB, failcnt 0
6,450,620099745,-;Memory cgroup stats for /t/kubepods/burstable/pod6a1d3c2e-9b4f-4e7a-8c5d-0f2b1a3e4d5c/e5f7a9c1b3d5e7f9a1c3b5d7e9f1a3c5b7d9e1f3a5c7b9d1e3f5a7c9b1d3e5f7:
6,452,620099764,-;rss 16740352
6,473,620100017,-;total_cache 0
6,474,620100018,-;total_rss 16740352
6,476,620100018,-;total_shmem 0
6,496,620100028,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/t/kubepods/burstable/pod6a1d3c2e-9b4f-4e7a-8c5d-0f2b1a3e4d5c/e5f7a9c1b3d5e7f9a1c3b5d7e9f1a3c5b7d9e1f3a5c7b9d1e3f5a7c9b1d3e5f7,task_memcg=/t/kubepods/burstable/pod6a1d3c2e-9b4f-4e7a-8c5d-0f2b1a3e4d5c/e5f7a9c1b3d5e7f9a1c3b5d7e9f1a3c5b7d9e1f3a5c7b9d1e3f5a7c9b1d3e5f7,task=memglass-worklo,pid=11298,uid=0
3,497,620100039,-;Memory cgroup out of memory: Killed process 11298 (memglass-worklo) total-vm:68568kB, anon-rss:16384kB, file-rss:1764kB, shmem-rss:0kB, UID:0 pgtables:76kB oom_score_adj:0
";

#[test]
fn container_limit_v1_anon() {
    let r = report(CONTAINER_V1);
    assert_eq!(r.scope, OomScope::Container);
    assert_eq!(
        r.pod_uid.as_deref(),
        Some("6a1d3c2e-9b4f-4e7a-8c5d-0f2b1a3e4d5c")
    );
    assert_eq!(
        r.container_id.as_deref(),
        Some("e5f7a9c1b3d5e7f9a1c3b5d7e9f1a3c5b7d9e1f3a5c7b9d1e3f5a7c9b1d3e5f7")
    );
    assert_eq!(r.qos_class, Some(QosClass::Burstable));
    assert_eq!((r.namespace.as_ref(), r.pod.as_ref()), (None, None));
    let hit = r.limit_hit.unwrap();
    assert_eq!(
        (hit.counter.as_str(), hit.usage, hit.limit),
        ("memory", 16 << 20, 16 << 20)
    );
    let b = r.breakdown.unwrap();
    assert_eq!(b.source, BreakdownSource::MemcgStats);
    assert_eq!((b.anon, b.file, b.kernel), (16740352, 0, Some(36 * KIB)));
    assert_eq!(r.dominant, Some(Component::Anon));
}

#[test]
fn names_from_the_directory_when_it_knows_the_container() {
    let mut directory = Directory::new();
    directory.add_pod(PodInfo {
        uid: "6a1d3c2e-9b4f-4e7a-8c5d-0f2b1a3e4d5c".into(),
        namespace: "shop".into(),
        name: "web-1".into(),
        ..PodInfo::default()
    });
    directory.add_container(ContainerInfo {
        id: "e5f7a9c1b3d5e7f9a1c3b5d7e9f1a3c5b7d9e1f3a5c7b9d1e3f5a7c9b1d3e5f7".into(),
        pod_uid: "6a1d3c2e-9b4f-4e7a-8c5d-0f2b1a3e4d5c".into(),
        name: "app".into(),
        ..ContainerInfo::default()
    });
    let r = report_with(CONTAINER_V1, &directory);
    assert_eq!(
        (
            r.namespace.as_deref(),
            r.pod.as_deref(),
            r.container.as_deref()
        ),
        (Some("shop"), Some("web-1"), Some("app"))
    );
}

#[test]
fn pod_limit_filled_by_kernel_memory_old_one_line_stats() {
    let r = report(
        "memory: usage 3145728kB, limit 3145728kB, failcnt 14406932
kmem: usage 3143468kB, limit 9007199254740988kB, failcnt 0
Memory cgroup stats for /kubepods/burstable/pod6c4333b3-a663-11ea-b39f-6c92bf85beda: cache:0KB rss:0KB shmem:0KB
Memory cgroup stats for /kubepods/burstable/pod6c4333b3-a663-11ea-b39f-6c92bf85beda/bbd5e4b5f9c13666dd0ec7ff7afb2c4c2b0ede40a4adf1de43cc31c606f283f5: cache:0KB rss:2220KB shmem:0KB
oom-kill:,cpuset=x,mems_allowed=0-1,oom_memcg=/kubepods/burstable/pod6c4333b3-a663-11ea-b39f-6c92bf85beda,task_memcg=/kubepods/burstable/pod6c4333b3-a663-11ea-b39f-6c92bf85beda/bbd5e4b5f9c13666dd0ec7ff7afb2c4c2b0ede40a4adf1de43cc31c606f283f5,task=runc:[2:INIT],pid=12800,uid=0
Memory cgroup out of memory: Killed process 12788 (runc:[2:INIT]) total-vm:600736kB, anon-rss:3296kB, file-rss:276kB, shmem-rss:1012kB
",
    );
    assert_eq!(r.scope, OomScope::Pod);
    assert_eq!(
        r.container_id.as_deref(),
        Some("bbd5e4b5f9c13666dd0ec7ff7afb2c4c2b0ede40a4adf1de43cc31c606f283f5"),
        "the victim's container, below the pod that hit its limit"
    );
    let b = r.breakdown.unwrap();
    assert_eq!((b.anon, b.kernel), (2220 * KIB, Some(3143468 * KIB)));
    assert_eq!(r.dominant, Some(Component::Kernel));
}

#[test]
fn node_allocatable_and_qos_levels() {
    let kubepods = report(
        "memory: usage 7464436kB, limit 7464436kB, failcnt 1133
Memory cgroup stats for /kubepods.slice:
anon 7601418240
file 24576
shmem 8192
oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=x,mems_allowed=0,oom_memcg=/kubepods.slice,task_memcg=/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poda5d8fdd1_1369_469e_8a7d_2c1047529435.slice/cri-containerd-9192cb33411ff69d015a3577db136757f5b145064a1703efea3d0e12e8a64987.scope,task=bash,pid=7788,uid=0
",
    );
    assert_eq!(kubepods.scope, OomScope::Kubepods);
    assert_eq!(kubepods.qos_class, Some(QosClass::BestEffort));
    assert_eq!(
        kubepods.pod_uid.as_deref(),
        Some("a5d8fdd1-1369-469e-8a7d-2c1047529435")
    );
    let b = kubepods.breakdown.unwrap();
    assert_eq!(
        (b.anon, b.shmem, b.file, b.kernel),
        (7601418240, 8192, 16384, None)
    );
    assert_eq!(kubepods.dominant, Some(Component::Anon));
    let qos = report(
        "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/kubepods/burstable,task_memcg=/kubepods/burstable/pod0f8a3c51-5d0e-4c3a-9b7e-2a1d6f4e8c90/3b9d1e2f4a5c6b7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d,task=a,pid=1,uid=0\n",
    );
    assert_eq!(qos.scope, OomScope::Qos);
    assert_eq!(qos.breakdown, None, "nothing printed, no rss either");
}

#[test]
fn global_oom_from_node_counters_and_without_any() {
    let with_nodes = report(
        "a invoked oom-killer: gfp_mask=0x280da, order=0, oom_score_adj=0
Mem-Info:
Node 0 DMA32 free:44592kB min:44640kB active_anon:1615456kB inactive_anon:224kB active_file:140kB inactive_file:276kB shmem:276kB slab_reclaimable:6524kB slab_unreclaimable:7660kB kernel_stack:592kB pagetables:5680kB
Out of memory: Kill process 1532 (badsysprogram) score 919 or sacrifice child
Killed process 1532 (badsysprogram) total-vm:1641388kB, anon-rss:1595164kB, file-rss:76kB
",
    );
    assert_eq!(with_nodes.scope, OomScope::Node);
    let b = with_nodes.breakdown.unwrap();
    assert_eq!(b.source, BreakdownSource::NodeStats);
    assert_eq!(
        (b.anon, b.shmem, b.file),
        ((1615456 + 224 - 276) * KIB, 276 * KIB, 416 * KIB)
    );
    assert_eq!(b.kernel, Some((6524 + 7660 + 592 + 5680) * KIB));
    assert_eq!(with_nodes.dominant, Some(Component::Anon));
    assert_eq!(
        (with_nodes.pod_uid.as_ref(), with_nodes.limit_hit.as_ref()),
        (None, None)
    );

    let bare = report("Out of memory: Killed process 3035 (oomprocs) total-vm:1056800kB, anon-rss:8kB, file-rss:4kB, shmem-rss:0kB\n");
    assert_eq!(bare.scope, OomScope::Node);
    let b = bare.breakdown.unwrap();
    assert_eq!(
        (b.source, b.anon, b.file),
        (BreakdownSource::VictimRss, 8 * KIB, 4 * KIB)
    );
}

#[test]
fn other_cgroup_kernel_memory_despite_constraint_none() {
    let r = report(
        "memory: usage 1024kB, limit 1024kB, failcnt 75131
swap: usage 0kB, limit 9007199254740988kB, failcnt 0
Memory cgroup stats for /foo:
anon 0
file 0
kernel_stack 36864
slab 274432
sock 0
shmem 0
oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),oom_memcg=/foo,task_memcg=/foo,task=stress,pid=210,uid=0
Memory cgroup out of memory: Killed process 210 (stress) total-vm:265768kB, anon-rss:0kB, file-rss:224kB, shmem-rss:0kB
",
    );
    assert_eq!(r.scope, OomScope::Cgroup);
    let b = r.breakdown.unwrap();
    assert_eq!(b.kernel, Some(36864 + 274432));
    assert_eq!(r.dominant, Some(Component::Kernel));
}

#[test]
fn tmpfs_fills_a_container_and_memory_plus_swap_is_the_limit_hit() {
    let r = report(
        "Task in /docker/2e08 killed as a result of limit of /docker/2e08
memory: usage 32461120kB, limit 33554432kB, failcnt 0
memory+swap: usage 35651584kB, limit 35651584kB, failcnt 24892068
kmem: usage 471440kB, limit 9007199254740988kB, failcnt 0
Memory cgroup stats for /docker/2e08: cache:28030012KB rss:3958288KB rss_huge:0KB shmem:28013264KB mapped_file:25212KB
Memory cgroup out of memory: Killed process 7093 (java) total-vm:11451920kB, anon-rss:1968776kB, file-rss:0kB, shmem-rss:16356kB
",
    );
    assert_eq!(
        r.scope,
        OomScope::Cgroup,
        "a shortened id names no container"
    );
    let hit = r.limit_hit.unwrap();
    assert_eq!(
        (hit.counter.as_str(), hit.limit),
        ("memory+swap", 35651584 * KIB)
    );
    let b = r.breakdown.unwrap();
    assert_eq!(
        (b.shmem, b.file),
        (28013264 * KIB, (28030012 - 28013264) * KIB)
    );
    assert_eq!(r.dominant, Some(Component::Shmem));
}

#[test]
fn counters_next_to_the_log() {
    let r = report(CONTAINER_V1);
    let container = r.kill.task_memcg.clone().unwrap();
    let kills = |path, oom_kill, oom_kill_local| CgroupKills {
        path,
        oom_kill: Some(oom_kill),
        oom_kill_local,
        oom: None,
    };
    let cgroups = [
        kills("/", 3, Some(0)),
        kills("/t", 3, Some(0)),
        kills(&container, 2, Some(2)),
        kills("/gone/elsewhere", 1, None),
    ];
    let check = check_counters(std::slice::from_ref(&r), Some(5), cgroups);
    assert_eq!((check.log_events, check.missing_from_log()), (1, 4));
    let rows: Vec<(&str, u64, bool, usize)> = check
        .cgroups
        .iter()
        .map(|c| (c.path.as_str(), c.oom_kill, c.hierarchical, c.log_events))
        .collect();
    assert_eq!(
        rows,
        [
            (container.as_str(), 2, false, 1),
            ("/gone/elsewhere", 1, true, 0)
        ]
    );
    assert!(is_below("/a/b", "/a") && !is_below("/ab", "/a"));
}
