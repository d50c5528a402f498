#!/bin/sh
# What a conversion may cost: small archives that declare large work (many
# entries, an exabyte of holes, huge link targets and attributes, many hard
# links, deep directories) are refused in one line, or cost what they store;
# the site's bounds (max image entries, max image memory) hold; a stopped or
# killed build leaves nothing the next one does not clean.
# It writes the system's configuration file, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
take_site_config "writing $CAPSULA_CONFIG_FILE needs root"
shm=/dev/shm/capsula-bounds.$$
SITE_LEFTOVERS=$shm
hostile() {  # KIND N OUT
	"$abs_top_builddir/tests/build/hostile-tar" "$1" "$2" | gzip > "$WORK/$3" && chmod a+r "$WORK/$3"
}
build() { as_user timeout 300 "$CAPSULA" build -q -F "$@" 2>&1; }
one_line() { [ "$(printf '%s\n' "$1" | wc -l)" = 1 ]; }
partials() { find "$WORK" -maxdepth 1 -name "${1:-*partial*}" | wc -l; }
nothing_left() { [ ! -e "$WORK/out.sqfs" ] && [ "$(partials)" = 0 ]; }

# ---------------------------------------------------------------- entries
hostile many 20000 many.tar.gz
diag "20000 empty files: $(stat -c %s "$WORK/many.tar.gz") bytes of tar.gz"
out=$(build "$WORK/ok.sqfs" "$WORK/many.tar.gz"); rc=$?
is "$rc:$out" "0:" "20000 entries build within the default bounds"
is "$(unsquashfs -l "$WORK/ok.sqfs" | grep -c '/f[0-9]')" 20000 "all of them"
printf 'max image entries = 5000\n' | write_conf
err=$(build "$WORK/out.sqfs" "$WORK/many.tar.gz"); rc=$?
is "$rc" 125 "with the site's 'max image entries = 5000' they are refused"
ok "in one line" one_line "$err"
like "$err" "^capsula: the image has more than 5000 entries \(at f5000\); build it where the administrator allows more \($CAPSULA_CONFIG_FILE: max image entries\)$" \
	"naming the bound and where it is set"
ok "leaving nothing" nothing_left
hostile hardlinks 20000 links.tar.gz
err=$(build "$WORK/out.sqfs" "$WORK/links.tar.gz"); rc=$?
is "$rc" 125 "20000 hard links to one file count as 20000 entries"
like "$err" "more than 5000 entries" "and are refused the same way"
printf 'max image memory = 1M\n' | write_conf
err=$(build "$WORK/out.sqfs" "$WORK/many.tar.gz"); rc=$?
is "$rc" 125 "with 'max image memory = 1M' the 20000 entries are refused"
like "$err" "metadata needs more than 1 MiB of memory .*max image memory\)$" "saying which bound"
printf 'max image entries = lots\n' | write_conf
like "$(build "$WORK/out.sqfs" "$WORK/many.tar.gz")" "line 1: max image entries: expected a number" \
	"a malformed bound is an error"
rm -f "$CAPSULA_CONFIG_FILE"

# ---------------------------------------------------------------- what an entry declares
hostile longlink 5000 longlink.tar.gz
err=$(build "$WORK/out.sqfs" "$WORK/longlink.tar.gz"); rc=$?
is "$rc" 125 "a symbolic link to a 5000-byte name is refused"
like "$err" "the link link points to a name of 5000 bytes" "saying so"
hostile bigxattr 100000 xattr.tar.gz
err=$(build "$WORK/out.sqfs" "$WORK/xattr.tar.gz"); rc=$?
is "$rc" 125 "an extended attribute of 100000 bytes is refused"
like "$err" "has an extended attribute of 100000 bytes \(Linux keeps at most 65536\)" "saying so"
hostile deep 3000 deep.tar.gz
err=$(build "$WORK/out.sqfs" "$WORK/deep.tar.gz"); rc=$?
is "$rc" 125 "directories nested 3000 deep (a 6000-byte path) are refused"
ok "in one line" one_line "$err"
ok "leaving nothing" nothing_left

# ---------------------------------------------------------------- holes
mkdir -p "$shm/huge" "$shm/sparse/bin"
if truncate -s 1E "$shm/huge/huge" 2>/dev/null; then
	tar --sparse --format=posix -C "$shm/huge" -czf "$WORK/huge.tar.gz" huge && chmod a+r "$WORK/huge.tar.gz"
	rm -f "$shm/huge/huge"
	diag "a file of 1 EiB, all hole: $(stat -c %s "$WORK/huge.tar.gz") bytes of tar.gz"
	err=$(build "$WORK/out.sqfs" "$WORK/huge.tar.gz"); rc=$?
	is "$rc" 125 "a file declaring 1 EiB of holes is refused (not written for hours)"
	like "$err" "more than 2048 MiB of memory \(at a file of 1152921504606846976 bytes with holes, 8796093022209 blocks\)" \
		"its block list alone would not fit"
	ok "leaving nothing" nothing_left
else
	skip "no tmpfs at /dev/shm that holds a 1 EiB sparse file"
	skip "no tmpfs at /dev/shm that holds a 1 EiB sparse file"
	skip "no tmpfs at /dev/shm that holds a 1 EiB sparse file"
fi
cp "$(command -v busybox || echo /bin/busybox)" "$shm/sparse/bin/busybox"
ln -s busybox "$shm/sparse/bin/sh"
truncate -s 1T "$shm/sparse/big"
printf hello | dd of="$shm/sparse/big" bs=1 seek=$((1 << 30)) conv=notrunc 2>/dev/null
printf tail | dd of="$shm/sparse/big" bs=1 seek=$(((1 << 40) - 4)) conv=notrunc 2>/dev/null
tar --sparse --format=posix -C "$shm/sparse" -czf "$WORK/sparse.tar.gz" . && chmod a+r "$WORK/sparse.tar.gz"
rm -rf "$shm"
out=$(build "$WORK/sparse.sqfs" "$WORK/sparse.tar.gz"); rc=$?
is "$rc:$out" "0:" "a 1 TiB file with 9 bytes of data builds"
ok "into a small image ($(stat -c %s "$WORK/sparse.sqfs") bytes)" [ "$(stat -c %s "$WORK/sparse.sqfs")" -lt 4000000 ]
in_sparse() { as_user "$CAPSULA" exec "$WORK/sparse.sqfs" /bin/busybox "$@"; }
is "$(in_sparse stat -c %s /big)" 1099511627776 "the file is 1 TiB in the image"
is "$(in_sparse dd if=/big bs=1 skip=$((1 << 30)) count=5 2>/dev/null)" hello "its data is where it was"
is "$(in_sparse dd if=/big bs=1 skip=$(((1 << 40) - 4)) count=4 2>/dev/null)" tail "up to its last byte"
is "$(in_sparse dd if=/big bs=1 skip=$((1 << 35)) count=4 2>/dev/null | od -An -tx1 | tr -d ' ')" 00000000 \
	"and its holes read as zeros"

# ---------------------------------------------------------------- stopping
mkdir -p "$WORK/bigtree"
head -c 200000000 /dev/urandom > "$WORK/bigtree/random"
chmod -R a+rX "$WORK/bigtree"
stop_build() {  # SIGNAL
	as_user "$CAPSULA" build -q -F -c xz "$WORK/out.sqfs" "$WORK/bigtree" > "$WORK/stopped.err" 2>&1 &
	n=0; while [ "$(partials)" = 0 ] && [ "$n" -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
	sleep 0.3
	pkill "-$1" -u "$TEST_USER" -f "capsula-convert build -q -F -c xz"
	wait
}
stop_build TERM
like "$(cat "$WORK/stopped.err")" "build interrupted by signal 15; nothing was written" "SIGTERM stops a build"
ok "leaving nothing" nothing_left
stop_build KILL
is "$(partials '.out.sqfs.partial-*')" 1 "SIGKILL leaves the partial image behind"
out=$(build "$WORK/out.sqfs" "$WORK/many.tar.gz"); rc=$?
is "$rc" 0 "the next build of the same output runs"
is "$(partials)" 0 "and removes what the killed one left"

done_testing
