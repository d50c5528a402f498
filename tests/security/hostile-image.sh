#!/bin/sh
# A hostile image: symlinks where capsula puts mounts (/home -> /etc,
# /tmp -> /proc/self/root/etc, /proc -> a file), device nodes, a setuid
# shell, garbage passwd and group files, a deep tree and a huge directory.
# capsula must neither bind anything onto the host nor crash; the host's
# files and mounts stay as they were.
# It compares the host's mounts before and after, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || skip_all "no static busybox on the host (apt-get install busybox-static)"

# One image per trick on a mount point, then one with hostile content.
base() {  # DIR: a root with busybox
	mkdir -p "$1/bin" "$1/etc"
	cp "$busybox" "$1/bin/busybox"
	for applet in sh cat echo id ls test wc find readlink head; do ln -s busybox "$1/bin/$applet"; done
}
pack() {  # DIR IMAGE [MKSQUASHFS-OPTIONS]
	dir=$1 image=$2; shift 2
	mksquashfs "$dir" "$image" -noappend -quiet -no-progress -all-root "$@" >/dev/null ||
		bail_out "mksquashfs $image failed"
	chmod a+r "$image"
}
for trick in home:/etc tmp:/proc/self/root/etc sys:../../../../.. proc:/etc/passwd; do
	name=${trick%%:*} target=${trick#*:}
	base "$WORK/link-$name"
	echo "root:x:0:0::/:/bin/sh" > "$WORK/link-$name/etc/passwd"
	ln -s "$target" "$WORK/link-$name/$name"
	pack "$WORK/link-$name" "$WORK/link-$name.sqfs"
done

root=$WORK/hostile
base "$root"
mkdir -p "$root/many"
cp "$busybox" "$root/bin/busybox-root"
chmod 4755 "$root/bin/busybox-root"
head -c 65536 /dev/urandom > "$root/etc/passwd"
awk 'BEGIN { for (i = 0; i < 2000; i++) printf "g%d:x:%d:%s\n", i, i, "a,b,c,d,e,f,g,h"; printf "broken line without colons" }' \
	> "$root/etc/group"
ln -s /etc/shadow "$root/etc/hosts"
d=$root/deep; i=0
while [ "$i" -lt 120 ]; do d=$d/d; i=$((i + 1)); done
mkdir -p "$d" && echo bottom > "$d/file"
i=0
while [ "$i" -lt 20000 ]; do : > "$root/many/f$i"; i=$((i + 1)); done
# Device nodes without root: mksquashfs pseudo definitions.
pack "$root" "$WORK/hostile.sqfs" -p "evil d 755 0 0" -p "evil/mem c 666 0 0 1 1" \
	-p "evil/sda b 666 0 0 8 0"

host_state() {
	sha256sum /etc/passwd /etc/group /etc/hosts 2>/dev/null
	grep -c . /proc/self/mountinfo
	find /etc -maxdepth 1 | wc -l
}
before=$(host_state)

# capsula either runs the command or refuses in one line; it never dies.
run() {  # COMMAND...: sets out, err, rc
	out=$(as_user "$CAPSULA" exec "$image" "$@" 2>"$WORK/err"); rc=$?
	err=$(cat "$WORK/err")
}
for trick in home tmp sys proc; do
	image=$WORK/link-$trick.sqfs
	run echo survived
	ok "/$trick as a symlink: capsula runs the command or refuses (rc=$rc)" test "$rc" = 0 -o "$rc" = 125
	if [ "$rc" = 0 ]; then
		is "$out" "survived" "/$trick as a symlink: the command runs"
	else
		is "$(printf '%s\n' "$err" | grep -c .)" 1 "/$trick as a symlink: the refusal is one line"
		like "$err" "^capsula: .*/$trick.*; .*(fix the image|onto a file)" \
			"/$trick as a symlink: it names /$trick and what is wrong with the image"
	fi
done
is "$(as_user "$CAPSULA" exec "$WORK/link-home.sqfs" sh -c 'cat /etc/passwd | head -1')" "root:x:0:0::/:/bin/sh" \
	"/home -> /etc: the home bind lands inside the image's /etc, not the host's"

image=$WORK/hostile.sqfs
run id -u
is "$out" "$TEST_UID" "the uid is the caller's despite a garbage passwd"
run sh -c 'readlink /proc/self/ns/mnt'
ok "the command runs in a container of its own" test -n "$out" -a "$out" != "$(readlink /proc/self/ns/mnt)"
run /bin/busybox-root sh -c 'id -u'
is "$out" "$TEST_UID" "the setuid-root shell of the image gives nothing"
run cat /evil/mem
ok "a device node of the image cannot be opened (rc=$rc)" [ "$rc" != 0 ]
run cat /evil/sda
ok "nor a block device (rc=$rc)" [ "$rc" != 0 ]
run sh -c 'cat /deep/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/file'
is "$out" "bottom" "a tree 120 levels deep is read"
run sh -c 'ls /many | wc -l'
is "$(echo "$out" | tr -d ' ')" 20000 "a directory of 20,000 entries is listed"
run cat /etc/hosts
is "$out" "$(cat /etc/hosts)" \
	"/etc/hosts -> /etc/shadow: the host's hosts file is bound where the symlink leads, inside the image"
ok "and the host's /etc/shadow is not covered or changed" [ "$(stat -c %s /etc/shadow)" -gt 0 ]

is "$(host_state)" "$before" "the host's passwd, group, hosts, mounts and /etc are unchanged"
ok "no mount point was made in the host's /etc" [ ! -e "/etc/$(basename "$TEST_HOME")" ]
is "$(holders_after_exit)" 0 "no holder is left"

done_testing
