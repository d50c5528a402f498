# A Slurm controller and node daemon of the test's (or benchmark's) own, on
# this machine alone (127.0.0.1, ports 16817 and 16818), as root; stopped at
# exit. slurm_start [PLUGSTACK-LINE] sets SLURM_DIR and SLURM_CONF, and
# fails (saying why) unless the node is up. WORK is removed with it.
# shellcheck shell=sh

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
	for daemon in slurmd slurmctld; do
		if [ -s "$SLURM_DIR/$daemon.pid" ]; then
			pid=$(cat "$SLURM_DIR/$daemon.pid")
			kill "$pid" 2>/dev/null && await_exit "$pid"
		fi
	done
	[ -n "$started_munge" ] && kill "$started_munge" 2>/dev/null && await_exit "$started_munge"
	rm -rf "$SLURM_DIR" "$WORK"
}

slurm_start() {
	SLURM_DIR=$(mktemp -d /tmp/capsula-slurm.XXXXXX)
	started_munge=""
	trap slurm_stop EXIT
	node=$(hostname -s)
	mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/spool"
	plugstack=""
	if [ -n "${1:-}" ]; then
		printf '%s\n' "$1" > "$SLURM_DIR/plugstack.conf"
		plugstack="PlugStackConfig=$SLURM_DIR/plugstack.conf"
	fi
	cat > "$SLURM_DIR/slurm.conf" <<CONF
ClusterName=capsula-check
SlurmctldHost=$node
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmUser=root
$plugstack
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=check Nodes=ALL Default=YES MaxTime=10 State=UP OverSubscribe=FORCE
CONF
	chmod -R a+rX "$SLURM_DIR"

	# A munged that answers, not just one that runs (it may be on its way out).
	if ! munge -n </dev/null >/dev/null 2>&1; then
		mkdir -p /run/munge && chown munge:munge /run/munge
		[ -s /etc/munge/munge.key ] || { echo "munge has no key (/etc/munge/munge.key)" >&2; return 1; }
		runuser -u munge -- /usr/sbin/munged || { echo "cannot start munged" >&2; return 1; }
		started_munge=$(pgrep -x -n munged)
	fi
	{ slurmctld -f "$SLURM_DIR/slurm.conf" && slurmd -f "$SLURM_DIR/slurm.conf"; } ||
		{ echo "cannot start slurmctld and slurmd" >&2; return 1; }
	SLURM_CONF=$SLURM_DIR/slurm.conf
	n=0
	until SLURM_CONF=$SLURM_CONF sinfo -h -o %t 2>/dev/null | grep -q idle || [ "$n" -ge 50 ]; do
		sleep 0.2
		n=$((n + 1))
	done
	SLURM_CONF=$SLURM_CONF sinfo -h -o %t | grep -qx idle ||
		{ echo "the Slurm node did not come up (see $SLURM_DIR/slurmd.log)" >&2; return 1; }
}
