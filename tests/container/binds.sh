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
# The image server makes such mount points itself: the directory is listed
# with them, and nothing is mounted over it to make room.
image_usr=$(capsula_exec -- ls /usr | sort | tr '\n' ' ')
ok "(the image's /usr: $image_usr)" [ -n "$image_usr" ]
is "$(capsula_exec -B "$WORK/data:/usr/new/place" -- ls /usr | sort | tr '\n' ' ')" \
	"$(printf '%snew' "$image_usr" | tr ' ' '\n' | sort | tr '\n' ' ')" \
	"the image's directory lists the mount point made in it with its own entries"
is "$(capsula_exec -B "$WORK/data:/usr/new/place" -- ls /usr/new)" place \
	"and a directory made there lists the one made in it"
is "$(capsula_exec -B "$WORK/data:/usr/new/place" -- sh -c \
	"cut -d' ' -f5 /proc/self/mountinfo | grep -c '^/usr'")" 1 \
	"and the bind is the only mount under /usr"
is "$(capsula_exec -- sh -c "grep -E '^[0-9]+ [0-9]+ [0-9]+:[0-9]+ / / ' /proc/self/mountinfo |
	sed 's/.* - \([^ ]*\) .*/\1/'")" fuse "the container's root is the image itself"
many=$(seq 1 257 | sed "s|.*|$WORK/data:/many&|" | paste -sd, -)
err=$(capsula_exec -B "$many" -- true 2>&1); rc=$?
is "$rc" 125 "more mount points than the image server keeps is capsula's failure (125)"
like "$err" "more than 256 mount points the image lacks" "and says so"
ok "200 of them are fine" capsula_exec -B "$(seq 1 200 | sed "s|.*|$WORK/data:/many&|" | paste -sd, -)" -- true
out=$(capsula_exec -B "$WORK/data:/usr/new/place" -- sh -c 'ls /usr/other 2>&1; stat -c %F /usr/new')
like "$out" "No such file" "a name that is no mount point stays missing"
like "$out" "directory" "and the made one is a directory"

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

# --contain: no host home, /tmp or current directory; empty private ones.
echo "host home file" > "$TEST_HOME/capsula-contain-probe" 2>/dev/null
is_root && chown "$TEST_UID:$TEST_GID" "$TEST_HOME/capsula-contain-probe"
is "$(capsula_exec --contain -- sh -c 'ls -A ~ | wc -l')" 0 "--contain: the home is empty"
is "$(capsula_exec -c -- sh -c 'ls -A /tmp | wc -l')" 0 "-c: /tmp is empty"
capsula_exec --contain -- sh -c 'echo inside > /tmp/contain-probe && echo inside > ~/probe'
ok "--contain: /tmp is writable, and its files stay inside" test ! -e /tmp/contain-probe
ok "so are the home's" test ! -e "$TEST_HOME/probe"
is "$(capsula_exec --contain -- pwd)" "$TEST_HOME" "--contain: the command starts in the (empty) home"
like "$(capsula_exec --contain --dry-run -- true)" "tmpfs +/tmp \(private, empty\)" \
	"--dry-run shows the private tmpfs"
key_plain=$(capsula_exec --dry-run -- true | awk '$1 == "join" {print $2}')
key_contained=$(capsula_exec --contain --dry-run -- true | awk '$1 == "join" {print $2}')
ok "--contain is part of the join key" differ_nonempty "$key_plain" "$key_contained"
rm -f "$TEST_HOME/capsula-contain-probe"
# Ranks of one job, each with --contain, still share one container (and its /tmp).
ns1=$(as_user PMIX_NAMESPACE=capsula-contain-job PMIX_RANK=0 "$CAPSULA" exec --contain "$IMAGE" \
	sh -c 'echo shared > /tmp/rank0; readlink /proc/self/ns/mnt')
ns2=$(as_user PMIX_NAMESPACE=capsula-contain-job PMIX_RANK=1 "$CAPSULA" exec --contain "$IMAGE" \
	sh -c 'cat /tmp/rank0 >/dev/null && readlink /proc/self/ns/mnt')
ok "ranks of one job with --contain share one container and its private /tmp" same_nonempty "$ns1" "$ns2"

# --no-mount drops single default binds.
err=$(capsula_exec --no-mount tmp -- sh -c 'touch /tmp/x' 2>&1); rc=$?
like "$err" "Read-only file system" "--no-mount tmp: /tmp is the image's own, read-only"
# (The tests run in a directory below /tmp, which another bind would bring.)
is "$(capsula_exec --no-mount cwd,tmp -- pwd)" "$TEST_HOME" \
	"--no-mount cwd: the current directory is not bound; the command starts in the home"
is "$(capsula_exec --no-mount home -- sh -c 'grep -c " $TEST_HOME " /proc/self/mountinfo')" 0 \
	"--no-mount home: no home is bound"
is "$(capsula_exec --no-mount shm -- sh -c 'grep -c " /dev/shm " /proc/self/mountinfo')" 0 \
	"--no-mount shm: no /dev/shm from the host"
err=$(capsula_exec --no-mount home,proc -- true 2>&1); rc=$?
is "$rc" 125 "--no-mount of something it cannot drop fails"
like "$err" "--no-mount: unknown bind 'proc'; name home, tmp, cwd or shm" "and lists what it can"

done_testing
