#!/bin/sh
# srun --mpi=pmix capsula exec ...: under a Slurm controller and node daemon
# that this test starts (and stops) on this machine alone.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
require_mpi
is_root || skip_all "starting slurmctld and slurmd needs root"
for daemon in slurmctld slurmd srun munged; do
	command -v "$daemon" >/dev/null 2>&1 || [ -x "/usr/sbin/$daemon" ] ||
		skip_all "no $daemon (apt-get install slurmctld slurmd slurm-client munge)"
done
[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ] || skip_all "Slurm has no PMIx plugin here"

dir=$(mktemp -d /tmp/capsula-slurm.XXXXXX)
node=$(hostname -s)
started_munge=""
# Wait up to 5 s for pid to be gone: the next suite on this machine must not
# find a daemon of ours still shutting down (its ports, munge's socket).
await_exit() {
	n=0
	while kill -0 "$1" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}
cleanup() {
	for daemon in slurmd slurmctld; do
		if [ -s "$dir/$daemon.pid" ]; then
			pid=$(cat "$dir/$daemon.pid")
			kill "$pid" 2>/dev/null && await_exit "$pid"
		fi
	done
	[ -n "$started_munge" ] && kill "$started_munge" 2>/dev/null && await_exit "$started_munge"
	rm -rf "$dir" "$WORK"
}
trap cleanup EXIT

mkdir -p "$dir/state" "$dir/spool"
cat > "$dir/slurm.conf" <<CONF
ClusterName=capsula-check
SlurmctldHost=$node
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmUser=root
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=check Nodes=ALL Default=YES MaxTime=10 State=UP OverSubscribe=FORCE
CONF
chmod -R a+rX "$dir"

# A munged that answers, not just one that runs (it may be on its way out).
if ! munge -n </dev/null >/dev/null 2>&1; then
	mkdir -p /run/munge && chown munge:munge /run/munge
	[ -s /etc/munge/munge.key ] || skip_all "munge has no key (/etc/munge/munge.key)"
	runuser -u munge -- /usr/sbin/munged || bail_out "cannot start munged"
	started_munge=$(pgrep -x -n munged)
fi
{ slurmctld -f "$dir/slurm.conf" && slurmd -f "$dir/slurm.conf"; } || bail_out "cannot start Slurm"
n=0
until SLURM_CONF=$dir/slurm.conf sinfo -h -o %t 2>/dev/null | grep -q idle || [ "$n" -ge 50 ]; do
	sleep 0.2
	n=$((n + 1))
done
is "$(SLURM_CONF=$dir/slurm.conf sinfo -h -o %t)" idle "the Slurm node is up"

srun_capsula() {  # N PROGRAM [ARGS]
	n=$1; shift
	as_user SLURM_CONF="$dir/slurm.conf" timeout 120 srun --mpi=pmix -n "$n" "$CAPSULA" exec "$MPI_IMAGE" "$@"
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
