//! Table-driven tests: real cgroup paths, each group with a comment naming where such paths
//! come from (GitHub issues quoting `/proc/<pid>/cgroup`, `systemd-cgls` or OOM reports, and
//! the test suites of cAdvisor, Falco and OpenTelemetry eBPF Instrumentation).
//!
//! A row reads `path => kind, qos, pod_uid, container_id, runtime;` with `-` for `None`.

use crate::{identify, CgroupKind, PathIdentity, QosClass, Runtime};

/// One expectation: a path and the identity it must get.
pub(super) struct Row {
    pub(super) path: &'static str,
    pub(super) want: PathIdentity,
}

macro_rules! opt_str {
    (-) => {
        None
    };
    ($s:literal) => {
        Some(String::from($s))
    };
}

macro_rules! opt_qos {
    (-) => {
        None
    };
    ($q:ident) => {
        Some($crate::QosClass::$q)
    };
}

macro_rules! opt_runtime {
    (-) => {
        None
    };
    ($r:ident) => {
        Some($crate::Runtime::$r)
    };
}

/// Builds a `Vec<Row>` from `path => Kind, qos, "uid", "id", Runtime;` lines (`-` = `None`).
macro_rules! table {
    ($($path:literal => $kind:ident, $qos:tt, $uid:tt, $ctr:tt, $rt:tt;)*) => {
        vec![$($crate::tests::Row {
            path: $path,
            want: $crate::PathIdentity {
                kind: $crate::CgroupKind::$kind,
                qos_class: opt_qos!($qos),
                pod_uid: opt_str!($uid),
                container_id: opt_str!($ctr),
                runtime: opt_runtime!($rt),
            },
        }),*]
    };
}

// Declared after the macros so that they are in textual scope there.
mod kubelet_cgroupfs;
mod kubelet_systemd;
mod negative;
mod standalone;

/// Checks every row and reports all mismatches at once.
pub(super) fn check(rows: &[Row]) {
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let got = identify(row.path);
            (got != row.want)
                .then(|| format!("{}\n  want {:?}\n  got  {:?}", row.path, row.want, got))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// Serialization uses the same names as `as_str` and `Display` (checked through serde's
/// `Deserialize`, derived with the same rename rules as `Serialize`).
#[test]
fn names_match_serde_and_display() {
    use serde::de::value::{Error, StrDeserializer};
    use serde::de::{Deserialize, IntoDeserializer};

    fn parse<'de, T: Deserialize<'de>>(s: &'de str) -> Option<T> {
        let de: StrDeserializer<'de, Error> = s.into_deserializer();
        T::deserialize(de).ok()
    }

    let kinds = [
        (CgroupKind::Root, "root"),
        (CgroupKind::Kubepods, "kubepods"),
        (CgroupKind::Qos, "qos"),
        (CgroupKind::Pod, "pod"),
        (CgroupKind::Container, "container"),
        (CgroupKind::Service, "service"),
        (CgroupKind::Slice, "slice"),
        (CgroupKind::Other, "other"),
    ];
    for (kind, name) in kinds {
        assert_eq!(kind.as_str(), name);
        assert_eq!(kind.to_string(), name);
        assert_eq!(parse::<CgroupKind>(name), Some(kind), "{name}");
    }
    let classes = [
        (QosClass::Guaranteed, "Guaranteed"),
        (QosClass::Burstable, "Burstable"),
        (QosClass::BestEffort, "BestEffort"),
    ];
    for (qos, name) in classes {
        assert_eq!(qos.as_str(), name);
        assert_eq!(qos.to_string(), name);
        assert_eq!(parse::<QosClass>(name), Some(qos), "{name}");
    }
    let runtimes = [
        (Runtime::Containerd, "containerd"),
        (Runtime::CriO, "cri-o"),
        (Runtime::Docker, "docker"),
        (Runtime::Podman, "podman"),
        (Runtime::Lxc, "lxc"),
    ];
    for (runtime, name) in runtimes {
        assert_eq!(runtime.as_str(), name);
        assert_eq!(runtime.to_string(), name);
        assert_eq!(parse::<Runtime>(name), Some(runtime), "{name}");
    }
}

/// Invariants over every row of every table: a container id only with a runtime or below a
/// pod, a QoS class whenever there is a pod, and identify() is stable under the input forms it
/// promises to ignore (no leading slash, trailing slash, ` (deleted)`).
#[test]
fn invariants_over_all_tables() {
    let all = [
        kubelet_cgroupfs::rows(),
        kubelet_systemd::rows(),
        standalone::rows(),
        negative::rows(),
    ];
    for row in all.iter().flat_map(|rows| rows.iter()) {
        let want = &row.want;
        if want.pod_uid.is_some() {
            assert!(want.qos_class.is_some(), "pod without QoS: {}", row.path);
        }
        if want.container_id.is_some() {
            assert!(
                want.runtime.is_some() || want.pod_uid.is_some(),
                "container id without runtime or pod: {}",
                row.path
            );
        }
        if row.path.ends_with(" (deleted)") {
            continue;
        }
        let bare = row.path.trim_start_matches('/');
        for variant in [
            bare.to_owned(),
            format!("{}/", row.path),
            format!("{} (deleted)", row.path),
        ] {
            assert_eq!(identify(&variant), identify(row.path), "{variant:?}");
        }
    }
}
