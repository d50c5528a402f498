#!/bin/sh
# Reading the image through capsula's FUSE server: contents byte for byte
# (whole blocks, block boundaries, fragment tails, holes), long directories,
# concurrent readers, and the server's tunables.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

expected=$(seq 1 100000 | sha256sum | cut -d' ' -f1)
is "$(capsula_exec -- stat -c %s /data/seq.txt)" 588895 "a file's size is its size"
is "$(capsula_exec -- sha256sum /data/seq.txt | cut -d' ' -f1)" "$expected" \
	"a file of several blocks and a fragment tail reads back exactly"
is "$(capsula_exec -- sh -c 'tail -c +131001 /data/seq.txt | head -c 200')" \
	"$(seq 1 100000 | tail -c +131001 | head -c 200)" \
	"a read across a block boundary is exact"
is "$(capsula_exec -- sh -c 'tail -c 100 /data/seq.txt')" "$(seq 1 100000 | tail -c 100)" \
	"the fragment tail is exact"

is "$(capsula_exec -- sh -c 'sha256sum /data/random | cut -d" " -f1')" \
	"$(capsula_exec -- cat /data/random.sha256)" \
	"incompressible blocks, stored as they are, read back exactly"
is "$(capsula_exec -- sh -c 'tail -c +100001 /data/random | head -c 200000 | wc -c')" 200000 \
	"and so does a read from the middle of them"

is "$(capsula_exec -- stat -c %s /data/sparse)" 1048576 "a sparse file keeps its size"
is "$(capsula_exec -- sh -c 'head -c 700000 /data/sparse | tr -d "\\000" | wc -c')" 0 \
	"its hole reads as zeros"
is "$(capsula_exec -- sh -c 'tail -c +700001 /data/sparse | head -c 7')" capsula \
	"and its data where it was written"

is "$(capsula_exec -- ls /data/tree | wc -l)" 300 "a long directory lists every entry"
is "$(capsula_exec -- sh -c 'ls /data/tree | sort | sha256sum')" \
	"$(seq 1 300 | sed 's/^/entry-with-a-long-name-/' | sort | sha256sum)" \
	"with the right names, each once"
is "$(capsula_exec -- cat /data/tree/entry-with-a-long-name-217)" 217 \
	"an entry found by name has its content"

out=$(capsula_exec -- sh -c 'cat /data/no-such-file; cat /data/no-such-file' 2>&1)
is "$(printf '%s\n' "$out" | grep -c 'No such file')" 2 "a missing file stays missing"
is "$(capsula_exec -- readlink /escape)" /etc "symlinks read back as stored"

out=$(capsula_exec -- sh -c '
	for i in 1 2 3 4; do sha256sum /data/seq.txt & done; wait' | cut -d' ' -f1 | sort -u)
is "$out" "$expected" "four concurrent readers all read it exactly"

for setting in CAPSULA_FUSE_THREADS=1 CAPSULA_FUSE_THREADS=8 CAPSULA_PREFETCH=0 \
               CAPSULA_FUSE_CACHE_MB=1; do
	out=$(as_user env "$setting" "$CAPSULA" exec "$IMAGE" sha256sum /data/seq.txt | cut -d' ' -f1)
	is "$out" "$expected" "reads are exact with $setting"
done

# The prefetch hands the command's blocks to the kernel's page cache: what
# the command then reads there must be the file, byte for byte (sh is
# busybox, so after the sleep sha256sum reads the pages pushed for sh).
pushed=$(capsula_exec --join never -- sh -c 'sleep 1; sha256sum /bin/busybox' | cut -d' ' -f1)
served=$(as_user env CAPSULA_PREFETCH=0 "$CAPSULA" exec --join never "$IMAGE" \
	sha256sum /bin/busybox | cut -d' ' -f1)
is "$pushed" "$served" "pages the prefetch pushed read back as the image server serves them"
ok "(and that is a hash: $served)" [ "${#served}" -eq 64 ]
# And the command then faults them in without asking the image server (only
# decompressing ahead would leave the count as it is). The prefetch runs
# only on idle processors, so on a loaded machine it may lose the race to
# the exec: the best of three tries.
requests() {
	printf '%s\n' "$1" | sed -n 's/^capsula: *image server, meanwhile .*(\([0-9]*\) requests)$/\1/p'
}
without=$(requests "$(as_user env CAPSULA_PREFETCH=0 "$CAPSULA" exec --join never --timing \
	"$IMAGE" true 2>&1)")
for _ in 1 2 3; do
	with=$(requests "$(capsula_exec --join never --timing -- true 2>&1)")
	[ "$(( ${with:-0} * 2 ))" -le "${without:-0}" ] && break
done
ok "with prefetch the command asks the image server half as often ($with, $without without)" \
	[ "$(( ${with:-0} * 2 ))" -le "${without:-0}" ]
# The prefetch also looks the command up along PATH through the mount, as
# the exec will, so that the kernel remembers each miss: a command that is
# nowhere in the image is all misses, and its exec then asks the image
# server nothing (the best of three tries, as above).
for _ in 1 2 3; do
	searched=$(requests "$(capsula_exec --join never --timing -- no-such-command 2>&1)")
	[ "${searched:-1}" -eq 0 ] && break
done
is "$searched" 0 "the PATH search for a command missing from the image asks the image server nothing"

# Every compression reads back exactly: zstd and gzip blocks are decoded
# by the image server with a context per thread, the others through
# libsquashfuse's decompressor.
random_sum=$(capsula_exec -- cat /data/random.sha256)
unsquashfs -q -d "$WORK/tree" "$IMAGE" >/dev/null || bail_out "unsquashfs failed"
for compression in zstd xz lz4 lzo; do
	packed=$WORK/packed-$compression.sqfs
	mksquashfs "$WORK/tree" "$packed" -comp "$compression" -noappend -quiet -no-progress \
		-all-root >/dev/null 2>&1 || bail_out "mksquashfs cannot write $compression"
	chmod a+r "$packed"
	out=$(as_user "$CAPSULA" exec --join never "$packed" sh -c \
		'sha256sum /data/seq.txt /data/random' | cut -d' ' -f1 | tr '\n' ' ')
	is "$out" "$expected $random_sum " "a $compression image reads back exactly"
done
rm -rf "$WORK/tree"

err=$(as_user env CAPSULA_FUSE_THREADS=none "$CAPSULA" exec "$IMAGE" true 2>&1); rc=$?
is "$rc" 125 "a bad CAPSULA_FUSE_THREADS is capsula's failure (125)"
like "$err" "^capsula: CAPSULA_FUSE_THREADS=none: not a number" "and says which variable"

done_testing
