# A Slurm controller and node daemon of the test's (or benchmark's) own, on
# this machine alone (127.0.0.1, ports 16817 and 16818), as root; stopped at
# exit. slurm_start [PLUGSTACK-LINE] sets SLURM_DIR and SLURM_CONF, and
# fails (saying why) unless the node is up. WORK is removed with it.
# shellcheck shell=sh

# The built plugin, staged where srun and slurmstepd can load it: PLUGIN.
require_plugin() {
	[ -e "$abs_top_builddir/spank_capsula.so" ] ||
		skip_all "the Slurm plugin was not built (apt-get install libslurm-dev, then configure)"
	PLUGIN=$(stage_file "$abs_top_builddir/spank_capsula.so") || bail_out "cannot stage the plugin"
	chmod a+rx "$PLUGIN"
}

require_slurm() {
	is_root || skip_all "starting slurmctld and slurmd needs root"
	for daemon in slurmctld slurmd srun munged; do
		command -v "$daemon" >/dev/null 2>&1 || [ -x "/usr/sbin/$daemon" ] ||
			skip_all "no $daemon (apt-get install slurmctld slurmd slurm-client munge)"
	done
	[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ] || skip_all "Slurm has no PMIx plugin here"
}

# Wait up to 5 s for pid to be gone: the next suite on this machine must not
# find a daemon of ours still shutting down (its ports, munge's socket).
await_exit() {
	n=0
	while kill -0 "$1" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}

# shellcheck disable=SC2317 # called by the trap
slurm_stop() {
	for pidfile in "$SLURM_DIR"/slurmd*.pid "$SLURM_DIR/slurmctld.pid"; do
		if [ -s "$pidfile" ]; then
			pid=$(cat "$pidfile")
			kill "$pid" 2>/dev/null && await_exit "$pid"
		fi
	done
	[ -n "$started_munge" ] && kill "$started_munge" 2>/dev/null && await_exit "$started_munge"
	for ns in $SLURM_NETNS; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086 # a list of pids
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$SLURM_DIR" "$WORK"
}

# slurm.conf: CONTROLLER (SlurmctldHost's value), PLUGSTACK-LINE (or ""),
# NODE-LINES; each node's spool, pid and log files named by %n.
slurm_write_conf() {
	SLURM_CONF=$SLURM_DIR/slurm.conf
	mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/node-tmp"
	plugstack=""
	if [ -n "$2" ]; then
		printf '%s\n' "$2" > "$SLURM_DIR/plugstack.conf"
		plugstack="PlugStackConfig=$SLURM_DIR/plugstack.conf"
	fi
	cat > "$SLURM_CONF" <<CONF
ClusterName=capsula-check
SlurmctldHost=$1
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool-%n
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd-%n.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
TmpFS=$SLURM_DIR/node-tmp
MpiDefault=none
SlurmUser=root
$plugstack
$3
PartitionName=check Nodes=ALL Default=YES MaxTime=10 State=UP OverSubscribe=FORCE
CONF
	chmod -R a+rX "$SLURM_DIR"
}

# A munged that answers, not just one that runs (it may be on its way out).
slurm_munge() {
	munge -n </dev/null >/dev/null 2>&1 && return 0
	mkdir -p /run/munge && chown munge:munge /run/munge
	[ -s /etc/munge/munge.key ] || { echo "munge has no key (/etc/munge/munge.key)" >&2; return 1; }
	runuser -u munge -- /usr/sbin/munged || { echo "cannot start munged" >&2; return 1; }
	started_munge=$(pgrep -x -n munged)
}

# Until sinfo (run through PREFIX..., which may be empty) shows every node
# idle, at most 10 s.
slurm_wait_idle() {  # NODES [PREFIX...]
	want=$1; shift
	n=0
	until [ "$("$@" env SLURM_CONF="$SLURM_CONF" sinfo -h -N -t idle -o %N 2>/dev/null | wc -l)" -ge "$want" ] ||
	      [ "$n" -ge 50 ]; do
		sleep 0.2
		n=$((n + 1))
	done
	[ "$n" -lt 50 ] || { echo "the Slurm nodes did not come up (see $SLURM_DIR/*.log)" >&2; return 1; }
}

slurm_start() {  # [PLUGSTACK-LINE]
	SLURM_DIR=$(mktemp -d /tmp/capsula-slurm.XXXXXX)
	started_munge=""
	SLURM_NETNS=""
	trap slurm_stop EXIT
	node=$(hostname -s)
	mkdir -p "$SLURM_DIR/spool-$node"
	slurm_write_conf "$node" "${1:-}" "NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN" &&
	slurm_munge || return 1
	{ slurmctld -f "$SLURM_CONF" && slurmd -f "$SLURM_CONF"; } ||
		{ echo "cannot start slurmctld and slurmd" >&2; return 1; }
	slurm_wait_idle 1
}

# Two simulated nodes, node1 and node2, each slurmd in a network and UTS
# namespace of its own (Debian's slurmd runs one per host name), joined
# with the controller's namespace by a bridge of private addresses that
# live only in these namespaces. SLURM_IN runs a command in the
# controller's namespace, where srun must run.
slurm_start_two_nodes() {  # [PLUGSTACK-LINE]
	SLURM_DIR=$(mktemp -d /tmp/capsula-slurm.XXXXXX)
	started_munge=""
	fabric=capsula-fab-$$
	SLURM_NETNS="$fabric capsula-sn1-$$ capsula-sn2-$$"
	trap slurm_stop EXIT
	command -v ip >/dev/null 2>&1 || { echo "no ip (iproute2)" >&2; return 1; }
	ip netns add "$fabric" && ip -n "$fabric" link set lo up &&
	ip -n "$fabric" link add br0 type bridge && ip -n "$fabric" link set br0 up &&
	ip -n "$fabric" addr add 10.214.0.254/24 dev br0 || return 1
	for i in 1 2; do
		ns=capsula-sn$i-$$
		ip netns add "$ns" && ip -n "$ns" link set lo up &&
		ip link add "csn$i-$$" type veth peer name "csb$i-$$" &&
		ip link set "csn$i-$$" netns "$ns" && ip link set "csb$i-$$" netns "$fabric" &&
		ip -n "$fabric" link set "csb$i-$$" master br0 && ip -n "$fabric" link set "csb$i-$$" up &&
		ip -n "$ns" link set "csn$i-$$" name cap0 && ip -n "$ns" addr add "10.214.0.$i/24" dev cap0 &&
		ip -n "$ns" link set cap0 up || return 1
	done
	slurm_write_conf "ctl(10.214.0.254)" "${1:-}" "$(printf '%s\n' \
		"NodeName=node1 NodeAddr=10.214.0.1 CPUs=$(nproc) State=UNKNOWN" \
		"NodeName=node2 NodeAddr=10.214.0.2 CPUs=$(nproc) State=UNKNOWN")" &&
	slurm_munge || return 1
	# nsenter, not ip netns exec: that one remounts /sys, without the
	# cgroup file system slurmd wants.
	SLURM_IN="nsenter --net=/run/netns/$fabric"
	# slurmctld insists on being the host its configuration names.
	$SLURM_IN unshare --uts sh -c 'hostname ctl && exec slurmctld -f "$0"' "$SLURM_CONF" ||
		{ echo "cannot start slurmctld" >&2; return 1; }
	# Each node's TmpFS (where PMIx keeps a step's directory) its own.
	for i in 1 2; do
		mkdir -p "$SLURM_DIR/spool-node$i" "$SLURM_DIR/tmp-node$i"
		nsenter --net="/run/netns/capsula-sn$i-$$" unshare --uts --mount --propagation private \
			sh -c 'mount --bind "$2/tmp-$0" "$2/node-tmp" && hostname "$0" && exec slurmd -f "$1"' \
			"node$i" "$SLURM_CONF" "$SLURM_DIR" ||
			{ echo "cannot start slurmd on node$i (see $SLURM_DIR/slurmd-node$i.log)" >&2; return 1; }
	done
	# shellcheck disable=SC2086 # the prefix's words
	slurm_wait_idle 2 $SLURM_IN
}
