#!/bin/sh
# Conversion without an unpacked copy: OCI layer semantics across layers,
# digests of every blob, hostile archives, what the image keeps (modes,
# xattrs, names, sparse files), images made by skopeo and umoci, several
# images in one layout, and the disk a build needs.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || skip_all "no static busybox on the host (apt-get install busybox-static)"
command -v unsquashfs >/dev/null || skip_all "no unsquashfs (apt-get install squashfs-tools)"

build() {  # OUTPUT SOURCE [OPTIONS]: capsula build as the user, stderr kept
	out=$1 src=$2; shift 2
	as_user "$CAPSULA" build -q "$@" "$out" "$src"
}
in_image() {  # IMAGE COMMAND...
	img=$1; shift
	as_user "$CAPSULA" exec "$img" "$@"
}

. "$abs_top_srcdir/tests/lib/layout.sh"
echo '{"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]}, "rootfs": {"type": "layers"}}' \
	> "$WORK/config.json"

# A base layer with busybox, then podman's and umoci's way of turning a file
# and a symbolic link into directories, and a mode rewritten by a later layer.
mkdir -p "$WORK/base/bin" "$WORK/base/etc" "$WORK/up/etc/issue.net" "$WORK/up/etc/alt" "$WORK/up/bin"
cp "$busybox" "$WORK/base/bin/busybox"
for applet in sh cat ls stat test printf wc; do ln -s busybox "$WORK/base/bin/$applet"; done
echo "a file" > "$WORK/base/etc/issue.net"
echo 1 > "$WORK/base/etc/version"
ln -s issue.net "$WORK/base/etc/alt"
cp "$busybox" "$WORK/base/bin/tool" && chmod 4444 "$WORK/base/bin/tool"
: > "$WORK/up/etc/.wh.issue.net"
echo inside > "$WORK/up/etc/issue.net/file"
echo inside > "$WORK/up/etc/alt/file"
echo 2 > "$WORK/up/etc/version"
cp "$busybox" "$WORK/up/bin/tool" && chmod 0755 "$WORK/up/bin/tool"
tar --owner=0 --group=0 -C "$WORK/base" -cf "$WORK/base.tar" .
tar --owner=0 --group=0 -C "$WORK/up" -cf - . | gzip -n > "$WORK/up.tar.gz"
make_layout "$WORK/podman" latest "$WORK/config.json" "$WORK/base.tar" "$WORK/up.tar.gz"

err=$(build "$WORK/podman.sqfs" "$WORK/podman" 2>&1); rc=$?
is "$rc" 0 "a layer that turns a file and a symlink into directories builds"
is "$(in_image "$WORK/podman.sqfs" cat /etc/issue.net/file)" "inside" \
	"the file became a directory with its content"
is "$(in_image "$WORK/podman.sqfs" cat /etc/alt/file)" "inside" \
	"the symbolic link became a directory with its content"
is "$(in_image "$WORK/podman.sqfs" cat /etc/version)" "2" \
	"a file a later layer rewrites has the later layer's content"
is "$(in_image "$WORK/podman.sqfs" stat -c %a /bin/tool)" "755" \
	"a later layer's mode wins (the lower layer's setuid bit does not come back)"

# ---------------------------------------------------------------- digests

tamper() {  # NAME FILE-TO-CHANGE HOW: copy the layout, change one blob, build it
	rm -rf "${WORK:?}/$1"
	cp -a "$WORK/podman" "$WORK/$1"
	blob=$WORK/$1/${2#"$WORK/podman/"}
	case $3 in
		append) printf 'x' >> "$blob" ;;
		flip) printf 'X' | dd of="$blob" bs=1 seek=0 conv=notrunc 2>/dev/null ;;
	esac
	readable "$WORK/$1"
	build "$WORK/$1.sqfs" "$WORK/$1" 2>&1
}
layer_blob=$WORK/podman/blobs/sha256/$(jq -r '.layers[1].digest' "$(manifest_of "$WORK/podman")" | cut -d: -f2)
config_blob=$WORK/podman/blobs/sha256/$(jq -r '.config.digest' "$(manifest_of "$WORK/podman")" | cut -d: -f2)
err=$(tamper layer-size "$layer_blob" append)
like "$err" "^capsula: layer 2 .* is [0-9]+ bytes, its descriptor says [0-9]+" \
	"a layer longer than its descriptor says is refused"
ok "and no image is left" [ ! -e "$WORK/layer-size.sqfs" ]
err=$(tamper layer-digest "$layer_blob" flip)
like "$err" "^capsula: layer 2 .* has digest sha256:[0-9a-f]{64}, expected sha256:" \
	"a layer with another digest is refused, naming it"
ok "and no image is left" [ ! -e "$WORK/layer-digest.sqfs" ]
err=$(tamper config "$config_blob" flip)
like "$err" "^capsula: blobs/sha256/[0-9a-f]+ has digest" "a tampered config is refused"
err=$(tamper manifest "$(manifest_of "$WORK/podman")" flip)
like "$err" "^capsula: blobs/sha256/[0-9a-f]+ has digest" "a tampered manifest is refused"
ok "and no partial image is left" sh -c "! ls -a '$WORK' | grep -q partial"

# docker save archives: the config's name is its digest; each layer's
# diff_id is checked on the uncompressed stream.
docker_archive() {  # ARCHIVE CONFIG LAYER...
	archive=$1 config=$2; shift 2
	rm -rf "$WORK/docker-dir" && mkdir -p "$WORK/docker-dir"
	ids="" names=""
	for layer in "$@"; do
		id=$( (case $layer in *.gz) gzip -dc "$layer" ;; *) cat "$layer" ;; esac) | sha256sum | cut -d' ' -f1)
		ids="$ids${ids:+,}\"sha256:$id\""
		cp "$layer" "$WORK/docker-dir/$id.tar"
		names="$names${names:+,}\"$id.tar\""
	done
	jq -c ".rootfs.diff_ids = [$ids]" "$config" > "$WORK/docker-dir/cfg.tmp"
	cfg=$(sha256sum "$WORK/docker-dir/cfg.tmp" | cut -d' ' -f1)
	mv "$WORK/docker-dir/cfg.tmp" "$WORK/docker-dir/$cfg.json"
	echo "[{\"Config\": \"$cfg.json\", \"RepoTags\": [\"app:1\"], \"Layers\": [$names]}]" \
		> "$WORK/docker-dir/manifest.json"
	tar -C "$WORK/docker-dir" -cf "$archive" .
	readable "$archive"
}
docker_archive "$WORK/docker.tar" "$WORK/config.json" "$WORK/base.tar" "$WORK/up.tar.gz"
build "$WORK/docker.sqfs" "$WORK/docker.tar"; rc=$?
is "$rc" 0 "a docker archive whose diff_ids match builds"
gzip -c "$WORK/docker.tar" > "$WORK/docker.tar.gz" && readable "$WORK/docker.tar.gz"
build "$WORK/docker-gz.sqfs" "$WORK/docker.tar.gz"; rc=$?
is "$rc" 0 "a compressed docker archive builds"
is "$(in_image "$WORK/docker-gz.sqfs" cat /etc/issue.net/file)" "inside" "and holds the image"
mkdir -p "$WORK/bad-diff"
zero="sha256:$(printf '%064d' 0)"
up_id="sha256:$(gzip -dc "$WORK/up.tar.gz" | sha256sum | cut -d' ' -f1)"
jq -c ".rootfs.diff_ids = [\"$zero\", \"$up_id\"]" "$WORK/config.json" > "$WORK/bad-diff/config.json"
(cd "$WORK/bad-diff" && cp "$WORK/base.tar" l1.tar && cp "$WORK/up.tar.gz" l2.tar.gz &&
 echo '[{"Config": "config.json", "Layers": ["l1.tar", "l2.tar.gz"]}]' > manifest.json &&
 tar -cf "$WORK/bad-diff.tar" manifest.json config.json l1.tar l2.tar.gz)
readable "$WORK/bad-diff.tar"
err=$(build "$WORK/bad-diff.sqfs" "$WORK/bad-diff.tar" 2>&1)
like "$err" "^capsula: layer 1 \(l1.tar\) uncompressed has digest sha256:[0-9a-f]{64}, expected" \
	"a layer whose diff_id does not match is refused"
ok "and no image is left" [ ! -e "$WORK/bad-diff.sqfs" ]

# ---------------------------------------------------------------- hostile

# Layers named through a symbolic link member of the archive: the user's
# own files must not end up in the image.
mkdir -p "$WORK/hostile"
echo "private key" > "$WORK/secret" && is_root && chown "$TEST_UID" "$WORK/secret"
(cd "$WORK/hostile" && ln -s / h && cp "$WORK/config.json" config.json &&
 echo "[{\"Config\": \"config.json\", \"Layers\": [\"h$WORK/secret\"]}]" > manifest.json &&
 tar -cf "$WORK/hostile.tar" manifest.json config.json h)
readable "$WORK/hostile.tar"
err=$(build "$WORK/hostile.sqfs" "$WORK/hostile.tar" 2>&1); rc=$?
is "$rc" 125 "a docker archive naming a layer through a symlink member is refused"
like "$err" "holds no file h/" "and the message names the member"
ok "no image holding the user's file is made" [ ! -e "$WORK/hostile.sqfs" ]

cp -a "$WORK/podman" "$WORK/linked"
rm "$WORK/linked/blobs/sha256/${layer_blob##*/}"
ln -s "$layer_blob" "$WORK/linked/blobs/sha256/${layer_blob##*/}"
err=$(build "$WORK/linked.sqfs" "$WORK/linked" 2>&1)
like "$err" "goes through a symbolic link" "an OCI layout whose blob is a symlink is refused"
cp -a "$WORK/podman" "$WORK/fifo"
rm "$WORK/fifo/blobs/sha256/${layer_blob##*/}"
mkfifo "$WORK/fifo/blobs/sha256/${layer_blob##*/}"
readable "$WORK/fifo"
err=$(as_user timeout 20 "$CAPSULA" build -q "$WORK/fifo.sqfs" "$WORK/fifo" 2>&1); rc=$?
is "$rc" 125 "a FIFO in place of a blob is refused at once, not waited on"
like "$err" "is not a regular file" "and the message says why"

# A pax record of newlines once read memory past its end.
printf '\n\n2 ' > "$WORK/pax.rec"
python3 - "$WORK/pax.tar" <<'PY'
import sys, tarfile, io
def block(name, typ, data):
    h = tarfile.TarInfo(name); h.type = typ; h.size = len(data)
    raw = bytearray(h.tobuf(format=tarfile.USTAR_FORMAT))
    return bytes(raw) + data + b"\0" * (-len(data) % 512)
out = block("pax", b"x", b"\n\n2 ") + block("file", tarfile.REGTYPE, b"x") + b"\0" * 1024
open(sys.argv[1], "wb").write(out)
PY
readable "$WORK/pax.tar"
err=$(build "$WORK/pax.sqfs" "$WORK/pax.tar" 2>&1); rc=$?
ok "a malformed pax record ends the build without a crash (status $rc)" [ "$rc" -lt 128 ]

mkdir -p "$WORK/dirlayout"
echo '{}' > "$WORK/dirlayout/manifest.json" && echo "Directory Transport Version: 1.1" > "$WORK/dirlayout/version"
readable "$WORK/dirlayout"
err=$(build "$WORK/dirlayout.sqfs" "$WORK/dirlayout" 2>&1)
like "$err" "is a containers-image 'dir:' layout.*skopeo copy dir:" \
	"a skopeo dir: layout is refused, not packed as a root file system"

# ---------------------------------------------------------------- content

# busybox and a few applets, for the images below to run something.
mkdir -p "$WORK/bb/bin"
cp "$busybox" "$WORK/bb/bin/busybox"
for applet in sh cat ls wc tail test grep; do ln -s busybox "$WORK/bb/bin/$applet"; done

python3 - "$WORK/names.tar" "$WORK/bb" <<'PY'
import sys, tarfile, io
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as t:
    t.add(sys.argv[2], arcname=".")
    for name in ("names/new\nline", "names/bad\udcff"):
        i = tarfile.TarInfo(name); i.size = 2
        t.addfile(i, io.BytesIO(b"ok"))
PY
readable "$WORK/names.tar"
build "$WORK/names.sqfs" "$WORK/names.tar"; rc=$?
is "$rc" 0 "names with a newline and with bytes that are not UTF-8 build"
is "$(in_image "$WORK/names.sqfs" sh -c 'cat "/names/$(printf "new\nline")"')" "ok" \
	"a name with a newline is kept byte for byte"
is "$(in_image "$WORK/names.sqfs" sh -c 'cat "/names/$(printf "bad\377")"')" "ok" \
	"a name that is not UTF-8 is kept byte for byte"

cp -a "$WORK/bb" "$WORK/sparse"
truncate -s 100M "$WORK/sparse/holes" && echo end >> "$WORK/sparse/holes"
for format in gnu pax; do
	tar --format=$format --sparse -C "$WORK/sparse" -cf "$WORK/sparse-$format.tar" .
	readable "$WORK/sparse-$format.tar"
	build "$WORK/sparse-$format.sqfs" "$WORK/sparse-$format.tar"; rc=$?
	is "$rc" 0 "a $format sparse file builds"
	is "$(in_image "$WORK/sparse-$format.sqfs" sh -c 'wc -c < /holes')" "104857604" \
		"$format sparse: the file has its name and size"
	is "$(in_image "$WORK/sparse-$format.sqfs" sh -c 'ls / | grep -c GNUSparse')" "0" \
		"$format sparse: no GNUSparseFile entry holding the raw map"
	is "$(in_image "$WORK/sparse-$format.sqfs" sh -c 'tail -c 4 /holes')" "end" \
		"$format sparse: the data after the hole is there"
	# Compressed zero blocks would be small too: ask for the sparse count.
	if command -v rdsquashfs >/dev/null; then
		like "$(rdsquashfs -s /holes "$WORK/sparse-$format.sqfs")" "Sparse: 104857600" \
			"$format sparse: the holes are stored as holes"
	else
		skip "no rdsquashfs to read the block list (apt-get install squashfs-tools-ng)"
	fi
done

if is_root && command -v setcap >/dev/null && command -v rdsquashfs >/dev/null; then
	# busybox itself carries them: its applets run in its own process.
	cp -a "$WORK/bb" "$WORK/caps"
	setcap cap_net_raw+ep "$WORK/caps/bin/busybox"
	setfattr_py='import os, sys; os.setxattr(sys.argv[1], "user.note", b"kept")'
	python3 -c "$setfattr_py" "$WORK/caps/bin/busybox"
	tar --xattrs --xattrs-include='*' -C "$WORK/caps" -cf "$WORK/caps.tar" .
	readable "$WORK/caps.tar"
	build "$WORK/caps.sqfs" "$WORK/caps.tar"; rc=$?
	is "$rc" 0 "a layer with a file capability and a user xattr builds"
	xattrs=$(rdsquashfs -x /bin/busybox "$WORK/caps.sqfs" 2>&1)
	like "$xattrs" "security.capability" "the file capability is kept in the image"
	like "$xattrs" "user.note" "and so is the user xattr"
	is "$(in_image "$WORK/caps.sqfs" cat /proc/self/status | sed -n 's/^CapEff:\t//p')" \
		"0000000000000000" "but running the file grants nothing (nosuid, no_new_privs)"
else
	for _ in 1 2 3 4; do skip "file capabilities need root, setcap and rdsquashfs (squashfs-tools-ng)"; done
fi

as_user sh -c "umask 027; '$CAPSULA' build -q '$WORK/umask.sqfs' '$WORK/names.tar'"
is "$(stat -c %a "$WORK/umask.sqfs")" "640" "the image's mode is 0666 less the umask"

mkdir -p "$WORK/unreadable/data"
echo hidden > "$WORK/unreadable/data/locked"
chmod 000 "$WORK/unreadable/data/locked"
is_root && chown -R "$TEST_UID" "$WORK/unreadable"
err=$(build "$WORK/unreadable.sqfs" "$WORK/unreadable" 2>&1); rc=$?
is "$rc" 125 "a directory with a file the user cannot read does not build"
like "$err" "^capsula: cannot read .*locked" "and the message names the file"

# ---------------------------------------------------------------- choosing

make_layout "$WORK/podman" second "$WORK/config.json" "$WORK/base.tar"
err=$(build "$WORK/which.sqfs" "$WORK/podman" 2>&1); rc=$?
is "$rc" 125 "a layout with several images is not built without a choice"
like "$err" "holds 2 images \(latest, second\); pick one with SOURCE:TAG" "and the message lists them"
build "$WORK/second.sqfs" "$WORK/podman:second"; rc=$?
is "$rc" 0 "LAYOUT:TAG builds that image"
ok "it is the one tagged so (one layer: no directory /etc/issue.net)" \
	in_image "$WORK/second.sqfs" test -f /etc/issue.net
build "$WORK/latest.sqfs" "$WORK/podman" --tag latest; rc=$?
is "$rc" 0 "--tag builds the other"
ok "and it is the other" in_image "$WORK/latest.sqfs" test -d /etc/issue.net

# ---------------------------------------------------------------- real tools

if command -v umoci >/dev/null && command -v skopeo >/dev/null; then
	tools=$WORK/tools
	mkdir -p "$tools"
	(cd "$tools" && umoci init --layout L && umoci new --image L:app &&
	 umoci unpack --rootless --image L:app b1 >/dev/null &&
	 mkdir -p b1/rootfs/bin b1/rootfs/etc b1/rootfs/data/sub && cp "$busybox" b1/rootfs/bin/busybox &&
	 ln -s busybox b1/rootfs/bin/sh && ln -s busybox b1/rootfs/bin/cat && ln -s busybox b1/rootfs/bin/ls &&
	 echo one > b1/rootfs/etc/kept && echo doomed > b1/rootfs/etc/doomed &&
	 echo old > b1/rootfs/data/sub/old && umoci repack --image L:app b1 &&
	 umoci unpack --rootless --image L:app b2 >/dev/null &&
	 rm b2/rootfs/etc/doomed && rm -rf b2/rootfs/data/sub && mkdir b2/rootfs/data/sub &&
	 echo new > b2/rootfs/data/sub/new && umoci repack --image L:app b2 &&
	 umoci config --image L:app --config.env GREETING=umoci &&
	 skopeo copy -q oci:L:app docker-archive:docker.tar:app:1 &&
	 skopeo copy -q --dest-compress-format zstd oci:L:app oci:Z:app) >"$WORK/tools.log" 2>&1
	rc=$?
	is "$rc" 0 "umoci and skopeo make a two-layer image, a docker archive and zstd layers"
	[ "$rc" = 0 ] || diag "$(tail -5 "$WORK/tools.log")"
	readable "$tools"
	for source in L D Z; do
		case $source in
			L) path=$tools/L; what="umoci's OCI layout (gzip layers)" ;;
			D) path=$tools/docker.tar; what="skopeo's docker archive" ;;
			Z) path=$tools/Z; what="skopeo's OCI layout with zstd layers" ;;
		esac
		build "$WORK/tool-$source.sqfs" "$path"; rc=$?
		is "$rc" 0 "$what builds"
		is "$(in_image "$WORK/tool-$source.sqfs" sh -c 'cat /etc/kept /data/sub/new; ls /data/sub; ls /etc/doomed 2>&1; echo $GREETING')" \
			"$(printf 'one\nnew\nnew\nls: /etc/doomed: No such file or directory\numoci')" "$what: files, whiteouts, the replaced directory and the config"
	done
else
	for _ in 1 2 3 4 5 6 7; do skip "no umoci or skopeo (apt-get install umoci skopeo)"; done
fi

# ---------------------------------------------------------------- owners

# Each file keeps the owner its layer gives it, in tarballs and layouts
# alike; --all-root makes them all root's, as before owners were kept.
mkdir -p "$WORK/owned/srv/app" "$WORK/owned/bin"
cp "$busybox" "$WORK/owned/bin/busybox"
echo data > "$WORK/owned/srv/app/data"
tar --numeric-owner --owner=4321 --group=4322 -C "$WORK/owned" -cf "$WORK/owned-srv.tar" ./srv
tar --numeric-owner --owner=0 --group=0 -C "$WORK/owned" -cf "$WORK/owned-bin.tar" ./bin
readable "$WORK/owned-srv.tar" "$WORK/owned-bin.tar"
make_layout "$WORK/owned-layout" v1 "$WORK/config.json" "$WORK/owned-bin.tar" "$WORK/owned-srv.tar"
readable "$WORK/owned-layout"
build "$WORK/owned.sqfs" "$WORK/owned-layout:v1"; rc=$?
is "$rc" 0 "a layout with files of uid 4321 builds"
listing=$(unsquashfs -lln "$WORK/owned.sqfs")
like "$listing" "^-rw-r--r-- 4321/4322 .* squashfs-root/srv/app/data$" "they keep their owner and group in the image"
like "$listing" "^-rwxr-xr-x 0/0 .* squashfs-root/bin/busybox$" "root's files stay root's"
build "$WORK/owned-tar.sqfs" "$WORK/owned-srv.tar"
like "$(unsquashfs -lln "$WORK/owned-tar.sqfs")" " 4321/4322 .* squashfs-root/srv/app/data$" "a tarball's owners are kept too"
build "$WORK/all-root.sqfs" "$WORK/owned-layout:v1" --all-root
like "$(unsquashfs -lln "$WORK/all-root.sqfs")" "^-rw-r--r-- 0/0 .* squashfs-root/srv/app/data$" "--all-root makes every file root's"
is "$(in_image "$WORK/owned.sqfs" /bin/busybox cat /srv/app/data)" data "an image with other owners runs"

# ---------------------------------------------------------------- disk

# The output on a small file system that holds the image but not an
# unpacked copy: a build needs the output's room, not the tree's.
if is_root; then
	mkdir -p "$WORK/small" && cp -a "$WORK/bb" "$WORK/big-tree"
	seq 1 30000000 > "$WORK/big-tree/numbers"   # 258 MB, compresses well
	tar -C "$WORK/big-tree" -cf - . | gzip -1 > "$WORK/big-tree.tar.gz" && rm -rf "$WORK/big-tree"
	readable "$WORK/big-tree.tar.gz"
	mount -t tmpfs -o size=64m,mode=0755 capsula-test "$WORK/small" && chown "$TEST_UID" "$WORK/small"
	build "$WORK/small/big.sqfs" "$WORK/big-tree.tar.gz"; rc=$?
	is "$rc" 0 "a 258 MB tree builds onto a 64 MB file system"
	is "$(in_image "$WORK/small/big.sqfs" sh -c 'tail -n 1 /numbers')" "30000000" "and the image is whole"
	# The container may still hold the image open for its grace period:
	# detach now, or the mount would outlive the test.
	umount -l "$WORK/small"
	ok "and leaves no mount behind" sh -c '! findmnt "$1" >/dev/null' _ "$WORK/small"
else
	skip "mounting a small tmpfs needs root"
	skip "mounting a small tmpfs needs root"
	skip "mounting a small tmpfs needs root"
fi

done_testing
