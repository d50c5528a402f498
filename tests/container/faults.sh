#!/bin/sh
# Faults: signals to a rank end it with 128+N; a killed holder makes its
# ranks fail quickly and clearly instead of hanging; killing everything
# leaves nothing; Ctrl-C in one rank's terminal group does not reach the
# holder the other ranks use.
# It counts the test user's holders, so no other test may run meanwhile.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

# The live holder of the test user (zombies of earlier ones do not count).
holder_pid() {
	ps -eo pid=,user:32=,stat=,comm= |
		awk -v u="$TEST_USER" '$2 == u && $3 !~ /^Z/ && $4 == "capsula-holder" { print $1; exit }'
}

# Each signal, sent to the rank (the command itself once capsula has exec'd).
# A shell starts background jobs with SIGINT ignored; a launcher does not,
# so the rank is started with default dispositions.
for sig in TERM:15 INT:2 HUP:1; do
	name=${sig%:*} number=${sig#*:}
	as_user sh -c 'env --default-signal "$0" exec "$1" sleep 60 & pid=$!; sleep 1; kill -'"$name"' $pid; wait $pid' \
		"$CAPSULA" "$IMAGE"
	rc=$?
	is "$rc" "$((128 + number))" "SIG$name to a rank ends it with $((128 + number))"
done

# SIGKILL of the holder while two ranks of a job run: their next reads of
# the image fail at once (ENOTCONN, or SIGBUS for a page of a mapped
# program), nothing hangs.
is "$(holders_after_exit)" 0 "no holder before the job starts"
job=faults-$$
for rank in 1 2; do
	as_user sh -c 'PMIX_NAMESPACE="$2" "$0" exec "$1" sh -c "sleep 2; cat /etc/capsula-test-image"; echo "exit $?"' \
		"$CAPSULA" "$IMAGE" "$job" > "$WORK/rank$rank" 2>&1 &
done
sleep 1
holder=$(holder_pid)
ok "one holder serves the job" [ -n "$holder" ]
start=$(date +%s)
kill -KILL "$holder"
wait
elapsed=$(( $(date +%s) - start ))
ok "ranks of a killed holder end quickly (${elapsed}s)" [ "$elapsed" -lt 10 ]
for rank in 1 2; do
	like "$(cat "$WORK/rank$rank")" "exit [1-9]" "rank $rank fails"
	like "$(cat "$WORK/rank$rank")" "Transport endpoint is not connected|Bus error|exit 135" \
		"rank $rank: the error says the image is gone (ENOTCONN or SIGBUS)"
done
out=$(as_user env PMIX_NAMESPACE="$job" "$CAPSULA" exec "$IMAGE" cat /etc/capsula-test-image 2>&1); rc=$?
is "$rc" 0 "a late rank of that job gets a new holder"
is "$out" "capsula busybox test image" "and reads the image"

# SIGKILL of all ranks at once.
for rank in 1 2 3; do
	as_user env PMIX_NAMESPACE="$job-all" "$CAPSULA" exec "$IMAGE" sleep 60 &
done
sleep 1
pkill -KILL -u "$TEST_UID" -x sleep
wait
is "$(holders_after_exit)" 0 "after SIGKILL of all ranks no holder remains"

# Ctrl-C: the terminal sends SIGINT to its foreground process group. Rank A
# has a group of its own; rank B of the same job must keep working.
as_user sh -c 'env --default-signal PMIX_NAMESPACE="$2" setsid -w "$0" exec "$1" sleep 60; echo "exit $?" > "$3"' \
	"$CAPSULA" "$IMAGE" "$job-int" "$WORK/rankA" &
rank_a=$!
sleep 1
as_user env PMIX_NAMESPACE="$job-int" "$CAPSULA" exec "$IMAGE" sh -c \
	'sleep 2; cat /etc/capsula-test-image' > "$WORK/rankB" 2>&1 &
rank_b=$!
sleep 0.5
group=$(ps -o pgid= -p "$(pgrep -u "$TEST_UID" -x sleep | head -1)" | tr -d ' ')
kill -INT "-$group"
wait "$rank_a"
is "$(cat "$WORK/rankA")" "exit 130" "Ctrl-C (SIGINT to its process group) ends that rank with 130"
wait "$rank_b"; rc=$?
is "$rc" 0 "after Ctrl-C in one rank's group the other rank still works"
is "$(cat "$WORK/rankB")" "capsula busybox test image" "and still reads the image"
wait

is "$(holders_after_exit)" 0 "no holder is left running"
is "$(processes_seeing_image "$IMAGE")" 0 "no process of the user sees the image's mount any more"

done_testing
