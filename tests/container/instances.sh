#!/bin/sh
# capsula instance start/list/stop and exec instance://NAME: named
# containers of one user that stay until stopped, and leave nothing after.
# It counts the test user's holders, so no other test may run meanwhile.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
command -v jq >/dev/null || skip_all "no jq to read the JSON output (apt-get install jq)"

records=$TEST_HOME/.capsula/run/$(hostname)/instances
holders_before=$(live_holders)

err=$(as_user "$CAPSULA" instance start "$IMAGE" first 2>&1); rc=$?
is "$rc" 0 "instance start exits 0"
like "$err" "^capsula: instance first started \(id [0-9a-f-]{36}\)$" "and names the instance and its id"
is "$(live_holders)" "$((holders_before + 1))" "one holder serves the instance"
ok "its holder sees the image's mount (so the check after stop can fail)" \
	[ "$(processes_seeing_image "$IMAGE")" -ge 1 ]

json=$(as_user "$CAPSULA" instance list --json)
is "$(printf '%s' "$json" | jq -r '.[] | select(.name == "first") | .image')" "$IMAGE" \
	"list --json names the instance and its image"
id=$(printf '%s' "$json" | jq -r '.[] | select(.name == "first") | .id')
like "$id" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "its id is a random UUID"
like "$(as_user "$CAPSULA" instance list)" "^first +$id +[0-9]+ +$IMAGE" "list shows it in a table"

host_mnt=$(as_user readlink /proc/self/ns/mnt)
ns_a=$(as_user "$CAPSULA" exec instance://first readlink /proc/self/ns/mnt)
ns_b=$(as_user "$CAPSULA" exec instance://first readlink /proc/self/ns/mnt)
ok "exec instance:// runs in a mount namespace of its own" differ_nonempty "$ns_a" "$host_mnt"
is "$ns_b" "$ns_a" "two execs share the instance's mount namespace"
is "$(as_user "$CAPSULA" exec instance://first cat /etc/capsula-test-image)" "capsula busybox test image" \
	"the instance serves its image"
is "$(live_holders)" "$((holders_before + 1))" "still one holder after the execs ended"

err=$(as_user "$CAPSULA" instance start "$IMAGE" first 2>&1); rc=$?
is "$rc" 125 "a second instance of the same name is refused"
like "$err" "instance 'first' already runs" "and the message says so"
err=$(as_user "$CAPSULA" instance start "$IMAGE" ../evil 2>&1); rc=$?
is "$rc" 125 "a name with a slash is refused"
like "$err" "not a valid instance name" "and the message says so"

as_user "$CAPSULA" instance start -q "$IMAGE" second; rc=$?
is "$rc" 0 "a second instance starts"
is "$(as_user "$CAPSULA" instance list --json | jq length)" 2 "list shows both"

as_user "$CAPSULA" instance stop first; rc=$?
is "$rc" 0 "instance stop exits 0"
is "$(as_user "$CAPSULA" instance list --json | jq -r '.[].name')" "second" "only the other one is listed"
err=$(as_user "$CAPSULA" exec instance://first true 2>&1); rc=$?
is "$rc" 125 "exec of a stopped instance fails with 125"
like "$err" "no instance named 'first'" "and names it"
as_user "$CAPSULA" instance stop second
err=$(as_user "$CAPSULA" instance stop second 2>&1); rc=$?
is "$rc" 125 "stopping an unknown instance fails with 125"

is "$(holders_after_exit)" "$holders_before" "no holder is left after stop"
is "$(processes_seeing_image "$IMAGE")" 0 "no process of the user sees the image's mount any more"
is "$(find "$records" -type f | wc -l)" 0 "no instance record is left"

# A holder that dies on its own leaves a stale record; list cleans it up.
as_user "$CAPSULA" instance start -q "$IMAGE" doomed
pid=$(as_user "$CAPSULA" instance list --json | jq -r '.[] | select(.name == "doomed") | .holder')
kill -KILL "$pid"
n=0; while [ "$n" -lt 50 ] && [ "$(live_holders)" != "$holders_before" ]; do sleep 0.1; n=$((n + 1)); done
is "$(as_user "$CAPSULA" instance list --json | jq length)" 0 "a killed instance is no longer listed"
is "$(find "$records" -type f | wc -l)" 0 "and its record is gone"

done_testing
