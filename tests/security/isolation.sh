#!/bin/sh
# Another local user (capsula-test2) attacks the test user's containers: tries
# to take the holders' socket names before and after they are used (bound
# only, and listening with a full backlog), floods an instance's socket,
# pre-creates the user's runtime directory, plants symlinks in /tmp; and the
# test user's launches, MPI jobs and instances go on as if nothing happened. Also: the overflow uid, a launch
# under another group, and an image whose root directory is 0700.
# It watches every capsula socket on the machine, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
is_root || skip_all "needs root to act as a second user"

other=capsula-test2
id "$other" >/dev/null 2>&1 || with_lock sh -c "id $other >/dev/null 2>&1 || useradd --no-create-home --shell /bin/sh $other" ||
	bail_out "cannot create $other"
SQUATTER=$(stage_file "$abs_top_builddir/tests/security/squatter") || bail_out "cannot stage the squatter"
chmod a+rx "$SQUATTER"
as_other() { (cd / && exec setpriv --reuid "$other" --regid "$other" --init-groups env -i PATH=/usr/bin:/bin "$@" 9>&-); }
squatters=""
cleanup() {
	for p in $squatters; do kill "$p" 2>/dev/null; done
	pkill -u "$other" -x squatter 2>/dev/null
	rm -rf "$WORK" /tmp/capsula-isolation-work "/tmp/capsula-$(cat /proc/sys/kernel/overflowuid)"
	[ -d "/tmp/capsula-$TEST_UID" ] && [ "$(stat -c %U "/tmp/capsula-$TEST_UID")" = "$other" ] &&
		rmdir "/tmp/capsula-$TEST_UID"
	getent group capsula-test-g2 >/dev/null && groupdel capsula-test-g2
}
trap cleanup EXIT

ms() { date +%s%3N; }
# squat MODE NAME...: another user takes the names, in the background (exec'd
# in a subshell of its own, so that $! is the squatter and kill reaches it;
# without the suite's lock, which it must not hold on to).
squat() {
	mode=$1; shift
	(cd / && exec setpriv --reuid "$other" --regid "$other" --init-groups \
		"$SQUATTER" "$mode" "$@" 9>&-) > "$WORK/squat.out" &
	squatters="$squatters $!"
	n=0; while ! grep -q ready "$WORK/squat.out" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}
# watch_names SECONDS: another user watches the machine's sockets for
# capsula's and tries to take each name it sees, in the user's socket
# directory and as an abstract name, and to connect to it.
watch_names() {
	(cd / && exec setpriv --reuid "$other" --regid "$other" --init-groups \
		"$SQUATTER" watch "$sockets" "$1" 9>&-) > "$WORK/watch.out" &
	watcher=$!
	squatters="$squatters $watcher"
	n=0; while ! grep -q ready "$WORK/watch.out" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}
# What the watcher reports once stopped: "seen N tries N took N connected N".
watch_report() {
	kill -USR1 "$watcher" 2>/dev/null
	wait "$watcher" 2>/dev/null
	grep '^seen' "$WORK/watch.out"
}
watch_field() { watch_report | awk -v f="$1" '{for (i = 1; i < NF; i++) if ($i == f) print $(i + 1)}'; }
stop_squatters() {
	for p in $squatters; do kill "$p" 2>/dev/null; done
	for p in $squatters; do wait "$p" 2>/dev/null; done
	squatters=""
}
# A process that has not ended (a zombie has).
alive() { s=$(ps -o stat= -p "$1" 2>/dev/null); [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
gone() { ! alive "$1"; }
# The test user's holder that has not ended (of one).
live_holder() { ps -u "$TEST_UID" -o pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 == "capsula-holder" {print $1; exit}'; }
sockets=$TEST_HOME/.capsula/run/$(hostname)/sockets

# ---------------------------------------------------------------- 1. names
# How long a cold launch takes here, unattacked (in a socket directory made
# anew: nothing else runs now).
holders_after_exit >/dev/null
rm -rf "$sockets"
t0=$(ms); capsula_exec --join never -- true; t1=$(ms)
normal=$((t1 - t0))
diag "a cold launch takes $normal ms here"
is "$(stat -c '%U %a' "$sockets")" "$TEST_USER 700" "the holders' sockets live in a directory only the user can open"
ok "another user cannot make a name there" as_other sh -c "! touch '$sockets/capsula-x' 2>/dev/null"
ok "nor list the names there" as_other sh -c "! ls '$sockets' >/dev/null 2>&1"

# The names an attacker can compute (an older scheme: the join key as an
# abstract name, as --dry-run prints it) taken in advance, bound and
# listening: nothing happens.
key=$(capsula_exec --dry-run -- true | awk '$1 == "join" {print $2}')
squat listen "$key"
t0=$(ms); out=$(capsula_exec -- cat /etc/capsula-test-image 2>&1); rc=$?; t1=$(ms)
is "$rc:$out" "0:capsula busybox test image" "a launch runs while its join key, as an abstract name, is taken"
ok "and is not slowed ($((t1 - t0)) ms, unattacked $normal ms)" [ $((t1 - t0)) -lt $((normal + 1000)) ]
stop_squatters
is "$(holders_after_exit)" 0 "its holder leaves"

# The attacker watches the machine's sockets and tries to take each name
# of ours as soon as it sees it, or to connect to it; the same launch again
# and again (each joining the warm container, or making a new one after the
# last one left) goes on as if nothing happened. Eight names were once all
# a launch could use.
watch_names 60
runs=0; failed=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
	out=$(capsula_exec -- cat /etc/capsula-test-image 2>&1)
	if [ "$out" = "capsula busybox test image" ]; then runs=$((runs + 1)); else failed=$((failed + 1)); diag "run $i: $out"; fi
	[ $((i % 3)) = 0 ] && holders_after_exit >/dev/null  # a new holder, a new socket
done
is "$runs" 12 "12 launches, each after the last one's holder may have left, all run"
t0=$(ms); out=$(capsula_exec -- cat /etc/capsula-test-image 2>&1); rc=$?; t1=$(ms)
is "$rc:$out" "0:capsula busybox test image" "and one more"
ok "within a second of an unattacked one ($((t1 - t0)) ms, unattacked $normal ms)" \
	[ $((t1 - t0)) -lt $((normal + 1000)) ]
ns1=$(capsula_exec -- readlink /proc/self/ns/mnt)
ns2=$(capsula_exec -- readlink /proc/self/ns/mnt)
ok "launches still share their warm container" same_nonempty "$ns1" "$ns2"
report=$(watch_report)
diag "watcher: $report"
like "$report" "^seen [1-9][0-9]* tries [1-9]" "the other user saw the holders' sockets and tried them"
like "$report" " took 0 connected 0$" "and took no name of ours and reached no holder"
is "$(holders_after_exit)" 0 "the holders leave"
stop_squatters

# A job's ranks: the attacker watches an earlier run of the same job and
# tries its names; late ranks still meet in one container.
job=capsula-isolation-$$
rank() {
	as_user PMIX_NAMESPACE="$job" "$CAPSULA" exec "$IMAGE" sh -c \
		'readlink /proc/self/ns/mnt > "$0.ns"; sleep 1' "$WORK/$1" &
	ranks="$ranks $!"
}
# Only the ranks: a plain wait would wait for the squatter too.
wait_ranks() { for r in $ranks; do wait "$r"; done; ranks=""; }
ranks=""
watch_names 30
rank first; wait_ranks
is "$(holders_after_exit)" 0 "the job's first holder leaves"
rm -f "$WORK"/*.ns
t0=$(ms); rank a; rank b; wait_ranks; t1=$(ms)
ok "two ranks of the job start afterwards and share one container ($((t1 - t0)) ms)" \
	same_nonempty "$(cat "$WORK/a.ns" 2>/dev/null)" "$(cat "$WORK/b.ns" 2>/dev/null)"
ok "within a second of their sleep (1 s) and a cold start" [ $((t1 - t0)) -lt $((normal + 2000)) ]
like "$(watch_report)" " took 0 connected 0$" "the watcher took and reached nothing of the job's"
is "$(holders_after_exit)" 0 "nothing is left"
stop_squatters

# A real 2-rank mpirun while the attacker tries every name it sees.
if command -v mpirun >/dev/null 2>&1 && [ -r "$abs_top_builddir/tests/images/mpi.sqfs" ]; then
	MPI_IMAGE=$(stage_file "$abs_top_builddir/tests/images/mpi.sqfs")
	out=$(as_user mpirun --oversubscribe -n 2 "$CAPSULA" exec "$MPI_IMAGE" /opt/capsula-tests/hello 2>&1)
	is "$(holders_after_exit)" 0 "mpirun: a first job's holder leaves"
	watch_names 60
	out=$(as_user mpirun --oversubscribe -n 2 "$CAPSULA" exec "$MPI_IMAGE" /opt/capsula-tests/hello 2>&1); rc=$?
	is "$rc" 0 "mpirun -n 2 (a watcher trying every name): the job succeeds"
	is "$(printf '%s\n' "$out" | grep '^hello rank' | awk '{print $13}' | sort -u | wc -l)" 1 \
		"mpirun -n 2: both ranks in one container"
	like "$(watch_report)" " took 0 connected 0$" "mpirun -n 2: the watcher got nothing"
	is "$(holders_after_exit)" 0 "mpirun -n 2: nothing is left"
	stop_squatters
else
	for _ in 1 2 3 4 5; do skip "no mpirun or MPI image: the 2-rank job under attack is not run"; done
fi

# A socket file a killed holder left is no obstacle: the next launch of the
# same container takes the name over.
capsula_exec -- true
pid=$(live_holder)
kill -KILL "$pid" 2>/dev/null
is "$(holders_after_exit)" 0 "a holder killed with SIGKILL is gone"
ok "and has left its socket file" [ "$(find "$sockets" -name 'capsula-*' | wc -l)" -ge 1 ]
out=$(capsula_exec -- cat /etc/capsula-test-image 2>&1); rc=$?
is "$rc:$out" "0:capsula busybox test image" "the same launch again runs"
is "$(holders_after_exit)" 0 "and its holder leaves"
is "$(find "$sockets" -name 'capsula-*' | wc -l)" 0 "taking the stale socket file with it"

# ---------------------------------------------------------------- 2. instances
inst=iso$$
as_user "$CAPSULA" instance start "$IMAGE" "$inst" 2>/dev/null
pid=$(as_user "$CAPSULA" instance list --json | jq -r ".[] | select(.name == \"$inst\") | .holder")
ok "an instance runs (holder $pid)" alive "${pid:-0}"
isock=$(find "$sockets" -name 'capsula-*' | head -n 1)
ok "its socket is in the user's socket directory (${isock:-none})" [ -S "$isock" ]
# Two other users connect to it as fast as they can, holding every connection.
for n in 1 2; do
	(cd / && exec setpriv --reuid "$other" --regid "$other" --init-groups \
		"$SQUATTER" flood "$isock" 4 9>&-) > "$WORK/flood$n.out" &
	squatters="$squatters $!"
done
sleep 1
out=$(as_user "$CAPSULA" exec "instance://$inst" cat /etc/capsula-test-image 2>&1); rc=$?
is "$rc:$out" "0:capsula busybox test image" "exec instance:// runs while two other users flood its socket"
like "$(as_user "$CAPSULA" instance list)" "^$inst " "instance list still shows it"
for p in $squatters; do wait "$p" 2>/dev/null; done
squatters=""
is "$(cat "$WORK/flood1.out" "$WORK/flood2.out" | grep -c '^connected 0 refused [1-9][0-9]* (Permission denied)')" 2 \
	"both got no connection at all: permission denied"
t0=$(ms); timeout 20 setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
	env -i HOME="$TEST_HOME" PATH=/usr/bin:/bin "$CAPSULA" instance stop "$inst"; rc=$?; t1=$(ms)
is "$rc" 0 "instance stop succeeds"
ok "within seconds ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 6000 ]
ok "the instance's holder is gone" gone "$pid"
t0=$(ms); listing=$(timeout 20 setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
	env -i HOME="$TEST_HOME" PATH=/usr/bin:/bin "$CAPSULA" instance list); rc=$?; t1=$(ms)
is "$rc" 0 "instance list ends ($((t1 - t0)) ms)"
unlike "$listing" "$inst" "and does not list the stopped instance"

# A full backlog is busy, never gone: the user's own processes flood the
# socket (only they can) with connections that never speak.
as_user "$CAPSULA" instance start "$IMAGE" "$inst" 2>/dev/null
pid=$(live_holder)
isock=$(find "$sockets" -name 'capsula-*' | head -n 1)
(cd / && exec setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
	"$SQUATTER" flood "$isock" 8 9>&-) > "$WORK/flood-own.out" &
squatters="$squatters $!"
sleep 1
like "$(as_user "$CAPSULA" instance list)" "^$inst " "a flooded instance is still listed"
ok "its record is kept" [ -f "$TEST_HOME/.capsula/run/$(hostname)/instances/$inst.json" ]
err=$(as_user "$CAPSULA" exec "instance://$inst" true 2>&1); rc=$?
unlike "$err" "no longer running|no instance" "exec instance:// does not call it gone ($rc: $err)"
ok "its record is still kept" [ -f "$TEST_HOME/.capsula/run/$(hostname)/instances/$inst.json" ]
err=$(as_user "$CAPSULA" instance stop "$inst" 2>&1); rc=$?
is "$rc:$err" 0: "instance stop of a flooded instance exits 0"
ok "and only once its holder is gone" gone "$pid"
unlike "$(as_user "$CAPSULA" instance list)" "$inst" "and it is no longer listed"
stop_squatters
diag "the flood: $(cat "$WORK/flood-own.out")"

# The record's pid is never signalled: point it at another process of the user.
as_user "$CAPSULA" instance start "$IMAGE" "$inst" 2>/dev/null
as_user sleep 60 &
sleeper=$!
sleep 0.3
sleeper_pid=$(pgrep -u "$TEST_UID" -x sleep | head -n 1)
record=$TEST_HOME/.capsula/run/$(hostname)/instances/$inst.json
sed -i "s/\"holder\": [0-9]*/\"holder\": $sleeper_pid/" "$record"
pid=$(live_holder)
as_user "$CAPSULA" instance stop "$inst"
is "$?" 0 "instance stop with a record naming another process exits 0"
ok "the process the record names is not signalled" alive "$sleeper_pid"
ok "the instance's real holder is stopped" gone "$pid"
kill "$sleeper_pid" 2>/dev/null
wait "$sleeper" 2>/dev/null

# ---------------------------------------------------------------- 3. runtime dir
# (left by an earlier version that kept records there)
[ -d "/tmp/capsula-$TEST_UID" ] && [ "$(stat -c %u "/tmp/capsula-$TEST_UID")" = "$TEST_UID" ] &&
	rm -rf "/tmp/capsula-$TEST_UID"
as_other mkdir -m 700 "/tmp/capsula-$TEST_UID"
ok "the other user made /tmp/capsula-$TEST_UID" [ "$(stat -c %U "/tmp/capsula-$TEST_UID")" = "$other" ]
err=$(as_user "$CAPSULA" instance start "$IMAGE" "$inst" 2>&1); rc=$?
is "$rc" 0 "instance start works with /tmp/capsula-UID made by another user and XDG_RUNTIME_DIR unset"
like "$(as_user "$CAPSULA" instance list)" "^$inst " "and list shows it"
ok "its record lives in the user's home" [ -f "$TEST_HOME/.capsula/run/$(hostname)/instances/$inst.json" ]
is "$(stat -c %a "$TEST_HOME/.capsula/run/$(hostname)")" 700 "in a directory only the user can open"
is "$(as_user "$CAPSULA" instance stop "$inst"; echo $?)" 0 "and stop works"
# Opened up by the user (or a program stopped half-way): closed again, not
# given up for /tmp, where ranks that still found the home would miss it.
chmod 0711 "$TEST_HOME/.capsula" "$TEST_HOME/.capsula/run"
err=$(as_user "$CAPSULA" instance start "$IMAGE" "$inst" 2>&1); rc=$?
is "$rc" 0 "instance start works with the user's ~/.capsula opened to others"
like "$err" "warning: .*/\.capsula was open to other users \(mode 0711\); it is private again" \
	"it says the directory was open"
is "$(stat -c %a "$TEST_HOME/.capsula") $(stat -c %a "$TEST_HOME/.capsula/run")" "700 700" \
	"both directories are private again"
ok "the record still lives in the user's home" [ -f "$TEST_HOME/.capsula/run/$(hostname)/instances/$inst.json" ]
as_user "$CAPSULA" instance stop "$inst"
xdg=$WORK/xdg; mkdir -m 700 "$xdg"; chown "$TEST_UID:$TEST_GID" "$xdg"
as_user XDG_RUNTIME_DIR="$xdg" "$CAPSULA" instance start "$IMAGE" "$inst" 2>/dev/null
ok "with XDG_RUNTIME_DIR set, records live there" [ -f "$xdg/capsula/instances/$inst.json" ]
as_user XDG_RUNTIME_DIR="$xdg" "$CAPSULA" instance stop "$inst"
is "$(holders_after_exit)" 0 "no holder is left"

# ---------------------------------------------------------------- 4. overflow uid
overflow=$(cat /proc/sys/kernel/overflowuid)
err=$(cd / && setpriv --reuid "$overflow" --regid "$overflow" --clear-groups env -i PATH=/usr/bin:/bin HOME=/ \
	"$CAPSULA" exec "$IMAGE" true 2>&1); rc=$?
is "$rc" 125 "a launch as the overflow uid $overflow is refused"
like "$err" "^capsula: uid $overflow is the kernel's overflow uid .*; run as a regular account$" \
	"and the message says why"

# ---------------------------------------------------------------- 5. groups
getent group capsula-test-g2 >/dev/null || groupadd capsula-test-g2
g2=$(getent group capsula-test-g2 | cut -d: -f3)
usermod -a -G capsula-test-g2 "$TEST_USER"
as_group() {  # GID COMMAND...
	g=$1; shift
	(cd "$WORK" && setpriv --reuid "$TEST_UID" --regid "$g" --init-groups \
		env -i HOME="$TEST_HOME" PATH=/usr/bin:/bin "$@")
}
ns_a=$(as_group "$TEST_GID" "$CAPSULA" exec "$IMAGE" readlink /proc/self/ns/mnt)
out=$(as_group "$g2" "$CAPSULA" exec "$IMAGE" sh -c 'id -g; readlink /proc/self/ns/mnt' 2>&1); rc=$?
is "$rc" 0 "a launch under another primary group right after one under the first runs"
is "$(printf '%s\n' "$out" | head -n 1)" "$g2" "with the new group"
ok "in a container of its own" differ_nonempty "$ns_a" "$(printf '%s\n' "$out" | tail -n 1)"
ns_b=$(as_group "$TEST_GID" "$CAPSULA" exec "$IMAGE" readlink /proc/self/ns/mnt)
is "$ns_b" "$ns_a" "the same group again still finds its warm container"
gpasswd -d "$TEST_USER" capsula-test-g2 >/dev/null
ns_c=$(as_group "$TEST_GID" "$CAPSULA" exec "$IMAGE" readlink /proc/self/ns/mnt)
ok "other supplementary groups make another container" differ_nonempty "$ns_a" "$ns_c"
is "$(holders_after_exit)" 0 "nothing is left"

# ---------------------------------------------------------------- 7. symlinks
victim_ssh=$TEST_HOME/.ssh
mkdir -p "$victim_ssh" "$WORK/data"
rm -rf "$victim_ssh/x"
chown "$TEST_UID:$TEST_GID" "$victim_ssh" "$WORK/data"
chmod 0700 "$victim_ssh"
rm -rf /tmp/capsula-isolation-work
as_other ln -s "$victim_ssh" /tmp/capsula-isolation-work
err=$(capsula_exec -B "$WORK/data:/tmp/capsula-isolation-work/x" -- true 2>&1); rc=$?
is "$rc" 125 "a bind whose mount point is behind another user's symlink in /tmp is refused"
is "$(printf '%s\n' "$err" | grep -c .)" 1 "in one line"
like "$err" "^capsula: mount point /tmp/capsula-isolation-work/x: .*symlink in the host directory /tmp" \
	"that names the mount point and the symlink's directory"
ok "nothing was made where the symlink points" [ ! -e "$victim_ssh/x" ]
rm -f /tmp/capsula-isolation-work
is "$(capsula_exec -B "$WORK/data:/tmp/capsula-isolation-work/x" -- sh -c 'test -d /tmp/capsula-isolation-work/x && echo bound')" \
	bound "without the symlink the same bind works"
rm -rf /tmp/capsula-isolation-work

# ---------------------------------------------------------------- 8. 0700 root
tree=$(mktemp -d "$WORK/tree.XXXXXX")
mkdir -p "$tree/bin" "$tree/etc" "$tree/secret" "$tree/opt/closed/app"
cp "$(command -v busybox || echo /bin/busybox)" "$tree/bin/busybox"
ln -s busybox "$tree/bin/sh"
echo "from a 0700 root" > "$tree/etc/marker"
chmod 0700 "$tree/secret" "$tree/opt/closed"
mksquashfs "$tree" "$WORK/closed.sqfs" -noappend -quiet -no-progress -all-root >/dev/null || bail_out "mksquashfs failed"
chmod a+r "$WORK/closed.sqfs"
is "$(unsquashfs -lls "$WORK/closed.sqfs" | awk '$6 == "squashfs-root" {print $1}')" "drwx------" \
	"the image's root directory is 0700"
out=$(as_user "$CAPSULA" exec "$WORK/closed.sqfs" /bin/busybox cat /etc/marker 2>&1); rc=$?
is "$rc:$out" "0:from a 0700 root" "an image whose root is 0700 runs"
is "$(as_user "$CAPSULA" exec "$WORK/closed.sqfs" /bin/busybox stat -c %a /secret)" 700 \
	"its other directories show their modes as they are"
ok "and keep them: a 0700 directory of root stays closed" \
	as_user "$CAPSULA" exec "$WORK/closed.sqfs" /bin/busybox sh -c '! ls /secret 2>/dev/null'
out=$(as_user "$CAPSULA" exec -B "$WORK/data:/opt/closed/app/new" "$WORK/closed.sqfs" /bin/busybox echo ran 2>&1); rc=$?
is "$rc:$out" "0:ran" "a mount point under a 0700 image directory is made"
is "$(holders_after_exit)" 0 "nothing is left"

done_testing
