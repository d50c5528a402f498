#!/bin/sh
# capsula build OUT DIR of a tree a rootless tool made (mmdebstrap
# --mode=unshare, podman): owned by the user's subordinate ids, some of it
# unreadable to the user. capsula reads it in a namespace that maps those
# ids from 0, as the tool did: every file is read, the owners are the
# tree's own, and the image is the user's.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
command -v unsquashfs >/dev/null || skip_all "no unsquashfs (apt-get install squashfs-tools)"
unshare --help 2>/dev/null | grep -q -- --map-users ||
	skip_all "unshare has no --map-users (util-linux 2.38 or newer)"
hold_subids
if is_root; then
	grep -q "^$TEST_USER:" /etc/subuid || echo "$TEST_USER:300000:65536" >> /etc/subuid
	grep -q "^$TEST_USER:" /etc/subgid || echo "$TEST_USER:300000:65536" >> /etc/subgid
fi
sub_uid=$(awk -F: -v u="$TEST_USER" '$1 == u {print $2; exit}' /etc/subuid)
sub_gid=$(awk -F: -v u="$TEST_USER" '$1 == u {print $2; exit}' /etc/subgid)
if [ -z "$sub_uid" ] || [ -z "$sub_gid" ]; then skip_all "$TEST_USER has no subordinate ids"; fi

# The tree, made as root of such a namespace from the suite's busybox image.
as_user mkdir -m 0777 "$WORK/made"
as_user unshare --map-users="$sub_uid,0,65536" --map-groups="$sub_gid,0,65536" --setuid 0 --setgid 0 \
	sh -c "mkdir '$WORK/made/root' && cd '$WORK/made/root' && unsquashfs -q -d img '$STAGED_IMAGE' >/dev/null &&
	       mv img/* . && rmdir img && mkdir -m 0700 private && echo secret > private/key && chmod 0600 private/key &&
	       echo svc > svc-file && chown 42:43 svc-file && mknod -m 0600 fifo p" ||
	bail_out "cannot make a tree as root of a namespace of subordinate ids"
is "$(stat -c %u "$WORK/made/root")" "$sub_uid" "the tree is owned by the first subordinate id"
ok "and the user cannot read all of it" as_user sh -c "! cat '$WORK/made/root/private/key' 2>/dev/null"

out=$(as_user "$CAPSULA" build "$WORK/tree.sqfs" "$WORK/made/root" 2>&1); rc=$?
is "$rc" 0 "capsula build OUT DIR of that tree builds as the user"
[ "$rc" = 0 ] || diag "$out"
owner_in() {  # PATH: uid/gid as stored
	unsquashfs -lln "$WORK/tree.sqfs" "$1" 2>/dev/null | awk -v p="squashfs-root$1" '$NF == p {print $2}'
}
is "$(owner_in /private)" "0/0" "the namespace's root owns what it owned"
is "$(owner_in /svc-file)" "42/43" "other ids keep theirs"
is "$(unsquashfs -cat "$WORK/tree.sqfs" private/key)" "secret" "a file closed to the user is read"
like "$(unsquashfs -lln "$WORK/tree.sqfs" /fifo | tail -n 1)" '^prw-------' "a FIFO stays one"
is "$(stat -c %u:%g "$WORK/tree.sqfs")" "$TEST_UID:$TEST_GID" "the image file is the user's"
is "$(as_user "$CAPSULA" exec "$WORK/tree.sqfs" cat /svc-file)" "svc" "and it runs"

# The tree's files belong to subordinate ids: root removes them.
rm -rf "$WORK/made"
done_testing
