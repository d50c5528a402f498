#!/bin/sh
# capsula build FROM a Debian base that skopeo pushed to the suite's own
# registry (TLS with the test CA, basic authentication), with a local .deb
# made by dpkg-deb whose postinst adds a system user and chowns a directory
# to it, installed by apt-get: with subordinate ids and without. Hermetic:
# nothing leaves 127.0.0.1.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
. "$abs_top_srcdir/tests/lib/layout.sh"
. "$abs_top_srcdir/tests/lib/registry.sh"
for tool in dpkg-deb sqfs2tar zstd unsquashfs; do
	command -v $tool >/dev/null ||
		skip_all "no $tool on the host (apt-get install dpkg squashfs-tools-ng zstd squashfs-tools)"
done
debian=$abs_top_builddir/tests/images/mpi.sqfs
[ -r "$debian" ] || skip_all "the suite's Debian image was not built (tests/images/mpi.sqfs)"
registry_test_start
hold_subids
trap 'registries_stop; restore_subids' EXIT
if is_root; then
	grep -q "^$TEST_USER:" /etc/subuid || echo "$TEST_USER:300000:65536" >> /etc/subuid
	grep -q "^$TEST_USER:" /etc/subgid || echo "$TEST_USER:300000:65536" >> /etc/subgid
fi
registry_start "$WORK/r1" htpasswd || bail_out "the registry did not start (see above)"
AUTH=$WORK/auth.json
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG" \
	"$(printf '%s:%s' "$REG_USER" "$REG_PASSWORD" | base64 -w0)" > "$AUTH"
readable "$AUTH"

# The Debian image as a one-layer OCI image, pushed.
sqfs2tar "$debian" 2>/dev/null | zstd -1 -q > "$WORK/debian.tar.zst" ||
	bail_out "cannot make a layer of $debian"
echo '{"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}, "rootfs": {"type": "layers"}}' \
	> "$WORK/config.json"
make_layout "$WORK/layout" 12 "$WORK/config.json" "$WORK/debian.tar.zst"
ok "skopeo pushes the Debian base to the suite's registry" \
	push "$WORK/layout:12" debian:12 "$REG_USER:$REG_PASSWORD"

# A package of our own: its postinst makes a system user and gives it a
# directory, as daemons' packages do.
pkg=$WORK/pkg
mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/capsula-svc"
echo "from the package" > "$pkg/usr/share/capsula-svc/data"
cat > "$pkg/DEBIAN/control" <<EOF
Package: capsula-svc
Version: 1.0
Architecture: all
Maintainer: capsula tests <tests@localhost>
Description: a test package whose postinst adds a system user
EOF
cat > "$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
useradd --system --no-create-home --home-dir /var/lib/capsula-svc capsula-svc
mkdir -p /var/lib/capsula-svc
chown capsula-svc:capsula-svc /var/lib/capsula-svc
chmod 0750 /var/lib/capsula-svc
EOF
chmod 0755 "$pkg/DEBIAN/postinst"
ctx=$WORK/ctx
mkdir -p "$ctx"
dpkg-deb --root-owner-group -b "$pkg" "$ctx/capsula-svc.deb" >/dev/null ||
	bail_out "dpkg-deb could not make the test package"
cat > "$ctx/Dockerfile" <<EOF
FROM $REG/debian:12
COPY capsula-svc.deb /tmp/
RUN apt-get install -y -q /tmp/capsula-svc.deb > /tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }; \\
    rm /tmp/capsula-svc.deb; grep -c 'Unable to write to /dev/pts\|openpty' /tmp/apt.log > /pty-warnings; \\
    script -qc tty /dev/null > /tty.txt
EOF
readable "$WORK"

build() {  # OUTPUT [OPTIONS]
	out=$1; shift
	as_user CAPSULA_CACHEDIR="$WORK/cache" REGISTRY_AUTH_FILE="$AUTH" CAPSULA_TLS_CA="$WORK/ca.crt" \
		"$CAPSULA" build "$@" "$out" "$ctx/Dockerfile" 2>&1
}
owner_in() {  # IMAGE PATH: uid/gid as stored
	unsquashfs -lln "$1" "$2" 2>/dev/null | awk -v p="squashfs-root$2" '$NF == p {print $2}'
}
passwd_ids() {  # IMAGE NAME: uid/gid from the image's /etc/passwd
	unsquashfs -cat "$1" etc/passwd | awk -F: -v n="$2" '$1 == n {print $3 "/" $4}'
}
check_image() {  # IMAGE WHAT
	ids=$(passwd_ids "$1" capsula-svc)
	like "$ids" '^[0-9]+/[0-9]+$' "the postinst's system user is in the image's passwd ($2)"
	is "$(owner_in "$1" /var/lib/capsula-svc)" "$ids" "and owns its directory in the image ($2)"
	is "$(unsquashfs -cat "$1" usr/share/capsula-svc/data)" "from the package" "the package's files are in ($2)"
	is "$(unsquashfs -cat "$1" tty.txt | tr -d '\r')" "/dev/pts/0" "the step has pseudo-terminals of its own ($2)"
	is "$(unsquashfs -cat "$1" pty-warnings)" 0 "and apt does not warn about them ($2)"
	ok "the .deb is not left in the image ($2)" sh -c "! unsquashfs -lln '$1' | grep -q capsula-svc.deb"
}

out=$(build "$WORK/svc.sqfs"); rc=$?
is "$rc" 0 "FROM the registry's image, apt-get install of a local .deb builds"
[ "$rc" = 0 ] || diag "$(printf '%s\n' "$out" | tail -n 15)"
like "$out" "^capsula: $REG/debian:12 is sha256:[0-9a-f]{64}$" "the base is pulled from the registry"
check_image "$WORK/svc.sqfs" "with subordinate ids"
is "$(as_user CAPSULA_CACHEDIR="$WORK/cache" "$CAPSULA" exec --fakeroot "$WORK/svc.sqfs" \
	stat -c %U /var/lib/capsula-svc)" capsula-svc "exec --fakeroot sees the directory as the system user's"

if is_root; then
	without_subids
	out=$(build "$WORK/svc-nosubids.sqfs" --no-cache); rc=$?
	is "$rc" 0 "without subordinate ids the same recipe builds"
	[ "$rc" = 0 ] || diag "$(printf '%s\n' "$out" | tail -n 15)"
	check_image "$WORK/svc-nosubids.sqfs" "without subordinate ids"
else
	for _ in $(seq 7); do skip "building without subordinate ids needs /etc/subuid edited as root"; done
fi

done_testing
