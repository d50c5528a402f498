#!/bin/sh
# The administrator's capsula.conf: allowed image directories, binds and
# devices for everyone, no user binds, no --dev host, the holder's grace;
# users cannot override it; a broken file is a clear error with its line.
# It writes the system's configuration file, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
is_root || skip_all "writing $CAPSULA_CONFIG_FILE needs root"
[ ! -e "$CAPSULA_CONFIG_FILE" ] || skip_all "$CAPSULA_CONFIG_FILE exists; not touching the site's configuration"

conf_dir=$(dirname "$CAPSULA_CONFIG_FILE")
made_dir=0
[ -d "$conf_dir" ] || { mkdir -p "$conf_dir" && made_dir=1; }
device=/dev/capsula-test-device
cleanup() {
	rm -f "$CAPSULA_CONFIG_FILE" "$device"
	[ "$made_dir" = 1 ] && rmdir "$conf_dir"
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/allowed" "$WORK/elsewhere" "$WORK/site"
cp "$IMAGE" "$WORK/allowed/ok.sqfs"
cp "$IMAGE" "$WORK/elsewhere/no.sqfs"
echo "site data" > "$WORK/site/README"
mknod "$device" c 1 3
chmod -R a+rX "$WORK"
write_conf() {
	cat > "$CAPSULA_CONFIG_FILE"
	chmod 0644 "$CAPSULA_CONFIG_FILE"
}
write_conf <<CONF
# capsula site configuration (test)
image directory = $WORK/allowed/
bind = $WORK/site:/site:ro
device = $device
allow user binds = no
allow dev host = no
holder grace = 0.25
CONF

out=$(as_user "$CAPSULA" exec "$WORK/allowed/ok.sqfs" cat /site/README); rc=$?
is "$rc" 0 "an image in an allowed directory runs"
is "$out" "site data" "the site's bind is in every container"
ok "the site's bind is read-only" as_user "$CAPSULA" exec "$WORK/allowed/ok.sqfs" \
	sh -c '! touch /site/x 2>/dev/null'
ok "the site's device is in a minimal /dev" as_user "$CAPSULA" exec "$WORK/allowed/ok.sqfs" \
	test -c "$device"

err=$(as_user "$CAPSULA" exec "$WORK/elsewhere/no.sqfs" true 2>&1); rc=$?
is "$rc" 125 "an image outside the allowed directories is refused with 125"
like "$err" "^capsula: image .*no.sqfs is not in a directory the administrator allows \($CAPSULA_CONFIG_FILE: image directory\); copy the image" \
	"the message names the file and the setting"
ln -s "$WORK/elsewhere/no.sqfs" "$WORK/allowed/link.sqfs"
err=$(as_user "$CAPSULA" exec "$WORK/allowed/link.sqfs" true 2>&1); rc=$?
is "$rc" 125 "a symlink in an allowed directory to an image elsewhere is refused"

err=$(as_user "$CAPSULA" exec -B /tmp:/mnt "$WORK/allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "-B is refused when user binds are not allowed"
like "$err" "binds of your own are not allowed here" "and the message says so"
err=$(as_user env CAPSULA_BIND=/tmp:/mnt "$CAPSULA" exec "$WORK/allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "CAPSULA_BIND cannot get around it"
err=$(as_user "$CAPSULA" exec --home /tmp:/mnt "$WORK/allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "nor can --home SRC:DST"
err=$(as_user "$CAPSULA" exec --dev host "$WORK/allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "--dev host is refused when not allowed"
like "$err" "--dev host is not allowed here" "and the message says so"
like "$(as_user env OMPI_COMM_WORLD_SIZE=2 PMIX_NAMESPACE=job-1 "$CAPSULA" exec --dry-run "$WORK/allowed/ok.sqfs" true)" \
	"grace 250 ms" "the holder's grace comes from the configuration"

write_conf <<CONF
image directory = $WORK/allowed
allow user binds = perhaps
CONF
err=$(as_user "$CAPSULA" exec "$WORK/allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "a malformed configuration fails with 125"
is "$err" "capsula: $CAPSULA_CONFIG_FILE line 2: allow user binds: expected yes or no; see capsula(1), FILES" \
	"and names the line and the problem"
printf 'bind = relative/dir:/x\n' | write_conf
like "$(as_user "$CAPSULA" exec "$WORK/allowed/ok.sqfs" true 2>&1)" "line 1: bind: a bind source must be an absolute path" \
	"a relative bind source is an error"
printf 'frobnicate = 1\n' | write_conf
like "$(as_user "$CAPSULA" exec "$WORK/allowed/ok.sqfs" true 2>&1)" "line 1: frobnicate: unknown setting" \
	"an unknown setting is an error"

printf 'allow user binds = yes\n' | write_conf
chown "$TEST_UID" "$CAPSULA_CONFIG_FILE"
err=$(as_user "$CAPSULA" exec "$WORK/allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "a configuration the user owns is refused"
like "$err" "is not owned by root or is writable by others" "and the message says why"
chown 0 "$CAPSULA_CONFIG_FILE"; chmod 0600 "$CAPSULA_CONFIG_FILE"
err=$(as_user "$CAPSULA" exec "$WORK/allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "an unreadable configuration fails with 125"
like "$err" "^capsula: cannot open $CAPSULA_CONFIG_FILE: Permission denied; ask the administrator" \
	"and the message says so"

rm -f "$CAPSULA_CONFIG_FILE"
is "$(as_user "$CAPSULA" exec -B "$WORK/site:/mnt" "$WORK/elsewhere/no.sqfs" cat /mnt/README)" "site data" \
	"without a configuration file the defaults allow images anywhere and user binds"

done_testing
