# Shared by the script tests: TAP output, and running capsula the way a user
# of a cluster would, as an unprivileged account. When the suite runs as root
# it creates that account (capsula-test) and drops to it for every command
# under test; root is used only to prepare the machine.
# shellcheck shell=sh

set -u

: "${abs_top_builddir:?run through make check}"
: "${abs_top_srcdir:?run through make check}"

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
		# make check-mutants needs one failure, not all of them.
		[ -z "${CAPSULA_TEST_STOP_AT_FAILURE:-}" ] || bail_out "stopping at the first failure"
	fi
}

# One command, one condition: `ok D [ a ] && [ b ]` would assert only [ a ]
# (CI rejects that pattern); use one check each, or the helpers below.
ok() {  # DESCRIPTION COMMAND... : passes when COMMAND succeeds
	desc=$1; shift
	if "$@"; then tap_result 1 "$desc"; else tap_result 0 "$desc"; fi
}

same_nonempty() { [ -n "$1" ] && [ "$1" = "$2" ]; }
differ_nonempty() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]; }

is() {  # GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then
		tap_result 1 "$3"
	else
		tap_result 0 "$3"
		diag "got:  '$1'"
		diag "want: '$2'"
		return 1
	fi
}

# Passes when TEXT matching REGEX is what is wanted (1: match, 0: no match).
match_result() {  # WANT-MATCH TEXT EXTENDED-REGEX DESCRIPTION
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then matched=1; else matched=0; fi
	if [ "$matched" = "$1" ]; then
		tap_result 1 "$4"
	else
		tap_result 0 "$4"
		diag "text: '$2'"
		if [ "$1" = 1 ]; then diag "does not match: $3"; else diag "matches: $3"; fi
	fi
}

like() {  # TEXT EXTENDED-REGEX DESCRIPTION
	match_result 1 "$@"
}

unlike() {  # TEXT EXTENDED-REGEX DESCRIPTION
	match_result 0 "$@"
}

# Under CI (CI=true) a skip is a failure unless tests/skips.allowed lists the
# test with its reason: CI's machine has everything the suite needs.
skip_allowed() {  # REASON
	[ "${CI:-}" = true ] || return 0
	test_file=${0#./}
	test_file=tests/${test_file#*tests/}
	while IFS='	' read -r file reason; do
		case $file in ''|'#'*) continue ;; esac
		[ "$file" = "$test_file" ] || continue
		case $1 in "$reason"*) return 0 ;; esac
	done < "$abs_top_srcdir/tests/skips.allowed"
	return 1
}

skip() {  # REASON: one skipped check
	t_count=$((t_count + 1))
	if skip_allowed "$1"; then
		printf 'ok %d # SKIP %s\n' "$t_count" "$1"
	else
		printf 'not ok %d - skipped under CI, which tests/skips.allowed does not allow: %s\n' \
			"$t_count" "$1"
		t_failed=$((t_failed + 1))
	fi
}

skip_all() {
	if skip_allowed "$1"; then
		printf '1..0 # SKIP %s\n' "$1"
		exit 0
	fi
	printf '1..1\nnot ok 1 - skipped whole under CI, which tests/skips.allowed does not allow: %s\n' "$1"
	exit 1
}

bail_out() {
	printf 'Bail out! %s\n' "$1"
	exit 1
}

done_testing() {
	printf '1..%d\n' "$t_count"
	[ "$t_failed" = 0 ]
}

. "$abs_top_srcdir/tests/lib/user.sh"

# Arrange [CAPSULA-OPTIONS] -- COMMAND... as OPTIONS IMAGE COMMAND, quoted in
# $image_argv for: eval "set -- $image_argv".
place_image() {  # IMAGE [CAPSULA-OPTIONS] -- COMMAND...
	image=$1; shift
	image_argv=""
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		quote "$1"
		image_argv="$image_argv $quoted"
		shift
	done
	[ $# -gt 0 ] && shift
	quote "$image"
	image_argv="$image_argv $quoted"
	for arg in "$@"; do
		quote "$arg"
		image_argv="$image_argv $quoted"
	done
}

# capsula exec as the user: capsula_exec [CAPSULA-OPTIONS] -- COMMAND...
# (the image goes between them).
capsula_exec() {
	place_image "$IMAGE" "$@"
	eval "set -- $image_argv"
	as_user "$CAPSULA" exec "$@"
}

# Sets quoted to $1 in single quotes, for eval; without a process for the
# usual argument (a test passes 20,000 of them).
quote() {
	case $1 in
	*\'*) quoted="'$(printf '%s' "$1" | sed "s/'/'\\\\''/g")'" ;;
	*) quoted="'$1'" ;;
	esac
}


# ---------------------------------------------------------------- leftovers

# Live holders of the test user (zombies already released everything).
live_holders() {
	ps -eo user:32=,stat=,comm= | awk -v u="$TEST_USER" '$1 == u && $2 !~ /^Z/ && $3 == "capsula-holder"' | wc -l
}

# How many of the test user's processes still see a capsula mount of IMAGE
# (their container's FUSE mount): none once every holder and rank is gone.
# Only this test's own image and user count, whatever else runs here.
processes_seeing_image() {  # IMAGE
	n=0
	for dir in /proc/[0-9]*; do
		[ "$(stat -c %u "$dir" 2>/dev/null)" = "$TEST_UID" ] || continue
		grep -qF " - fuse capsula:$1 " "$dir/mountinfo" 2>/dev/null && n=$((n + 1))
	done
	echo "$n"
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

prepare_test_user "$abs_top_builddir/tests/images/busybox.sqfs" || bail_out "cannot prepare the test user"
IMAGE=$STAGED_IMAGE

# Tests run in parallel; one that counts what is left on the machine takes
# this lock exclusively (CAPSULA_TEST_EXCLUSIVE=1), the others share it.
exec 9>/tmp/capsula-check-running.lock
if [ "${CAPSULA_TEST_EXCLUSIVE:-0}" = 1 ]; then
	flock -x 9
	# Holders other tests left warm for a repeated launch expire first.
	holders_after_exit >/dev/null
else
	flock -s 9
fi
# A test stopped half-way (sharing.sh opens the user's runtime directories
# for one check) must not leave them open to the next: capsula would close
# them with a warning on stderr, which checks of stderr would see. Under the
# lock, no test that opened them is running.
if is_root; then
	chmod go-rwx "$TEST_HOME/.capsula" "$TEST_HOME/.capsula/run" "$TEST_HOME/.capsula/run/"* \
		"$TEST_HOME/.capsula/run/"*/sockets 2>/dev/null
fi

WORK=$(mktemp -d /tmp/capsula-test.XXXXXX)
chmod 0755 "$WORK"
is_root && chown "$TEST_UID:$TEST_GID" "$WORK"
trap 'rm -rf "$WORK"' EXIT

# The MPI image and the host's mpirun; sets MPI_IMAGE and MPI_BIN.
require_mpi() {
	command -v mpirun >/dev/null 2>&1 || skip_all "no mpirun on the host (apt-get install openmpi-bin)"
	unavailable=$abs_top_builddir/tests/images/mpi.unavailable
	[ -e "$unavailable" ] && skip_all "$(cat "$unavailable")"
	[ -r "$abs_top_builddir/tests/images/mpi.sqfs" ] || skip_all "the MPI image was not built"
	MPI_IMAGE=$(stage_file "$abs_top_builddir/tests/images/mpi.sqfs") || bail_out "cannot stage the MPI image"
	# shellcheck disable=SC2034 # used by the MPI tests that source this
	MPI_BIN=/opt/capsula-tests
}

# mpirun -n N capsula exec [CAPSULA-OPTIONS] MPI_IMAGE PROGRAM [ARGS], as the
# user; CAPSULA-OPTIONS end at "--".
mpirun_capsula() {
	n=$1; shift
	place_image "$MPI_IMAGE" "$@"
	eval "set -- $image_argv"
	as_user mpirun --oversubscribe -n "$n" "$CAPSULA" exec "$@"
}

require_containers() {
	as_user unshare --user true 2>/dev/null ||
		skip_all "user namespaces are not available to $TEST_USER (user.max_user_namespaces, AppArmor)"
	as_user sh -c '[ -r /dev/fuse ] && [ -w /dev/fuse ]' ||
		skip_all "/dev/fuse is not usable by $TEST_USER"
}

# Passes when TEXT is one valid JSON document (read by jq).
is_json() {  # TEXT DESCRIPTION
	if printf '%s' "$1" | jq -e . >/dev/null 2>&1; then
		tap_result 1 "$2"
	else
		tap_result 0 "$2"
		diag "not JSON: $1"
	fi
}

# For a test that writes the site's configuration file (as root; it runs
# alone, CAPSULA_TEST_EXCLUSIVE): skips unless it may, and at exit removes
# the file and a directory made for it, then what the test names in
# SITE_LEFTOVERS, and $WORK.
take_site_config() {  # SKIP-REASON-WITHOUT-ROOT
	is_root || skip_all "$1"
	[ ! -e "$CAPSULA_CONFIG_FILE" ] || skip_all "$CAPSULA_CONFIG_FILE exists; not touching the site's configuration"
	conf_dir=$(dirname "$CAPSULA_CONFIG_FILE")
	made_dir=0
	[ -d "$conf_dir" ] || { mkdir -p "$conf_dir" && made_dir=1; }
	SITE_LEFTOVERS=""
	trap release_site_config EXIT
}
# shellcheck disable=SC2317 # called by the trap
release_site_config() {
	rm -f "$CAPSULA_CONFIG_FILE"
	[ "$made_dir" = 1 ] && rmdir "$conf_dir"
	# shellcheck disable=SC2086 # a list of paths without spaces
	rm -rf "$WORK" $SITE_LEFTOVERS
}
# The site configuration, from standard input.
write_conf() {
	cat > "$CAPSULA_CONFIG_FILE"
	chmod 0644 "$CAPSULA_CONFIG_FILE"
}
