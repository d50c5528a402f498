#!/bin/sh
# Another local user (capsula-test2) attacks the test user's containers: takes
# the socket names of holders before and after they are used (bound only, and
# listening with a full backlog), pre-creates the user's runtime directory,
# plants symlinks in /tmp; and the test user's launches, MPI jobs and
# instances go on as if nothing happened. Also: the overflow uid, a launch
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
# watch MODE SECONDS: another user takes every capsula name once it is free.
watch_names() {
	(cd / && exec setpriv --reuid "$other" --regid "$other" --init-groups \
		"$SQUATTER" watch "$1" "$2" 9>&-) > "$WORK/watch.out" &
	watcher=$!
	squatters="$squatters $watcher"
	n=0; while ! grep -q ready "$WORK/watch.out" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}
stop_squatters() {
	for p in $squatters; do kill "$p" 2>/dev/null; done
	for p in $squatters; do wait "$p" 2>/dev/null; done
	squatters=""
}
# A process that has not ended (a zombie has).
alive() { s=$(ps -o stat= -p "$1" 2>/dev/null); [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
gone() { ! alive "$1"; }
taken_by_other() { grep -c ' @capsula-' /proc/net/unix; }

# ---------------------------------------------------------------- 1. names
# How long a cold launch takes here, unattacked.
holders_after_exit >/dev/null
t0=$(ms); capsula_exec --join never -- true; t1=$(ms)
normal=$((t1 - t0))
diag "a cold launch takes $normal ms here"

# The names an attacker can compute (the old scheme: the join key as
# --dry-run prints it) taken in advance, bound and listening: nothing happens.
key=$(capsula_exec --dry-run -- true | awk '$1 == "join" {print $2}')
squat bind "$key"
squat listen "$key-listening"
t0=$(ms); out=$(capsula_exec -- cat /etc/capsula-test-image 2>&1); rc=$?; t1=$(ms)
is "$rc:$out" "0:capsula busybox test image" "a launch runs while its join key, as a name, is taken"
ok "and is not slowed ($((t1 - t0)) ms, unattacked $normal ms)" [ $((t1 - t0)) -lt $((normal + 1000)) ]
stop_squatters
is "$(holders_after_exit)" 0 "its holder leaves"

for mode in bind listen; do
	# The attacker watches the machine's sockets and takes each name of
	# ours as soon as our holder lets it go; the same launch again (which
	# would join its warm container) must not notice.
	watch_names "$mode" 30
	capsula_exec -- true
	is "$(holders_after_exit)" 0 "$mode: the first launch's holder leaves"
	sleep 0.3
	ok "$mode: the other user now holds the name it used" [ "$(taken_by_other)" -ge 1 ]
	t0=$(ms); out=$(capsula_exec -- cat /etc/capsula-test-image 2>&1); rc=$?; t1=$(ms)
	is "$rc:$out" "0:capsula busybox test image" "$mode: the same launch again runs"
	ok "$mode: and within a second of an unattacked one ($((t1 - t0)) ms, unattacked $normal ms)" \
		[ $((t1 - t0)) -lt $((normal + 1000)) ]
	ns1=$(capsula_exec -- readlink /proc/self/ns/mnt)
	ns2=$(capsula_exec -- readlink /proc/self/ns/mnt)
	ok "$mode: launches still share their warm container" same_nonempty "$ns1" "$ns2"
	is "$(holders_after_exit)" 0 "$mode: and it leaves"
	stop_squatters
done

# A job's ranks: the attacker takes the names of an earlier run of the
# same job as they are freed; late ranks still meet in one container.
job=capsula-isolation-$$
rank() {
	as_user PMIX_NAMESPACE="$job" "$CAPSULA" exec "$IMAGE" sh -c \
		'readlink /proc/self/ns/mnt > "$0.ns"; sleep 1' "$WORK/$1" &
	ranks="$ranks $!"
}
# Only the ranks: a plain wait would wait for the squatter too.
wait_ranks() { for r in $ranks; do wait "$r"; done; ranks=""; }
ranks=""
for mode in bind listen; do
	watch_names "$mode" 30
	rank first; wait_ranks
	is "$(holders_after_exit)" 0 "$mode: the job's first holder leaves"
	sleep 0.3
	ok "$mode: the other user now holds the name the job used" [ "$(taken_by_other)" -ge 1 ]
	rm -f "$WORK"/*.ns
	t0=$(ms); rank a; rank b; wait_ranks; t1=$(ms)
	ok "$mode: two ranks of the job start afterwards and share one container ($((t1 - t0)) ms)" \
		same_nonempty "$(cat "$WORK/a.ns" 2>/dev/null)" "$(cat "$WORK/b.ns" 2>/dev/null)"
	ok "$mode: within a second of their sleep (1 s) and a cold start" [ $((t1 - t0)) -lt $((normal + 2000)) ]
	is "$(holders_after_exit)" 0 "$mode: nothing is left"
	stop_squatters
done

# A real 2-rank mpirun while the attacker takes every name it can.
if command -v mpirun >/dev/null 2>&1 && [ -r "$abs_top_builddir/tests/images/mpi.sqfs" ]; then
	MPI_IMAGE=$(stage_file "$abs_top_builddir/tests/images/mpi.sqfs")
	out=$(as_user mpirun --oversubscribe -n 2 "$CAPSULA" exec "$MPI_IMAGE" /opt/capsula-tests/hello 2>&1)
	is "$(holders_after_exit)" 0 "mpirun: a first job's holder leaves"
	for mode in bind listen; do
		watch_names "$mode" 60
		out=$(as_user mpirun --oversubscribe -n 2 "$CAPSULA" exec "$MPI_IMAGE" /opt/capsula-tests/hello 2>&1); rc=$?
		is "$rc" 0 "mpirun -n 2 ($mode squatter watching): the job succeeds"
		is "$(printf '%s\n' "$out" | grep '^hello rank' | awk '{print $13}' | sort -u | wc -l)" 1 \
			"mpirun -n 2 ($mode squatter watching): both ranks in one container"
		is "$(holders_after_exit)" 0 "mpirun -n 2 ($mode): nothing is left"
		stop_squatters
	done
else
	for _ in 1 2 3 4 5 6 7; do skip "no mpirun or MPI image: the 2-rank job under attack is not run"; done
fi

# ---------------------------------------------------------------- 2. instances
inst=iso$$
as_user "$CAPSULA" instance start "$IMAGE" "$inst" 2>/dev/null
pid=$(as_user "$CAPSULA" instance list --json | jq -r ".[] | select(.name == \"$inst\") | .holder")
ok "an instance runs (holder $pid)" alive "${pid:-0}"
watch_names listen 30
t0=$(ms); timeout 20 setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
	env -i HOME="$TEST_HOME" PATH=/usr/bin:/bin "$CAPSULA" instance stop "$inst"; rc=$?; t1=$(ms)
is "$rc" 0 "instance stop ends though another user takes the name as it frees"
ok "within seconds ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 6000 ]
ok "the instance's holder is gone" gone "$pid"
sleep 0.3
ok "the other user now holds the name" [ "$(taken_by_other)" -ge 1 ]
t0=$(ms); listing=$(timeout 20 setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
	env -i HOME="$TEST_HOME" PATH=/usr/bin:/bin "$CAPSULA" instance list); rc=$?; t1=$(ms)
is "$rc" 0 "instance list ends ($((t1 - t0)) ms)"
unlike "$listing" "$inst" "and does not list the stopped instance"
stop_squatters

# The record's pid is never signalled: point it at another process of the user.
as_user "$CAPSULA" instance start "$IMAGE" "$inst" 2>/dev/null
as_user sleep 60 &
sleeper=$!
sleep 0.3
sleeper_pid=$(pgrep -u "$TEST_UID" -x sleep | head -n 1)
record=$TEST_HOME/.capsula/run/$(hostname)/instances/$inst.json
sed -i "s/\"holder\": [0-9]*/\"holder\": $sleeper_pid/" "$record"
pid=$(pgrep -u "$TEST_UID" -x capsula-holder | head -n 1)
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
