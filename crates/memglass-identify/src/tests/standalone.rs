//! Hosts without Kubernetes (or the parts of a node outside kubepods): docker, podman,
//! containerd, LXC, and systemd's own units.

use super::{check, Row};

pub(super) fn rows() -> Vec<Row> {
    table! {
        // Docker, cgroupfs driver (default parent /docker): Falco's docker_cgroupfs test and
        // google/cadvisor#1150 (cAdvisor log naming the container cgroup).
        "/docker/7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8"
            => Container, -, -, "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8", Docker;
        "/docker/4d14e41495799d52795a795a5182043fa456389c81ecd77ba8d68f91f595ad65"
            => Container, -, -, "4d14e41495799d52795a795a5182043fa456389c81ecd77ba8d68f91f595ad65", Docker;
        "/docker" => Other, -, -, -, -;

        // Docker, systemd driver: google/cadvisor#385 (system.slice), moby/moby#4450 (the
        // original systemd-cgls with system-docker.slice), Falco's docker_systemd test.
        "/system.slice/docker-585a595ccf7ccf0d30234adeae0e21f3d31d2a00e90a8824610877b6069bf0d7.scope"
            => Container, -, -, "585a595ccf7ccf0d30234adeae0e21f3d31d2a00e90a8824610877b6069bf0d7", Docker;
        "/system.slice/system-docker.slice/docker-d6b15f04feb95083acea4b9caa6e59f8ebe67e3e3cf9cb8c59fad543490ee3ef.scope"
            => Container, -, -, "d6b15f04feb95083acea4b9caa6e59f8ebe67e3e3cf9cb8c59fad543490ee3ef", Docker;
        "/docker.slice/docker-7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8.scope"
            => Container, -, -, "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8", Docker;
        "/system.slice/docker.service" => Service, -, -, -, -;

        // systemd running inside a docker container creates its own tree below the scope
        // (moby/moby#42275, "Failed to create /init.scope control group"), and Docker-in-Docker
        // nests /docker/<id> again: nested → other, the outer container's identity.
        "/system.slice/docker-585a595ccf7ccf0d30234adeae0e21f3d31d2a00e90a8824610877b6069bf0d7.scope/init.scope"
            => Other, -, -, "585a595ccf7ccf0d30234adeae0e21f3d31d2a00e90a8824610877b6069bf0d7", Docker;
        "/docker/7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8/docker/4d14e41495799d52795a795a5182043fa456389c81ecd77ba8d68f91f595ad65"
            => Other, -, -, "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8", Docker;

        // Podman, rootful with systemd: containers/podman#507 (`systemd-cgls` with the container
        // scope, its conmon scope and a service in machine.slice), containers/crun#678, and
        // containers/podman#8290 (crun's `/container` sub-cgroup).
        "/machine.slice" => Slice, -, -, -, -;
        "/machine.slice/libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope"
            => Container, -, -, "0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a", Podman;
        "/machine.slice/libpod-conmon-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope"
            => Other, -, -, "0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a", Podman;
        "/machine.slice/redis.service" => Service, -, -, -, -;
        "/machine.slice/libpod-7b844e8928936172c0319e274723585860dcae226172a0268929dae31aac22a8.scope"
            => Container, -, -, "7b844e8928936172c0319e274723585860dcae226172a0268929dae31aac22a8", Podman;
        "/machine.slice/libpod-7b844e8928936172c0319e274723585860dcae226172a0268929dae31aac22a8.scope/container"
            => Other, -, -, "7b844e8928936172c0319e274723585860dcae226172a0268929dae31aac22a8", Podman;

        // Podman with cgroupfs (containers/podman#826: /libpod_parent/libpod-<id>, with `ctr`
        // and `conmon` sub-cgroups in early versions; `conmon` directly under the parent later).
        "/libpod_parent/libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a"
            => Container, -, -, "0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a", Podman;
        "/libpod_parent/libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a/ctr"
            => Other, -, -, "0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a", Podman;
        "/libpod_parent/conmon" => Other, -, -, -, -;

        // Podman rootless: containers/podman#25009 (a podman pod's slice in the user manager,
        // and its container's scope; podman pods are not Kubernetes pods: no pod_uid).
        "/user.slice/user-1001.slice/user@1001.service/user.slice/user-libpod_pod_e56caed670e029c7db8c6fdf9b39428bfc087d10fd3bb533c1b39b40a45ae990.slice"
            => Slice, -, -, -, -;
        "/user.slice/user-1001.slice/user@1001.service/user.slice/user-libpod_pod_e56caed670e029c7db8c6fdf9b39428bfc087d10fd3bb533c1b39b40a45ae990.slice/libpod-10a4006558b6cb9928bafcfb88772d92001b40cab6fd9f82069e68be404190ca.scope"
            => Container, -, -, "10a4006558b6cb9928bafcfb88772d92001b40cab6fd9f82069e68be404190ca", Podman;
        "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-10a4006558b6cb9928bafcfb88772d92001b40cab6fd9f82069e68be404190ca.scope"
            => Container, -, -, "10a4006558b6cb9928bafcfb88772d92001b40cab6fd9f82069e68be404190ca", Podman;

        // containerd outside kubepods: containerd/cri#290 (CRI sandbox with a non-kubelet
        // cgroup parent), the Rootless kubelet patch (kubernetes/kubernetes, feature gate
        // Rootless, no QoS cgroups), nerdctl's systemd scopes (falcosecurity/plugins#1378) and
        // containerd's default `/<namespace>/<id>` (Falco's containerd engine: `/default/`).
        "/system.slice/system-getty.slice/cri-containerd-0e768f8db752fcd648adb264498daa1d8f31562320e881d6a9ec593d24b1f779.scope"
            => Container, -, -, "0e768f8db752fcd648adb264498daa1d8f31562320e881d6a9ec593d24b1f779", Containerd;
        "/user.slice/user-1001.slice/user@1001.service/user.slice/cri-containerd-6938564e754ad86269a536ed19172af0eff5f7ff0a41eefc5b433a76f1f38f16.scope"
            => Container, -, -, "6938564e754ad86269a536ed19172af0eff5f7ff0a41eefc5b433a76f1f38f16", Containerd;
        "/system.slice/nerdctl-6938564e754ad86269a536ed19172af0eff5f7ff0a41eefc5b433a76f1f38f16.scope"
            => Container, -, -, "6938564e754ad86269a536ed19172af0eff5f7ff0a41eefc5b433a76f1f38f16", Containerd;
        "/default/0e768f8db752fcd648adb264498daa1d8f31562320e881d6a9ec593d24b1f779"
            => Container, -, -, "0e768f8db752fcd648adb264498daa1d8f31562320e881d6a9ec593d24b1f779", Containerd;
        "/k8s.io/0e768f8db752fcd648adb264498daa1d8f31562320e881d6a9ec593d24b1f779"
            => Container, -, -, "0e768f8db752fcd648adb264498daa1d8f31562320e881d6a9ec593d24b1f779", Containerd;
        "/system.slice/containerd.service" => Service, -, -, -, -;

        // LXC: lxc/lxc#4376 (LXC ≥ 4 on cgroup v2, `ls /sys/fs/cgroup/lxc.payload.a1`),
        // lxc/incus#3684 (monitors in `lxc.monitor.<name>`), lxc/lxc#3373 (the `.lxc` cgroup
        // lxc-attach uses inside the container), lxc/lxc#2606 (LXC 3.1 `lxc.payload/<name>`),
        // draios/sysdig#1344 (LXC ≤ 3.0 `/lxc/<name>`).
        "/lxc.payload.a1" => Container, -, -, "a1", Lxc;
        "/lxc.monitor.a1" => Other, -, -, "a1", Lxc;
        "/lxc.payload.a1/.lxc" => Other, -, -, "a1", Lxc;
        "/lxc.payload/c1" => Container, -, -, "c1", Lxc;
        "/lxc.monitor/c1" => Other, -, -, "c1", Lxc;
        "/lxc/c1" => Container, -, -, "c1", Lxc;
        "/lxc.pivot" => Other, -, -, -, -;

        // systemd units and other host cgroups: kubernetes/kubernetes#53960 (kubelet/docker
        // services), opencontainers/runc#2305 (user-session paths from /proc/self/cgroup),
        // containerd/containerd#5152 (systemd-cgtop: init.scope, a .mount unit), cAdvisor's crio
        // factory test (an escaped slice name), docker-archive/libcontainer#549 (a non-container
        // scope), moby/moby#44402 (systemd-nspawn), PRODUCT.md §5 (/process_api on our builders).
        "/" => Root, -, -, -, -;
        "/init.scope" => Other, -, -, -, -;
        "/system.slice" => Slice, -, -, -, -;
        "/system.slice/kubelet.service" => Service, -, -, -, -;
        "/system.slice/boot-efi.mount" => Other, -, -, -, -;
        "/system.slice/system-systemd\\x2dcoredump.slice" => Slice, -, -, -, -;
        "/system.slice/nsinit-busybox.scope" => Other, -, -, -, -;
        "/user.slice/user-1000.slice/session-4.scope" => Other, -, -, -, -;
        "/user.slice/user-1000.slice/user@1000.service" => Service, -, -, -, -;
        "/user.slice/user-1000.slice/user@1000.service/gnome-terminal-server.service"
            => Service, -, -, -, -;
        "/user.slice/user-1000.slice/user@1000.service/gnome-launched-xfce4-terminal.desktop-4260.scope"
            => Other, -, -, -, -;
        "/machine.slice/container@docker.service" => Service, -, -, -, -;
        "/machine.slice/container@docker.service/payload" => Other, -, -, -, -;
        "/process_api" => Other, -, -, -, -;
    }
}

#[test]
fn without_kubernetes() {
    check(&rows());
}
