#!/bin/sh
# Two simulated nodes on this machine: two network namespaces (each with its
# own hostname) joined by a veth pair, Open MPI over TCP between them, an
# rsh agent that reaches the other node through a listener in its namespace.
# Each node gets its own container; the ranks of a node share it.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
require_mpi
is_root || skip_all "simulating nodes needs root (ip netns)"
command -v ip >/dev/null 2>&1 || skip_all "no ip (iproute2)"
command -v socat >/dev/null 2>&1 || skip_all "no socat"

n1=capsula-n1-$$ n2=capsula-n2-$$
agent=$(stage_file "$abs_top_srcdir/tests/mpi/rsh-agent")
chmod a+rx "$agent"
cleanup() {
	[ -n "${listener:-}" ] && kill "$listener" 2>/dev/null
	# Whatever still runs in this test's own namespaces (another suite's
	# listener on the same address lives in its own).
	for ns in "$n1" "$n2"; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086 # a list of pids
		[ -n "$pids" ] && kill $pids 2>/dev/null
	done
	ip netns del "$n1" 2>/dev/null
	ip netns del "$n2" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# The private addresses live only inside these two namespaces.
make_nodes() {
	ip netns add "$n1" && ip netns add "$n2" &&
	ip link add "cv1-$$" type veth peer name "cv2-$$" &&
	ip link set "cv1-$$" netns "$n1" && ip link set "cv2-$$" netns "$n2" &&
	ip -n "$n1" link set "cv1-$$" name cap0 && ip -n "$n2" link set "cv2-$$" name cap0 &&
	ip -n "$n1" addr add 10.213.0.1/24 dev cap0 && ip -n "$n2" addr add 10.213.0.2/24 dev cap0 &&
	ip -n "$n1" link set cap0 up && ip -n "$n2" link set cap0 up &&
	ip -n "$n1" link set lo up && ip -n "$n2" link set lo up
}
make_nodes || bail_out "cannot set up the network namespaces"

# on_node NS HOSTNAME COMMAND...: as the test user on that simulated node
# (in a subshell: it execs).
on_node() (
	ns=$1 name=$2
	shift 2
	exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && cd "$1" && shift && exec "$@"' \
		"$name" "$WORK" setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
		env -i HOME="$TEST_HOME" USER="$TEST_USER" PATH=/usr/local/bin:/usr/bin:/bin "$@"
)

# Its output must not hold the test's stdout open.
on_node "$n2" node2 socat TCP-LISTEN:2222,bind=10.213.0.2,reuseaddr,fork 'EXEC:/bin/sh -s' \
	</dev/null >/dev/null 2>&1 &
listener=$!
sleep 0.5

# Both simulated nodes have the same cores: binding would pile their ranks
# onto one core.
mpirun_nodes() {  # N PROGRAM [ARGS]: N ranks spread over both nodes
	n=$1; shift
	on_node "$n1" node1 timeout 120 mpirun --bind-to none --host 10.213.0.1:8,10.213.0.2:8 -n "$n" --map-by node \
		--mca plm_rsh_agent "$agent" --mca oob_tcp_if_include cap0 --mca btl_tcp_if_include cap0 \
		"$CAPSULA" exec "$MPI_IMAGE" "$@"
}

out=$(mpirun_nodes 4 "$MPI_BIN/hello" 2>"$WORK/err"); rc=$?
is "$rc" 0 "4 ranks on two nodes: hello exits 0"
hellos=$(printf '%s\n' "$out" | grep '^hello rank')
is "$(printf '%s\n' "$hellos" | awk '{print $7}' | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
	"node1=2 node2=2 " "two ranks on each node"
is "$(printf '%s\n' "$hellos" | awk '{print $17}' | sort -u | wc -l)" 2 "the nodes have two network namespaces"
is "$(printf '%s\n' "$hellos" | awk '{print $7, $13}' | sort -u | wc -l)" 2 "one container per node"
is "$(printf '%s\n' "$hellos" | awk '{print $13}' | sort -u | wc -l)" 2 "and the two containers differ"
is "$(cat "$WORK/err")" "" "nothing on stderr"

like "$(mpirun_nodes 4 "$MPI_BIN/ring" 2>&1)" '^ring ok size 4 sum 6$' "the ring crosses the nodes"
like "$(mpirun_nodes 4 "$MPI_BIN/allreduce" 2>&1)" '^allreduce ok size 4 ' "allreduce across nodes"
out=$(mpirun_nodes 2 "$MPI_BIN/pingpong" 1048576 2>&1)
like "$out" '^pingpong done$' "a ping-pong between the nodes completes over TCP"
diag "$(printf '%s\n' "$out" | awk '$1 == 1 || $1 == 1048576 {print "node-to-node " $1 " B: " $3 " us, " $4 " MB/s"}' | tr '\n' ';')"

done_testing
