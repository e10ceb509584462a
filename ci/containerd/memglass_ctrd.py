#!/usr/bin/env python3
"""memglass test tier 4: a private, disposable containerd for real-container tests.

    ci/containerd/setup    [STATE_DIR]                 (python3 memglass_ctrd.py setup ...)
    ci/containerd/teardown [STATE_DIR] [--save-log FILE] [--remove-cgroups PREFIX]...

STATE_DIR defaults to /tmp/memglass-containerd. See README.md beside this file.

setup installs Debian's containerd, runc, busybox-static, gcc and libc6-dev when missing,
builds two OCI image archives without any registry (memglass.test/busybox:1 from
busybox-static, memglass.test/pause:1 from pause.c compiled with gcc -static), caches
them under ci/.cache/containerd/, writes a private containerd config under STATE_DIR,
starts containerd in the background, imports the images into the k8s.io namespace, waits
until the CRI plugin answers and finds both images (CRI ImageStatus over gRPC), and prints
exactly two lines on stdout:

    CONTAINERD_SOCKET=<STATE_DIR>/containerd.sock
    CONTAINERD_PID=<pid>

Everything else goes to stderr. Running setup again on a live state dir reuses the running
containerd (same lines). teardown removes every task and container in every namespace of
that containerd, stops it by its recorded PID only, lazily unmounts whatever is left
mounted under STATE_DIR, and removes STATE_DIR; it is safe to run twice.
"""

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("MEMGLASS_CONTAINERD_CACHE") or REPO / "ci" / ".cache" / "containerd")
DEFAULT_STATE = "/tmp/memglass-containerd"
MARKER = ".memglass-containerd"  # a state dir setup made; teardown deletes nothing else

BUSYBOX_IMAGE = "memglass.test/busybox:1"
PAUSE_IMAGE = "memglass.test/pause:1"
NAMESPACE = "k8s.io"  # the CRI plugin's containerd namespace
# Bump when the image layout changes, so cached archives are rebuilt.
BUILDER_VERSION = "1"

APT_PACKAGES = ["containerd", "runc", "busybox-static", "gcc", "libc6-dev"]
CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
RUNC = "/usr/sbin/runc"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

T0 = time.monotonic()


def log(msg):
    print(f"ci/containerd: [{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def die(msg, code=1):
    log(f"error: {msg}")
    sys.exit(code)


def run(cmd, check=True, capture=True, timeout=120, **kw):
    """Run cmd; its output goes to our stderr unless captured (stdout is reserved)."""
    if capture:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    else:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr,
                           text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        err = (p.stderr or "").strip() if capture else ""
        die(f"{' '.join(map(str, cmd))} exited {p.returncode}: {err}")
    return p


# --------------------------------------------------------------------------------------
# Packages


def missing_packages(pkgs):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n"] + pkgs,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    installed = set()
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("ii"):
            installed.add(parts[0].split(":")[0])
    return [pkg for pkg in pkgs if pkg not in installed]


def containerd_pids_running():
    """PIDs of every process whose executable is Debian's containerd."""
    pids = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/exe") == CONTAINERD:
                    pids.add(int(d))
            except OSError:
                pass
    return pids


def systemd_running():
    return os.path.isdir("/run/systemd/system")


def ensure_packages():
    missing = missing_packages(APT_PACKAGES)
    if not missing:
        return
    if os.geteuid() != 0:
        die(f"missing Debian packages {missing}; run as root to install them")
    containerd_was_installed = "containerd" not in missing
    before = containerd_pids_running()
    # ci/apt-ensure picks versions that agree with what the machine has (see its header).
    run([str(Path(__file__).resolve().parent.parent / "apt-ensure"), *missing],
        capture=False, timeout=1800)
    still = missing_packages(APT_PACKAGES)
    if still:
        die(f"apt-get did not install {still}")
    if containerd_was_installed:
        return
    # The package enables and (where a service manager runs and policy-rc.d allows it)
    # starts the system containerd. We want none running on our account: stop and disable
    # what our install started, and nothing else.
    if systemd_running():
        p = run(["systemctl", "is-active", "containerd"], check=False)
        if p.stdout.strip() == "active":
            log("stopping and disabling the system containerd.service our install started")
            run(["systemctl", "disable", "--now", "containerd"], check=False, capture=False)
    for pid in sorted(containerd_pids_running() - before):
        log(f"stopping system containerd (pid {pid}) that our package install started")
        stop_pid(pid, timeout=10)


# --------------------------------------------------------------------------------------
# OCI images, built reproducibly with tarfile and hashlib


def _tarinfo(name, kind, mode, size=0, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.linkname = linkname
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = 0
    return ti


def make_tar(entries):
    """entries: list of (path, kind, mode, data_or_linkname), written in sorted order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, mode, payload in sorted(entries, key=lambda e: e[0]):
            if kind == "dir":
                tf.addfile(_tarinfo(name, tarfile.DIRTYPE, mode))
            elif kind == "file":
                tf.addfile(_tarinfo(name, tarfile.REGTYPE, mode, len(payload)), io.BytesIO(payload))
            elif kind == "symlink":
                tf.addfile(_tarinfo(name, tarfile.SYMTYPE, mode, linkname=payload))
            else:
                raise ValueError(kind)
    return buf.getvalue()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def oci_arch():
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    return {"amd64": "amd64", "arm64": "arm64", "i386": "386", "armhf": "arm",
            "ppc64el": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(arch, arch)


def build_image(name, layer_entries, image_config, comment, ref_name=None, created=None,
                gzip_layer=False):
    """An OCI image layout as one tar archive (bytes), with one uncompressed layer.

    The layer is left uncompressed: its digest is then its diff ID, and the archive is
    byte-for-byte the same whatever zlib is installed. `ref_name` is the index's
    org.opencontainers.image.ref.name (default: the tag); `created` (RFC 3339) goes into
    the config and its history when given. ci/image builds memglass's image with this too,
    with `gzip_layer` (gzip level 9, mtime 0: the same bytes for the same zlib; the diff ID,
    the uncompressed layer's digest, does not depend on zlib at all)."""
    arch = oci_arch()
    layer = make_tar(layer_entries)
    layer_digest = "sha256:" + sha256(layer)
    layer_blob = gzip.compress(layer, compresslevel=9, mtime=0) if gzip_layer else layer
    layer_type = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layer else "")
    config = {
        "architecture": arch,
        "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": comment}],
    }
    if created is not None:
        config["created"] = created
        config["history"][0]["created"] = created
    config = canonical_json(config)
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + sha256(config), "size": len(config)},
        "layers": [{"mediaType": layer_type,
                    "digest": "sha256:" + sha256(layer_blob), "size": len(layer_blob)}],
    })
    tag = ref_name or name.rsplit(":", 1)[1]
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + sha256(manifest), "size": len(manifest),
            "platform": {"architecture": arch, "os": "linux"},
            # ctr images import names the image after io.containerd.image.name.
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": tag},
        }],
    })
    entries = [("oci-layout", "file", 0o644, canonical_json({"imageLayoutVersion": "1.0.0"})),
               ("index.json", "file", 0o644, index),
               ("blobs", "dir", 0o755, None),
               ("blobs/sha256", "dir", 0o755, None)]
    for blob in (layer_blob, config, manifest):
        entries.append((f"blobs/sha256/{sha256(blob)}", "file", 0o644, blob))
    return make_tar(entries), "sha256:" + sha256(manifest)


def busybox_rootfs():
    busybox = Path("/bin/busybox").read_bytes()
    if b"\x7fELF" != busybox[:4] or _elf_has_interp(busybox):
        die("/bin/busybox is not a static ELF binary (is busybox-static installed?)")
    applets = run(["/bin/busybox", "--list-full"]).stdout.split()
    entries = {}
    for d, mode in [("bin", 0o755), ("sbin", 0o755), ("usr", 0o755), ("usr/bin", 0o755),
                    ("usr/sbin", 0o755), ("etc", 0o755), ("dev", 0o755), ("proc", 0o755),
                    ("sys", 0o755), ("root", 0o700), ("tmp", 0o1777), ("var", 0o755),
                    ("var/tmp", 0o1777), ("home", 0o755)]:
        entries[d] = (d, "dir", mode, None)
    entries["bin/busybox"] = ("bin/busybox", "file", 0o755, busybox)
    for a in applets:
        a = a.strip("/")
        if a and a not in entries:
            entries[a] = (a, "symlink", 0o777, "/bin/busybox")
    entries["etc/passwd"] = ("etc/passwd", "file", 0o644,
                             b"root:x:0:0:root:/root:/bin/sh\n"
                             b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    entries["etc/group"] = ("etc/group", "file", 0o644, b"root:x:0:\nnogroup:x:65534:\n")
    return list(entries.values()), busybox


def _elf_has_interp(data):
    """True if a 64-bit little-endian ELF has a PT_INTERP program header (is dynamic)."""
    if data[4] != 2 or data[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:
            return True
    return False


def cached(kind, key, build):
    """CACHE/<kind>-<key>.tar, built once; older archives of that kind are removed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{kind}-{key[:16]}.tar"
    if path.exists():
        return path, False
    data = build()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    for old in CACHE.glob(f"{kind}-*.tar"):
        if old != path:
            old.unlink(missing_ok=True)
    return path, True


def busybox_archive():
    busybox = Path("/bin/busybox").read_bytes()
    version = run(["dpkg-query", "-W", "-f=${Version}", "busybox-static"], check=False).stdout
    key = sha256(f"{BUILDER_VERSION}\0{oci_arch()}\0".encode() + busybox)

    def build():
        entries, _ = busybox_rootfs()
        data, _ = build_image(BUSYBOX_IMAGE, entries,
                              {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"},
                              f"memglass ci/containerd: busybox-static {version}")
        return data
    return cached("busybox", key, build)


def pause_archive():
    src = (HERE / "pause.c").read_bytes()
    gcc = run(["gcc", "--version"]).stdout.splitlines()[0]
    libc = run(["dpkg-query", "-W", "-f=${Version}", "libc6-dev"], check=False).stdout
    key = sha256(f"{BUILDER_VERSION}\0{oci_arch()}\0{gcc}\0{libc}\0".encode() + src)

    def build():
        out = CACHE / f"pause.{os.getpid()}"
        try:
            run(["gcc", "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror",
                 "-Wl,--build-id=none", "-o", str(out), str(HERE / "pause.c")])
            binary = out.read_bytes()
        finally:
            out.unlink(missing_ok=True)
        entries = [("pause", "file", 0o755, binary),
                   ("dev", "dir", 0o755, None), ("proc", "dir", 0o755, None),
                   ("sys", "dir", 0o755, None), ("etc", "dir", 0o755, None)]
        data, _ = build_image(PAUSE_IMAGE, entries,
                              {"Env": [PATH_ENV], "Entrypoint": ["/pause"], "WorkingDir": "/"},
                              f"memglass ci/containerd: pause.c, {gcc}")
        return data
    return cached("pause", key, build)


# --------------------------------------------------------------------------------------
# The private containerd


class State:
    def __init__(self, path):
        p = os.path.abspath(path or DEFAULT_STATE)
        if p in ("/", "") or len(Path(p).parts) < 3:
            die(f"refusing state dir {p!r}: give a dedicated directory such as {DEFAULT_STATE}")
        self.dir = Path(p)
        self.config = self.dir / "config.toml"
        self.socket = self.dir / "containerd.sock"
        self.pidfile = self.dir / "containerd.pid"
        self.logfile = self.dir / "containerd.log"
        self.marker = self.dir / MARKER
        self.lockfile = Path(p + ".lock")
        if len(str(self.socket)) + len(".ttrpc") > 100:
            die(f"state dir path too long for a unix socket: {self.socket}")

    def check_owned(self):
        """The dir is absent, empty, or one of ours (has the marker)."""
        if self.dir.exists() and not self.marker.exists() and any(self.dir.iterdir()):
            die(f"{self.dir} exists and was not made by ci/containerd/setup (no {MARKER}); "
                "refusing to use or delete it")

    def recorded_pid(self):
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self.is_ours(pid) else None

    def is_ours(self, pid):
        """pid is alive and is containerd running with our config (guards against reuse)."""
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return (argv and argv[0].endswith(b"containerd")
                and str(self.config).encode() in argv)

    def ctr(self, *args, namespace=NAMESPACE, check=True, timeout=60):
        return run([CTR, "--address", str(self.socket), "--namespace", namespace, *args],
                   check=check, timeout=timeout)


def probe_overlay(state):
    """True if overlayfs mounts on the filesystem holding the state dir."""
    base = state.dir / "overlay-probe"
    shutil.rmtree(base, ignore_errors=True)
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir(parents=True)
    (base / "lower" / "f").write_text("x")
    opts = f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work"
    p = run(["mount", "-t", "overlay", "overlay", "-o", opts, str(base / "merged")], check=False)
    ok = p.returncode == 0
    if ok:
        try:
            ok = (base / "merged" / "f").read_text() == "x"
            (base / "merged" / "g").write_text("y")
        except OSError:
            ok = False
        run(["umount", str(base / "merged")], check=False)
    else:
        log(f"overlayfs does not mount here ({p.stderr.strip()})")
    shutil.rmtree(base, ignore_errors=True)
    return ok


def config_text(state, snapshotter):
    d = state.dir
    return f"""\
# Written by memglass ci/containerd/setup: a private containerd for tests.
# Nothing here is shared with a system containerd (/run/containerd, /var/lib/containerd).
version = 2
root = "{d}/root"
state = "{d}/state"
temp = "{d}/tmp"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"

  [plugins."io.containerd.runtime.v1.linux"]
    runtime_root = "{d}/runtime-v1"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{PAUSE_IMAGE}"
    # The machine lacks CAP_SYS_RESOURCE: clamp kubelet-style negative oom_score_adj
    # values to what we may set instead of failing every container start.
    restrict_oom_score_adj = true
    disable_apparmor = true
    enable_selinux = false
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    netns_mounts_under_state_dir = true
    systemd_cgroup = false
    disable_hugetlb_controller = true
    tolerate_missing_hugetlb_controller = true
    max_concurrent_downloads = 1

    [plugins."io.containerd.grpc.v1.cri".cni]
      # No CNI: tests use host-network pod sandboxes (NamespaceMode NODE).
      bin_dir = "{d}/cni/bin"
      conf_dir = "{d}/cni/conf"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "{snapshotter}"
      default_runtime_name = "runc"
      disable_snapshot_annotations = true

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "{RUNC}"
          Root = "{d}/runc"
          # cgroupfs driver: cgroup parents are paths such as /kubepods/burstable/pod<uid>.
          SystemdCgroup = false
"""


def wait_socket(state, pid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Not is_ours(): right after a vfork+exec, /proc/PID/cmdline can still be empty.
        if not _alive(pid):
            tail_log(state)
            die(f"containerd (pid {pid}) exited during startup")
        if state.socket.exists():
            p = run([CTR, "--address", str(state.socket), "--timeout", "2s", "version"],
                    check=False, timeout=10)
            if p.returncode == 0:
                return p.stdout
        time.sleep(0.1)
    tail_log(state)
    die(f"containerd did not answer on {state.socket} within {timeout}s")


def tail_log(state, n=30):
    try:
        lines = state.logfile.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return
    for line in lines:
        print(f"  containerd.log: {line}", file=sys.stderr)


def start_containerd(state):
    state.logfile.touch()
    with open(state.logfile, "ab") as logf, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen([CONTAINERD, "--config", str(state.config)],
                                stdin=devnull, stdout=logf, stderr=logf,
                                start_new_session=True, close_fds=True, cwd="/")
    state.pidfile.write_text(f"{proc.pid}\n")
    # Popen would keep a handle; we never wait for it: teardown stops it by PID.
    proc.returncode = 0  # silence "subprocess still running" warnings at exit
    version = wait_socket(state, proc.pid)
    log(f"containerd up, pid {proc.pid}: " + " ".join(version.split()))
    return proc.pid


def plugin_status(state):
    """{(type, id): status} from `ctr plugins ls`."""
    out = state.ctr("plugins", "ls").stdout.splitlines()
    res = {}
    for line in out[1:]:
        parts = line.split()
        if len(parts) >= 4:
            res[(parts[0], parts[1])] = parts[-1]
    return res


def stop_pid(pid, timeout=15):
    """SIGTERM, then SIGKILL after timeout; only this pid. Reaps it if it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    log(f"pid {pid} ignored SIGTERM for {timeout}s; sending SIGKILL")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _alive(pid):
        time.sleep(0.05)


def _alive(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def import_images(state, snapshotter, archives):
    for name, path in archives:
        state.ctr("images", "import", "--snapshotter", snapshotter, str(path), timeout=300)
        # What the CRI plugin puts on images it pulls itself.
        state.ctr("images", "label", name, "io.cri-containerd.image=managed")
    names = set(state.ctr("images", "ls", "-q").stdout.split())
    for name, _ in archives:
        if name not in names:
            die(f"{name} is not in containerd's {NAMESPACE} namespace after import: {names}")


def wait_cri(state, images, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = cri_version(state.socket)
            missing = [i for i in images if not cri_image_status(state.socket, i)]
            if not missing:
                return v
            last = f"CRI does not list {missing} yet"
        except (OSError, GrpcError) as e:
            last = str(e)
        time.sleep(0.2)
    tail_log(state)
    die(f"CRI plugin not ready within {timeout}s: {last}")


def lock(path):
    """An exclusive flock on path (created if need be), held until the process exits.

    Serialises setup and teardown runs on one state dir (STATE_DIR.lock beside it), and
    apt plus image building on one cache. A lock file unlinked by its holder is retried."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for the lock {path}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def setup(argv):
    state = State(argv[0] if argv else None)
    if os.geteuid() != 0:
        die("must run as root (containerd, runc and mounts need it)")
    state.dir.parent.mkdir(parents=True, exist_ok=True)
    lock(state.lockfile)
    state.check_owned()

    CACHE.mkdir(parents=True, exist_ok=True)
    cache_lock = lock(CACHE / ".lock")
    ensure_packages()
    t = time.monotonic()
    busybox, built_b = busybox_archive()
    pause, built_p = pause_archive()
    os.close(cache_lock)
    log(f"images: {busybox.name} ({'built' if built_b else 'cached'}), "
        f"{pause.name} ({'built' if built_p else 'cached'}) in {time.monotonic() - t:.1f}s")

    state.dir.mkdir(parents=True, exist_ok=True)
    state.marker.write_text("made by memglass ci/containerd/setup; removed by teardown\n")
    for sub in ("root", "state", "tmp", "opt", "runc", "cni/bin", "cni/conf"):
        (state.dir / sub).mkdir(parents=True, exist_ok=True)

    snapshotter = os.environ.get("MEMGLASS_CONTAINERD_SNAPSHOTTER")
    if not snapshotter:
        snapshotter = "overlayfs" if probe_overlay(state) else "native"
    text = config_text(state, snapshotter)

    pid = state.recorded_pid()
    if pid is not None:
        try:
            same = state.config.read_text() == text
        except OSError:
            same = False
        if same:
            log(f"reusing the running containerd (pid {pid})")
            wait_socket(state, pid)
        else:
            log(f"config changed: restarting containerd (pid {pid})")
            stop_pid(pid)
            pid = None
    if pid is None:
        state.config.write_text(text)
        pid = start_containerd(state)

    status = plugin_status(state)
    bad = {k: v for k, v in status.items()
           if k in {("io.containerd.grpc.v1", "cri"),
                    ("io.containerd.snapshotter.v1", snapshotter),
                    ("io.containerd.runtime.v2", "task")} and v != "ok"}
    if bad or ("io.containerd.grpc.v1", "cri") not in status:
        tail_log(state)
        die(f"containerd plugins not ok: {bad or 'no CRI plugin'}")

    import_images(state, snapshotter, [(BUSYBOX_IMAGE, busybox), (PAUSE_IMAGE, pause)])
    v = wait_cri(state, [BUSYBOX_IMAGE, PAUSE_IMAGE])
    log(f"CRI ready ({v}); snapshotter {snapshotter}; images {BUSYBOX_IMAGE}, {PAUSE_IMAGE}")
    print(f"CONTAINERD_SOCKET={state.socket}")
    print(f"CONTAINERD_PID={pid}", flush=True)


# --------------------------------------------------------------------------------------
# Teardown


def mounts_under(path):
    """Mount points at or below path, deepest first, from /proc/self/mountinfo."""
    root = str(path).rstrip("/")
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            mp = (mp.replace("\\040", " ").replace("\\011", "\t")
                    .replace("\\012", "\n").replace("\\134", "\\"))
            if mp == root or mp.startswith(root + "/"):
                res.append(mp)
    return sorted(set(res), key=lambda m: (-m.count("/"), m))


def shim_pids(state):
    """containerd-shim processes serving our containerd (their -address names our socket)."""
    pids = []
    sock = str(state.socket).encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"containerd-shim" in argv[0] and sock in argv:
            pids.append(int(d))
    return pids


def sweep(state):
    """Kill and delete every task, then delete every container, in every namespace."""
    p = state.ctr("namespaces", "ls", "-q", check=False)
    for ns in p.stdout.split():
        tasks = [line.split()[0] for line in
                 state.ctr("tasks", "ls", namespace=ns, check=False).stdout.splitlines()[1:]
                 if line.strip()]
        for t in tasks:
            state.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", t, namespace=ns,
                      check=False)
        for t in tasks:
            deadline = time.monotonic() + 10
            while True:
                p = state.ctr("tasks", "delete", "--force", t, namespace=ns, check=False)
                if p.returncode == 0 or "not found" in p.stderr or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        containers = state.ctr("containers", "ls", "-q", namespace=ns, check=False).stdout.split()
        for c in containers:
            state.ctr("containers", "delete", c, namespace=ns, check=False)
        if tasks or containers:
            log(f"namespace {ns}: removed {len(tasks)} task(s), {len(containers)} container(s)")


def remove_cgroups(prefix):
    """rmdir (only) every cgroup directory at or below PREFIX in every hierarchy."""
    prefix = "/" + prefix.strip("/")
    if prefix == "/" or ".." in prefix.split("/") or prefix.split("/")[1] == "process_api":
        die(f"refusing cgroup prefix {prefix!r}")
    removed = left = 0
    for h in sorted(Path("/sys/fs/cgroup").iterdir()):
        top = Path(str(h) + prefix)
        if not top.is_dir():
            continue
        dirs = [Path(dp) for dp, _, _ in os.walk(top)]
        for d in sorted(dirs, key=lambda p: -len(p.parts)):
            try:
                d.rmdir()
                removed += 1
            except OSError as e:
                left += 1
                log(f"cannot remove cgroup {d}: {e.strerror}")
    log(f"cgroups under {prefix}: removed {removed} dir(s), {left} left")
    return left == 0


def teardown(argv):
    prefixes = []
    args = []
    it = iter(argv)
    save_log = None
    for a in it:
        if a == "--remove-cgroups":
            prefixes.append(next(it, None) or die("--remove-cgroups needs a PREFIX", 2))
        elif a == "--save-log":
            save_log = next(it, None) or die("--save-log needs a FILE", 2)
        else:
            args.append(a)
    if len(args) > 1:
        die("usage: teardown [STATE_DIR] [--save-log FILE] [--remove-cgroups PREFIX]...", 2)
    state = State(args[0] if args else None)
    ok = True
    held = lock(state.lockfile) if state.dir.parent.is_dir() else None
    if not state.dir.exists():
        log(f"{state.dir}: nothing to tear down")
    else:
        state.check_owned()
        pid = state.recorded_pid()
        if pid is None and shim_pids(state) and state.config.exists():
            # containerd died with tasks alive: bring it back on the same root to clean up.
            log("containerd is gone but its shims live on: restarting it to remove tasks")
            pid = start_containerd(state)
        if pid is not None:
            sweep(state)
            log(f"stopping containerd (pid {pid})")
            stop_pid(pid)
        if save_log and state.logfile.exists():
            shutil.copyfile(state.logfile, save_log)
            log(f"containerd log saved as {save_log}")
        for s in shim_pids(state):
            log(f"shim pid {s} outlived containerd; stopping it")
            stop_pid(s, timeout=5)
        for mp in mounts_under(state.dir):
            p = run(["umount", "-l", mp], check=False)
            if p.returncode != 0 and mounts_under(mp):
                log(f"umount -l {mp}: {p.stderr.strip()}")
        left = mounts_under(state.dir)
        if left:
            ok = False
            log(f"still mounted under {state.dir}, not deleting it: {left}")
        else:
            shutil.rmtree(state.dir, ignore_errors=True)
            if state.dir.exists():
                ok = False
                log(f"could not remove {state.dir} entirely")
            else:
                log(f"removed {state.dir}")
    if held is not None and not state.dir.exists():
        state.lockfile.unlink(missing_ok=True)  # waiters notice the unlink and retry
    for prefix in prefixes:
        ok = remove_cgroups(prefix) and ok
    sys.exit(0 if ok else 1)


# --------------------------------------------------------------------------------------
# A minimal gRPC client (HTTP/2 without TLS over the unix socket), enough for a few CRI
# unary calls without grpcio: HPACK literals out, response headers skipped; a call has
# succeeded when the response carries a message (gRPC errors are trailers-only).


class GrpcError(Exception):
    pass


def _hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_literal(name, value):
    # Literal header field without indexing, new name, no Huffman coding.
    n, v = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v


def _frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def grpc_unary(sock_path, method, request, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(sock_path))
        headers = b"".join(_hpack_literal(k, v) for k, v in [
            (":method", "POST"), (":scheme", "http"), (":path", method),
            (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")])
        body = b"\x00" + struct.pack(">I", len(request)) + request
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                  + _frame(4, 0, 0, struct.pack(">HI", 4, 0x7FFFFFFF))  # INITIAL_WINDOW_SIZE
                  + _frame(8, 0, 0, struct.pack(">I", 0x7FFFFFFF - 65535))
                  + _frame(1, 0x4, 1, headers)  # HEADERS, END_HEADERS
                  + _frame(0, 0x1, 1, body))  # DATA, END_STREAM
        buf = b""
        data = b""

        def read(n):
            nonlocal buf
            while len(buf) < n:
                chunk = s.recv(65536)
                if not chunk:
                    raise GrpcError(f"{method}: connection closed")
                buf += chunk
            out, buf = buf[:n], buf[n:]
            return out

        while True:
            head = read(9)
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
            payload = read(length)
            if kind == 4 and not flags & 1:
                s.sendall(_frame(4, 1, 0))  # SETTINGS ACK
            elif kind == 6 and not flags & 1:
                s.sendall(_frame(6, 1, 0, payload))  # PING ACK
            elif kind == 7:
                raise GrpcError(f"{method}: GOAWAY")
            elif stream == 1 and kind == 3:
                raise GrpcError(f"{method}: stream reset")
            elif stream == 1 and kind == 0:
                if flags & 0x8:  # PADDED
                    payload = payload[1:len(payload) - payload[0]]
                data += payload
                if flags & 1:
                    break
            elif stream == 1 and kind == 1 and flags & 1:
                break
        if len(data) < 5:
            raise GrpcError(f"{method}: error reply (see the containerd log)")
        size = int.from_bytes(data[1:5], "big")
        return data[5:5 + size]
    finally:
        s.close()


def pb_fields(msg):
    """Top-level protobuf fields: list of (number, wire_type, value)."""
    out, i = [], 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = msg[i]
            i += 1
            value |= (b & 127) << shift
            shift += 7
            if not b & 128:
                return value
    while i < len(msg):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            out.append((num, wt, varint()))
        elif wt == 2:
            n = varint()
            out.append((num, wt, msg[i:i + n]))
            i += n
        elif wt == 1:
            out.append((num, wt, msg[i:i + 8]))
            i += 8
        elif wt == 5:
            out.append((num, wt, msg[i:i + 4]))
            i += 4
        else:
            raise GrpcError(f"unsupported protobuf wire type {wt}")
    return out


def _pb_varint(n):
    out = bytearray()
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def _pb_bytes(num, b):
    """A length-delimited field (string or embedded message)."""
    if isinstance(b, str):
        b = b.encode()
    return _pb_varint(num << 3 | 2) + _pb_varint(len(b)) + b


def cri_version(sock):
    resp = grpc_unary(sock, "/runtime.v1.RuntimeService/Version", _pb_bytes(1, "v1"))
    f = {n: v.decode() for n, wt, v in pb_fields(resp) if wt == 2}
    return f"{f.get(2, '?')} {f.get(3, '?')}, CRI {f.get(4, '?')}"


def cri_image_status(sock, image):
    """The image's ID if the CRI plugin knows the image, else None."""
    # ImageStatusRequest{image: ImageSpec{image: IMAGE}}
    resp = grpc_unary(sock, "/runtime.v1.ImageService/ImageStatus", _pb_bytes(1, _pb_bytes(1, image)))
    for n, wt, v in pb_fields(resp):
        if n == 1 and wt == 2 and v:
            ids = [x for m, w, x in pb_fields(v) if m == 1 and w == 2]
            return ids[0].decode() if ids else "?"
    return None


def _pb_varint_field(num, n):
    return _pb_varint(num << 3) + _pb_varint(n & 0xFFFFFFFFFFFFFFFF)  # int64: two's complement


def cri_smoke(sock, prefix):
    """A host-network pod sandbox with a kubelet-style cgroup parent under PREFIX and one
    busybox container that fills 20 MiB; checks its v1 memory cgroup; removes the pod."""
    prefix = "/" + prefix.strip("/")
    uid = f"0000-smoke-{os.getpid()}"
    parent = f"{prefix}/kubepods/burstable/pod{uid}"
    node = _pb_varint_field(1, 2)  # NamespaceOption.network = NODE
    linux_pod = (_pb_bytes(1, parent)  # LinuxPodSandboxConfig.cgroup_parent
                 + _pb_bytes(2, _pb_bytes(1, node + _pb_varint_field(2, 1))))  # pid: CONTAINER
    pod_config = (_pb_bytes(1, _pb_bytes(1, "smoke") + _pb_bytes(2, uid) + _pb_bytes(3, "memglass"))
                  + _pb_bytes(3, f"/tmp/memglass-cri-smoke-{os.getpid()}")  # log_directory
                  + _pb_bytes(8, linux_pod))
    sandbox = None
    try:
        resp = grpc_unary(sock, "/runtime.v1.RuntimeService/RunPodSandbox", _pb_bytes(1, pod_config),
                          timeout=60)
        sandbox = [v.decode() for n, _, v in pb_fields(resp) if n == 1][0]
        print(f"pod sandbox {sandbox[:12]} running, cgroup parent {parent}")
        resources = _pb_varint_field(4, 64 << 20) + _pb_varint_field(5, -997)  # limit, oom_score_adj
        ctr_config = (_pb_bytes(1, _pb_bytes(1, "fill"))
                      + _pb_bytes(2, _pb_bytes(1, BUSYBOX_IMAGE))
                      + _pb_bytes(3, "sh") + _pb_bytes(3, "-c")
                      + _pb_bytes(3, "head -c 20m /dev/zero | tail >/dev/null; echo filled; sleep 30")
                      + _pb_bytes(11, "fill.log")
                      + _pb_bytes(15, _pb_bytes(1, resources)))
        resp = grpc_unary(sock, "/runtime.v1.RuntimeService/CreateContainer",
                          _pb_bytes(1, sandbox) + _pb_bytes(2, ctr_config) + _pb_bytes(3, pod_config),
                          timeout=60)
        cid = [v.decode() for n, _, v in pb_fields(resp) if n == 1][0]
        grpc_unary(sock, "/runtime.v1.RuntimeService/StartContainer", _pb_bytes(1, cid), timeout=60)
        cg = Path(f"/sys/fs/cgroup/memory{parent}/{cid}")
        time.sleep(3)
        usage = int((cg / "memory.max_usage_in_bytes").read_text())
        limit = int((cg / "memory.limit_in_bytes").read_text())
        procs = (cg / "cgroup.procs").read_text().split()
        adj = Path(f"/proc/{procs[0]}/oom_score_adj").read_text().strip() if procs else "?"
        print(f"container {cid[:12]}: memory cgroup {cg}")
        print(f"  max_usage {usage} bytes, limit {limit}, pids {procs}, oom_score_adj {adj}")
        ok = usage >= 20 << 20 and limit == 64 << 20
        print("cri-smoke: " + ("ok" if ok else "FAILED"))
        return ok
    finally:
        if sandbox:
            grpc_unary(sock, "/runtime.v1.RuntimeService/StopPodSandbox", _pb_bytes(1, sandbox),
                       timeout=60)
            grpc_unary(sock, "/runtime.v1.RuntimeService/RemovePodSandbox", _pb_bytes(1, sandbox),
                       timeout=60)
            print(f"pod sandbox {sandbox[:12]} stopped and removed")
        shutil.rmtree(f"/tmp/memglass-cri-smoke-{os.getpid()}", ignore_errors=True)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("setup", "teardown", "cri-image-status", "cri-smoke"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, argv = sys.argv[1], sys.argv[2:]
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        sys.exit(0)
    if cmd == "setup":
        if len(argv) > 1:
            die("usage: setup [STATE_DIR]", 2)
        setup(argv)
    elif cmd == "teardown":
        teardown(argv)
    elif cmd == "cri-smoke":  # cri-smoke SOCKET CGROUP_PREFIX: for checking by hand
        if len(argv) != 2:
            die("usage: cri-smoke SOCKET CGROUP_PREFIX", 2)
        sys.exit(0 if cri_smoke(argv[0], argv[1]) else 1)
    else:  # cri-image-status SOCKET IMAGE: for checking by hand
        if len(argv) != 2:
            die("usage: cri-image-status SOCKET IMAGE", 2)
        image_id = cri_image_status(argv[0], argv[1])
        print(image_id or "not found")
        sys.exit(0 if image_id else 1)


if __name__ == "__main__":
    main()
