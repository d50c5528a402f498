#!/bin/sh
# /dev/infiniband is bound whole when the host has it. Without an HCA here,
# the root part of the suite makes a fake uverbs node and removes it after.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

# /dev/infiniband is the machine's: a suite of another build tree running at
# the same time may make and remove its fake one too. One at a time.
exec 8>/tmp/capsula-check-infiniband.lock
flock -x 8
made=""
if [ ! -e /dev/infiniband ]; then
	is_root || skip_all "no /dev/infiniband on this host, and only root can make a fake one"
	if ! { mkdir /dev/infiniband && mknod -m 0666 /dev/infiniband/uverbs0 c 231 192 &&
	       mknod -m 0600 /dev/infiniband/rdma_cm c 10 58; }; then
		bail_out "cannot make fake verbs nodes"
	fi
	made=yes
	# shellcheck disable=SC2064
	trap "rm -rf /dev/infiniband '$WORK'" EXIT
fi
# --join never: a container left warm by another test, made before this
# /dev/infiniband was, would show what was there then.
host=$(cd /dev/infiniband && printf '%s ' *)
inside=$(capsula_exec --join never -- sh -c 'cd /dev/infiniband && printf "%s " *')
is "$inside" "$host" "/dev/infiniband inside lists the host's nodes"
like "$(capsula_exec --join never -- ls -l /dev/infiniband/uverbs0)" '^c.* 231, +192 ' \
	"uverbs0 is the host's character device 231:192"
mountinfo=$(capsula_exec --join never -- cat /proc/self/mountinfo)
like "$mountinfo" ' /dev/infiniband rw,nosuid[, ]' "/dev/infiniband is a nosuid bind that allows devices"
unlike "$(capsula_exec --join never -- grep ' /dev/infiniband ' /proc/self/mountinfo)" 'nodev' \
	"/dev/infiniband is not nodev"
# No driver here, so opening fails, but with ENXIO from the device, not with
# EACCES from a nodev mount.
err=$(capsula_exec --join never -- cat /dev/infiniband/uverbs0 2>&1)
like "$err" "No such device or address" \
	"opening uverbs0 reaches the device (ENXIO without a driver), not a refusal by the mount"
[ -n "$made" ] && diag "fake /dev/infiniband will be removed"
done_testing
