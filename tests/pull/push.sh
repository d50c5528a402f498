#!/bin/sh
# capsula push to a real registry (Debian's docker-registry, TLS from a test
# CA, basic authentication): the image pulled back by skopeo and by capsula
# has the same files, owners, modes, links and extended attributes, and
# its run settings; a blob the registry holds is not sent again; chunked
# uploads; zstd layers; errors in one line.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
. "$abs_top_srcdir/tests/lib/layout.sh"
. "$abs_top_srcdir/tests/lib/registry.sh"
registry_test_start
command -v python3 >/dev/null || skip_all "no python3 on the host (apt-get install python3)"
registry_start "$WORK/r1" htpasswd || bail_out "the registry did not start (see above)"
CACHE=$WORK/cache

capsula_as_user() {  # capsula COMMAND... as the user, logged in, with the test CA
	as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_DOCKER_USERNAME="$REG_USER" \
		CAPSULA_DOCKER_PASSWORD="$REG_PASSWORD" CAPSULA_TLS_CA="$WORK/ca.crt" "$CAPSULA" "$@"
}
# Every file's name, type, owner, mode, link count, size and content (as
# --fakeroot shows owners: mapped through the subordinate ids).
listing() {  # IMAGE
	as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" exec --fakeroot "$1" sh -c \
		'cd / && find bin data -exec stat -c "%n %F %u:%g %a %h %s" {} + | sort &&
		 find data -type f -exec sha256sum {} + | sort'
}

# An image with owners other than root, a setuid bit, a hard link, a
# symbolic link, an empty directory and an extended attribute.
mkdir -p "$WORK/l1/bin" "$WORK/l1/data/empty" "$WORK/l1/data/sub"
cp "$busybox" "$WORK/l1/bin/busybox"
for applet in sh cat ls find stat sort sha256sum test echo; do ln -s busybox "$WORK/l1/bin/$applet"; done
echo owned > "$WORK/l1/data/owned"
echo linked > "$WORK/l1/data/linked"
ln "$WORK/l1/data/linked" "$WORK/l1/data/sub/second-name"
ln -s ../owned "$WORK/l1/data/sub/pointer"
printf 'setuid' > "$WORK/l1/data/tool"
chmod 4755 "$WORK/l1/data/tool"
chmod 0640 "$WORK/l1/data/owned"
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.note", b"kept")' "$WORK/l1/data/owned" ||
	bail_out "cannot set an extended attribute in $WORK"
chown 1234:5678 "$WORK/l1/data/owned" "$WORK/l1/data/sub"
tar --xattrs --xattrs-include='user.*' --numeric-owner -C "$WORK/l1" -cf - bin data |
	gzip -n > "$WORK/l1.tar.gz"
cat > "$WORK/config.json" <<'JSON'
{"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin", "GREETING=hello"],
 "Cmd": ["sh", "-c", "echo $GREETING from $(pwd) as $(id -u 2>/dev/null || echo user)"],
 "WorkingDir": "/data", "Labels": {"org.example.team": "hpc"}}, "rootfs": {"type": "layers"}}
JSON
make_layout "$WORK/layout" v1 "$WORK/config.json" "$WORK/l1.tar.gz"
ok "skopeo pushes the source image" push "$WORK/layout:v1" source:v1 "$REG_USER:$REG_PASSWORD"
original=$(capsula_as_user pull -q "$REG/source:v1")
ok "and capsula pulls it into an image" test -f "$original"
like "$(listing "$original")" 'data/owned regular file 1234:5678 640 1 6' "whose listing shows owners and modes"

# ---------------------------------------------------------------- push

patches_before=$(grep -c '"PATCH /v2/pushed/blobs/uploads/' "$WORK/r1/log")
out=$(capsula_as_user push "$original" "docker://$REG/pushed:v1" 2>"$WORK/push.err"); rc=$?
is "$rc" 0 "capsula push publishes the image"
[ "$rc" = 0 ] || diag "$(cat "$WORK/push.err")"
like "$out" '^sha256:[0-9a-f]{64}$' "and prints its manifest's digest"
pushed_digest=$out
like "$(cat "$WORK/push.err")" "layer sha256:[0-9a-f]{64}: sent" "saying the layer was sent"
is "$(($(grep -c '"PATCH /v2/pushed/blobs/uploads/' "$WORK/r1/log") - patches_before))" 1 \
	"in one streamed request, while it was made"

skopeo inspect --cert-dir "$WORK/certs" --creds "$REG_USER:$REG_PASSWORD" --config \
	"docker://$REG/pushed:v1" > "$WORK/pushed-config.json" 2>&1
ok "skopeo reads the pushed image's config" jq -e . "$WORK/pushed-config.json"
is "$(jq -c .config.Env "$WORK/pushed-config.json")" '["PATH=/bin","GREETING=hello"]' "with its Env"
is "$(jq -r .config.WorkingDir "$WORK/pushed-config.json")" /data "its WorkingDir"
is "$(jq -r '.config.Labels["org.example.team"]' "$WORK/pushed-config.json")" hpc "its labels"
is "$(jq -r .config.Cmd[0] "$WORK/pushed-config.json")" sh "its Cmd"
is "$(jq -r .os "$WORK/pushed-config.json")" linux "and os linux"

rm -rf "$WORK/copy"
ok "skopeo copies the pushed image to an OCI layout" skopeo copy -q --src-cert-dir "$WORK/certs" \
	--src-creds "$REG_USER:$REG_PASSWORD" "docker://$REG/pushed:v1" "oci:$WORK/copy:v1"
layer=$WORK/copy/blobs/sha256/$(jq -r '.layers[0].digest' "$(manifest_of "$WORK/copy")" | cut -d: -f2)
tar -tvzf "$layer" > "$WORK/layer.list" 2>&1
like "$(cat "$WORK/layer.list")" '^-rw-r----- 1234/5678 .* data/owned$' "the layer keeps an owner other than root and the mode"
like "$(cat "$WORK/layer.list")" '^-rwsr-xr-x 0/0 .* data/tool$' "the setuid bit"
like "$(cat "$WORK/layer.list")" 'data/sub/second-name link to data/linked|data/linked link to data/sub/second-name' \
	"a hard link as a link"
like "$(cat "$WORK/layer.list")" 'data/sub/pointer -> \.\./owned' "a symbolic link"
like "$(cat "$WORK/layer.list")" 'data/empty/?$' "an empty directory"
unlike "$(cat "$WORK/layer.list")" '\.capsula' "and not capsula's own /.capsula"
ok "the extended attribute is in the layer" sh -c "gzip -dc '$layer' | grep -aq 'SCHILY.xattr.user.note=kept'"
is "sha256:$(gzip -dc "$layer" | sha256sum | cut -c1-64)" "$(jq -r '.rootfs.diff_ids[0]' "$WORK/pushed-config.json")" \
	"gzip reads the layer's members as the tar its config names"

pulled=$(capsula_as_user pull -q "$REG/pushed:v1")
ok "capsula pulls the pushed image back" test -f "$pulled"
is "$(listing "$pulled")" "$(listing "$original")" "with the same files, owners, modes, links and contents"
is "$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" exec "$pulled" sh -c 'echo $GREETING')" hello \
	"and its Env"
is "$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" run "$pulled")" \
	"$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" run "$original")" "and runs as the original does"

# The same image again: nothing is sent, the digest is the same.
out=$(capsula_as_user push "$original" "docker://$REG/pushed:again" 2>"$WORK/again.err")
is "$out" "$pushed_digest" "pushing the same image again gives the same digest"
like "$(cat "$WORK/again.err")" "layer sha256:[0-9a-f]{64}: already there" "and sends no layer the repository has"
unlike "$(cat "$WORK/again.err")" "layer: [0-9]+ entries" "nor makes it again: the cache remembers what this image gave"
out=$(capsula_as_user push -q -j 1 "$original" "docker://$REG/pushed:one-thread" 2>&1)
is "$out" "$pushed_digest" "gzip on one thread gives the same bytes as on every processor"

# Another OCI tool runs it too: podman, rootless as the user, in a storage
# of its own. It maps the user's subordinate ids, which other tests take away
# for a while under this lock.
if command -v podman >/dev/null 2>&1; then
	exec 7>/tmp/capsula-check-subuid.lock
	flock -x 7
	pm=$WORK/podman
	mkdir -p "$pm" && chown "$TEST_UID:$TEST_GID" "$pm"
	podman_as_user() {
		as_user XDG_RUNTIME_DIR="$pm" podman --root "$pm/root" --runroot "$pm/run" --storage-driver vfs \
			--cgroup-manager cgroupfs --events-backend none "$@"
	}
	ok "podman pulls the pushed image" podman_as_user pull -q --cert-dir "$WORK/certs" \
		--creds "$REG_USER:$REG_PASSWORD" "docker://$REG/pushed:v1"
	is "$(podman_as_user run --rm --network none "$REG/pushed:v1" \
		sh -c 'echo "$GREETING in $(pwd)"; stat -c "%u:%g %a" owned; cat linked' 2>&1)" \
		"hello in /data
1234:5678 640
linked" "and runs it with its Env and WorkingDir, the files' owners and modes, and the hard link"
	flock -u 7
else
	skip "no podman (apt-get install podman)"
fi

# Another repository of the same registry: the layer is lent, not sent.
out=$(capsula_as_user push "$original" "docker://$REG/elsewhere/app:v1" 2>"$WORK/mount.err")
is "$out" "$pushed_digest" "the image pushed to another repository is the same"
like "$(cat "$WORK/mount.err")" "layer sha256:[0-9a-f]{64}: mounted from pushed" \
	"its layer mounted from the repository that has it, not sent"
unlike "$(cat "$WORK/mount.err")" "layer: [0-9]+ entries" "and not made"
out=$(capsula_as_user push -c gzip:1 "$original" "docker://$REG/pushed:fast" 2>"$WORK/fast.err")
unlike "$out" "^$pushed_digest\$" "another gzip level gives another image"
like "$(cat "$WORK/fast.err")" "layer: [0-9]+ entries" "made anew: a record holds for one image and level"
ok "the registry linked it (a mount answered 201)" \
	grep -Eq '"POST /v2/elsewhere/app/blobs/uploads/\?mount=sha256:[0-9a-f]{64}&from=pushed HTTP/[0-9.]+" 201 ' "$WORK/r1/log"
is "$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" exec "$(capsula_as_user pull -q "$REG/elsewhere/app:v1")" cat /data/linked)" \
	linked "and it pulls and runs"

# ---------------------------------------------------------------- chunks and zstd

patches_before=$(grep -c '"PATCH /v2/chunked/blobs/uploads/' "$WORK/r1/log")
# A cache of its own: nothing to mount from, the layer is sent.
out=$(CACHE=$WORK/cache-chunked capsula_as_user push -q --chunk-size 64K "$original" "docker://$REG/chunked:v1" 2>&1); rc=$?
is "$rc" 0 "a push in 64 KiB chunks succeeds"
patches=$(($(grep -c '"PATCH /v2/chunked/blobs/uploads/' "$WORK/r1/log") - patches_before))
ok "in several PATCH requests ($patches)" test "$patches" -gt 1
is "$out" "$pushed_digest" "and gives the same image"

out=$(capsula_as_user push -q -c zstd "$original" "docker://$REG/zstd:v1" 2>&1); rc=$?
is "$rc" 0 "a push with zstd succeeds"
skopeo inspect --cert-dir "$WORK/certs" --creds "$REG_USER:$REG_PASSWORD" --raw \
	"docker://$REG/zstd:v1" > "$WORK/zstd-manifest.json" 2>&1
is "$(jq -r '.layers[0].mediaType' "$WORK/zstd-manifest.json")" \
	application/vnd.oci.image.layer.v1.tar+zstd "its layer is a zstd one"
zstd_image=$(capsula_as_user pull -q "$REG/zstd:v1")
is "$(listing "$zstd_image")" "$(listing "$original")" "and pulls back the same"

# ---------------------------------------------------------------- errors

out=$(as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_TLS_CA="$WORK/ca.crt" "$CAPSULA" push -q "$original" \
	"docker://$REG/pushed:anon" 2>&1); rc=$?
is "$rc" 125 "without credentials the push fails with status 125"
like "$out" "access denied by $REG.*capsula login $REG" "saying how to log in"
is "$(printf '%s\n' "$out" | wc -l)" 1 "in one line"

out=$(capsula_as_user push -q "$original" "docker://$REG/pushed@$pushed_digest" 2>&1); rc=$?
is "$rc" 125 "a push to a digest is refused"
like "$out" "needs a tag" "saying it needs a tag"

out=$(capsula_as_user push -q "$WORK/missing.sqfs" "docker://$REG/pushed:v2" 2>&1); rc=$?
is "$rc" 125 "a missing image fails with status 125"
like "$out" "missing.sqfs" "naming it"

done_testing
