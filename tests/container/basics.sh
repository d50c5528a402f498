#!/bin/sh
# The container as a user sees it: who they are, what is mounted, what is
# shared with the host.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

out=$(capsula_exec -- id -u); rc=$?
is "$rc" 0 "capsula exec IMAGE id -u exits 0"
is "$out" "$TEST_UID" "uid inside is the caller's"
is "$(capsula_exec -- id -g)" "$TEST_GID" "gid inside is the caller's"
is "$(capsula_exec -- cat /etc/capsula-test-image)" "capsula busybox test image" \
	"files come from the image"

status=$(capsula_exec -- cat /proc/self/status)
like "$status" "Uid:[[:space:]]+${TEST_UID}[[:space:]]+${TEST_UID}[[:space:]]+${TEST_UID}[[:space:]]+$TEST_UID" \
	"all four uids are the caller's"

host_net=$(as_user readlink /proc/self/ns/net)
is "$(capsula_exec -- readlink /proc/self/ns/net)" "$host_net" "the host network namespace is kept"
host_pid=$(as_user readlink /proc/self/ns/pid)
is "$(capsula_exec -- readlink /proc/self/ns/pid)" "$host_pid" "the host pid namespace is kept"
host_mnt=$(as_user readlink /proc/self/ns/mnt)
ok "a mount namespace of its own" [ "$(capsula_exec -- readlink /proc/self/ns/mnt)" != "$host_mnt" ]
host_user=$(as_user readlink /proc/self/ns/user)
ok "a user namespace of its own" [ "$(capsula_exec -- readlink /proc/self/ns/user)" != "$host_user" ]
is "$(capsula_exec -- cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')" "$TEST_UID $TEST_UID 1" \
	"the uid is mapped to itself, nothing else"

mountinfo=$(capsula_exec -- cat /proc/self/mountinfo)
like "$mountinfo" " / / ro,nosuid,nodev[^ ]* - fuse capsula:$IMAGE " \
	"the image is a read-only nosuid nodev FUSE mount named after the image"
err=$(capsula_exec -- touch /bin/new-file 2>&1); rc=$?
ok "the image cannot be written" [ "$rc" != 0 ]
like "$err" "Read-only file system" "writing the image fails with EROFS"
err=$(capsula_exec -- mkdir /new-dir 2>&1); rc=$?
ok "the container's / cannot be written" [ "$rc" != 0 ]

# Shared with the host: /tmp, /dev/shm, /proc, /sys.
token="capsula-$$-$(date +%s)"
capsula_exec -- sh -c "echo $token > $WORK/from-inside"
is "$(cat "$WORK/from-inside" 2>/dev/null)" "$token" "host /tmp is writable and shared"
capsula_exec -- sh -c "echo $token > /dev/shm/$token"
is "$(cat "/dev/shm/$token" 2>/dev/null)" "$token" "host /dev/shm is shared"
rm -f "/dev/shm/$token"
is "$(capsula_exec -- sh -c 'read -r stat < /proc/self/stat; echo "${stat%% *} $$"' | awk '{print ($1 == $2)}')" 1 \
	"/proc is the host's: the shell finds its own pid in /proc/self"
ok "/sys is the host's" capsula_exec -- test -d /sys/kernel

devs=$(capsula_exec -- ls /dev | tr '\n' ' ')
for d in null zero full random urandom tty pts ptmx shm; do
	like "$devs" "(^| )$d( |$)" "minimal /dev has $d"
done
unlike "$devs" "(^| )(fuse|vda|sda|mem|kmsg)( |$)" "minimal /dev has no disks, /dev/mem or /dev/fuse"
is "$(capsula_exec -- sh -c 'echo x > /dev/null && head -c 4 /dev/zero | wc -c')" 4 \
	"/dev/null and /dev/zero work"
host_devs=$(capsula_exec --dev host -- ls /dev | wc -l)
ok "--dev host shows the host's /dev ($host_devs entries)" [ "$host_devs" -eq "$(find /dev -mindepth 1 -maxdepth 1 | wc -l)" ]

before=$(date +%s%N)
out=$(capsula_exec --join never --timing -- sleep 0.2 2>&1); rc=$?
after=$(date +%s%N)
is "$rc" 0 "--timing runs the command"
like "$out" "capsula: +image mount \(FUSE\) +[0-9]+ us" "--timing reports the image mount"
like "$out" "capsula: start to exec +[0-9]+ us" "and the whole launch until exec"
like "$out" "capsula: +identity \(NSS\) +[0-9]+ us" "and the holder's user lookup"
like "$out" "capsula: command \(setns to exit\) +[0-9]+ us" "and, once it exited, the command"
like "$out" "capsula: +image server, meanwhile +[0-9]+ us \([0-9]+ requests\)" \
	"and what the image server did meanwhile"
# The top-level phases account for the total, which is the wall time.
sum=$(printf '%s\n' "$out" | awk '/^capsula: (plan|container ready|setns|command \(setns to exit\)) / {s += $(NF-1)} END {print s}')
total=$(printf '%s\n' "$out" | awk '/^capsula: total \(start to exit\)/ {print $(NF-1)}')
wall=$(( (after - before) / 1000 ))
ok "the phases ($sum us) add up to the total ($total us) within 10%" \
	[ "$(( (total - sum) * 10 ))" -le "$total" ]
ok "the total is at least the 0.2 s the command slept" [ "${total:-0}" -ge 200000 ]
ok "and within the wall time seen from outside ($wall us)" [ "${total:-0}" -le "$wall" ]

# The same launch again, soon, joins the container the first one left warm;
# --join never, or any other bind, builds a new one.
first=$(capsula_exec -- readlink /proc/self/ns/mnt)
again=$(capsula_exec -- readlink /proc/self/ns/mnt)
is "$again" "$first" "the same launch again reuses the warm container"
out=$(capsula_exec --timing -- true 2>&1)
unlike "$out" "image mount" "and builds nothing (no image mount in --timing)"
like "$out" "capsula: total \(start to exit\) +[0-9]+ us" "a rank that joins gets the total too"
ok "--join never gets a container of its own" \
	[ "$(capsula_exec --join never -- readlink /proc/self/ns/mnt)" != "$first" ]
ok "so does a launch with another bind" \
	[ "$(capsula_exec -B /tmp:/mnt -- readlink /proc/self/ns/mnt)" != "$first" ]
is "$(capsula_exec --env VIA=env -- sh -c 'echo $VIA')" "env" \
	"a reused container still gets each launch's own environment"

# --join never under a launcher: the first rank says what it costs, once.
err=$(as_user PMIX_NAMESPACE=capsula-test-job PMIX_RANK=0 "$CAPSULA" exec --join never "$IMAGE" true 2>&1)
like "$err" "^capsula: warning: --join never under a launcher \(pmix:capsula-test-job\).*single-copy" \
	"--join never under a launcher warns on rank 0"
err=$(as_user PMIX_NAMESPACE=capsula-test-job PMIX_RANK=1 "$CAPSULA" exec --join never "$IMAGE" true 2>&1)
is "$err" "" "and on no other rank"
err=$(as_user "$CAPSULA" exec --join never "$IMAGE" true 2>&1)
is "$err" "" "nor without a launcher"

done_testing
