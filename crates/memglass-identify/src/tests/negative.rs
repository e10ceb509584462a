//! Look-alikes that must not be read as workloads (or only as far as their names really go),
//! and the input forms identify() tolerates.

use super::{check, Row};

pub(super) fn rows() -> Vec<Row> {
    table! {
        // systemd mount units embedding a container id or a pod UID: google/cadvisor#1438
        // (docker's shm mount under /system.slice, which cAdvisor's unanchored regexp took for a
        // container) and kubelet's secret volume mount for the pod of kubernetes/kubernetes#17145
        // (its path systemd-escaped into a unit name).
        "/system.slice/cbss-app-apps-docker-containers-5a2735a98e0bce4f62cdfe676d891813d25e530b2ccca14722e7f4e3e186924e-shm.mount"
            => Other, -, -, -, -;
        "/system.slice/var-lib-kubelet-pods-24c42a99\\x2d8818\\x2d11e5\\x2db321\\x2d005056b45392-volumes-kubernetes.io\\x7esecret-default\\x2dtoken\\x2dt6sw8.mount"
            => Other, -, -, -, -;

        // cri-o/cri-o#842: CRI-O double-encoding kubelet's slices; not kubelet's layout, so
        // nothing below it is a pod.
        "/kubepods.slice.slice/kubepods.slice-kubepods_burstable.slice.slice/kubepods.slice-kubepods_burstable.slice-kubepods_burstable_pod12723d69_9268_11e7_84d0_c85b76cda386.slice.slice"
            => Slice, -, -, -, -;

        // containerd/containerd#5226: a misplaced container whose "id" is a name, not 64 hex.
        "/system.slice/containerd.service/kubepods-burstable-pod7a875b5c_4d3c_4345_ac0f_5c847d8d7129.slice:cri-containerd:webapp"
            => Other, -, -, -, -;

        // Names kubelet never creates: a `guaranteed` QoS level, a pod that is not a UID, the
        // other driver's UID separator, a pod slice that does not extend its parent's name, a
        // `-kubepods.slice` not inside its root slice.
        "/kubepods.slice/kubepods-guaranteed.slice" => Other, -, -, -, -;
        "/kubepods/guaranteed" => Other, -, -, -, -;
        "/kubepods/burstable/pod12345" => Other, Burstable, -, -, -;
        "/kubepods/burstable/pod6a6f0656_d640_11e8_a966_00505691e4af" => Other, Burstable, -, -, -;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0330b2c1-a15b-4cdd-b5e5-72d4a90bee82.slice"
            => Other, Burstable, -, -, -;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod0330b2c1_a15b_4cdd_b5e5_72d4a90bee82.slice"
            => Other, Burstable, -, -, -;
        "/kubepods.slice/kubepods-burstable.slice/kubepods-pod0330b2c1_a15b_4cdd_b5e5_72d4a90bee82.slice"
            => Other, Burstable, -, -, -;
        "/kubepods.slice/kubepods-burstable-pod0330b2c1_a15b_4cdd_b5e5_72d4a90bee82.slice"
            => Other, -, -, -, -;
        "/my-kubepods.slice" => Slice, -, -, -, -;
        "/system.slice/kubelet-kubepods.slice" => Slice, -, -, -, -;

        // Container look-alikes below a pod: upper-case, short, `.mount` and unprefixed-`.scope`
        // ids stay pod-level "other".
        "/kubepods/burstable/pod77f06c5c-4593-43e9-b970-987f6ecb825b/A684BBDD0C4B6937B5ECE9713BED661305AB0DE570EB12B7C28A032AAF602937"
            => Other, Burstable, "77f06c5c-4593-43e9-b970-987f6ecb825b", -, -;
        "/kubepods/burstable/pod77f06c5c-4593-43e9-b970-987f6ecb825b/a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf60293"
            => Other, Burstable, "77f06c5c-4593-43e9-b970-987f6ecb825b", -, -;
        "/kubepods/burstable/pod77f06c5c-4593-43e9-b970-987f6ecb825b/a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937.scope"
            => Other, Burstable, "77f06c5c-4593-43e9-b970-987f6ecb825b", -, -;
        "/kubepods/burstable/pod77f06c5c-4593-43e9-b970-987f6ecb825b/cri-containerd-a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937.mount"
            => Other, Burstable, "77f06c5c-4593-43e9-b970-987f6ecb825b", -, -;

        // Container look-alikes outside Kubernetes: a bare id under a parent that names no
        // runtime, a non-hex name under /docker, a truncated docker scope, a named `ctr run`
        // container, an empty LXC name.
        "/system.slice/7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8" => Other, -, -, -, -;
        "/docker/notacontainer" => Other, -, -, -, -;
        "/system.slice/docker-585a595ccf7ccf0d30234adeae0e21f3d31d2a00e90a8824610877b6069bf0d.scope" => Other, -, -, -, -;
        "/default/redis" => Other, -, -, -, -;
        "/lxc.payload." => Other, -, -, -, -;
        "/system.slice/.service" => Other, -, -, -, -;

        // An upper-case pod UID (only possible from a hand-written static-pod `metadata.uid`)
        // is accepted and lower-cased.
        "/kubepods/burstable/pod6A6F0656-D640-11E8-A966-00505691E4AF"
            => Pod, Burstable, "6a6f0656-d640-11e8-a966-00505691e4af", -, -;

        // Input forms: no components at all is the root; cAdvisor's `kubepods.slice/` form
        // (kubernetes/kubernetes#59993); cgroup v2's ` (deleted)` suffix in /proc/<pid>/cgroup.
        "" => Root, -, -, -, -;
        "//" => Root, -, -, -, -;
        "kubepods.slice/" => Kubepods, -, -, -, -;
        "/kubepods/burstable/pod77f06c5c-4593-43e9-b970-987f6ecb825b (deleted)"
            => Pod, Burstable, "77f06c5c-4593-43e9-b970-987f6ecb825b", -, -;
    }
}

#[test]
fn look_alikes_and_input_forms() {
    check(&rows());
}
