#!/bin/sh
# Binds: the user's -B, the home, the current directory, and mount points
# the read-only image does not have.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

mkdir -p "$WORK/data/sub" "$WORK/other"
echo payload > "$WORK/data/file"
echo single > "$WORK/single-file"
is_root && chown -R "$TEST_UID:$TEST_GID" "$WORK"

is "$(capsula_exec -B "$WORK/data:/data" -- cat /data/file)" payload "-B SRC:DST binds a directory"
is "$(capsula_exec -B "$WORK/data" -- cat "$WORK/data/file")" payload "-B SRC binds at the same path"
is "$(capsula_exec -B "$WORK/single-file:/etc/single" -- cat /etc/single)" single \
	"-B binds a single file, making its mount point in the read-only /etc"
is "$(capsula_exec -B "$WORK/data:/a,$WORK/other:/b" -- sh -c 'ls -d /a /b | tr "\n" " "')" "/a /b " \
	"a comma list gives two binds"
is "$(capsula_exec -B "$WORK/data:/deep/er/still" -- cat /deep/er/still/file)" payload \
	"missing parents of a destination are made"
is "$(capsula_exec -B "$WORK/data:/usr/new/place" -- sh -c 'cat /usr/new/place/file && ls /usr/bin >/dev/null && echo image-usr-intact')" \
	"payload
image-usr-intact" "a destination inside an image directory is made without hiding the image's files"

capsula_exec -B "$WORK/data:/data" -- sh -c 'echo written > /data/new'
is "$(cat "$WORK/data/new" 2>/dev/null)" written "binds are read-write by default"
err=$(capsula_exec -B "$WORK/data:/data:ro" -- sh -c 'echo x > /data/ro-new' 2>&1); rc=$?
ok ":ro binds cannot be written (rc=$rc)" [ "$rc" != 0 ]
ok ":ro: nothing reached the host directory" [ ! -e "$WORK/data/ro-new" ]
like "$err" "Read-only file system" ":ro writes fail with EROFS"
# A mount point of its own: the image has a /data, whose mount is nodev anyway.
options=$(capsula_exec -B "$WORK/data:/mnt/capsula-user-bind" -- \
	grep ' /mnt/capsula-user-bind ' /proc/self/mountinfo | cut -d' ' -f6)
like "$options" '(^|,)nosuid(,|$)' "user binds are nosuid ($options)"
like "$options" '(^|,)nodev(,|$)' "user binds are nodev"

# The image has /escape -> /etc. A bind through it must land inside the
# container's /etc, never on the host's.
out=$(capsula_exec -B "$WORK/data:/escape/capsula-escape" -- cat /etc/capsula-escape/file); rc=$?
is "$out" payload "a bind through an image symlink stays inside the container"
ok "and nothing appeared in the host's /etc" [ ! -e /etc/capsula-escape ]
unlike "$(grep capsula-escape /proc/self/mountinfo)" . "and nothing is mounted on the host"

# The current directory, outside home and /tmp: /var/tmp does not exist in
# the test image, so its mount point is made under the read-only /var.
cwd=$(mktemp -d /var/tmp/capsula-cwd.XXXXXX)
chmod 0755 "$cwd"
is_root && chown "$TEST_UID:$TEST_GID" "$cwd"
echo here > "$cwd/marker"
out=$(cd "$cwd" && WORK=$cwd capsula_exec -- sh -c 'pwd; cat marker')
is "$out" "$cwd
here" "the current directory is bound and the command starts there"
rm -rf "$cwd"

# The home directory.
if is_root; then
	echo "home-file" > "$TEST_HOME/capsula-home-marker"
	chown "$TEST_UID:$TEST_GID" "$TEST_HOME/capsula-home-marker"
else
	echo "home-file" > "$TEST_HOME/capsula-home-marker"
fi
is "$(capsula_exec -- cat "$TEST_HOME/capsula-home-marker")" home-file "the caller's home is bound"
is "$(capsula_exec -- sh -c 'echo $HOME')" "$TEST_HOME" "HOME is the caller's home"
err=$(capsula_exec --no-home -- cat "$TEST_HOME/capsula-home-marker" 2>&1); rc=$?
ok "--no-home leaves the home out (rc=$rc)" [ "$rc" != 0 ]
is "$(capsula_exec --home "$WORK/data:/home/elsewhere" -- sh -c 'echo $HOME; cat ~/file')" \
	"/home/elsewhere
payload" "--home SRC:DST binds SRC as the home at DST"
rm -f "$TEST_HOME/capsula-home-marker"

done_testing
