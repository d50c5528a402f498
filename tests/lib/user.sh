# Running capsula as an unprivileged user, shared by the tests and the demo.
# As root: create the account capsula-test, make /dev/fuse usable as udev
# would, and stage the binary and an image where that account can reach
# them; as anyone else: use the build tree directly.
# Needs abs_top_builddir. Sets CAPSULA, STAGED_IMAGE, TEST_USER, TEST_UID,
# TEST_GID, TEST_HOME. as_user runs a command as that user in $WORK.
# shellcheck shell=sh

TEST_USER=capsula-test

is_root() { [ "$(id -u)" = 0 ]; }

# With flock, so that parallel tests do this once.
with_lock() {
	flock /tmp/capsula-check.lock "$@"
}

prepare_root() {  # IMAGE
	if ! id "$TEST_USER" >/dev/null 2>&1; then
		with_lock sh -c "id $TEST_USER >/dev/null 2>&1 || useradd --create-home --shell /bin/sh $TEST_USER" ||
			return 1
	fi
	TEST_HOME=$(getent passwd "$TEST_USER" | cut -d: -f6)
	# Debian's udev rule makes /dev/fuse 0666; machines without udev leave it
	# 0600, which no user could open.
	if ! setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --init-groups \
	     sh -c '[ -r /dev/fuse ] && [ -w /dev/fuse ]' 2>/dev/null && [ -c /dev/fuse ]; then
		echo "# making /dev/fuse usable by users (mode 0666, as Debian's udev rule does)" >&2
		chmod 0666 /dev/fuse
	fi
	# The build tree may lie where the user cannot reach (/root); stage what
	# the tests run in a world-readable place.
	stage=/tmp/capsula-check-$(printf '%s' "$abs_top_builddir" | cksum | cut -d' ' -f1)
	with_lock sh -c '
		mkdir -p "$1" && chmod 0755 "$1" &&
		stage=$1; shift
		for f in "$@"; do
			[ "$stage/$(basename "$f")" -nt "$f" ] || cp "$f" "$stage/"
		done && chmod -R a+rX "$stage"' sh "$stage" "$abs_top_builddir/capsula" \
		"$abs_top_builddir/capsula-convert" "$1" || return 1
	STAGE_DIR=$stage
	CAPSULA=$stage/capsula
	STAGED_IMAGE=$stage/$(basename "$1")
	TEST_UID=$(id -u "$TEST_USER")
	TEST_GID=$(id -g "$TEST_USER")
}

prepare_user() {  # IMAGE
	TEST_USER=$(id -un)
	TEST_UID=$(id -u)
	TEST_GID=$(id -g)
	TEST_HOME=${HOME:-$(getent passwd "$TEST_UID" | cut -d: -f6)}
	STAGE_DIR=""
	CAPSULA=$abs_top_builddir/capsula
	STAGED_IMAGE=$1
}

# Where the user finds FILE: a staged copy when running as root.
stage_file() {
	if [ -z "$STAGE_DIR" ]; then
		printf '%s\n' "$1"
		return
	fi
	with_lock sh -c '[ "$1/$(basename "$2")" -nt "$2" ] || { cp "$2" "$1/" && chmod a+r "$1/$(basename "$2")"; }' \
		sh "$STAGE_DIR" "$1" || return 1
	printf '%s/%s\n' "$STAGE_DIR" "$(basename "$1")"
}

prepare_test_user() {  # IMAGE
	if is_root; then prepare_root "$1" || return 1; else prepare_user "$1"; fi
	[ -x "$CAPSULA" ] && [ -r "$STAGED_IMAGE" ]
}

# Run COMMAND as the test user, in $WORK, with a plain login-like
# environment plus any NAME=VALUE words given before the command.
as_user() {
	if is_root; then
		(cd "$WORK" && setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
			env -i HOME="$TEST_HOME" USER="$TEST_USER" LOGNAME="$TEST_USER" \
			PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@")
	else
		(cd "$WORK" && env "$@")
	fi
}

# For a test that edits /etc/subuid and /etc/subgid: under the lock the
# tests using subordinate ids share, saved in $WORK now and put back at exit.
hold_subids() {
	exec 7>/tmp/capsula-check-subuid.lock
	flock -x 7
	is_root || return 0
	cp -p /etc/subuid "$WORK/subuid.saved" 2>/dev/null || : > "$WORK/subuid.saved"
	cp -p /etc/subgid "$WORK/subgid.saved" 2>/dev/null || : > "$WORK/subgid.saved"
	trap restore_subids EXIT
}
# shellcheck disable=SC2317 # called by the trap
restore_subids() {
	cat "$WORK/subuid.saved" > /etc/subuid
	cat "$WORK/subgid.saved" > /etc/subgid
	rm -rf "$WORK"
}
# The test user without subordinate ids, as many HPC accounts are.
without_subids() {
	grep -v "^$TEST_USER:" "$WORK/subuid.saved" > /etc/subuid || :
	grep -v "^$TEST_USER:" "$WORK/subgid.saved" > /etc/subgid || :
}
