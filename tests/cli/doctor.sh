#!/bin/sh
# capsula doctor as a user: what it finds on this node, as text and JSON,
# with and without an image, and a node that cannot run containers.
# It changes user.max_user_namespaces and /dev/infiniband for a moment,
# so no other test may run meanwhile.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
command -v jq >/dev/null || skip_all "no jq to read the JSON output (apt-get install jq)"

status_of() {  # JSON NAME
	printf '%s' "$1" | jq -r --arg n "$2" '[.checks[] | select(.name == $n) | .status] | first'
}

out=$(as_user "$CAPSULA" doctor); rc=$?
is "$rc" 0 "doctor exits 0 on a node that can run containers"
like "$out" "^ok +user namespaces +unprivileged, uid mapped" "text: user namespaces work"
like "$out" "^ok +FUSE in a namespace +protocol 7\.[0-9]+" "text: the kernel's FUSE protocol version"
like "$out" "^(ok|warn) +locked memory" "text: the locked-memory limit is checked"

json=$(as_user "$CAPSULA" doctor --json); rc=$?
is "$rc" 0 "doctor --json exits 0"
is_json "$json" "doctor --json prints valid JSON"
is "$(printf '%s' "$json" | jq -r .can_run_containers)" "true" "JSON: the node can run containers"
is "$(status_of "$json" "/dev/fuse")" "ok" "JSON: /dev/fuse is usable"
is "$(printf '%s' "$json" | jq '[.checks[] | select(.status == "warn" and .fix == null)] | length')" 0 \
	"JSON: every warning has a fix"

if is_root; then
	made_ib=0
	if [ ! -e /dev/infiniband ]; then
		mkdir /dev/infiniband && mknod -m 0600 /dev/infiniband/uverbs0 c 231 192 && made_ib=1
	fi
	json=$(as_user "$CAPSULA" doctor --json)
	if [ "$made_ib" = 1 ]; then
		is "$(status_of "$json" "/dev/infiniband")" "warn" "a uverbs node the user cannot open is a warning"
		like "$(printf '%s' "$json" | jq -r '.checks[] | select(.name == "/dev/infiniband") | .fix')" \
			"0666" "and the fix says what mode it needs"
		rm -rf /dev/infiniband
	else
		skip "the host has a /dev/infiniband of its own"
		skip "the host has a /dev/infiniband of its own"
	fi
else
	skip "making a fake /dev/infiniband needs root"
	skip "making a fake /dev/infiniband needs root"
fi

# The busybox image carries a stand-in Open MPI 3 library.
json=$(as_user "$CAPSULA" doctor --json --image "$IMAGE")
is "$(status_of "$json" "image")" "ok" "--image: the image is read"
if command -v mpirun >/dev/null; then
	is "$(status_of "$json" "Open MPI")" "warn" "--image: a different Open MPI major version is a warning"
	like "$(printf '%s' "$json" | jq -r '.checks[] | select(.name == "Open MPI") | .detail')" \
		"^host 4\.[0-9.]+ but image 3\.1\.6" "and both versions are named"
else
	skip "no Open MPI on the host"
	skip "no Open MPI on the host"
fi
err=$(as_user "$CAPSULA" doctor --image "$WORK/missing.sqfs" 2>&1); rc=$?
is "$rc" 1 "doctor --image of a missing image exits 1"
like "$err" "^FAIL +image +cannot open image" "and says why"

# Inside a user namespace whose uid is not mapped, no further user
# namespace can be made: a node where containers cannot run.
out=$(as_user unshare --user "$CAPSULA" doctor); rc=$?
is "$rc" 1 "where user namespaces cannot be made doctor exits 1"
like "$out" "^FAIL +user namespaces +cannot make one: Operation not permitted" "and says so"
like "$out" "^ +fix: " "and gives a fix"
err=$(as_user unshare --user "$CAPSULA" exec "$IMAGE" true 2>&1); rc=$?
is "$rc" 125 "capsula exec there fails with 125"
like "$err" "^capsula: cannot create a user namespace: Operation not permitted; .*max_user_namespaces" \
	"with one line naming the cause and the fix"

err=$(as_user "$CAPSULA" doctor --frobnicate 2>&1); rc=$?
is "$rc" 125 "an unknown option exits 125"

done_testing
