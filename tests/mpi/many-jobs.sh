#!/bin/sh
# Eight MPI jobs of four ranks each at once on this node: each job's ranks
# share one container, and no two jobs share one.
# It counts holders on the machine, so no other test may run meanwhile.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
require_mpi

jobs=8 ranks=4
j=1
while [ "$j" -le "$jobs" ]; do
	# A session directory per job: mpiruns starting at the same moment race
	# to create the shared default one (Open MPI's own "File exists").
	as_user mkdir -p "$WORK/session$j"
	as_user mpirun --oversubscribe --mca orte_tmpdir_base "$WORK/session$j" -n "$ranks" \
		"$CAPSULA" exec "$MPI_IMAGE" "$MPI_BIN/hello" > "$WORK/job$j" 2> "$WORK/job$j.err" &
	j=$((j + 1))
done
wait

all=""
j=1
while [ "$j" -le "$jobs" ]; do
	hellos=$(grep '^hello rank' "$WORK/job$j")
	is "$(printf '%s\n' "$hellos" | grep -c .)" "$ranks" "job $j: all $ranks ranks report" ||
		diag "job $j: $(cat "$WORK/job$j.err")"
	mnt=$(printf '%s\n' "$hellos" | awk '{print $13}' | sort -u)
	is "$(printf '%s\n' "$mnt" | grep -c .)" 1 "job $j: its ranks share one container"
	all="$all$mnt
"
	j=$((j + 1))
done
is "$(printf '%s' "$all" | sort -u | grep -c .)" "$jobs" "the $jobs jobs have $jobs different containers"
is "$(holders_after_exit)" 0 "no holder is left after the jobs"

done_testing
