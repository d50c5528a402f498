#!/bin/sh
# The SPANK plugin on two simulated nodes: two slurmd, each in a network
# and UTS namespace of its own, bridged with the controller's; a step of
# --container-image over both, one container per node, MPI across them.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
require_mpi
. "$abs_top_srcdir/tests/lib/slurm.sh"
require_slurm
require_plugin
slurm_start_two_nodes "required $PLUGIN capsula=$CAPSULA" || bail_out "cannot start the two nodes"

# srun as the user, in the controller's namespace; Open MPI over the bridge.
srun_nodes() {  # SRUN-ARGS...
	# shellcheck disable=SC2086 # the prefix's words
	(cd "$WORK" && exec $SLURM_IN setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
		env -i HOME="$TEST_HOME" USER="$TEST_USER" PATH=/usr/local/bin:/usr/bin:/bin \
		SLURM_CONF="$SLURM_CONF" OMPI_MCA_btl_tcp_if_include=cap0 OMPI_MCA_oob_tcp_if_include=cap0 \
		timeout 120 srun --quiet "$@")
}

out=$(srun_nodes -N 2 -n 4 --mpi=pmix --container-image="$MPI_IMAGE" "$MPI_BIN/hello" 2>"$WORK/err")
rc=$?
is "$rc" 0 "srun -N 2 -n 4 --mpi=pmix --container-image=IMAGE hello exits 0"
hellos=$(printf '%s\n' "$out" | grep '^hello rank')
is "$(printf '%s\n' "$hellos" | awk '{print $7}' | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
	"node1=2 node2=2 " "two tasks on each node"
is "$(printf '%s\n' "$hellos" | awk '{print $7, $13}' | sort -u | wc -l)" 2 "one container per node"
is "$(printf '%s\n' "$hellos" | awk '{print $13}' | sort -u | wc -l)" 2 "and the two containers differ"
is "$(cat "$WORK/err")" "" "nothing on stderr"
like "$(srun_nodes -N 2 -n 4 --mpi=pmix --container-image="$MPI_IMAGE" "$MPI_BIN/ring" 2>&1)" \
	'^ring ok size 4 sum 6$' "the ring crosses the nodes"
out=$(srun_nodes -N 2 -n 2 --mpi=pmix --container-image="$MPI_IMAGE" "$MPI_BIN/pingpong" 1048576 2>&1)
like "$out" '^pingpong done$' "a ping-pong between the nodes' containers completes"
diag "$(printf '%s\n' "$out" | awk '$1 == 1 || $1 == 1048576 {print "node-to-node " $1 " B: " $3 " us, " $4 " MB/s"}' | tr '\n' ';')"
is "$(holders_after_exit)" 0 "no holder is left on either node"
done_testing
