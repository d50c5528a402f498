#!/bin/sh
# Nothing outlives the command: no process, no mount, no /dev/shm object, no
# temporary file, whether it ends normally, fails, or is killed.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

leftovers() {  # what of the test user's could be left behind
	{
		find /dev/shm /tmp /var/tmp -maxdepth 1 -user "$TEST_UID" 2>/dev/null | grep -v "^$WORK\$"
		grep capsula /proc/self/mountinfo
	} | sort
}
before=$(leftovers)
holders_before=$(live_holders)
is "$holders_before" 0 "no holder of the test user before"

capsula_exec -- true
is "$(holders_after_exit)" 0 "after a normal exit no holder remains"
capsula_exec -- sh -c 'exit 3'
capsula_exec -- no-such-command 2>/dev/null
capsula_exec -B /nonexistent -- true 2>/dev/null
is "$(holders_after_exit)" 0 "after failures no holder remains"

as_user sh -c '"$0" exec "$1" sleep 60 & pid=$!; sleep 1; kill -KILL $pid; wait $pid' "$CAPSULA" "$IMAGE"
is "$(holders_after_exit)" 0 "after SIGKILL of the command no holder remains"

as_user sh -c '"$0" exec "$1" sleep 60 & pid=$!; sleep 1; echo $pid > "$2"; wait $pid' \
	"$CAPSULA" "$IMAGE" "$WORK/pid" &
sleep 2
holder_running=$(live_holders)
is "$holder_running" 1 "while the command runs, one holder serves it"
holder_fds=/proc/$(pgrep -u "$TEST_UID" -x capsula-holder | head -1)/fd
fd_count=$(find "$holder_fds" -mindepth 1 2>/dev/null | wc -l)
pipe_count=$(find "$holder_fds" -mindepth 1 -lname 'pipe:*' 2>/dev/null | wc -l)
# Each FUSE worker may keep a pipe for splicing; everything else is counted:
# ten of the holder's own, and the running rank's stderr (where a damaged
# image or a full writable tmpfs is told).
few=no
[ $((fd_count - pipe_count)) -le 11 ] && [ "$pipe_count" -le 18 ] && few=yes
is "$few" yes "the holder keeps only a few descriptors open ($fd_count, $pipe_count of them pipes)"
kill -KILL "$(cat "$WORK/pid")"
wait
is "$(holders_after_exit)" 0 "and it leaves when the command is killed"

is "$(leftovers)" "$before" "no file in /tmp, /var/tmp or /dev/shm and no mount is left behind"

done_testing
