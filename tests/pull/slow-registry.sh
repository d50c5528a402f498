#!/bin/sh
# A registry that answers, but too slowly to be of use: a manifest sent 2
# bytes a second, a blob the same. The site's deadline, minimum rate and
# retry time end the pull with one line that names the registry, what it
# was sending and the setting, instead of a pull (and every rank waiting on
# it) that never ends.
# It writes the system's configuration file, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
. "$abs_top_srcdir/tests/lib/registry.sh"
take_site_config "writing $CAPSULA_CONFIG_FILE needs root"
registry_test_start
# Both at exit: the registry stopped, the site's configuration removed.
trap 'registries_stop; release_site_config' EXIT
H=$WORK/hostile
hostile_start "$H" || bail_out "the hostile registry did not start"
# Without the bounds these pulls would drip for 14 hours: timeout(1) ends a
# pull that ignores them, and its status (124) fails the checks below. The
# bounds end each within 3 tries of 3 s; 40 s leaves a loaded machine room.
pull() { as_user CAPSULA_CACHEDIR="$WORK/cache" timeout 40 "$CAPSULA" pull --insecure "$@"; }
manifest_gets() { grep -c "^GET /v2/team/app/manifests/" "$H/requests.log"; }
write_conf <<CONF
registry deadline = 3
registry minimum rate = 1K
registry rate window = 3
registry retry time = 5
CONF

: > "$H/slow"
: > "$H/requests.log"
err=$(pull --retries 10 "$HOSTILE/team/app:v1" 2>&1); rc=$?
is "$rc" 125 "a manifest sent 2 bytes a second fails the pull"
like "$err" "$HOSTILE/team/app:v1: $HOSTILE did not send it within 3 s" "naming the image, the registry and the deadline"
like "$err" "'registry deadline' in capsula.conf" "and the site's setting"
gets=$(manifest_gets)
ok "retries stop at the site's retry time, not after their count of 10 ($gets tries)" [ "$gets" -le 3 ]
ok "but were tried ($gets tries)" [ "$gets" -ge 2 ]
rm -f "$H/slow"

hex=$(printf '%064d' 0 | tr 0 a)
printf '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:%s", "size": 100000}, "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:%s", "size": 100000}]}' \
	"$hex" "$hex" > "$H/image-manifest"
: > "$H/slowblob"
err=$(pull --retries 0 "$HOSTILE/team/app:v1" 2>&1); rc=$?
is "$rc" 125 "a blob sent 2 bytes a second fails the pull"
like "$err" "blob sha256:$hex of $HOSTILE/team/app: $HOSTILE sent less than 1024 bytes/s for 3 s" \
	"naming the blob, the registry and the rate"
like "$err" "pull again: it resumes where this one stopped" "and how to go on"
is "$(printf '%s\n' "$err" | grep -c .)" 1 "in one line"

done_testing
