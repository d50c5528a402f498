#!/bin/sh
# Build the tiny test image: Debian's static busybox, a passwd/group of its
# own, and a few files the tests look for. Usage: build.sh OUTPUT.sqfs
set -eu

out=${1:?usage: build.sh OUTPUT.sqfs}
busybox=$(command -v busybox || echo /bin/busybox)
mksquashfs=$(command -v mksquashfs || echo /usr/sbin/mksquashfs)
[ -x "$busybox" ] || { echo "build.sh: busybox not found; apt-get install busybox-static" >&2; exit 1; }
[ -x "$mksquashfs" ] || { echo "build.sh: mksquashfs not found; apt-get install squashfs-tools" >&2; exit 1; }
"$busybox" --list >/dev/null 2>&1 || { echo "build.sh: $busybox is not a static busybox" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT INT TERM
chmod 0755 "$root"  # mktemp made it 0700; it becomes the image's /

mkdir -p "$root/bin" "$root/etc" "$root/home" "$root/proc" "$root/sys" "$root/dev" \
         "$root/tmp" "$root/root" "$root/usr/bin" "$root/var/empty"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
imageuser:x:4242:4242:an account of the image:/home/imageuser:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
imagegroup:x:4242:
nogroup:x:65534:
GROUP
echo "capsula busybox test image" > "$root/etc/capsula-test-image"
printf 'PRETTY_NAME="capsula busybox test image"\n' > "$root/etc/os-release"

# A setuid-root program: must stay powerless inside the container.
cp "$busybox" "$root/bin/busybox-suid"
chmod 4755 "$root/bin/busybox-suid"

# A stand-in for an old Open MPI library (only its version string), so the
# tests can see capsula warn when the launcher's Open MPI differs.
mkdir -p "$root/usr/lib/x86_64-linux-gnu"
printf 'stand-in\000v3.1.6\000' > "$root/usr/lib/x86_64-linux-gnu/libopen-pal.so.40.0.0"

# Data for the reads tests: a file of several blocks and a fragment tail, a
# sparse file, and a directory too long for one readdir reply. The tests
# regenerate the same content on the host to compare.
mkdir -p "$root/data/tree"
seq 1 100000 > "$root/data/seq.txt"
dd if=/dev/zero of="$root/data/sparse" bs=1 count=0 seek=1048576 2>/dev/null
printf capsula | dd of="$root/data/sparse" bs=1 seek=700000 conv=notrunc 2>/dev/null
# Incompressible data is stored as is and served from the image file.
head -c 400000 /dev/urandom > "$root/data/random"
sha256sum "$root/data/random" | cut -d' ' -f1 > "$root/data/random.sha256"
for i in $(seq 1 300); do
	echo "$i" > "$root/data/tree/entry-with-a-long-name-$i"
done

# A symlink pointing out of the image: binds through it must stay inside.
ln -s /etc "$root/escape"

tmp="$out.tmp.$$"
"$mksquashfs" "$root" "$tmp" -all-root -noappend -quiet -no-progress >/dev/null
mv "$tmp" "$out"
