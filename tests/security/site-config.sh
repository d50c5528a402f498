#!/bin/sh
# The administrator's capsula.conf: allowed image directories, binds and
# devices for everyone, no user binds, no --dev host, the holder's grace;
# users cannot override it; a broken file is a clear error with its line.
# It writes the system's configuration file, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
take_site_config "writing $CAPSULA_CONFIG_FILE needs root"
device=/dev/capsula-test-device
# The administrator's image directory: root's, as is every directory above it.
allowed=/tmp/capsula-site-images.$$
SITE_LEFTOVERS="$device $allowed"

mkdir -p "$allowed" && chmod 0755 "$allowed" && mkdir -p "$WORK/elsewhere" "$WORK/site"
cp "$IMAGE" "$allowed/ok.sqfs"
cp "$IMAGE" "$WORK/elsewhere/no.sqfs"
echo "site data" > "$WORK/site/README"
mknod "$device" c 1 3
chmod -R a+rX "$WORK" "$allowed"
write_conf <<CONF
# capsula site configuration (test)
image directory = $allowed/
bind = $WORK/site:/site:ro
device = $device
allow user binds = no
allow dev host = no
holder grace = 0.25
CONF

out=$(as_user "$CAPSULA" exec "$allowed/ok.sqfs" cat /site/README); rc=$?
is "$rc" 0 "an image in an allowed directory runs"
is "$out" "site data" "the site's bind is in every container"
ok "the site's bind is read-only" as_user "$CAPSULA" exec "$allowed/ok.sqfs" \
	sh -c '! touch /site/x 2>/dev/null'
ok "the site's device is in a minimal /dev" as_user "$CAPSULA" exec "$allowed/ok.sqfs" \
	test -c "$device"

err=$(as_user "$CAPSULA" exec "$WORK/elsewhere/no.sqfs" true 2>&1); rc=$?
is "$rc" 125 "an image outside the allowed directories is refused with 125"
like "$err" "^capsula: image .*no.sqfs is not in a directory the administrator allows \($CAPSULA_CONFIG_FILE: image directory\); copy the image" \
	"the message names the file and the setting"
ln -s "$WORK/elsewhere/no.sqfs" "$allowed/link.sqfs"
err=$(as_user "$CAPSULA" exec "$allowed/link.sqfs" true 2>&1); rc=$?
is "$rc" 125 "a symlink in an allowed directory to an image elsewhere is refused"

err=$(as_user "$CAPSULA" exec -B /tmp:/mnt "$allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "-B is refused when user binds are not allowed"
like "$err" "binds of your own are not allowed here" "and the message says so"
err=$(as_user env CAPSULA_BIND=/tmp:/mnt "$CAPSULA" exec "$allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "CAPSULA_BIND cannot get around it"
err=$(as_user "$CAPSULA" exec --home /tmp:/mnt "$allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "nor can --home SRC:DST"
err=$(as_user "$CAPSULA" exec --dev host "$allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "--dev host is refused when not allowed"
like "$err" "--dev host is not allowed here" "and the message says so"
like "$(as_user env OMPI_COMM_WORLD_SIZE=2 PMIX_NAMESPACE=job-1 "$CAPSULA" exec --dry-run "$allowed/ok.sqfs" true)" \
	"grace 250 ms" "the holder's grace comes from the configuration"

# Without user binds, neither $HOME nor the current directory opens up a
# host path: the home is the passwd entry's, the command starts there.
echo "host log" > /var/log/capsula-test-marker
chmod 0644 /var/log/capsula-test-marker
out=$(as_user HOME=/var/log "$CAPSULA" exec "$allowed/ok.sqfs" \
	sh -c 'echo "$HOME"; cat /var/log/capsula-test-marker 2>/dev/null || echo unseen' 2>&1)
rm -f /var/log/capsula-test-marker
is "$out" "$TEST_HOME
unseen" "HOME=/var/log: the home is the passwd entry's, the host's /var/log stays out"
out=$(as_user HOME=/dev "$CAPSULA" exec "$allowed/ok.sqfs" \
	sh -c 'echo "$HOME"; test -e /dev/kmsg && echo "host /dev" || echo minimal' 2>&1)
is "$out" "$TEST_HOME
minimal" "HOME=/dev: the home is the passwd entry's and /dev stays minimal"
elsewhere=/var/tmp/capsula-test-cwd.$$
mkdir -m 0755 "$elsewhere" && echo "host cwd" > "$elsewhere/marker"
out=$(cd "$elsewhere" && setpriv --reuid "$TEST_UID" --regid "$TEST_GID" --init-groups \
	env -i HOME="$TEST_HOME" PATH=/usr/bin:/bin "$CAPSULA" exec "$allowed/ok.sqfs" \
	sh -c 'pwd; cat "$0/marker" 2>/dev/null' "$elsewhere" 2>&1)
rm -rf "$elsewhere"
is "$out" "$TEST_HOME" "the current directory ($elsewhere) is not bound; the command starts in the home"

# The image that runs is the one that was checked: swap a symlink in a
# directory the user owns between an allowed image and one elsewhere.
unsquashfs -q -d "$WORK/variant" "$IMAGE" >/dev/null
echo "from elsewhere" > "$WORK/variant/etc/capsula-test-image"
mksquashfs "$WORK/variant" "$WORK/elsewhere/other.sqfs" -noappend -quiet -no-progress -all-root >/dev/null
chmod -R a+rX "$WORK"
mkdir "$WORK/swapping" && chown "$TEST_UID" "$WORK/swapping"
as_user sh -c 'cd "$1" && while :; do ln -sfn "$2" a && mv -T a swap.sqfs;
	ln -sfn "$3" b && mv -T b swap.sqfs; done' sh "$WORK/swapping" "$allowed/ok.sqfs" "$WORK/elsewhere/other.sqfs" &
swapper=$!
escaped=0 ran=0
for _ in $(seq 100); do
	out=$(as_user "$CAPSULA" exec "$WORK/swapping/swap.sqfs" cat /etc/capsula-test-image 2>/dev/null)
	case $out in
		"from elsewhere") escaped=$((escaped + 1)) ;;
		"capsula busybox test image") ran=$((ran + 1)) ;;
	esac
done
kill "$swapper"; wait "$swapper" 2>/dev/null
pkill -u "$TEST_UID" -f "mv -T" 2>/dev/null
is "$escaped" 0 "a symlink swapped in a loop never runs an image from elsewhere ($ran of 100 ran the allowed one)"
ok "while the allowed one still runs" [ "$ran" -gt 0 ]

# Only what the administrator put there counts: a directory or an image of
# the user's inside an image directory is refused, and so is the allowed
# path as another mount namespace shows it.
mkdir "$allowed/mine" && chown "$TEST_UID" "$allowed/mine" && cp "$WORK/elsewhere/other.sqfs" "$allowed/mine/x.sqfs"
err=$(as_user "$CAPSULA" exec "$allowed/mine/x.sqfs" true 2>&1); rc=$?
is "$rc" 125 "an image in a directory of the user's inside an image directory is refused"
like "$err" "image $allowed/mine/x.sqfs: $allowed/mine belongs to uid $TEST_UID: another user could replace what is below it" \
	"saying which directory is the user's"
cp "$WORK/elsewhere/other.sqfs" "$allowed/users.sqfs" && chown "$TEST_UID" "$allowed/users.sqfs"
err=$(as_user "$CAPSULA" exec "$allowed/users.sqfs" true 2>&1); rc=$?
is "$rc" 125 "an image file of the user's in an image directory is refused"
like "$err" "image $allowed/users.sqfs belongs to uid $TEST_UID; ask the administrator to install it there" \
	"saying whose it is"
chmod 0666 "$allowed/ok.sqfs"
err=$(as_user "$CAPSULA" exec "$allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "an image in an image directory that anyone may write is refused"
chmod 0644 "$allowed/ok.sqfs"
rm -rf "$allowed/mine" "$allowed/users.sqfs"
as_user unshare -Urm sh -c 'mount --bind "$1" "$2" && echo bound > "$3" && sleep 30' sh \
	"$WORK/elsewhere/other.sqfs" "$allowed/ok.sqfs" "$WORK/ns-ready" &
nsholder=$!
n=0; while [ ! -s "$WORK/ns-ready" ] && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
nspid=$(pgrep -u "$TEST_UID" -x sleep -n)
ok "the user bound another image over the allowed one in a namespace of theirs" \
	as_user sh -c "cmp -s '/proc/$nspid/root$allowed/ok.sqfs' '$WORK/elsewhere/other.sqfs'"
err=$(as_user "$CAPSULA" exec "/proc/$nspid/root$allowed/ok.sqfs" cat /etc/capsula-test-image 2>&1); rc=$?
is "$rc" 125 "the allowed path through that namespace's root is refused"
like "$err" "is not the file $allowed/ok.sqfs names here" "because it is not the file the path names here"
kill "$nsholder" "$nspid" 2>/dev/null; wait "$nsholder" 2>/dev/null
printf 'image directory = %s\nimage owner = %s\n' "$allowed" "$TEST_USER" | write_conf
cp "$WORK/elsewhere/other.sqfs" "$allowed/users.sqfs" && chown "$TEST_UID" "$allowed/users.sqfs"
out=$(as_user "$CAPSULA" exec "$allowed/users.sqfs" cat /etc/capsula-test-image 2>&1); rc=$?
is "$rc:$out" "0:from elsewhere" "with 'image owner' naming them, that user's image there runs"
rm -f "$allowed/users.sqfs"
printf 'image directory = %s\nimage owner = no-such-user-here\n' "$allowed" | write_conf
like "$(as_user "$CAPSULA" exec "$allowed/ok.sqfs" true 2>&1)" "image owner: expected a user name or uid" \
	"an unknown image owner is an error"

write_conf <<CONF
image directory = $allowed
allow user binds = perhaps
CONF
err=$(as_user "$CAPSULA" exec "$allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "a malformed configuration fails with 125"
is "$err" "capsula: $CAPSULA_CONFIG_FILE line 2: allow user binds: expected yes or no; see capsula(1), FILES" \
	"and names the line and the problem"
printf 'bind = relative/dir:/x\n' | write_conf
like "$(as_user "$CAPSULA" exec "$allowed/ok.sqfs" true 2>&1)" "line 1: bind: a bind source must be an absolute path" \
	"a relative bind source is an error"
printf 'frobnicate = 1\n' | write_conf
like "$(as_user "$CAPSULA" exec "$allowed/ok.sqfs" true 2>&1)" "line 1: frobnicate: unknown setting" \
	"an unknown setting is an error"

printf 'allow user binds = yes\n' | write_conf
chown "$TEST_UID" "$CAPSULA_CONFIG_FILE"
err=$(as_user "$CAPSULA" exec "$allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "a configuration the user owns is refused"
like "$err" "is not owned by root or is writable by others" "and the message says why"
chown 0 "$CAPSULA_CONFIG_FILE"; chmod 0600 "$CAPSULA_CONFIG_FILE"
err=$(as_user "$CAPSULA" exec "$allowed/ok.sqfs" true 2>&1); rc=$?
is "$rc" 125 "an unreadable configuration fails with 125"
like "$err" "^capsula: cannot open $CAPSULA_CONFIG_FILE: Permission denied; ask the administrator" \
	"and the message says so"

rm -f "$CAPSULA_CONFIG_FILE"
is "$(as_user "$CAPSULA" exec -B "$WORK/site:/mnt" "$WORK/elsewhere/no.sqfs" cat /mnt/README)" "site data" \
	"without a configuration file the defaults allow images anywhere and user binds"

# Binds are nodev unless they are devices the policy allows, whatever path
# they come from.
mountinfo=$(as_user "$CAPSULA" exec -B /dev:/hostdev "$WORK/elsewhere/no.sqfs" cat /proc/self/mountinfo)
like "$(printf '%s\n' "$mountinfo" | awk '$5 == "/hostdev" {print $6}')" "(^|,)nodev(,|$)" \
	"-B /dev:/hostdev is mounted nodev"
unlike "$(printf '%s\n' "$mountinfo" | awk '$5 == "/dev/null" {print $6}')" "(^|,)nodev(,|$)" \
	"while the minimal /dev's own devices are not"
mountinfo=$(as_user HOME=/dev "$CAPSULA" exec "$WORK/elsewhere/no.sqfs" cat /proc/self/mountinfo)
is "$(printf '%s\n' "$mountinfo" | awk '$5 == "/dev" && $6 !~ /(^|,)nodev(,|$)/' | wc -l)" 0 \
	"HOME=/dev: every mount on /dev is nodev"

# Pull caches on the site's disk: one directory per uid, which must be the
# user's own; one that someone else made first is refused, not used.
mkdir -p "$WORK/pullcache" && chmod 1777 "$WORK/pullcache"
printf 'cache directory = %s\nregistry ca = /etc/ssl/certs/ca-certificates.crt\ninsecure registry = 127.0.0.1:5000\n' \
	"$WORK/pullcache" | write_conf
out=$(as_user "$CAPSULA" cache list 2>&1); rc=$?
is "$rc" 0 "the registry settings are accepted"
like "$out" "^$WORK/pullcache/$TEST_UID: 0 images" "the site's cache directory has a cache per uid"
rmdir "$WORK/pullcache/$TEST_UID" 2>/dev/null
mkdir "$WORK/pullcache/$TEST_UID" && chown nobody "$WORK/pullcache/$TEST_UID"
out=$(as_user "$CAPSULA" pull -q "127.0.0.1:5000/app:v1" 2>&1); rc=$?
is "$rc" 125 "a cache directory another user made for this one is refused"
like "$out" "cache directory $WORK/pullcache/$TEST_UID belongs to uid [0-9]+, not to you; set CAPSULA_CACHEDIR" \
	"saying whose it is and what to do"
printf 'registry ca = certs.pem\n' | write_conf
like "$(as_user "$CAPSULA" cache list 2>&1)" "registry ca: expected an absolute path" \
	"a relative CA path is refused"

# The writable tmpfs's default size; --tmpfs-size still chooses.
printf 'writable tmpfs size = 8M\n' | write_conf
like "$(as_user "$CAPSULA" exec --writable-tmpfs "$allowed/ok.sqfs" df -k / 2>&1)" " 8192 " \
	"'writable tmpfs size = 8M' sizes --writable-tmpfs"
like "$(as_user "$CAPSULA" exec --writable-tmpfs --tmpfs-size 16M "$allowed/ok.sqfs" df -k / 2>&1)" \
	" 16384 " "--tmpfs-size overrides it"
printf 'writable tmpfs size = lots\n' | write_conf
like "$(as_user "$CAPSULA" exec --writable-tmpfs "$allowed/ok.sqfs" true 2>&1)" \
	"line 1: writable tmpfs size: expected a size of at least 1M" "a malformed size is refused"

# Where users may not bind, they may not add layers either.
printf 'allow user binds = no\n' | write_conf
like "$(as_user "$CAPSULA" exec --overlay "$allowed/ok.sqfs" "$allowed/ok.sqfs" true 2>&1)" \
	"binds of your own are not allowed here" "--overlay is refused where user binds are"

done_testing
