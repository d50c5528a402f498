#!/bin/sh
# The per-node holder, driven the way a launcher drives it: processes with
# the same job identity (PMIX_NAMESPACE) share one container whatever order
# they start and end in; other jobs and other users never share it.
# It counts holders on the machine, so no other test may run meanwhile.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

job=capsula-check-$$
# rank NAME JOB SECONDS: in the background, record the mount namespace, wait,
# then read from the image (proving the container is still served) and
# record that too.
# The rank writes its own pid (no PID namespace: the host's) to NAME.pid, so
# that a signal reaches the rank itself, not a shell wrapped around it.
rank() {
	as_user PMIX_NAMESPACE="$2" "$CAPSULA" exec "$IMAGE" sh -c \
		'echo $$ > "$0.pid"; readlink /proc/self/ns/mnt > "$0.ns"; sleep "$1"; cat /etc/capsula-test-image > "$0.after"' \
		"$WORK/$1" "$3" &
	eval "pid_$1=\$!"
}
ns_of() { cat "$WORK/$1.ns" 2>/dev/null; }
wait_for() { n=0; while [ ! -s "$WORK/$1" ] && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done; }

# Three ranks that end in the reverse order of their start; c arrives late.
rank a "$job" 4
rank b "$job" 2.5
wait_for a.ns
sleep 1
rank c "$job" 0.5
wait_for c.ns
is "$(live_holders)" 1 "three ranks of one job: one holder"
ok "a late rank joins the same container" same_nonempty "$(ns_of a)" "$(ns_of c)"
is "$(ns_of b)" "$(ns_of a)" "all three share the mount namespace"
wait
for r in a b c; do
	is "$(cat "$WORK/$r.after" 2>/dev/null)" "capsula busybox test image" \
		"rank $r still reads the image after the others left"
done
is "$(holders_after_exit)" 0 "the holder leaves after the last rank"

# SIGKILL of one rank: the other keeps its container.
rm -f "$WORK"/*.ns "$WORK"/*.after "$WORK"/*.pid
rank a "$job-kill" 3
rank b "$job-kill" 60
wait_for a.ns; wait_for b.ns
wait_for b.pid
kill -KILL "$(cat "$WORK/b.pid")"
wait "$pid_a"
is "$(cat "$WORK/a.after" 2>/dev/null)" "capsula busybox test image" "a rank survives another's SIGKILL"
wait "$pid_b"
is "$?" 137 "the killed rank itself ended by SIGKILL"
is "$(holders_after_exit)" 0 "and after both are gone nothing is left"
rm -f "$WORK"/*.after "$WORK"/*.ns

# Two jobs at once, and --join never.
rank a "$job-one" 2
rank b "$job-two" 2
wait_for a.ns; wait_for b.ns
ok "two jobs at once get two containers" [ "$(ns_of a)" != "$(ns_of b)" ]
is "$(live_holders)" 2 "and two holders"
wait
as_user PMIX_NAMESPACE="$job" "$CAPSULA" exec --join never "$IMAGE" readlink /proc/self/ns/mnt > "$WORK/n1" &
as_user PMIX_NAMESPACE="$job" "$CAPSULA" exec --join never "$IMAGE" readlink /proc/self/ns/mnt > "$WORK/n2"
wait
ok "--join never: same job, separate containers" differ_nonempty "$(cat "$WORK/n1")" "$(cat "$WORK/n2")"
is "$(holders_after_exit)" 0 "nothing left after the jobs"

# Other users: a squatter on the job's key as an abstract name (an older
# scheme) is never joined, and a foreign user connecting to our holder gets
# nothing, even where its socket directory was opened up by mistake.
if is_root && command -v socat >/dev/null 2>&1; then
	other=capsula-test2
	id "$other" >/dev/null 2>&1 || with_lock useradd --create-home "$other" || bail_out "cannot create $other"
	key=$(as_user PMIX_NAMESPACE="$job-squat" "$CAPSULA" exec --dry-run "$IMAGE" true | awk '$1 == "join" {print $2}')
	setpriv --reuid "$other" --regid "$other" --init-groups socat "ABSTRACT-LISTEN:$key,fork" SYSTEM:'sleep 2' &
	squatter=$!
	sleep 0.5
	err=$(as_user PMIX_NAMESPACE="$job-squat" "$CAPSULA" exec "$IMAGE" cat /etc/capsula-test-image 2>&1); rc=$?
	kill "$squatter" 2>/dev/null
	wait "$squatter" 2>/dev/null
	is "$rc" 0 "a socket squatted by another user does not stop the rank"
	unlike "$err" "warning|another user" "the rank does not even notice"
	like "$err" "capsula busybox test image" "and runs in a container of its own"

	key=$(as_user PMIX_NAMESPACE="$job-foreign" "$CAPSULA" exec --dry-run "$IMAGE" true | awk '$1 == "join" {print $2}')
	sockets=$TEST_HOME/.capsula/run/$(hostname)/sockets
	rm -f "$WORK/a.ns"
	rank a "$job-foreign" 3
	wait_for a.ns
	ok "the job's holder socket is in the user's socket directory" [ -S "$sockets/$key" ]
	got=$(printf 'S' | setpriv --reuid "$other" --regid "$other" --init-groups \
		timeout 5 socat - "UNIX-CONNECT:$sockets/$key" 2>&1)
	like "$got" "Permission denied" "another user cannot even connect to it"
	# As if the directories had been opened up: the holder itself refuses.
	opened="$TEST_HOME/.capsula $TEST_HOME/.capsula/run $(dirname "$sockets") $sockets"
	# Closed again however the test ends (a bail-out included): later runs
	# would find the user's directories open.
	# shellcheck disable=SC2086 # a list of directories
	trap 'chmod 0700 $opened; rm -rf "$WORK"' EXIT
	# shellcheck disable=SC2086
	chmod 0711 $opened && chmod 0777 "$sockets/$key"
	ok "with them opened up, another user can connect to the holder's socket" \
		setpriv --reuid "$other" --regid "$other" --init-groups \
		timeout 5 socat -u OPEN:/dev/null "UNIX-CONNECT:$sockets/$key"
	got=$(printf 'S' | setpriv --reuid "$other" --regid "$other" --init-groups \
		timeout 5 socat - "UNIX-CONNECT:$sockets/$key" 2>/dev/null | wc -c)
	is "$got" 0 "but receives nothing from the holder"
	got=$(printf 'S' | as_user timeout 5 socat - "UNIX-CONNECT:$sockets/$key" 2>/dev/null | wc -c)
	ok "while the user's own connection is answered ($got bytes), so the check above can fail" [ "$got" -gt 0 ]
	# shellcheck disable=SC2086
	chmod 0700 $opened
	trap 'rm -rf "$WORK"' EXIT
	wait
	is "$(holders_after_exit)" 0 "nothing left"
else
	for _ in 1 2 3 4 5 6 7 8 9; do skip "needs root and socat to act as a second user"; done
fi

# A container made ready ahead of its job's launches (the Slurm plugin's
# way): --hold builds it and stays, running nothing; launches naming the job
# with --job join it, whatever their launcher's variables say.
held=$job-held
as_user "$CAPSULA" exec --job "$held" --hold "$IMAGE" sh -c 'echo ran > "$0"' "$WORK/held-ran" &
n=0
until [ "$(live_holders)" = 1 ] || [ "$n" -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
# The held capsula itself; its holder is forked from it and shares its arguments.
hold=$(ps -eo pid=,user:32=,comm=,args= |
	awk -v u="$TEST_USER" -v j="--job $held --hold" '$2 == u && $3 == "capsula" && index($0, j) {print $1}')
ok "--hold makes the job's container ready and stays" [ -n "$hold" ]
is "$(live_holders)" 1 "one container"
ns_one=$(as_user PMIX_NAMESPACE=another "$CAPSULA" exec --job "$held" "$IMAGE" readlink /proc/self/ns/mnt)
ns_two=$(as_user "$CAPSULA" exec --job "$held" "$IMAGE" readlink /proc/self/ns/mnt)
ok "launches naming the job share one container, whatever PMIX_NAMESPACE says" \
	same_nonempty "$ns_one" "$ns_two"
# A launch that made a container of its own would leave its holder for the
# grace time.
is "$(live_holders)" 1 "the held one: no other holder came"
sleep 2
is "$(live_holders)" 1 "the container outlives its launches' grace time while held"
ok "the held command never ran" [ ! -e "$WORK/held-ran" ]
[ -n "$hold" ] && kill "$hold"
wait
is "$(holders_after_exit)" 0 "killed, --hold takes the container with it"
err=$(as_user "$CAPSULA" exec --hold "$IMAGE" true 2>&1); rc=$?
is "$rc" 125 "--hold outside a job fails"
like "$err" "--hold: no job to keep the container for; give --job ID" "saying what to give"

done_testing
