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

done_testing
