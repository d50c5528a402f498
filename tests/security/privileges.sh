#!/bin/sh
# Inside, the user has no more than outside: no capabilities, no_new_privs,
# setuid files powerless, no device creation, no mounts.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

status=$(capsula_exec -- cat /proc/self/status)
for field in CapInh CapPrm CapEff CapBnd CapAmb; do
	like "$status" "^$field:[[:space:]]+0000000000000000$" "$field is empty"
done
like "$status" '^NoNewPrivs:[[:space:]]+1$' "NoNewPrivs is set"

ls_suid=$(capsula_exec -- ls -l /bin/busybox-suid)
like "$ls_suid" '^-rwsr-xr-x' "the image has a setuid-root program"
is "$(capsula_exec -- /bin/busybox-suid id -u)" "$TEST_UID" "running it does not change the uid"
like "$(capsula_exec -- /bin/busybox-suid cat /proc/self/status)" \
	"Uid:[[:space:]]+${TEST_UID}[[:space:]]+${TEST_UID}[[:space:]]+$TEST_UID" \
	"real, effective and saved uid stay the caller's"
like "$(capsula_exec -- /bin/busybox-suid cat /proc/self/status)" '^CapEff:[[:space:]]+0000000000000000$' \
	"and it has no capabilities"

err=$(capsula_exec -- mknod /tmp/capsula-null c 1 3 2>&1); rc=$?
ok "mknod of a device fails (rc=$rc)" [ "$rc" != 0 ]
ok "and no device node appeared" [ ! -e /tmp/capsula-null ]
err=$(capsula_exec -- mount -t tmpfs none /tmp 2>&1); rc=$?
ok "mount fails (rc=$rc)" [ "$rc" != 0 ]
like "$err" "denied|not permitted" "mount is refused for lack of privilege"
err=$(capsula_exec -- umount /etc/passwd 2>&1); rc=$?
ok "umount of a container mount fails (rc=$rc)" [ "$rc" != 0 ]
err=$(capsula_exec -- chown 0 "$WORK" 2>&1); rc=$?
ok "chown to root fails (rc=$rc)" [ "$rc" != 0 ]

if is_root; then
	secret=$(mktemp /tmp/capsula-secret.XXXXXX)
	echo "root only" > "$secret"
	chmod 0600 "$secret"
	err=$(capsula_exec -- cat "$secret" 2>&1); rc=$?
	ok "a root-only host file stays unreadable (rc=$rc)" [ "$rc" != 0 ]
	unlike "$err" "root only" "its content does not leak"
	rm -f "$secret"
else
	skip "needs root to make a file the test user cannot read"
	skip "needs root to make a file the test user cannot read"
fi

done_testing
