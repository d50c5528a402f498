#!/bin/sh
# --fakeroot: uid 0 inside with the capabilities of the container's user
# namespace only; without subordinate ids a single-id map, with them (set up
# here as root) a full map in which apt-get can install a package into a
# --writable-tmpfs container.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

# This test edits /etc/subuid and /etc/subgid; the single-id map first: no
# ranges for the test user.
hold_subids
is_root && without_subids

# Single-id map: what any user gets without subordinate ids or helpers.
out=$(capsula_exec --join never --fakeroot -- sh -c 'id -u; id -g; cat /proc/self/uid_map')
is "$(printf '%s\n' "$out" | head -n 2 | tr '\n' ' ')" "0 0 " "--fakeroot: uid and gid 0 inside"
if is_root; then
	like "$out" "^ +0 +$TEST_UID +1$" "one id mapped: 0 is the user"
	unlike "$out" "^ +1 " "and nothing else"
else
	skip "the single-id map needs /etc/subuid edited as root"
	skip "the single-id map needs /etc/subuid edited as root"
fi
status=$(capsula_exec --join never --fakeroot -- cat /proc/self/status)
like "$status" '^CapEff:[[:space:]]+0*1ffffffffff$' "root's capabilities, in the container's user namespace"
like "$status" '^NoNewPrivs:[[:space:]]+1$' "no_new_privs still set"
like "$(capsula_exec --join never --fakeroot -- head -n 1 /etc/passwd)" '^root:x:0:0:' \
	"/etc/passwd is the image's own (its root is the user)"

# Nothing more in the initial namespace: host files of others stay closed,
# devices cannot be made, host processes cannot be signalled.
if is_root; then
	echo hidden-words > "$WORK/roots-secret"
	chmod 0600 "$WORK/roots-secret"
	chown 0:0 "$WORK/roots-secret"
	err=$(capsula_exec --join never --fakeroot -- cat "$WORK/roots-secret" 2>&1)
	like "$err" "Permission denied" "the host root's 0600 file stays unreadable"
	unlike "$err" "hidden-words" "and nothing of it shows"
else
	skip "needs a file of the host's root"
	skip "needs a file of the host's root"
fi
err=$(capsula_exec --join never --fakeroot -- mknod "$WORK/null" c 1 3 2>&1); rc=$?
ok "mknod of a device still fails (rc=$rc)" [ "$rc" != 0 ]
err=$(capsula_exec --join never --fakeroot -- kill -0 1 2>&1); rc=$?
ok "the host's init cannot be signalled (rc=$rc)" [ "$rc" != 0 ]
as_user touch "$WORK/mine"
err=$(capsula_exec --join never --fakeroot -- chown 1234 "$WORK/mine" 2>&1); rc=$?
ok "chown to an unmapped id fails (rc=$rc)" [ "$rc" != 0 ]
is "$(stat -c %u "$WORK/mine")" "$TEST_UID" "and the file stays the user's"
as_user sh -c "'$CAPSULA' exec --join never --fakeroot '$IMAGE' sleep 3 & sleep 1; cat /proc/\$!/status" > "$WORK/host-view"
like "$(cat "$WORK/host-view")" "^Uid:[[:space:]]+${TEST_UID}[[:space:]]+$TEST_UID" \
	"seen from the host, the command runs as the user"
wait

# Instances keep it: a command run in one is root with its capabilities.
as_user "$CAPSULA" instance start --fakeroot "$IMAGE" fakeroot-test
out=$(as_user "$CAPSULA" exec "instance://fakeroot-test" sh -c 'id -u; grep CapEff /proc/self/status')
like "$out" "^0$" "exec in a --fakeroot instance: uid 0"
like "$out" 'CapEff:[[:space:]]+0*1ffffffffff$' "with the capabilities"
as_user "$CAPSULA" instance stop fakeroot-test

# Full map with subordinate ids.
if ! is_root; then
	skip_rest="setting up subordinate ids needs root"
elif ! command -v newuidmap >/dev/null || ! command -v newgidmap >/dev/null; then
	skip_rest="no newuidmap/newgidmap (package uidmap)"
else
	skip_rest=""
	range=$(grep "^$TEST_USER:" "$WORK/subuid.saved" | head -n 1 | cut -d: -f2-)
	[ -n "$range" ] || range=300000:65536
	cat "$WORK/subuid.saved" > /etc/subuid
	cat "$WORK/subgid.saved" > /etc/subgid
	grep -q "^$TEST_USER:" /etc/subuid || echo "$TEST_USER:$range" >> /etc/subuid
	grep -q "^$TEST_USER:" /etc/subgid || echo "$TEST_USER:$range" >> /etc/subgid
fi
if [ -n "$skip_rest" ]; then
	skip "$skip_rest"
	done_testing
	exit
fi
start=${range%%:*}
count=${range#*:}
out=$(capsula_exec --join never --fakeroot -- cat /proc/self/uid_map /proc/self/gid_map)
like "$out" "^ +0 +$TEST_UID +1$" "full map: 0 is the user"
like "$out" "^ +1 +$start +$count$" "and 1-$count are the user's subordinate ids"
plan=$(capsula_exec --dry-run --fakeroot -- true)
like "$plan" "identity +uid 0 gid 0 \(fakeroot: uid $TEST_UID gid $TEST_GID; 1-$count: subordinate uids $start-" \
	"--dry-run names the map"

# apt-get install of a local package in a Debian image.
if [ -e "$abs_top_builddir/tests/images/mpi.unavailable" ] ||
   [ ! -r "$abs_top_builddir/tests/images/mpi.sqfs" ]; then
	skip "no Debian image was built"
	done_testing
	exit
fi
DEBIAN_IMAGE=$(stage_file "$abs_top_builddir/tests/images/mpi.sqfs") || bail_out "cannot stage the Debian image"
mkdir -p "$WORK/deb/DEBIAN" "$WORK/deb/usr/bin"
cat > "$WORK/deb/DEBIAN/control" <<CONTROL
Package: capsula-hello
Version: 1.0
Architecture: all
Maintainer: capsula tests <tests@localhost>
Description: a package for the fakeroot test
CONTROL
printf '#!/bin/sh\necho hello from a package\n' > "$WORK/deb/usr/bin/capsula-hello"
chmod 0755 "$WORK/deb/usr/bin/capsula-hello"
dpkg-deb --root-owner-group -b "$WORK/deb" "$WORK/hello.deb" >/dev/null || bail_out "dpkg-deb failed"
chmod a+r "$WORK/hello.deb"
place_image "$DEBIAN_IMAGE" --join never --fakeroot --writable-tmpfs -- sh -c \
	"apt-get install -y '$WORK/hello.deb' >apt.log 2>&1; echo apt=\$?; tail -n 3 apt.log;
	 capsula-hello; stat -c '%U' /var/lib/apt/lists/auxfiles 2>/dev/null || stat -c '%U' /var/cache/apt/archives/partial"
eval "set -- $image_argv"
out=$(as_user "$CAPSULA" exec "$@" 2>&1)
like "$out" "^apt=0$" "apt-get install of a local .deb succeeds"
like "$out" "Setting up capsula-hello \(1.0\)" "dpkg set the package up"
like "$out" "^hello from a package$" "the installed program runs"
like "$out" "^_apt$" "apt gave its own user a directory (a subordinate id)"
out=$(capsula_exec --join never -- sh -c 'command -v capsula-hello || echo absent')
is "$out" absent "the image is unchanged afterwards"
done_testing
