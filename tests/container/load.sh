#!/bin/sh
# Load and soak on this small machine: 100 starts at once all succeed;
# thousands of starts in a row leave the holder's descriptors and memory
# where they were and nothing behind. Counts, never times.
# It counts the test user's holders, so no other test may run meanwhile.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

concurrent=${CAPSULA_LOAD_CONCURRENT:-100}
soak=${CAPSULA_SOAK_STARTS:-5000}
private_soak=${CAPSULA_PRIVATE_SOAK_STARTS:-300}

leftovers() {
	{
		find /dev/shm /tmp /var/tmp -maxdepth 1 -user "$TEST_UID" 2>/dev/null |
			grep -v -e "^$WORK\$" -e "^/tmp/capsula-$TEST_UID\$"
		grep capsula /proc/self/mountinfo
	} | sort
}
before=$(leftovers)
is "$(holders_after_exit)" 0 "no holder of the test user before"

# ---------------------------------------------------------------- at once
# By default they share the one container the first builds; with
# --join never each builds its own.
for join in auto never; do
	as_user sh -c '
		i=0
		while [ "$i" -lt "$2" ]; do
			{ "$0" exec --join "$3" "$1" cat /etc/capsula-test-image > "out.$i" 2>&1; echo $? > "rc.$i"; } &
			i=$((i + 1))
		done
		wait' "$CAPSULA" "$IMAGE" "$concurrent" "$join"
	is "$(cat "$WORK"/rc.* | grep -c '^0$')" "$concurrent" "--join $join: $concurrent concurrent starts all exit 0"
	is "$(cat "$WORK"/out.* | grep -c '^capsula busybox test image$')" "$concurrent" \
		"--join $join: and all of them read the image"
	is "$(holders_after_exit)" 0 "--join $join: no holder is left after them"
	rm -f "$WORK"/rc.* "$WORK"/out.*
done

# ---------------------------------------------------------------- in a row
failures_of() {  # N CAPSULA-ARGS...: capsula N times in a row; prints the failures
	count=$1; shift
	as_user sh -c '
		n=$1; shift
		failed=0 i=0
		while [ "$i" -lt "$n" ]; do
			"$@" || failed=$((failed + 1))
			i=$((i + 1))
		done
		echo "$failed"' sh "$count" "$CAPSULA" "$@"
}
holder_of() {  # instance name -> holder pid
	as_user "$CAPSULA" instance list | awk -v n="$1" '$1 == n { print $3 }'
}
fds_of() { find "/proc/$1/fd" -mindepth 1 2>/dev/null | wc -l; }
rss_kib_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

name=soak-$$
# One FUSE worker: the pool adds a worker (and its splice pipe) whenever
# requests queue up, which a slow build may first see late in the soak; with
# the pool fixed, any new descriptor is a leak.
as_user env CAPSULA_FUSE_THREADS=1 "$CAPSULA" instance start -q "$IMAGE" "$name" ||
	bail_out "cannot start the soak instance"
holder=$(holder_of "$name")
# Warm up first: worker threads and caches grow to their working size.
as_user sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do "$0" exec "instance://$1" true; done' "$CAPSULA" "$name"
fds_before=$(fds_of "$holder")
rss_before=$(rss_kib_of "$holder")
failures=$(failures_of "$soak" exec "instance://$name" true)
is "$failures" 0 "$soak starts in a row into one holder all succeed"
fds_after=$(fds_of "$holder")
rss_after=$(rss_kib_of "$holder")
is "$fds_after" "$fds_before" "the holder's open descriptors did not grow ($fds_before before, $fds_after after)"
if [ "${CAPSULA_SANITIZERS:-no}" = yes ]; then
	# AddressSanitizer keeps freed memory in quarantine, so RSS grows
	# without a leak; LeakSanitizer and the descriptor count cover this build.
	skip "the holder's RSS includes AddressSanitizer's quarantine in this build (${rss_before} -> ${rss_after} KiB)"
else
	ok "the holder's memory did not grow (${rss_before} KiB before, ${rss_after} KiB after)" \
		[ "$rss_after" -le $((rss_before + 2048)) ]
fi
as_user "$CAPSULA" instance stop "$name"

failures=$(failures_of "$private_soak" exec --join never "$IMAGE" true)
is "$failures" 0 "$private_soak new containers in a row all succeed"

is "$(holders_after_exit)" 0 "no holder is left"
is "$(leftovers)" "$before" "no file, shm object or mount is left behind"

done_testing
