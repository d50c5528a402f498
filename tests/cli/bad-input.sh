#!/bin/sh
# Bad images and bad options: one "capsula:" line that names the cause and
# what to do, exit status 125, quickly, and nothing left behind.
# It counts holders on the machine, so no other test may run meanwhile.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers


# expect_failure DESCRIPTION REGEX CAPSULA-ARGS...
expect_failure() {
	desc=$1 pattern=$2
	shift 2
	start=$(date +%s)
	err=$(as_user timeout 20 "$CAPSULA" "$@" 2>&1 >/dev/null); rc=$?
	elapsed=$(( $(date +%s) - start ))
	is "$rc" 125 "$desc: exit status 125"
	is "$(printf '%s\n' "$err" | wc -l)" 1 "$desc: one line on stderr"
	like "$err" "^capsula: .*$pattern" "$desc: the message names the cause"
	ok "$desc: fails fast (${elapsed}s)" [ "$elapsed" -lt 10 ]
}

: > "$WORK/empty.sqfs"
echo "just some text, not an image" > "$WORK/text.sqfs"
head -c 100000 "$IMAGE" > "$WORK/truncated.sqfs"
head -c 60 "$IMAGE" > "$WORK/short.sqfs"
mkdir "$WORK/dir.sqfs"
chmod a+r "$WORK"/*.sqfs

expect_failure "missing image" 'cannot open image .*No such file or directory; check the image path' \
	exec "$WORK/nonexistent.sqfs" true
expect_failure "empty image" 'the file is empty; rebuild' exec "$WORK/empty.sqfs" true
expect_failure "non-squashfs file" "not a squashfs image" exec "$WORK/text.sqfs" true
expect_failure "truncated image" "truncated: 100000 of [0-9]+ bytes" exec "$WORK/truncated.sqfs" true
expect_failure "superblock cut short" "truncated" exec "$WORK/short.sqfs" true
expect_failure "directory as image" "is a directory" exec "$WORK/dir.sqfs" true
expect_failure "bad bind option" "unknown option 'rx'" exec -B /tmp:/x:rx "$IMAGE" true
expect_failure "relative bind destination" "not an absolute path" exec -B /tmp:x "$IMAGE" true
expect_failure "missing bind source" "bind source /nonexistent/dir: No such file or directory" \
	exec -B /nonexistent/dir:/data "$IMAGE" true
expect_failure "unknown --dev" "--dev: unknown value 'everything'" exec --dev everything "$IMAGE" true
expect_failure "bind of a file onto a directory" "cannot bind a file onto /etc" \
	exec -B "$IMAGE:/etc" "$IMAGE" true

# The user namespace limit is per user namespace, so lowering it inside a
# namespace of our own limits capsula only. Disabled (0), and exhausted (1,
# with that one taken by a sleeping process).
# userns_limited LIMIT TAKEN DESCRIPTION REGEX
userns_limited() {
	if ! as_user unshare --user --map-root-user sh -c "echo $1 > /proc/sys/user/max_user_namespaces" 2>/dev/null; then
		skip "cannot lower user.max_user_namespaces in a namespace here"
		skip "cannot lower user.max_user_namespaces in a namespace here"
		return
	fi
	err=$(as_user unshare --user --map-root-user sh -c \
		'echo "$2" > /proc/sys/user/max_user_namespaces || exit 99
		 if [ "$3" = 1 ]; then unshare --user sleep 5 & sleep 0.3; fi
		 "$0" exec "$1" true; rc=$?; kill %1 2>/dev/null; exit $rc' \
		"$CAPSULA" "$IMAGE" "$1" "$2" 2>&1 >/dev/null); rc=$?
	is "$rc" 125 "user namespaces $3: exit status 125"
	like "$err" "$4" "user namespaces $3: the message says why and what to do"
}
userns_limited 0 0 disabled '^capsula: cannot create a user namespace: .*user.max_user_namespaces'
userns_limited 1 1 exhausted \
	'^capsula: cannot create a user namespace: your user namespaces are exhausted: No space left on device; .*raise user.max_user_namespaces'

# Bytes that are not UTF-8 and very long arguments pass through untouched.
bad=$(printf 'caf\351 \377\376')
is "$(capsula_exec -- echo "$bad")" "$bad" "an argument that is not UTF-8 reaches the command unchanged"
is "$(as_user env "ODD=$bad" "$CAPSULA" exec "$IMAGE" sh -c 'printf "%s" "$ODD"')" "$bad" \
	"so does such an environment variable"
long=$(head -c 120000 /dev/zero | tr '\0' x)
is "$(capsula_exec -- sh -c 'printf "%s" "$1" | wc -c' sh "$long" | tr -d ' ')" 120000 \
	"a 120,000-byte argument reaches the command whole"
is "$(as_user env "LONG=$long" "$CAPSULA" exec "$IMAGE" sh -c 'printf "%s" "$LONG" | wc -c' | tr -d ' ')" 120000 \
	"so does a 120,000-byte environment variable"
many=$(seq 1 20000 | tr '\n' ' ')
# shellcheck disable=SC2086 # 20,000 words on purpose
is "$(capsula_exec -- sh -c 'echo $#' sh $many)" 20000 "20,000 arguments reach the command"
expect_failure "an image path longer than PATH_MAX" "cannot open image .*File name too long" \
	exec "/tmp/$(head -c 5000 /dev/zero | tr '\0' a).sqfs" true
# The message shows such a name with its odd bytes escaped: one printable line.
expect_failure "an image name that is not UTF-8" 'cannot open image /tmp/caf\\xe9 \\xff\\xfe: No such file' \
	exec "/tmp/$bad" true
expect_failure "a bind destination longer than PATH_MAX" "mount point /d+: File name too long" \
	exec -B "/tmp:/$(head -c 5000 /dev/zero | tr '\0' d)" "$IMAGE" true
expect_failure "an empty image name" "cannot open image : No such file" exec "" true

# /dev/fuse unusable: only root can take it away, and this test runs alone.
if is_root && [ -c /dev/fuse ]; then
	mode=$(stat -c %a /dev/fuse)
	chmod 0600 /dev/fuse
	err=$(as_user "$CAPSULA" exec --join never "$IMAGE" true 2>&1 >/dev/null); rc=$?
	chmod "$mode" /dev/fuse
	is "$rc" 125 "/dev/fuse unusable: exit status 125"
	is "$err" "capsula: cannot open /dev/fuse: Permission denied; ask the admin to make /dev/fuse mode 0666 (as fuse3's udev rule does)" \
		"/dev/fuse unusable: the message says what the admin must do"
else
	skip "only root can make /dev/fuse unusable for a moment"
	skip "only root can make /dev/fuse unusable for a moment"
fi

is "$(holders_after_exit)" 0 "no holder is left running"
is "$(processes_seeing_image "$IMAGE")" 0 "no process of the user sees the image's mount any more"

done_testing
