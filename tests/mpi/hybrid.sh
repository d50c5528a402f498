#!/bin/sh
# The hybrid model: the host's mpirun starts capsula exec per rank, the
# application uses the image's Open MPI, and the ranks of the job on this
# node share one container, so shared memory and CMA work as natively.
# It counts holders on the machine, so no other test may run meanwhile.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
require_mpi

host_net=$(as_user readlink /proc/self/ns/net)
host_mnt=$(as_user readlink /proc/self/ns/mnt)
for n in 1 2 4 8; do
	out=$(mpirun_capsula "$n" -- "$MPI_BIN/hello" 2>"$WORK/err"); rc=$?
	is "$rc" 0 "n=$n: hello exits 0"
	hellos=$(printf '%s\n' "$out" | grep '^hello rank')
	is "$(printf '%s\n' "$hellos" | awk '{print $3}' | sort -un | tr '\n' ' ')" \
		"$(seq 0 $((n - 1)) | tr '\n' ' ')" "n=$n: every rank reports once"
	is "$(printf '%s\n' "$hellos" | awk '{print $13}' | sort -u | wc -l)" 1 \
		"n=$n: all ranks share one mount namespace"
	ok "n=$n: and it is not the host's" [ "$(printf '%s\n' "$hellos" | awk 'NR == 1 {print $13}')" != "$host_mnt" ]
	is "$(printf '%s\n' "$hellos" | awk '{print $15}' | sort -u | wc -l)" 1 \
		"n=$n: all ranks share one user namespace"
	is "$(printf '%s\n' "$hellos" | awk '{print $17}' | sort -u)" "$host_net" \
		"n=$n: the ranks use the host's network namespace"
	is "$(printf '%s\n' "$hellos" | awk '{print $11}' | sort -u)" "$TEST_UID" "n=$n: the ranks run as the user"
	like "$out" '^library Open MPI v4\.' "n=$n: the application runs the image's Open MPI"
	like "$(mpirun_capsula "$n" -- "$MPI_BIN/ring" 2>&1)" "^ring ok size $n sum $((n * (n - 1) / 2))$" \
		"n=$n: the ring passes its token"
	like "$(mpirun_capsula "$n" -- "$MPI_BIN/allreduce" 2>&1)" "^allreduce ok size $n " \
		"n=$n: allreduce is correct"
	is "$(cat "$WORK/err")" "" "n=$n: nothing on stderr"
done

out=$(mpirun_capsula 2 -- "$MPI_BIN/pingpong" 4194304 2>"$WORK/err"); rc=$?
is "$rc" 0 "a 2-rank ping-pong up to 4 MB exits 0"
like "$out" '^ +4194304 +50 ' "it reaches 4 MB"
like "$out" '^pingpong done$' "it completes"
unlike "$(cat "$WORK/err")" 'CMA|namespace|vader|help' "no CMA or user-namespace warning from Open MPI"
diag "$(printf '%s\n' "$out" | awk '$1 == 1 || $1 == 4194304 {print "ping-pong " $1 " B: " $3 " us, " $4 " MB/s"}' | tr '\n' ';')"

out=$(mpirun_capsula 4 -v -- /bin/true 2>&1)
is "$(printf '%s\n' "$out" | grep -c 'passwd/group')" 1 "passwd and group are built once for 4 ranks"
is "$(printf '%s\n' "$out" | grep -c 'container ready')" 4 "and all 4 ranks entered the container"

out=$(mpirun_capsula 2 -- sh -c 'echo "$PMIX_RANK $OMPI_COMM_WORLD_RANK $OMPI_COMM_WORLD_SIZE"' | sort)
is "$out" "0 0 2
1 1 2" "PMIx and Open MPI variables reach each rank"
out=$(mpirun_capsula 1 -- sh -c 'test -d "$OMPI_MCA_orte_top_session_dir" && echo visible')
is "$out" visible "the launcher's session directory in the host /tmp is visible"

err=$(as_user mpirun -n 1 "$CAPSULA" exec "$IMAGE" true 2>&1 >/dev/null)
like "$err" "warning: the host's launcher is Open MPI 4\.[0-9.]+ but the image has Open MPI 3\.1\.6" \
	"a different major Open MPI in the image is warned about"
is "$(printf '%s\n' "$err" | grep -c warning)" 1 "once"

out=$(mpirun_capsula 2 --join never -- "$MPI_BIN/hello" 2>/dev/null)
is "$(printf '%s\n' "$out" | grep '^hello rank' | awk '{print $13}' | sort -u | wc -l)" 2 \
	"--join never gives each rank its own container"

is "$(holders_after_exit)" 0 "no holder is left after the jobs"
done_testing
