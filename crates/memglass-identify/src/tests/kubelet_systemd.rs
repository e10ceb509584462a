//! kubelet with the systemd driver (EKS/AKS/OpenShift/kubeadm v2 nodes): nested slices with
//! UIDs' dashes escaped to underscores, containers in `<runtime>-<id>.scope` units.

use super::{check, Row};

pub(super) fn rows() -> Vec<Row> {
    table! {
        // istio/istio#42734: kernel OOM report ("Task in … killed as a result of limit of …")
        // on Alibaba Cloud, dockershim with the systemd driver.
        "/kubepods.slice" => Kubepods, -, -, -, -;
        "/kubepods.slice/kubepods-burstable.slice" => Qos, Burstable, -, -, -;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0330b2c1_a15b_4cdd_b5e5_72d4a90bee82.slice"
            => Pod, Burstable, "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82", -, -;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0330b2c1_a15b_4cdd_b5e5_72d4a90bee82.slice/docker-b27201334a41cd0749d053b18378d7ea65617b8e26277197ea25c974da1a5a8a.scope"
            => Container, Burstable, "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82", "b27201334a41cd0749d053b18378d7ea65617b8e26277197ea25c974da1a5a8a", Docker;

        // netdata/netdata#4868: cgroup tree of a containerd node; the pod named by 32 hex digits
        // is a static pod (kubelet's MD5 UID), which has no dashes to escape.
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod55c6c714_b240_4dec_9a45_57b61696ab6e.slice/cri-containerd-2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36.scope"
            => Container, Burstable, "55c6c714-b240-4dec-9a45-57b61696ab6e", "2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36", Containerd;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8daa50c3a64c9ff60bb9eab7b44b56fd.slice"
            => Pod, Burstable, "8daa50c3a64c9ff60bb9eab7b44b56fd", -, -;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8daa50c3a64c9ff60bb9eab7b44b56fd.slice/cri-containerd-2884d57c0e100d7a9a2f9487ce0bc2986bca3430e988af7a4865aff061f51ac5.scope"
            => Container, Burstable, "8daa50c3a64c9ff60bb9eab7b44b56fd", "2884d57c0e100d7a9a2f9487ce0bc2986bca3430e988af7a4865aff061f51ac5", Containerd;

        // CRI-O: opencontainers/runc#4620 (`systemctl status` of a crio-conmon scope, placed in
        // the pod slice) and containers/conmon#545 (the container's scope); Falco's crio_systemd
        // test; openshift/microshift#697 (`systemd-cgls`, the pause container of a pod).
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod207aaad1_659f_4db8_88e0_46e0cdcc3004.slice/crio-conmon-32da98c8522068be05a7510a3eddb09cad6ed2f03286180d0e931d0d0b6224a6.scope"
            => Other, Burstable, "207aaad1-659f-4db8-88e0-46e0cdcc3004", "32da98c8522068be05a7510a3eddb09cad6ed2f03286180d0e931d0d0b6224a6", CriO;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5ed8a4f6_db4e_4b7e_a87c_67da390d031d.slice/crio-c50666e24d9091a348a831015800cd8c603e3fb9ca23958b249f74e17487f21d.scope"
            => Container, Burstable, "5ed8a4f6-db4e-4b7e-a87c-67da390d031d", "c50666e24d9091a348a831015800cd8c603e3fb9ca23958b249f74e17487f21d", CriO;
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod63b3ebfc_2890_11e9_8154_16bf8ef8d9dc.slice/crio-17d8c9eacc629f9945f304d89e9708c0c619649a484a215b240628319548a09f.scope"
            => Container, BestEffort, "63b3ebfc-2890-11e9-8154-16bf8ef8d9dc", "17d8c9eacc629f9945f304d89e9708c0c619649a484a215b240628319548a09f", CriO;
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podc8bad552_5c99_4d4f_b71c_c426c0cde014.slice/crio-d61328552873b5145655fa7918c7fbbce53dbe076d6c2b5fc95d660709af29c2.scope"
            => Container, BestEffort, "c8bad552-5c99-4d4f-b71c-c426c0cde014", "d61328552873b5145655fa7918c7fbbce53dbe076d6c2b5fc95d660709af29c2", CriO;

        // OpenTelemetry eBPF Instrumentation statagg tests, MicroShift (CRI-O + crun, systemd):
        // crun puts the processes in a `container` sub-cgroup of the scope (nested → other);
        // CRI-O's sandbox cgroup has no `.scope`; Guaranteed pods sit directly in kubepods.slice.
        "/kubepods.slice/kubepods-besteffort.slice"
            => Qos, BestEffort, -, -, -;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice/crio-f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31.scope/container"
            => Other, Burstable, "73dc8baf-43a0-413e-aac2-5eb0868f6c1a", "f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31", CriO;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice/crio-c81572302e4a00c05810fc436ebc0952ed7a0806c58a2b7eddbfb58de4539206"
            => Container, Burstable, "73dc8baf-43a0-413e-aac2-5eb0868f6c1a", "c81572302e4a00c05810fc436ebc0952ed7a0806c58a2b7eddbfb58de4539206", CriO;
        "/kubepods.slice/kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice"
            => Pod, Guaranteed, "2d51509a-fcf0-41cc-b535-57cfeeaf73d1", -, -;
        "/kubepods.slice/kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice/crio-0853fad78812e955b92d871d8d597d9bc598e34320c9edbfab0a73eacf150145.scope/container"
            => Other, Guaranteed, "2d51509a-fcf0-41cc-b535-57cfeeaf73d1", "0853fad78812e955b92d871d8d597d9bc598e34320c9edbfab0a73eacf150145", CriO;
        "/kubepods.slice/kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice/crio-conmon-0853fad78812e955b92d871d8d597d9bc598e34320c9edbfab0a73eacf150145.scope"
            => Other, Guaranteed, "2d51509a-fcf0-41cc-b535-57cfeeaf73d1", "0853fad78812e955b92d871d8d597d9bc598e34320c9edbfab0a73eacf150145", CriO;

        // kind: kubelet with `--cgroup-root=/kubelet` and the systemd driver, so every slice name
        // starts with `kubelet-` (containerd/nri#227 log of a kind worker; the same suite's kind
        // fixture for the Guaranteed pod).
        "/kubelet.slice" => Slice, -, -, -, -;
        "/kubelet.slice/kubelet-kubepods.slice" => Kubepods, -, -, -, -;
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice"
            => Qos, BestEffort, -, -, -;
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod1e597579_417e_482f_bf65_5fe170c3aebd.slice/cri-containerd-d7dfb4a21fe1703a8537e60d5af248af729315d187b24a538102d14874c8117d.scope"
            => Container, BestEffort, "1e597579-417e-482f-bf65-5fe170c3aebd", "d7dfb4a21fe1703a8537e60d5af248af729315d187b24a538102d14874c8117d", Containerd;
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice"
            => Pod, Guaranteed, "2d51509a-fcf0-41cc-b535-57cfeeaf73d1", -, -;

        // Nodes that are themselves containers: kubernetes/minikube#11280 (`systemctl status
        // kubepods.slice` inside a docker-driver minikube node, CRI-O) and leptonai/gpud#70
        // (kernel `oom-kill:` line from a node running in an LXC container).
        "/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/kubepods.slice"
            => Kubepods, -, -, -, -;
        "/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/crio-0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0.scope"
            => Container, BestEffort, "2ca4a155-3599-498d-bb9d-4446693fa3ea", "0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0", CriO;
        "/lxc.payload.ny2g2r5hh3-lxc/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podeded8c65_6e8e_4c6e_a889_3e427565c740.slice"
            => Pod, Burstable, "eded8c65-6e8e-4c6e-a889-3e427565c740", -, -;
        "/lxc.payload.ny2g2r5hh3-lxc/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podeded8c65_6e8e_4c6e_a889_3e427565c740.slice/cri-containerd-ec9ee26695deb4cc72bc665efff1cf3a03fdfb12f1303e02fe9252985e084a95.scope"
            => Container, Burstable, "eded8c65-6e8e-4c6e-a889-3e427565c740", "ec9ee26695deb4cc72bc665efff1cf3a03fdfb12f1303e02fe9252985e084a95", Containerd;

        // Misconfigured nodes (kubelet systemd driver, containerd on cgroupfs): runc takes the
        // `slice:prefix:id` cgroupsPath literally. containerd/containerd#5226 (`ll` of the
        // directory under containerd.service) and open-telemetry/opentelemetry-java#4507
        // (`/proc/self/cgroup`, where some v1 controllers show it at the root).
        "/system.slice/containerd.service/kubepods-burstable-pod7a875b5c_4d3c_4345_ac0f_5c847d8d7129.slice:cri-containerd:ee05f876e981d258209f91f25f139f7abc13a0246a5f343298572602fea8c7bb"
            => Container, Burstable, "7a875b5c-4d3c-4345-ac0f-5c847d8d7129", "ee05f876e981d258209f91f25f139f7abc13a0246a5f343298572602fea8c7bb", Containerd;
        "/kubepods-besteffort-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice:cri-containerd:ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459"
            => Container, BestEffort, "0125ec2f-b64a-4868-8f5b-94b56cbab864", "ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459", Containerd;
    }
}

#[test]
fn kubelet_systemd_driver() {
    check(&rows());
}
