#!/bin/sh
# The launcher's child is the command: its status comes back unchanged,
# a signal N gives 128+N, and capsula's own failures are 125/126/127.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

status_of() { capsula_exec "$@" >/dev/null 2>&1; echo $?; }

is "$(status_of -- true)" 0 "true gives 0"
is "$(status_of -- false)" 1 "false gives 1"
is "$(status_of -- sh -c 'exit 42')" 42 "exit 42 gives 42"
is "$(status_of -- sh -c 'kill -TERM $$')" 143 "death by SIGTERM gives 143"
is "$(status_of -- sh -c 'kill -KILL $$')" 137 "death by SIGKILL gives 137"
is "$(status_of -- sh -c 'kill -SEGV $$')" 139 "death by SIGSEGV gives 139"

err=$(capsula_exec -- no-such-command 2>&1); rc=$?
is "$rc" 127 "a command not in the image gives 127"
is "$err" "capsula: no-such-command: not found in the container: No such file or directory; check the command's name and the image's PATH" \
	"and says so in one line"
is "$(status_of -- /no/such/path)" 127 "a missing path gives 127"
err=$(capsula_exec -- /etc/passwd 2>&1); rc=$?
is "$rc" 126 "a file that is not executable gives 126"
like "$err" "^capsula: /etc/passwd: cannot execute: Permission denied" "and names it"
is "$(status_of -- /etc)" 126 "a directory gives 126"
is "$(status_of -B /nonexistent -- true)" 125 "a capsula failure gives 125"

# The command replaces capsula: same pid as the launcher's child.
out=$(as_user sh -c '"$0" exec "$1" sh -c "echo \$\$" & echo "child $!"; wait' "$CAPSULA" "$IMAGE")
child=$(printf '%s\n' "$out" | sed -n 's/^child //p')
inner=$(printf '%s\n' "$out" | grep -v '^child')
is "$inner" "$child" "the command runs as the launcher's child itself (pid $child)"

# A signal sent to that pid reaches the command.
as_user sh -c '"$0" exec "$1" sleep 30 & pid=$!; sleep 1; kill -TERM $pid; wait $pid; echo $? > "$2"' \
	"$CAPSULA" "$IMAGE" "$WORK/sigterm-status"
is "$(cat "$WORK/sigterm-status")" 143 "SIGTERM to the launcher's child ends the command with 143"

done_testing
