#!/bin/sh
# The pull cache between two users: a site cache directory that is missing,
# another user's, or open to everyone's writes is refused and never made or
# written into; another user cannot squat or swap the user's own directory
# in it; and a launch runs only the image capsula itself put in the cache.
# It writes the system's configuration file, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
take_site_config "needs root to act as a second user and to write $CAPSULA_CONFIG_FILE"

other=capsula-test2
id "$other" >/dev/null 2>&1 || with_lock sh -c "id $other >/dev/null 2>&1 || useradd --no-create-home --shell /bin/sh $other" ||
	bail_out "cannot create $other"
other_uid=$(id -u "$other")
SQUATTER=$(stage_file "$abs_top_builddir/tests/security/squatter") || bail_out "cannot stage the squatter"
chmod a+rx "$SQUATTER"
as_other() { (cd / && exec setpriv --reuid "$other" --regid "$other" --init-groups env -i PATH=/usr/bin:/bin "$@" 9>&-); }

site=/tmp/capsula-sitecache.$$
planted=/tmp/capsula-planted.$$
SITE_LEFTOVERS="$site $planted"
printf 'cache directory = %s\ninsecure registry = 127.0.0.1:9\n' "$site" | write_conf
# A registry that is not there: a pull makes the cache, then fails at once.
ref=127.0.0.1:9/team/app:v1
pull() { as_user "$CAPSULA" pull -q "$ref" 2>&1; }

# ---------------------------------------------------------------- the site's directory
err=$(pull); rc=$?
is "$rc" 125 "a site cache directory that does not exist is refused"
like "$err" "^capsula: the site's cache directory $site: .*No such file or directory; ask the administrator to make it \(mkdir -m 1777 $site" \
	"saying what the administrator must do"
ok "and capsula makes nothing there" [ ! -e "$site" ]
err=$(as_user "$CAPSULA" exec "docker://$ref" true 2>&1); rc=$?
is "$rc" 125 "exec docker:// does not make it either"
ok "nothing was made" [ ! -e "$site" ]

as_other mkdir -m 0777 "$site"
err=$(pull); rc=$?
is "$rc" 125 "a site cache directory another user made (mode 0777) is refused"
like "$err" "cache directory $site: $site belongs to uid $other_uid" "naming its owner"
is "$(find "$site" -mindepth 1 | wc -l)" 0 "and nothing is made in it"
rm -rf "$site"

mkdir -m 0777 "$site" && chmod 0777 "$site"
err=$(pull); rc=$?
is "$rc" 125 "a site cache directory of root's open to everyone's writes, not sticky, is refused"
like "$err" "$site is writable by others \(mode 0777\) and not sticky: another user could replace what is below it" \
	"saying why"
is "$(find "$site" -mindepth 1 | wc -l)" 0 "and nothing is made in it"

chmod 1777 "$site"
pull >/dev/null
is "$(stat -c '%U %a' "$site/$TEST_UID" 2>/dev/null)" "$TEST_USER 700" \
	"in a root's sticky 1777 directory the user's own cache directory is made, 0700"
rm -rf "${site:?}/$TEST_UID"
chmod 0755 "$site"
err=$(pull); rc=$?
is "$rc" 125 "in a root's 0755 directory the user cannot make one"
like "$err" "create your cache directory $site/$TEST_UID: Permission denied; ask the administrator to make it .*install -d -m 0700 -o $TEST_USER $site/$TEST_UID" \
	"and is told the administrator's step"
install -d -m 0700 -o "$TEST_USER" "$site/$TEST_UID"
pull >/dev/null
ok "with that step done, the user's cache is there" [ -d "$site/$TEST_UID/blobs/sha256" ]
out=$(as_user "$CAPSULA" doctor 2>&1)
like "$out" "cache directory.*$site" "doctor names the site's cache directory"

# ---------------------------------------------------------------- squatting
rm -rf "${site:?}/$TEST_UID"
chmod 1777 "$site"
as_other mkdir -m 0777 "$site/$TEST_UID"
err=$(pull); rc=$?
is "$rc" 125 "a directory another user made under the user's name is refused"
like "$err" "cache directory $site/$TEST_UID belongs to uid $other_uid, not to you" "naming its owner"
is "$(find "$site/$TEST_UID" -mindepth 1 | wc -l)" 0 "and nothing is written into it"
rm -rf "${site:?}/$TEST_UID"
as_other mkdir -m 0777 "$planted"
as_other ln -s "$planted" "$site/$TEST_UID"
err=$(pull); rc=$?
is "$rc" 125 "a symlink another user planted under the user's name is refused"
like "$err" "your cache directory $site/$TEST_UID was made by uid $other_uid; ask the administrator to remove it" \
	"naming who made it"
is "$(find "$planted" -mindepth 1 | wc -l)" 0 "and nothing is written where it points"
rm -f "$site/$TEST_UID"

# Below an attacker's directory, the user's own cache directory is no better.
as_other mkdir -p -m 0777 "$planted/cache"
err=$(as_user CAPSULA_CACHEDIR="$planted/cache" "$CAPSULA" pull -q "$ref" 2>&1); rc=$?
is "$rc" 125 "CAPSULA_CACHEDIR below another user's directory is refused"
like "$err" "cache directory $planted/cache: $planted belongs to uid $other_uid" "naming the directory"
rm -rf "$planted"

# ---------------------------------------------------------------- swapping
# The user's cache holds a pulled image (as a pull leaves it); another user
# plants a cache of their own, with their image under the same tag, and
# swaps it with the user's in a loop while the user runs the tag.
pull >/dev/null
digest=sha256:$(printf 'capsula-cache-test' | sha256sum | cut -c1-64)
hex=${digest#sha256:}
arch=$(dpkg --print-architecture)
# plant.sh DIR IMAGE: a cache entry for $ref as a pull leaves one.
cat > "$WORK/plant.sh" <<EOF
mkdir -p "\$1/refs/127.0.0.1:9/team/app" "\$1/images" &&
echo "$digest" > "\$1/refs/127.0.0.1:9/team/app/v1,linux-$arch" &&
cp "\$2" "\$1/images/$hex.sqfs" &&
echo "\$(stat -c %i "\$1/images/$hex.sqfs") \$(stat -c %s "\$1/images/$hex.sqfs")" > "\$1/images/$hex.id"
EOF
chmod a+r "$WORK/plant.sh"
unsquashfs -q -d "$WORK/variant" "$IMAGE" >/dev/null
echo "the other user's image" > "$WORK/variant/etc/capsula-test-image"
mksquashfs "$WORK/variant" "$WORK/theirs.sqfs" -noappend -quiet -no-progress -all-root >/dev/null
chmod a+r "$WORK/theirs.sqfs"
as_user sh "$WORK/plant.sh" "$site/$TEST_UID" "$IMAGE"
as_other sh "$WORK/plant.sh" "$site/fake" "$WORK/theirs.sqfs"
out=$(as_user "$CAPSULA" exec --join never "docker://$ref" cat /etc/capsula-test-image 2>&1)
is "$out" "capsula busybox test image" "the user's cached image runs for docker://REF"
(cd / && exec setpriv --reuid "$other" --regid "$other" --init-groups \
	"$SQUATTER" exchange "$site/$TEST_UID" "$site/fake" 30 9>&-) > "$WORK/exchange.out" &
swapper=$!
sleep 0.3
theirs=0 mine=0
for _ in $(seq 20); do
	case $(as_user "$CAPSULA" exec --join never "docker://$ref" cat /etc/capsula-test-image 2>&1) in
		"capsula busybox test image") mine=$((mine + 1)) ;;
		"the other user's image") theirs=$((theirs + 1)) ;;
	esac
done
kill "$swapper"; wait "$swapper" 2>/dev/null
is "$theirs" 0 "20 launches while another user swaps directories: none runs the other user's image"
is "$mine" 20 "all 20 run the user's own"
like "$(cat "$WORK/exchange.out")" "^swapped 0 refused [1-9]" "the kernel refused every swap in the sticky directory"

# The cache's own file, checked against what capsula recorded making: the
# same name with other contents is not run.
cp "$WORK/theirs.sqfs" "$site/$TEST_UID/images/$hex.sqfs.new"
chown "$TEST_UID" "$site/$TEST_UID/images/$hex.sqfs.new"
mv "$site/$TEST_UID/images/$hex.sqfs.new" "$site/$TEST_UID/images/$hex.sqfs"
err=$(as_user "$CAPSULA" exec --join never "docker://$ref" cat /etc/capsula-test-image 2>&1); rc=$?
is "$rc" 125 "an image file replaced in the cache is refused"
like "$err" "cached image $site/$TEST_UID/images/$hex.sqfs is not the file capsula made there; remove it with capsula cache clean" \
	"saying what to do"
is "$(holders_after_exit)" 0 "no holder is left"

done_testing
