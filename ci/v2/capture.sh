#!/bin/sh
# Guest side of `ci/v2/run --capture` (busybox ash, as root, cgroup2 at /sys/fs/cgroup).
# Builds a small kubelet-style (systemd driver) tree, puts real memory into one container,
# OOM-kills a process in a second container of the same pod, and copies the kernel's own
# files into $1 laid out as the fixture: sys/fs/cgroup/<path>/<file>, proc/..., dev/kmsg.txt.
# POD_UID, APP_ID and OOM_ID come from /etc/memglass/config.
set -u
OUT=$1
CG=/sys/fs/cgroup
. /etc/memglass/config

POD_UNDERSCORE=$(echo "$POD_UID" | tr '-' '_')
KUBEPODS=kubepods.slice
BURSTABLE=$KUBEPODS/kubepods-burstable.slice
BESTEFFORT=$KUBEPODS/kubepods-besteffort.slice
POD=$BURSTABLE/kubepods-burstable-pod$POD_UNDERSCORE.slice
APP=$POD/cri-containerd-$APP_ID.scope
OOM=$POD/cri-containerd-$OOM_ID.scope

die() { echo "capture: $*" >&2; exit 1; }

for d in $KUBEPODS $BURSTABLE $BESTEFFORT $POD $APP $OOM; do
	mkdir -p "$CG/$d" || die "mkdir $d"
done
for d in $KUBEPODS $BURSTABLE $POD; do
	echo +memory > "$CG/$d/cgroup.subtree_control" || die "+memory in $d"
	echo +pids > "$CG/$d/cgroup.subtree_control" 2>/dev/null
done
# Limits the way kubelet writes them: node allocatable on kubepods, the pod's limit on
# the pod slice, each container's limit on its scope.
echo 1610612736 > "$CG/$KUBEPODS/memory.max" || die "kubepods memory.max"
echo 268435456 > "$CG/$POD/memory.max" || die "pod memory.max"
echo 134217728 > "$CG/$APP/memory.max" || die "app memory.max"
echo 33554432 > "$CG/$OOM/memory.max" || die "oom memory.max"
echo 0 > "$CG/$OOM/memory.swap.max" 2>/dev/null

# The "app" container: a process that moves itself into its scope first (pages are
# charged where first touched), then holds 6 MiB of tmpfs, ~8 MiB of anon (a shell
# variable) and reads a 4 MiB file on the ext4 scratch disk into the page cache.
mkdir -p /dev/shm /scratch/capture
rm -f /tmp/holder.ready
sh -c '
	echo $$ > "$1/cgroup.procs" || exit 1
	head -c 6291456 /dev/zero > /dev/shm/memglass-capture-tmpfs
	head -c 4194304 /dev/urandom > /scratch/capture/cached.bin
	sync
	cat /scratch/capture/cached.bin > /dev/null
	x=$(head -c 8388608 /dev/zero | tr "\0" "a")
	touch /tmp/holder.ready
	sleep 100000
	echo "${#x}"
' holder "$CG/$APP" &
HOLDER=$!
i=0
while [ ! -e /tmp/holder.ready ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /tmp/holder.ready ] || die "the holder did not get ready"

# A real OOM kill: the "oom" container of the same pod allocates anon past its 32M limit
# (busybox tail keeps the whole newline-free input in memory).
echo "memglass-capture: OOM test begins in $OOM" > /dev/kmsg
sh -c 'echo $$ > "$1/cgroup.procs" && exec sh -c "head -c 209715200 /dev/zero | tail > /dev/null"' oom "$CG/$OOM"
echo "memglass-capture: OOM test ended (status $?)" > /dev/kmsg
grep -q '^oom_kill [1-9]' "$CG/$OOM/memory.events" || die "no oom_kill in $OOM/memory.events"

# Dirty pages in the app container, written just before the copy (not yet written back).
sh -c 'echo $$ > "$1/cgroup.procs" && head -c 2097152 /dev/urandom > /scratch/capture/dirty.bin' dirty "$CG/$APP"
sleep 1

copy() { # copy SRC DST: the file's bytes, if it exists and can be read
	[ -e "$1" ] || return 0
	mkdir -p "$(dirname "$2")"
	cat "$1" > "$2" 2>/dev/null || rm -f "$2"
}
FILES="memory.stat memory.current memory.max memory.high memory.low memory.min
memory.swap.current memory.events memory.events.local memory.pressure memory.peak"
for d in "" $KUBEPODS $BURSTABLE $BESTEFFORT $POD $APP $OOM; do
	for f in $FILES; do
		copy "$CG/$d/$f" "$OUT/sys/fs/cgroup/$d/$f"
	done
done
mkdir -p "$OUT/proc/self" "$OUT/dev"
copy /proc/meminfo "$OUT/proc/meminfo"
copy /proc/vmstat "$OUT/proc/vmstat"
copy /proc/self/mountinfo "$OUT/proc/self/mountinfo"
# The kernel log in /dev/kmsg's own record format; cat blocks at the end, so stop it.
timeout 2 cat /dev/kmsg > "$OUT/dev/kmsg.all" 2>/dev/null

{
	echo "uname=$(uname -a)"
	echo "release=$(uname -r)"
	echo "arch=$(uname -m)"
	echo "page_size_kb=$(awk '/^KernelPageSize:/ {print $2; exit}' /proc/self/smaps)"
	echo "holder_pid=$HOLDER"
	echo "pod_path=/$POD"
	echo "app_path=/$APP"
	echo "oom_path=/$OOM"
} > "$OUT/info.txt"

kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null
rm -f /dev/shm/memglass-capture-tmpfs
echo "capture: done"
exit 0
