#!/bin/sh
# srun --mpi=pmix capsula exec ...: under a Slurm controller and node daemon
# that this test starts (and stops) on this machine alone.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
require_mpi
. "$abs_top_srcdir/tests/lib/slurm.sh"
require_slurm
slurm_start "" || bail_out "cannot start Slurm"

srun_capsula() {  # N PROGRAM [ARGS]
	n=$1; shift
	as_user SLURM_CONF="$SLURM_CONF" timeout 120 srun --quiet --mpi=pmix -n "$n" "$CAPSULA" exec "$MPI_IMAGE" "$@"
}

out=$(srun_capsula 2 "$MPI_BIN/hello" 2>"$WORK/err"); rc=$?
is "$rc" 0 "srun --mpi=pmix -n 2 capsula exec hello exits 0"
hellos=$(printf '%s\n' "$out" | grep '^hello rank')
is "$(printf '%s\n' "$hellos" | awk '{print $3}' | sort -n | tr '\n' ' ')" "0 1 " "both ranks report"
is "$(printf '%s\n' "$hellos" | awk '{print $13}' | sort -u | wc -l)" 1 "the ranks of the step share one container"
is "$(printf '%s\n' "$hellos" | awk '{print $11}' | sort -u)" "$TEST_UID" "they run as the user"
is "$(cat "$WORK/err")" "" "nothing on stderr"
like "$(srun_capsula 2 "$MPI_BIN/ring" 2>&1)" '^ring ok size 2 sum 1$' "the ring works under srun"
out=$(srun_capsula 2 sh -c 'echo "$SLURM_PROCID $PMIX_RANK ${PMIX_NAMESPACE%%.*}"' 2>&1 | sort)
is "$out" "0 0 slurm
1 1 slurm" "Slurm and PMIx variables reach the ranks"
is "$(holders_after_exit)" 0 "no holder is left after the steps"

done_testing
