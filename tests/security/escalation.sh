#!/bin/sh
# Nothing inside gives more than the user had: file capabilities and
# setgid bits of the image are powerless, host files the user cannot read
# stay unreadable through binds, and another user can neither signal,
# trace nor look into the user's holder.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
is_root || skip_all "needs root to set file capabilities and to make a second user"
command -v setcap >/dev/null || skip_all "no setcap (apt-get install libcap2-bin)"

busybox=$(command -v busybox || echo /bin/busybox)
other=capsula-test2
id "$other" >/dev/null 2>&1 || with_lock sh -c "id $other >/dev/null 2>&1 || useradd --no-create-home --shell /bin/sh $other" ||
	bail_out "cannot create $other"

root=$WORK/caps
mkdir -p "$root/bin"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$busybox" "$root/bin/busybox-caps"
setcap cap_dac_read_search,cap_setuid,cap_sys_admin+ep "$root/bin/busybox-caps" ||
	bail_out "setcap failed"
cp "$busybox" "$root/bin/busybox-sgid"
chgrp 0 "$root/bin/busybox-sgid" && chmod 2755 "$root/bin/busybox-sgid"
mksquashfs "$root" "$WORK/caps.sqfs" -noappend -quiet -no-progress -all-root -xattrs >/dev/null ||
	bail_out "mksquashfs failed"
chmod a+r "$WORK/caps.sqfs"
# Read back from the image itself, not from the tree it was made of.
unsquashfs -q -xattrs -d "$WORK/caps-out" "$WORK/caps.sqfs" bin/busybox-caps >/dev/null
like "$(getcap "$WORK/caps-out/bin/busybox-caps")" "cap_sys_admin" "the image carries a file capability"

in_caps() { as_user "$CAPSULA" exec "$WORK/caps.sqfs" "$@"; }
like "$(in_caps /bin/busybox-caps grep CapEff /proc/self/status)" '^CapEff:[[:space:]]+0000000000000000$' \
	"a program with file capabilities gets none"
like "$(in_caps /bin/busybox-caps grep CapPrm /proc/self/status)" '^CapPrm:[[:space:]]+0000000000000000$' \
	"not even permitted ones"
secret=$WORK/secret
echo "root only" > "$secret"; chmod 0600 "$secret"
err=$(as_user "$CAPSULA" exec -B "$WORK:/w" "$WORK/caps.sqfs" /bin/busybox-caps cat /w/secret 2>&1); rc=$?
ok "cap_dac_read_search from the image reads no root-only file (rc=$rc)" [ "$rc" != 0 ]
unlike "$err" "root only" "and nothing of it leaks"
is "$(in_caps /bin/busybox-sgid id -g)" "$TEST_GID" "a setgid-root program keeps the caller's group"
like "$(in_caps /bin/busybox-sgid grep ^Gid: /proc/self/status)" \
	"^Gid:[[:space:]]+${TEST_GID}[[:space:]]+${TEST_GID}[[:space:]]+${TEST_GID}" "all its gids stay the caller's"

mkdir -p "$WORK/private" && echo "hidden" > "$WORK/private/file" && chmod 0700 "$WORK/private"
err=$(as_user "$CAPSULA" exec -B "$WORK/private:/p" "$IMAGE" cat /p/file 2>&1); rc=$?
ok "a host directory the user cannot enter stays closed through a bind (rc=$rc)" [ "$rc" != 0 ]
unlike "$err" "hidden" "and its file does not leak"

# Another user against this user's holder.
name=guarded-$$
as_user "$CAPSULA" instance start -q "$IMAGE" "$name" || bail_out "cannot start an instance"
holder=$(as_user "$CAPSULA" instance list | awk -v n="$name" '$1 == n { print $3 }')
ok "the instance has a holder" [ -n "$holder" ]
as_other() { setpriv --reuid "$other" --regid "$other" --init-groups "$@"; }
# Each attempt must fail for the reason that matters, not any reason.
denied="Permission denied|Operation not permitted"
like "$(as_other kill -0 "$holder" 2>&1)" "$denied" "another user cannot signal the holder"
# A mapped address (the first readable mapping), so that only permission can fail.
address=$(awk '$2 ~ /^r/ { split($1, a, "-"); print a[1]; exit }' "/proc/$holder/maps")
like "$(as_other dd if="/proc/$holder/mem" bs=1 count=1 skip=$((0x$address)) iflag=skip_bytes 2>&1 >/dev/null)" \
	"$denied" "nor read its memory at a mapped address ($address)"
like "$(as_other cat "/proc/$holder/environ" 2>&1)" "$denied" "nor look at its environment"
like "$(as_other ls "/proc/$holder/root/" 2>&1)" "$denied" "nor enter its root"
if command -v gdb >/dev/null 2>&1; then
	out=$(as_other gdb -batch -p "$holder" 2>&1)
	like "$out" "ptrace: Operation not permitted|Could not attach" "nor attach a debugger to it"
else
	skip "no gdb to try ptrace"
fi
record=$TEST_HOME/.capsula/run/$(hostname)/instances/$name.json
ok "the instance has a record" [ -f "$record" ]
like "$(as_other cat "$record" 2>&1)" "$denied" "nor read the user's instance records"
as_user "$CAPSULA" instance stop "$name"

done_testing
