//! kubelet with the cgroupfs driver (GKE/COS, Talos, many kubeadm v1 nodes): plain
//! directories `kubepods[/<qos>]/pod<uid>/<container>`.

use super::{check, Row};

pub(super) fn rows() -> Vec<Row> {
    table! {
        // Talos PR siderolabs/talos#3950: cAdvisor `id` labels from /metrics/cadvisor, containerd
        // with the cgroupfs driver (bare container ids, runtime unknown from the path).
        "/kubepods" => Kubepods, -, -, -, -;
        "/kubepods/besteffort" => Qos, BestEffort, -, -, -;
        "/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363"
            => Pod, BestEffort, "18d34ce4-50c7-452c-9df8-53c4a3fdf363", -, -;
        "/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363/a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937"
            => Container, BestEffort, "18d34ce4-50c7-452c-9df8-53c4a3fdf363", "a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937", -;

        // Talos issue siderolabs/talos#12526: the OOM controller's victim cgroup (a Burstable pod).
        "/kubepods/burstable" => Qos, Burstable, -, -, -;
        "/kubepods/burstable/pod77f06c5c-4593-43e9-b970-987f6ecb825b"
            => Pod, Burstable, "77f06c5c-4593-43e9-b970-987f6ecb825b", -, -;

        // containerd/cri#1018: a Guaranteed pod directly under kubepods, listed from
        // /sys/fs/cgroup/memory (cgroup v1, containerd cgroupfs).
        "/kubepods/pod6a6f0656-d640-11e8-a966-00505691e4af"
            => Pod, Guaranteed, "6a6f0656-d640-11e8-a966-00505691e4af", -, -;
        "/kubepods/pod6a6f0656-d640-11e8-a966-00505691e4af/14a2191736e10e8023b36f851b47ea758c227d1feef40ce94f003ef08f87f841"
            => Container, Guaranteed, "6a6f0656-d640-11e8-a966-00505691e4af", "14a2191736e10e8023b36f851b47ea758c227d1feef40ce94f003ef08f87f841", -;

        // Falco's libsinsp container_cgroup tests (containerd_cgroupfs, crio_cgroupfs): CRI-O
        // prefixes its cgroupfs directories with `crio-` (cri-o/cri-o#812).
        "/kubepods/besteffort/podac04f3f2-1f2c-11e9-b015-1ebee232acfa/605439acbd4fb18c145069289094b17f17e0cfa938f78012d4960bc797305f22"
            => Container, BestEffort, "ac04f3f2-1f2c-11e9-b015-1ebee232acfa", "605439acbd4fb18c145069289094b17f17e0cfa938f78012d4960bc797305f22", -;
        "/kubepods/besteffort/pod63b3ebfc-2890-11e9-8154-16bf8ef8d9dc/crio-73bfe475650de66df8e2affdc98d440dcbe84f8df83b6f75a68a82eb7026136a"
            => Container, BestEffort, "63b3ebfc-2890-11e9-8154-16bf8ef8d9dc", "73bfe475650de66df8e2affdc98d440dcbe84f8df83b6f75a68a82eb7026136a", CriO;

        // cAdvisor container/crio/factory_test.go: CRI-O's monitor `crio-conmon-<id>` sits in the
        // pod cgroup beside the container (a helper: kind other, container id kept); a `.scope`
        // name is the container. The `.mount`, `no-crio-conmon-` and short-id rows must not be
        // containers; they are pod-level "other".
        "/kubepods/pod068e8fa0-9213-11e7-a01f-507b9d4141fa/crio-81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f"
            => Container, Guaranteed, "068e8fa0-9213-11e7-a01f-507b9d4141fa", "81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f", CriO;
        "/kubepods/pod068e8fa0-9213-11e7-a01f-507b9d4141fa/crio-81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f.scope"
            => Container, Guaranteed, "068e8fa0-9213-11e7-a01f-507b9d4141fa", "81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f", CriO;
        "/kubepods/pod068e8fa0-9213-11e7-a01f-507b9d4141fa/crio-conmon-81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f"
            => Other, Guaranteed, "068e8fa0-9213-11e7-a01f-507b9d4141fa", "81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f", CriO;
        "/kubepods/pod068e8fa0-9213-11e7-a01f-507b9d4141fa/crio-81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f.mount"
            => Other, Guaranteed, "068e8fa0-9213-11e7-a01f-507b9d4141fa", -, -;
        "/kubepods/pod068e8fa0-9213-11e7-a01f-507b9d4141fa/no-crio-conmon-81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f"
            => Other, Guaranteed, "068e8fa0-9213-11e7-a01f-507b9d4141fa", -, -;
        "/kubepods/pod068e8fa0-9213-11e7-a01f-507b9d4141fa/crio-990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75"
            => Other, Guaranteed, "068e8fa0-9213-11e7-a01f-507b9d4141fa", -, -;

        // OpenTelemetry eBPF Instrumentation statagg tests, GKE cgroupfs fixture: a static pod,
        // whose UID is kubelet's 32-hex MD5 of the manifest, with a CRI-O container.
        "/kubepods/podb53dfa9e2dc9b890f7fadb2770857b03"
            => Pod, Guaranteed, "b53dfa9e2dc9b890f7fadb2770857b03", -, -;
        "/kubepods/podb53dfa9e2dc9b890f7fadb2770857b03/crio-bb959773d06ad1a07d469bced637bbc49b6f8573c493fd0548d7f5810eb3e5a8"
            => Container, Guaranteed, "b53dfa9e2dc9b890f7fadb2770857b03", "bb959773d06ad1a07d469bced637bbc49b6f8573c493fd0548d7f5810eb3e5a8", CriO;

        // Same suite, kind with `--cgroup-root=/kubelet` and the cgroupfs driver; Talos also
        // runs kubelet itself in `/kubelet` (siderolabs/talos#3950).
        "/kubelet" => Other, -, -, -, -;
        "/kubelet/kubepods" => Kubepods, -, -, -, -;
        "/kubelet/kubepods/burstable/pod73dc8baf-43a0-413e-aac2-5eb0868f6c1a"
            => Pod, Burstable, "73dc8baf-43a0-413e-aac2-5eb0868f6c1a", -, -;
        "/kubelet/kubepods/burstable/pod73dc8baf-43a0-413e-aac2-5eb0868f6c1a/f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31"
            => Container, Burstable, "73dc8baf-43a0-413e-aac2-5eb0868f6c1a", "f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31", -;

        // memglass's own tier-4 tests (PRODUCT.md §5): containerd CRI sandboxes created with a
        // kubelet-style cgroup parent under a unique test prefix.
        "/memglass-test-123/kubepods/burstable/pod4a163a05-439d-484b-8e53-2968bc15824f"
            => Pod, Burstable, "4a163a05-439d-484b-8e53-2968bc15824f", -, -;
        "/memglass-test-123/kubepods/burstable/pod4a163a05-439d-484b-8e53-2968bc15824f/cde6dfaf5007ed65aad2d6aed72af91b0f3d95813492f773286e29ae145d20f4"
            => Container, Burstable, "4a163a05-439d-484b-8e53-2968bc15824f", "cde6dfaf5007ed65aad2d6aed72af91b0f3d95813492f773286e29ae145d20f4", -;

        // A container that creates its own sub-cgroups (systemd or a nested runtime inside it,
        // cgroup v1 `/proc/<pid>/cgroup` as seen from the host): nested → other, identity kept.
        "/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363/a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937/init.scope"
            => Other, BestEffort, "18d34ce4-50c7-452c-9df8-53c4a3fdf363", "a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937", -;

        // kubelet's pod cgroup as seen on a kind/minikube node running in docker with cgroup v1
        // (the host sees the node container's path first, as in kubernetes/minikube#11280).
        "/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/kubepods/besteffort/pod2ca4a155-3599-498d-bb9d-4446693fa3ea"
            => Pod, BestEffort, "2ca4a155-3599-498d-bb9d-4446693fa3ea", -, -;
    }
}

#[test]
fn kubelet_cgroupfs_driver() {
    check(&rows());
}
