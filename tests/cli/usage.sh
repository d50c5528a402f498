#!/bin/sh
# What capsula says about itself, and how it refuses what it does not know.
. "$abs_top_srcdir/tests/lib/common.sh"

out=$(as_user "$CAPSULA" --version); rc=$?
is "$rc" 0 "--version exits 0"
like "$out" '^capsula [0-9]+\.[0-9]+\.[0-9]+$' "--version prints the version"

out=$(as_user "$CAPSULA" --help); rc=$?
is "$rc" 0 "--help exits 0"
like "$out" 'exec IMAGE COMMAND' "--help lists exec"

out=$(as_user "$CAPSULA" exec --help); rc=$?
is "$rc" 0 "exec --help exits 0"
for option in --bind --home --no-home --pwd --env --env-file --cleanenv --dev --join --dry-run; do
	like "$out" "$option" "exec --help documents $option"
done
like "$out" '125' "exec --help documents the exit statuses"

err=$(as_user "$CAPSULA" frobnicate 2>&1 >/dev/null); rc=$?
is "$rc" 125 "an unknown command exits 125"
is "$err" "capsula: unknown command 'frobnicate'; see 'capsula --help'" "and says so in one line"

err=$(as_user "$CAPSULA" 2>&1 >/dev/null); rc=$?
is "$rc" 125 "no command at all exits 125"

err=$(as_user "$CAPSULA" exec --frobnicate "$IMAGE" true 2>&1 >/dev/null); rc=$?
is "$rc" 125 "an unknown option exits 125"
is "$err" "capsula: unknown option '--frobnicate'; see 'capsula exec --help'" "and names the option"
err=$(as_user "$CAPSULA" exec --writeable-tmpfs "$IMAGE" true 2>&1 >/dev/null); rc=$?
is "$rc" 125 "a misspelt option exits 125"
is "$err" "capsula: unknown option '--writeable-tmpfs'; did you mean '--writable-tmpfs'? see 'capsula exec --help'" \
	"and says which option was meant"
for command in build pull; do
	err=$(as_user "$CAPSULA" "$command" --forse x y 2>&1 >/dev/null)
	like "$err" "unknown option '--forse'; did you mean '--force'\\? see 'capsula $command --help'" \
		"capsula $command says which option was meant"
done

err=$(as_user "$CAPSULA" exec "$IMAGE" 2>&1 >/dev/null); rc=$?
is "$rc" 125 "an image without a command exits 125"
like "$err" '^capsula: no command given' "and says what is missing"

out=$(capsula_exec --dry-run -- /bin/echo hello); rc=$?
is "$rc" 0 "--dry-run exits 0"
like "$out" "^image +$IMAGE" "--dry-run names the image"
like "$out" 'bind +[^ ]+ -> /proc' "--dry-run lists the binds"
like "$out" "command +/bin/echo hello" "--dry-run shows the command"
unlike "$out" '^hello$' "--dry-run runs nothing"

# --hold-notify FD: the descriptor must be open (the SPANK plugin passes 3).
out=$(as_user "$CAPSULA" exec --job usage --hold --hold-notify 9 "$IMAGE" true 2>&1 9<&-); rc=$?
is "$rc" 125 "--hold-notify with a closed descriptor exits 125"
like "$out" "^capsula: --hold-notify 9: Bad file descriptor; " "saying which descriptor"

done_testing
