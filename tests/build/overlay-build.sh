#!/bin/sh
# capsula build --overlay DIR OUT IMAGE: what runs with --overlay DIR
# changed, applied to the image as overlayfs showed it (whiteouts remove,
# new files are added), into one new image; capsula overlay export DIR
# OUT.sqfs, the changes alone as a layer; capsula overlay clean DIR. Under --fakeroot with
# subordinate ids the upper holds files of those ids that the user cannot
# read; they are read in the user's map and keep the owners the run gave.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
command -v unsquashfs >/dev/null || skip_all "no unsquashfs (apt-get install squashfs-tools)"
hold_subids

owner_in() {  # IMAGE PATH: uid/gid as stored
	unsquashfs -lln "$1" "$2" 2>/dev/null | awk -v p="squashfs-root$2" '$NF == p {print $2}'
}
listed() {  # IMAGE PATH: 0 when the image has PATH
	unsquashfs -lln "$1" "$2" 2>/dev/null | awk -v p="squashfs-root$2" '$NF == p {f = 1} END {exit !f}'
}
not_listed() { [ -r "$1" ] && ! listed "$@"; }  # IMAGE PATH: the image lacks PATH

# Without subordinate ids: the one-id --fakeroot map.
is_root && without_subids
as_user mkdir -m 0700 "$WORK/plain"
capsula_exec --join never --fakeroot --overlay "$WORK/plain" -- sh -c \
	'echo added > /added && rm /data/random.sha256 && mkdir -p /opt/app && echo v1 > /opt/app/version'
ok "a --fakeroot run wrote its changes to the overlay" [ -e "$WORK/plain/upper/added" ]
out=$(as_user "$CAPSULA" build --overlay "$WORK/plain" "$WORK/plain.sqfs" "$IMAGE" 2>&1); rc=$?
is "$rc" 0 "build --overlay DIR OUT IMAGE"
[ "$rc" = 0 ] || diag "$out"
is "$(as_user "$CAPSULA" exec "$WORK/plain.sqfs" cat /added /opt/app/version | tr '\n' ' ')" "added v1 " \
	"the new image has the run's new files"
ok "a file the run removed is gone" not_listed "$WORK/plain.sqfs" /data/random.sha256
ok "its whiteout did not become a file" not_listed "$WORK/plain.sqfs" /data/.wh.random.sha256
ok "the image's other files stay" listed "$WORK/plain.sqfs" /data/seq.txt
is "$(owner_in "$WORK/plain.sqfs" /added)" "0/0" "what root wrote is root's"
ok "the image given is unchanged" listed "$IMAGE" /data/random.sha256

# capsula overlay export: the changes alone, a layer for --overlay IMG.sqfs.
out=$(as_user "$CAPSULA" overlay export "$WORK/plain" "$WORK/plain-layer.sqfs" 2>&1); rc=$?
is "$rc" 0 "overlay export DIR OUT.sqfs"
[ "$rc" = 0 ] || diag "$out"
is "$(capsula_exec --join never --overlay "$WORK/plain-layer.sqfs" -- cat /added /opt/app/version | tr '\n' ' ')" \
	"added v1 " "the layer over the image shows the run's files"
is "$(capsula_exec --join never --overlay "$WORK/plain-layer.sqfs" -- sh -c 'test -e /data/random.sha256 && echo there || echo hidden')" \
	"hidden" "and hides what the run removed"
ok "the layer holds the changes, not the image" not_listed "$WORK/plain-layer.sqfs" /data/seq.txt

out=$(as_user "$CAPSULA" build --overlay "$WORK" "$WORK/none.sqfs" "$IMAGE" 2>&1); rc=$?
is "$rc" 125 "a directory no run wrote is refused"
like "$out" "no upper directory.*give the DIR a run's --overlay DIR wrote" "in one line that says why"
ok "and nothing is written" [ ! -e "$WORK/none.sqfs" ]
out=$(as_user "$CAPSULA" build --overlay "$WORK/plain" "$WORK/none.sqfs" "$WORK/plain" 2>&1); rc=$?
is "$rc" 125 "a SOURCE that is no image is refused"
like "$out" "overlay needs a squashfs or SIF image" "naming what it needs"

# With subordinate ids: the full map, chown for real.
if ! is_root; then
	skip "setting up subordinate ids needs root"
	done_testing
	exit
fi
grep "^$TEST_USER:" "$WORK/subuid.saved" >> /etc/subuid || echo "$TEST_USER:300000:65536" >> /etc/subuid
grep "^$TEST_USER:" "$WORK/subgid.saved" >> /etc/subgid || echo "$TEST_USER:300000:65536" >> /etc/subgid
as_user mkdir -m 0700 "$WORK/mapped"
capsula_exec --join never --fakeroot --overlay "$WORK/mapped" -- sh -c \
	'mkdir -p /srv && mkdir -m 0700 /srv/svc && echo key > /srv/svc/key && chown -R 42:43 /srv/svc &&
	 rm -r /data/tree && rm /data/random.sha256'
ok "the run gave a directory to a subordinate id the user cannot read" \
	as_user sh -c "! ls '$WORK/mapped/upper/srv/svc' 2>/dev/null"
out=$(as_user "$CAPSULA" build --overlay "$WORK/mapped" "$WORK/mapped.sqfs" "$IMAGE" 2>&1); rc=$?
is "$rc" 0 "build --overlay DIR of a full-map run"
[ "$rc" = 0 ] || diag "$out"
is "$(owner_in "$WORK/mapped.sqfs" /srv/svc)" "42/43" "the run's chown is the image's owner"
is "$(owner_in "$WORK/mapped.sqfs" /srv/svc/key)" "42/43" "of its files too"
is "$(unsquashfs -cat "$WORK/mapped.sqfs" srv/svc/key)" "key" "a file closed to the user is read"
ok "a removal under the full map is applied" not_listed "$WORK/mapped.sqfs" /data/random.sha256
ok "a removed directory is gone" not_listed "$WORK/mapped.sqfs" /data/tree
ok "beside what stays" listed "$WORK/mapped.sqfs" /data/seq.txt
is "$(stat -c %u:%g "$WORK/mapped.sqfs")" "$TEST_UID:$TEST_GID" "the image file is the user's"
is "$(as_user "$CAPSULA" exec --fakeroot "$WORK/mapped.sqfs" stat -c %u:%g /srv/svc)" "42:43" \
	"and a --fakeroot run of it sees the owners"

out=$(as_user "$CAPSULA" overlay export "$WORK/mapped" "$WORK/mapped-layer.sqfs" 2>&1); rc=$?
is "$rc" 0 "overlay export of a full-map run's DIR"
[ "$rc" = 0 ] || diag "$out"
is "$(owner_in "$WORK/mapped-layer.sqfs" /srv/svc/key)" "42/43" "the layer keeps the run's owners"
is "$(capsula_exec --join never --overlay "$WORK/mapped-layer.sqfs" -- sh -c 'test -e /data/tree && echo there || echo hidden')" \
	"hidden" "a directory the run removed stays hidden under the layer"

# capsula overlay clean: DIR emptied, files of subordinate ids included.
ok "the user cannot remove the run's files alone" as_user sh -c "! rm -rf '$WORK/mapped/upper' 2>/dev/null"
out=$(as_user "$CAPSULA" overlay clean "$WORK/mapped" 2>&1); rc=$?
is "$rc" 0 "overlay clean DIR"
[ "$rc" = 0 ] || diag "$out"
ok "removes its upper directory" [ ! -e "$WORK/mapped/upper" ]
ok "and its work directory" [ ! -e "$WORK/mapped/work" ]
ok "and keeps DIR" [ -d "$WORK/mapped" ]
is "$(capsula_exec --join never --overlay "$WORK/mapped" -- cat /data/random.sha256 | wc -l)" 1 \
	"the next run starts from the image again"
out=$(as_user "$CAPSULA" overlay clean /tmp 2>&1); rc=$?
is "$rc" 125 "overlay clean of a directory that is not the user's is refused"
like "$out" "not a directory of yours" "saying why"

rm -rf "$WORK/mapped"
done_testing
