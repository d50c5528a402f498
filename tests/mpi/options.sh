#!/bin/sh
# The ranks of a job still share one container per node with the writable,
# layered and fakeroot options, and MPI works in it.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
require_mpi

# --fakeroot reads /etc/subuid, which tests/security/fakeroot.sh edits.
exec 7>/tmp/capsula-check-subuid.lock
flock -s 7

mkdir -p "$WORK/layer/opt"
echo from-the-layer > "$WORK/layer/opt/capsula-layer"
mksquashfs "$WORK/layer" "$WORK/layer.sqfs" -quiet -noappend -all-root >/dev/null ||
	bail_out "mksquashfs failed"
chmod a+r "$WORK/layer.sqfs"

# Each rank leaves a file in the container's writable layer, waits for the
# other's, and reports what it sees.
script='touch /rank-$OMPI_COMM_WORLD_RANK
n=0; while [ ! -e /rank-0 ] || [ ! -e /rank-1 ]; do sleep 0.1; n=$((n+1)); [ $n -lt 100 ] || break; done
echo "rank $OMPI_COMM_WORLD_RANK ns $(readlink /proc/self/ns/mnt) uid $(id -u) sees $(ls / | grep -c "^rank-") layer $(cat /opt/capsula-layer)"'
out=$(mpirun_capsula 2 --writable-tmpfs --overlay "$WORK/layer.sqfs" --fakeroot -- sh -c "$script" 2>&1)
ns0=$(printf '%s\n' "$out" | sed -n 's/^rank 0 ns \([^ ]*\) .*/\1/p')
ns1=$(printf '%s\n' "$out" | sed -n 's/^rank 1 ns \([^ ]*\) .*/\1/p')
ok "two ranks with --writable-tmpfs --overlay IMG --fakeroot share one container" same_nonempty "$ns0" "$ns1"
like "$out" "^rank 0 ns .* uid 0 sees 2 layer from-the-layer$" "rank 0 is root and sees both ranks' files and the layer"
like "$out" "^rank 1 ns .* uid 0 sees 2 layer from-the-layer$" "and so does rank 1"
like "$(mpirun_capsula 2 --writable-tmpfs --overlay "$WORK/layer.sqfs" -- "$MPI_BIN/ring" 2>&1)" \
	"^ring ok size 2 sum 1$" "the ring passes its token with --writable-tmpfs --overlay IMG"
# As uid 0 the ranks cannot reach the launcher's PMIx server (it checks
# who connects): capsula says so once, on the first rank.
out=$(mpirun_capsula 2 --fakeroot -- true 2>&1)
is "$(printf '%s\n' "$out" | grep -c 'warning: --fakeroot under a launcher')" 1 \
	"--fakeroot under mpirun warns once that MPI cannot start as uid 0"
like "$(mpirun_capsula 2 --writable-tmpfs --nv -- "$MPI_BIN/allreduce" 2>&1)" "^allreduce ok size 2 " \
	"allreduce with --writable-tmpfs --nv (no GPU here: warned, nothing bound)"
done_testing
