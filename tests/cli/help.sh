#!/bin/sh
# Every command has --help, exits 0 with it, and lists what it takes.
. "$abs_top_srcdir/tests/lib/common.sh"

out=$(as_user "$CAPSULA" --help); rc=$?
is "$rc" 0 "capsula --help exits 0"
for command in exec run shell build pull login cache inspect instance doctor; do
	like "$out" "^  $command " "capsula --help lists $command"
	text=$(as_user "$CAPSULA" $command --help); rc=$?
	is "$rc" 0 "capsula $command --help exits 0"
	like "$text" "^Usage: capsula $command" "capsula $command --help starts with its usage"
done
like "$(as_user "$CAPSULA" build --help)" "--compression" "build --help lists --compression"
like "$(as_user "$CAPSULA" doctor --help)" "Exit status: 0 when the node can run containers" \
	"doctor --help documents its exit statuses"
like "$(as_user "$CAPSULA" instance start --help)" "^Usage: capsula instance start" "instance start --help"
err=$(as_user "$CAPSULA" frobnicate 2>&1); rc=$?
is "$rc" 125 "an unknown command exits 125"
is "$err" "capsula: unknown command 'frobnicate'; see 'capsula --help'" "and says what to do"
done_testing
