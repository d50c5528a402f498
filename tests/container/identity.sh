#!/bin/sh
# /etc/passwd and /etc/group: the image's entries plus the caller's.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

passwd=$(capsula_exec -- cat /etc/passwd)
like "$passwd" "^$TEST_USER:x:$TEST_UID:$TEST_GID:[^:]*:$TEST_HOME:" "passwd has the caller with their home"
like "$passwd" '^imageuser:x:4242:4242:' "passwd keeps the image's own accounts"
is "$(printf '%s\n' "$passwd" | grep -c ":x:$TEST_UID:")" 1 "the caller's uid appears once"
group=$(capsula_exec -- cat /etc/group)
like "$group" "^$(id -gn "$TEST_USER"):x:$TEST_GID:" "group has the caller's primary group"
like "$group" '^imagegroup:x:4242:' "group keeps the image's own groups"
is "$(capsula_exec -- id -un)" "$TEST_USER" "id -un names the caller"
is "$(capsula_exec -- id -gn)" "$(id -gn "$TEST_USER")" "id -gn names the caller's group"
like "$(capsula_exec -- grep ' /etc/passwd ' /proc/self/mountinfo)" ' ro,' "passwd is bind-mounted read-only"
unlike "$(cat /etc/passwd)" "imageuser" "no image account leaked into the host's passwd"

# The accounts are read from what the container would show, not always
# from the image: a file bound over /etc/passwd, a passwd that is a symlink.
echo "boundaccount:x:5151:5151::/:/bin/sh" > "$WORK/bound-passwd"
chmod a+r "$WORK/bound-passwd"
passwd=$(capsula_exec -B "$WORK/bound-passwd:/etc/passwd" -- cat /etc/passwd)
like "$passwd" '^boundaccount:x:5151:' "a file bound over /etc/passwd is what the caller is added to"
unlike "$passwd" '^imageuser:' "and the image's own passwd is not read instead"
busybox=$(command -v busybox || echo /bin/busybox)
if [ -x "$busybox" ]; then
	linked=$WORK/linked-passwd
	mkdir -p "$linked/bin" "$linked/etc" "$linked/usr/share/accounts"
	cp "$busybox" "$linked/bin/busybox"
	ln -s busybox "$linked/bin/cat"
	echo "linkedaccount:x:6161:6161::/:/bin/sh" > "$linked/usr/share/accounts/passwd"
	ln -s ../usr/share/accounts/passwd "$linked/etc/passwd"
	mksquashfs "$linked" "$linked.sqfs" -noappend -quiet -no-progress -all-root >/dev/null ||
		bail_out "mksquashfs $linked.sqfs failed"
	chmod a+r "$linked.sqfs"
	passwd=$(as_user "$CAPSULA" exec "$linked.sqfs" cat /etc/passwd)
	like "$passwd" '^linkedaccount:x:6161:' "a passwd that is a symlink in the image is followed"
	like "$passwd" "^$TEST_USER:x:$TEST_UID:" "and the caller is added to it"
else
	skip "no static busybox on the host to build a small image (apt-get install busybox-static)"
	skip "no static busybox on the host to build a small image (apt-get install busybox-static)"
fi

done_testing
