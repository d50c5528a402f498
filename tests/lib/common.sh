# Shared by the script tests: TAP output, and running capsula the way a user
# of a cluster would, as an unprivileged account. When the suite runs as root
# it creates that account (capsula-test) and drops to it for every command
# under test; root is used only to prepare the machine.
# shellcheck shell=sh

set -u

: "${abs_top_builddir:?run through make check}"
: "${abs_top_srcdir:?run through make check}"

TEST_USER=capsula-test
t_count=0
t_failed=0

# ---------------------------------------------------------------- TAP

diag() { printf '# %s\n' "$*"; }

tap_result() {  # PASSED DESCRIPTION
	t_count=$((t_count + 1))
	if [ "$1" = 1 ]; then
		printf 'ok %d - %s\n' "$t_count" "$2"
	else
		printf 'not ok %d - %s\n' "$t_count" "$2"
		t_failed=$((t_failed + 1))
	fi
}

ok() {  # DESCRIPTION COMMAND... : passes when COMMAND succeeds
	desc=$1; shift
	if "$@"; then tap_result 1 "$desc"; else tap_result 0 "$desc"; fi
}

is() {  # GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then
		tap_result 1 "$3"
	else
		tap_result 0 "$3"
		diag "got:  '$1'"
		diag "want: '$2'"
	fi
}

like() {  # TEXT EXTENDED-REGEX DESCRIPTION
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		tap_result 1 "$3"
	else
		tap_result 0 "$3"
		diag "text: '$1'"
		diag "does not match: $2"
	fi
}

unlike() {  # TEXT EXTENDED-REGEX DESCRIPTION
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		tap_result 0 "$3"
		diag "text: '$1'"
		diag "matches: $2"
	else
		tap_result 1 "$3"
	fi
}

skip() {  # REASON: one skipped check
	t_count=$((t_count + 1))
	printf 'ok %d # SKIP %s\n' "$t_count" "$1"
}

skip_all() {
	printf '1..0 # SKIP %s\n' "$1"
	exit 0
}

bail_out() {
	printf 'Bail out! %s\n' "$1"
	exit 1
}

done_testing() {
	printf '1..%d\n' "$t_count"
	[ "$t_failed" = 0 ]
}

# ---------------------------------------------------------------- the user

is_root() { [ "$(id -u)" = 0 ]; }

# With flock, so that parallel tests do this once.
with_lock() {
	flock /tmp/capsula-check.lock "$@"
}

prepare_root() {
	if ! id "$TEST_USER" >/dev/null 2>&1; then
		with_lock sh -c "id $TEST_USER >/dev/null 2>&1 || useradd --create-home --shell /bin/sh $TEST_USER" ||
			bail_out "cannot create the test user $TEST_USER"
	fi
	TEST_HOME=$(getent passwd "$TEST_USER" | cut -d: -f6)
	# Debian's udev rule makes /dev/fuse 0666; machines without udev leave it
	# 0600, which no user could open.
	if ! setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --init-groups \
	     sh -c '[ -r /dev/fuse ] && [ -w /dev/fuse ]' 2>/dev/null && [ -c /dev/fuse ]; then
		diag "making /dev/fuse usable by users (mode 0666, as Debian's udev rule does)"
		chmod 0666 /dev/fuse
	fi
	# The build tree may lie where the user cannot reach (/root); stage what
	# the tests run in a world-readable place.
	stage=/tmp/capsula-check-$(printf '%s' "$abs_top_builddir" | cksum | cut -d' ' -f1)
	with_lock sh -c '
		mkdir -p "$1" && chmod 0755 "$1" &&
		for f in "$2" "$3"; do
			[ "$1/$(basename "$f")" -nt "$f" ] || cp "$f" "$1/"
		done && chmod -R a+rX "$1"' sh "$stage" "$abs_top_builddir/capsula" \
		"$abs_top_builddir/tests/images/busybox.sqfs" || bail_out "cannot stage the binaries"
	CAPSULA=$stage/capsula
	IMAGE=$stage/busybox.sqfs
	TEST_UID=$(id -u "$TEST_USER")
	TEST_GID=$(id -g "$TEST_USER")
}

prepare_user() {
	TEST_USER=$(id -un)
	TEST_UID=$(id -u)
	TEST_GID=$(id -g)
	TEST_HOME=${HOME:-$(getent passwd "$TEST_UID" | cut -d: -f6)}
	CAPSULA=$abs_top_builddir/capsula
	IMAGE=$abs_top_builddir/tests/images/busybox.sqfs
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

# capsula exec as the user: capsula_exec [CAPSULA-OPTIONS] -- COMMAND...
# (the image goes between them).
capsula_exec() {
	opts=""
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts="$opts $(quote "$1")"
		shift
	done
	[ $# -gt 0 ] && shift
	eval "set -- $opts $(quote "$IMAGE") \"\$@\""
	as_user "$CAPSULA" exec "$@"
}

quote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# ---------------------------------------------------------------- leftovers

# Live holders of the test user (zombies already released everything).
live_holders() {
	ps -eo user:32=,stat=,comm= | awk -v u="$TEST_USER" '$1 == u && $2 !~ /^Z/ && $3 == "capsula-holder"' | wc -l
}

# Wait up to 5 s for the test user's holders to go; print how many remain.
holders_after_exit() {
	n=0
	while [ "$n" -lt 50 ] && [ "$(live_holders)" != 0 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	live_holders
}

# ---------------------------------------------------------------- setup

if is_root; then
	prepare_root
else
	prepare_user
fi
[ -x "$CAPSULA" ] || bail_out "$CAPSULA not built"
[ -r "$IMAGE" ] || bail_out "$IMAGE not built"

# Tests run in parallel; one that counts what is left on the machine takes
# this lock exclusively (CAPSULA_TEST_EXCLUSIVE=1), the others share it.
exec 9>/tmp/capsula-check-running.lock
if [ "${CAPSULA_TEST_EXCLUSIVE:-0}" = 1 ]; then flock -x 9; else flock -s 9; fi

WORK=$(mktemp -d /tmp/capsula-test.XXXXXX)
chmod 0755 "$WORK"
is_root && chown "$TEST_UID:$TEST_GID" "$WORK"
trap 'rm -rf "$WORK"' EXIT

require_containers() {
	as_user unshare --user true 2>/dev/null ||
		skip_all "user namespaces are not available to $TEST_USER (user.max_user_namespaces, AppArmor)"
	as_user sh -c '[ -r /dev/fuse ] && [ -w /dev/fuse ]' ||
		skip_all "/dev/fuse is not usable by $TEST_USER"
}
