#!/bin/sh
# capsula build as a user: a directory, tarballs, a docker save archive with
# two layers and whiteouts, an OCI layout; what ends up in the image and
# what does not; a failed or interrupted build leaves nothing.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || skip_all "no static busybox on the host (apt-get install busybox-static)"
command -v unsquashfs >/dev/null || skip_all "no unsquashfs (apt-get install squashfs-tools)"

# A small root file system the user owns: busybox, a shell, some files.
make_rootfs() {  # DIR
	mkdir -p "$1/bin" "$1/etc" "$1/data/sub"
	cp "$busybox" "$1/bin/busybox"
	for applet in sh cat ls id stat echo env pwd test; do ln -sf busybox "$1/bin/$applet"; done
	echo "from the rootfs" > "$1/etc/message"
	echo "kept" > "$1/data/sub/kept"
	echo "secret" > "$1/data/private"
	chmod 0400 "$1/data/private"
}
make_rootfs "$WORK/rootfs"
is_root && chown -R "$TEST_UID:$TEST_GID" "$WORK/rootfs"

# builds OUTPUT SOURCE [OPTIONS]: capsula build as the user
build() {
	out=$1 src=$2; shift 2
	as_user "$CAPSULA" build "$@" "$out" "$src"
}
in_image() {  # IMAGE COMMAND...
	img=$1; shift
	as_user "$CAPSULA" exec "$img" "$@"
}

# ---------------------------------------------------------------- directory

err=$(build "$WORK/dir.sqfs" "$WORK/rootfs" 2>&1); rc=$?
is "$rc" 0 "build from a directory exits 0"
is "$err" "" "and says nothing when not on a terminal"
is "$(in_image "$WORK/dir.sqfs" cat /etc/message)" "from the rootfs" "the image holds the directory"
listing=$(unsquashfs -lls "$WORK/dir.sqfs" 2>/dev/null)
unlike "$listing" "$TEST_USER" "no file is owned by the building user"
like "$listing" "r-------- root/root .*/data/private" "files are root's with their modes kept"
like "$(unsquashfs -s "$WORK/dir.sqfs")" "Compression zstd" "zstd is the default compression"
like "$(unsquashfs -s "$WORK/dir.sqfs")" "compression-level 9" "at level 9"
like "$(unsquashfs -s "$WORK/dir.sqfs")" "Block size 131072" "128K is the default block size"

err=$(build "$WORK/dir.sqfs" "$WORK/rootfs" 2>&1); rc=$?
is "$rc" 125 "an existing output is not replaced"
like "$err" "^capsula: .*dir.sqfs exists; use --force" "and the message says how to replace it"
build "$WORK/dir.sqfs" "$WORK/rootfs" --force -c gzip -b 1M; rc=$?
is "$rc" 0 "--force replaces it"
like "$(unsquashfs -s "$WORK/dir.sqfs")" "Compression gzip" "--compression gzip is used"
like "$(unsquashfs -s "$WORK/dir.sqfs")" "Block size 1048576" "--block-size 1M is used"
build "$WORK/dir.sqfs" "$WORK/rootfs" --force -c zstd:19
like "$(unsquashfs -s "$WORK/dir.sqfs")" "compression-level 19" "-c zstd:19 sets the level"
err=$(build "$WORK/x.sqfs" "$WORK/rootfs" -c lz4:3 2>&1)
like "$err" "^capsula: --compression lz4:3: not a level of lz4" "a level lz4 lacks is refused"
err=$(build "$WORK/x.sqfs" "$WORK/rootfs" -b 3K 2>&1)
like "$err" "^capsula: --block-size 3K.*power of two" "a bad block size is refused"

# ---------------------------------------------------------------- tarballs

tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
gzip -c "$WORK/rootfs.tar" > "$WORK/rootfs.tar.gz"
chmod a+r "$WORK"/rootfs.tar*
for tarball in rootfs.tar rootfs.tar.gz; do
	build "$WORK/$tarball.sqfs" "$WORK/$tarball"; rc=$?
	is "$rc" 0 "build from $tarball exits 0"
	is "$(in_image "$WORK/$tarball.sqfs" cat /data/sub/kept)" "kept" "$tarball: files are there"
done
if command -v zstd >/dev/null; then
	zstd -q -c "$WORK/rootfs.tar" > "$WORK/rootfs.tar.zst"; chmod a+r "$WORK/rootfs.tar.zst"
	build "$WORK/zst.sqfs" "$WORK/rootfs.tar.zst"; rc=$?
	is "$rc" 0 "build from a .tar.zst exits 0"
	is "$(in_image "$WORK/zst.sqfs" cat /etc/message)" "from the rootfs" ".tar.zst: files are there"
else
	skip "no zstd on the host (apt-get install zstd)"
fi

# ---------------------------------------------------------------- docker save

# Layer 1 is the rootfs plus files layer 2 hides; layer 2 deletes one with a
# whiteout, makes a directory opaque, and adds its own files.
mkdir -p "$WORK/l1" "$WORK/l2/data/sub" "$WORK/l2/etc"
cp -a "$WORK/rootfs/." "$WORK/l1/"
echo "to be deleted" > "$WORK/l1/etc/doomed"
echo "old" > "$WORK/l1/data/sub/old"
mkfifo "$WORK/l1/data/pipe"
: > "$WORK/l2/etc/.wh.doomed"
: > "$WORK/l2/data/sub/.wh..wh..opq"
echo "new" > "$WORK/l2/data/sub/new"
echo "layer two" > "$WORK/l2/etc/message"
if is_root; then
	mknod "$WORK/l1/data/null" c 1 3 && have_device=1
fi
tar -C "$WORK/l1" -cf "$WORK/layer1.tar" .
tar -C "$WORK/l2" -cf - . | gzip > "$WORK/layer2.tar.gz"
cat > "$WORK/config.json" <<'JSON'
{"architecture": "amd64", "os": "linux",
 "config": {"Env": ["PATH=/bin", "GREETING=hello from the config"],
            "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo \"$GREETING in $(pwd)\""],
            "WorkingDir": "/data", "Labels": {"org.example.team": "hpc"}},
 "rootfs": {"type": "layers"}}
JSON
echo '[{"Config": "config.json", "RepoTags": ["example:1"], "Layers": ["layer1.tar", "layer2.tar.gz"]}]' \
	> "$WORK/manifest.json"
tar -C "$WORK" -cf "$WORK/docker.tar" manifest.json config.json layer1.tar layer2.tar.gz
chmod a+r "$WORK/docker.tar"

err=$(build "$WORK/docker.sqfs" "$WORK/docker.tar" 2>&1); rc=$?
is "$rc" 0 "build from a docker save archive exits 0"
if [ "${have_device:-0}" = 1 ]; then
	like "$(unsquashfs -lls "$WORK/docker.sqfs")" "^c[-rw]{9} root/root +1, +3 .*/data/null$" \
		"the device node is kept as the layer has it"
	err=$(as_user "$CAPSULA" exec "$WORK/docker.sqfs" cat /data/null 2>&1)
	like "$err" "Permission denied" "and it opens nothing inside (nodev)"
else
	skip "making a device node for the archive needs root"
	skip "making a device node for the archive needs root"
fi
ok "the whited-out file is gone" as_user "$CAPSULA" exec "$WORK/docker.sqfs" test ! -e /etc/doomed
ok "the opaque directory hides the lower layer's files" \
	as_user "$CAPSULA" exec "$WORK/docker.sqfs" test ! -e /data/sub/old
like "$(unsquashfs -lls "$WORK/docker.sqfs")" "^p[-rw]{9} root/root .*/data/pipe$" \
	"a FIFO of a layer is kept"
listing=$(unsquashfs -l "$WORK/docker.sqfs"); rc=$?
is "$rc" 0 "unsquashfs lists the image"
like "$listing" "squashfs-root/etc/message" "the listing holds the image's files"
unlike "$listing" '\.wh\.' "no whiteout file is left in the image"
is "$(in_image "$WORK/docker.sqfs" cat /data/sub/new)" "new" "the upper layer's files are there"
is "$(in_image "$WORK/docker.sqfs" cat /etc/message)" "layer two" "the upper layer wins"
is "$(in_image "$WORK/docker.sqfs" sh -c 'echo $GREETING')" "hello from the config" \
	"exec applies the config's Env"
is "$(as_user "$CAPSULA" run "$WORK/docker.sqfs")" "hello from the config in /data" \
	"run uses Entrypoint, Cmd and WorkingDir"
is "$(as_user "$CAPSULA" run "$WORK/docker.sqfs" 'echo args replace Cmd')" "args replace Cmd" \
	"run arguments replace Cmd, not the Entrypoint"
is "$(as_user "$CAPSULA" run --pwd /etc "$WORK/docker.sqfs" pwd)" "/etc" "--pwd wins over WorkingDir"
is "$(as_user "$CAPSULA" exec --env GREETING=mine "$WORK/docker.sqfs" sh -c 'echo $GREETING')" \
	"mine" "--env wins over the image's Env"

# ---------------------------------------------------------------- OCI layout

oci=$WORK/oci
mkdir -p "$oci/blobs/sha256"
blob() {  # FILE: store it as a blob, print its digest and size
	sum=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$oci/blobs/sha256/$sum"
	printf 'sha256:%s %s' "$sum" "$(stat -c %s "$1")"
}
l1=$(blob "$WORK/layer1.tar"); l1_digest=${l1% *} l1_size=${l1#* }
l2=$(blob "$WORK/layer2.tar.gz"); l2_digest=${l2% *} l2_size=${l2#* }
cfg=$(blob "$WORK/config.json"); cfg_digest=${cfg% *} cfg_size=${cfg#* }
cat > "$WORK/manifest.oci.json" <<JSON
{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
 "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "$cfg_digest", "size": $cfg_size},
 "layers": [
  {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "$l1_digest", "size": $l1_size},
  {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "$l2_digest", "size": $l2_size}]}
JSON
m=$(blob "$WORK/manifest.oci.json"); m_digest=${m% *} m_size=${m#* }
echo '{"imageLayoutVersion": "1.0.0"}' > "$oci/oci-layout"
cat > "$oci/index.json" <<JSON
{"schemaVersion": 2, "manifests": [
 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "$m_digest", "size": $m_size,
  "platform": {"architecture": "amd64", "os": "linux"}}]}
JSON
chmod -R a+rX "$oci"

build "$WORK/oci.sqfs" "$oci" 2>/dev/null; rc=$?
is "$rc" 0 "build from an OCI layout exits 0"
ok "OCI: the whited-out file is gone" as_user "$CAPSULA" exec "$WORK/oci.sqfs" test ! -e /etc/doomed
is "$(as_user "$CAPSULA" run "$WORK/oci.sqfs")" "hello from the config in /data" "OCI: run honours the config"

# ---------------------------------------------------------------- failures

echo '[{"Config": "config.json", "Layers": ["layer1.tar", "missing.tar"]}]' > "$WORK/manifest.json"
tar -C "$WORK" -cf "$WORK/broken.tar" manifest.json config.json layer1.tar
chmod a+r "$WORK/broken.tar"
err=$(build "$WORK/broken.sqfs" "$WORK/broken.tar" 2>&1); rc=$?
is "$rc" 125 "a build with a missing layer fails with 125"
like "$err" "^capsula: .*missing.tar" "and names the missing layer"
ok "a failed build leaves no output file" [ ! -e "$WORK/broken.sqfs" ]
is "$(find "$WORK" -maxdepth 1 -name '.*.partial-*' | wc -l)" 0 "nor a partial image"

printf 'evil' > "$WORK/evil"
tar -C "$WORK" -cf "$WORK/escape.tar" --transform 's,^evil,../../escaped,' evil
chmod a+r "$WORK/escape.tar"
err=$(build "$WORK/escape.sqfs" "$WORK/escape.tar" 2>&1); rc=$?
is "$rc" 125 "a member path leaving the image is refused"
like "$err" "leaves the image" "and the message says so"
ok "nothing was written beside the image" [ ! -e "$WORK/escaped" ]
ok "nor anywhere above it" [ ! -e "$WORK/../escaped" ]

# A layer whose symlink points at a host directory of the user's, and a
# member under it: the member lands inside the image, never on the host.
mkdir -p "$WORK/target" "$WORK/sneaky"
is_root && chown "$TEST_UID" "$WORK/target"
ln -s "$WORK/target" "$WORK/sneaky/link"
tar -C "$WORK/sneaky" -cf "$WORK/sneaky.tar" link
mkdir -p "$WORK/sneaky2/link/made/here"
echo "inside" > "$WORK/sneaky2/link/made/here/file"
tar -C "$WORK/sneaky2" -rf "$WORK/sneaky.tar" link/made
chmod a+r "$WORK/sneaky.tar"
err=$(build "$WORK/sneaky.sqfs" "$WORK/sneaky.tar" 2>&1); rc=$?
is "$rc" 0 "a layer with a symlink to a host path and members under it builds"
is "$(find "$WORK/target" -mindepth 1 | wc -l)" 0 "nothing was made in the host directory it points at"
ok "the members are inside the image, under the link's target" sh -c \
	"unsquashfs -l '$WORK/sneaky.sqfs' | grep -q 'squashfs-root$WORK/target/made/here/file'"

# Interrupted: a big tarball (xz is slow on random data), SIGINT while it
# is converted.
head -c 64000000 /dev/urandom > "$WORK/rootfs/big" 2>/dev/null
tar -C "$WORK/rootfs" -cf "$WORK/big.tar" . && rm -f "$WORK/rootfs/big"
chmod a+r "$WORK/big.tar"
as_user "$CAPSULA" build -c xz "$WORK/big.sqfs" "$WORK/big.tar" & pid=$!
sleep 0.5
pkill -INT -u "$TEST_USER" -f "capsula.* build -c xz .*big.sqfs"
wait "$pid"; rc=$?
is "$rc" 130 "SIGINT ends a build with 130"
ok "an interrupted build leaves no output" [ ! -e "$WORK/big.sqfs" ]
is "$(find "$WORK" -maxdepth 1 -name '.*.partial-*' | wc -l)" 0 "nor a partial image"

done_testing
