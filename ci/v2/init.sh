#!/bin/sh
# /init of the memglass cgroup v2 test guest (PID 1, busybox ash).
# Written into the initramfs by ci/v2/run; /etc/memglass/config (shell) says what to run.
#
# Protocol on the serial console (read by ci/v2/run):
#   MEMGLASS-BOOTED <uptime-seconds>
#   MEMGLASS-TEST <target>::<name> ok|FAILED|ignored   one per libtest test line
#   MEMGLASS-TARGET <target> <exit code> <seconds>      after each test binary
#   MEMGLASS-ERROR <text>                        the guest could not set itself up
#   MEMGLASS-GUEST-EXIT <code>                   always the last line before power-off
# Files for the host (test log, kernel log, captures) go as a tar to the second disk.
export PATH=/memglass/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
umask 022

finish() {
	rc=$1
	mkdir -p /tmp/out
	dmesg > /tmp/out/dmesg.txt 2>/dev/null
	if [ -b /dev/vdb ]; then
		tar -C /tmp/out -cf /dev/vdb . 2>/dev/null || echo "MEMGLASS-ERROR could not write the outbox disk"
	fi
	sync
	umount /scratch 2>/dev/null
	echo "MEMGLASS-GUEST-EXIT $rc"
	# -no-reboot on the qemu side: any reset ends qemu.
	reboot -f
	sleep 5
	exit "$rc"
}

fail() {
	echo "MEMGLASS-ERROR $*"
	finish 99
}

mount -t proc -o nosuid,nodev,noexec proc /proc || fail "mount /proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fail "mount /sys"
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || fail "mount /dev"
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp || fail "mount /tmp"
mount -t devpts -o nosuid,noexec devpts /dev/pts 2>/dev/null
# The same options systemd uses, so that mountinfo looks like a real v2 node's.
mount -t cgroup2 -o nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
	mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
echo +memory > /sys/fs/cgroup/cgroup.subtree_control || fail "enable +memory in the root cgroup"
echo +pids > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
ln -sf /proc/self/fd /dev/fd 2>/dev/null
hostname memglass-v2
# Loopback, for the agent's tests (they serve on 127.0.0.1); no other network.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null || echo "MEMGLASS-WARN no loopback"

. /etc/memglass/config

for m in $MODULES; do
	# a failed optional module (crc32c_intel on a CPU without SSE4.2) is no error;
	# a missing required one shows when the scratch disk cannot be mounted
	insmod "/lib/modules/memglass/$m.ko" || echo "MEMGLASS-WARN insmod $m failed"
done

i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /scratch
mount -t ext4 /dev/vda /scratch || fail "mount the ext4 scratch disk /dev/vda"

# From here on the kernel keeps its messages (OOM reports...) out of the console: tests
# print there. The whole kernel log goes back to the host in the outbox.
dmesg -n 1

export MEMGLASS_SCRATCH=/scratch/memglass
# Files a test leaves for the host (they come back in the outbox, under guest/).
export MEMGLASS_GUEST_OUT=/tmp/out
mkdir -p "$MEMGLASS_SCRATCH" /tmp/out
[ -f /etc/memglass/env ] && . /etc/memglass/env

echo "MEMGLASS-BOOTED $(cut -d' ' -f1 /proc/uptime) $(uname -r)"

case "$MODE" in
test)
	# TESTS: name=path pairs, run one after the other; the exit code is the first failure's.
	rc=0
	for pair in $TESTS; do
		name=${pair%%=*}
		bin=${pair#*=}
		cd "$MEMGLASS_SCRATCH" || fail "cd $MEMGLASS_SCRATCH"
		start=$(cut -d' ' -f1 /proc/uptime)
		set -o pipefail
		# shellcheck disable=SC2086
		"$bin" $TEST_ARGS 2>&1 | tee "/tmp/out/test-$name.log"
		code=$?
		set +o pipefail
		cd /
		[ "$rc" -eq 0 ] && rc=$code
		awk -v target="$name" '/^test .* \.\.\. (ok|FAILED|ignored)/ {
			name = $2; res = $4; sub(/,$/, "", res);
			print "MEMGLASS-TEST " target "::" name " " res }' "/tmp/out/test-$name.log"
		end=$(cut -d' ' -f1 /proc/uptime)
		echo "MEMGLASS-TARGET $name $code $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
	done
	echo "MEMGLASS-UPTIME $(cut -d' ' -f1 /proc/uptime)"
	finish "$rc"
	;;
capture)
	sh /etc/memglass/capture.sh /tmp/out/capture
	rc=$?
	echo "MEMGLASS-UPTIME $(cut -d' ' -f1 /proc/uptime)"
	finish "$rc"
	;;
shell)
	# Interactive debugging: ci/v2/run --shell (needs a terminal).
	setsid cttyhack sh
	finish 0
	;;
*)
	fail "unknown MODE=$MODE"
	;;
esac
