#!/bin/sh
# --writable-tmpfs, --overlay DIR and --overlay IMG: the image stays as it is
# while the container writes over it; a full tmpfs is named; a persistent
# upper directory keeps changes and whiteouts; layers stack in order.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

# Two small layers, made here: /opt/f in both (the later one wins).
mkdir -p "$WORK/l1/opt" "$WORK/l2/opt"
echo one > "$WORK/l1/opt/f"
echo one > "$WORK/l1/opt/only-in-one"
echo two > "$WORK/l2/opt/f"
mksquashfs "$WORK/l1" "$WORK/one.sqfs" -quiet -noappend -all-root >/dev/null || bail_out "mksquashfs failed"
mksquashfs "$WORK/l2" "$WORK/two.sqfs" -quiet -noappend -all-root >/dev/null || bail_out "mksquashfs failed"
chmod a+r "$WORK/one.sqfs" "$WORK/two.sqfs"

# --writable-tmpfs
out=$(capsula_exec --join never --writable-tmpfs -- sh -c \
	'echo new > /bin/capsula-new && cat /bin/capsula-new &&
	 echo more >> /data/seq.txt && tail -n 1 /data/seq.txt && touch /top-level && echo top')
is "$out" "$(printf 'new\nmore\ntop')" "--writable-tmpfs: new files, appends to image files and / itself are writable"
out=$(capsula_exec --join never -- sh -c 'ls /bin/capsula-new 2>&1; tail -n 1 /data/seq.txt')
like "$out" "No such file" "the changes went with the container"
unlike "$out" "more" "the image file is as it was"
out=$(capsula_exec --join never -- sh -c 'echo x > /bin/capsula-new' 2>&1)
like "$out" "Read-only file system" "without it the image is read-only"
out=$(capsula_exec --join never --writable-tmpfs -- ls -ln /bin/busybox)
like "$out" " $TEST_UID +$TEST_GID " "image files are the user's under a writable layer (the kernel copies them up with their owner)"
out=$(capsula_exec --join never --writable-tmpfs -- df -k /)
like "$out" " 2097152 " "the default size is 2 GiB"
out=$(capsula_exec --join never --writable-tmpfs --tmpfs-size 64M -- df -k /)
like "$out" " 65536 " "--tmpfs-size 64M sizes it"

# The limit reached: the command sees ENOSPC, the user reads which limit.
err=$(capsula_exec --join never --writable-tmpfs --tmpfs-size 4M -- sh -c \
	'dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null; status=$?; sleep 1.5; exit $status' 2>&1)
status=$?
ok "the command's failed write is its exit status" [ "$status" != 0 ]
like "$err" "capsula: the container's writable tmpfs is full \(4 MiB\): writes fail with 'No space left on device'; give it more with --tmpfs-size" \
	"the full tmpfs is reported in one line naming its size and the option"
is "$(printf '%s\n' "$err" | grep -c 'writable tmpfs is full')" 1 "once"
# Told before the process the shell waits for ends: never after what the
# shell does next (stderr to a file, not a pipe that the holder could hold).
as_user sh -c '"$1" exec --join never --writable-tmpfs --tmpfs-size 4M "$2" \
	sh -c "dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null" 2>"$3"; echo next >>"$3"' \
	sh "$CAPSULA" "$IMAGE" "$WORK/full-at-exit.err"
is "$(tr '\n' '|' < "$WORK/full-at-exit.err" | sed 's/tmpfs is full[^|]*|/tmpfs is full|/')" \
	"capsula: the container's writable tmpfs is full|next|" \
	"a command that fills the tmpfs and exits at once: the line comes before the shell's next output"
# While it runs: the line before what the command prints a second later.
as_user sh -c '"$1" exec --join never --writable-tmpfs --tmpfs-size 4M "$2" \
	sh -c "dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null; sleep 1.5; echo still running >&2" \
	2>"$3"' sh "$CAPSULA" "$IMAGE" "$WORK/full-while-running.err"
is "$(sed 's/tmpfs is full.*/tmpfs is full/' "$WORK/full-while-running.err" | tr '\n' '|')" \
	"capsula: the container's writable tmpfs is full|still running|" \
	"a command that fills it and goes on: told while it runs"
# The process the launcher waits for ends as the command does.
as_user "$CAPSULA" exec --join never --writable-tmpfs "$IMAGE" sh -c 'exit 7'
is "$?" 7 "with --writable-tmpfs the command's exit status is capsula's"
as_user "$CAPSULA" exec --join never --writable-tmpfs "$IMAGE" sh -c 'kill -TERM $$'
is "$?" 143 "and its death by a signal too"
as_user sh -c '"$1" exec --join never --writable-tmpfs "$2" sh -c "trap \"echo got TERM; exit 3\" TERM; sleep 20 & wait" &
	sleep 2; kill -TERM $!; wait $!; echo "status $?"' sh "$CAPSULA" "$IMAGE" >"$WORK/term.out" 2>&1
is "$(tr '\n' '|' < "$WORK/term.out")" "got TERM|status 3|" \
	"a SIGTERM sent to capsula reaches the command (as mpirun and srun send it)"
err=$(capsula_exec --join never --writable-tmpfs --tmpfs-size 4M -- sh -c 'dd if=/dev/zero of=/small bs=1M count=1 2>/dev/null; sleep 1')
is "$err" "" "nothing is said while there is room"
out=$(as_user "$CAPSULA" exec --tmpfs-size 4M "$IMAGE" true 2>&1)
like "$out" "tmpfs-size needs --writable-tmpfs" "--tmpfs-size alone is refused"
out=$(as_user "$CAPSULA" exec --writable-tmpfs --tmpfs-size 12Q "$IMAGE" true 2>&1)
like "$out" "tmpfs-size 12Q.*at least 1M" "a malformed size is refused"

# --overlay DIR: changes and whiteouts kept on the host.
as_user mkdir "$WORK/upper-dir"
capsula_exec --join never --overlay "$WORK/upper-dir" -- sh -c \
	'echo kept > /etc/capsula-kept && rm /bin/ls && rm -r /data/tree'
ok "--overlay DIR: writes, removes a file and a directory" [ $? = 0 ]
is "$(cat "$WORK/upper-dir/upper/etc/capsula-kept" 2>&1)" kept "the new file is in DIR/upper on the host"
is "$(stat -c '%u %F %t:%T' "$WORK/upper-dir/upper/bin/ls" 2>&1)" "$TEST_UID character special file 0:0" \
	"the removal is a whiteout (0:0 device) of the user's in DIR/upper"
out=$(capsula_exec --join never --overlay "$WORK/upper-dir" -- sh -c \
	'cat /etc/capsula-kept; ls /bin/ls 2>&1; ls /data/tree 2>&1; ls /bin/cat')
like "$out" "^kept" "the next run sees the change"
like "$out" "/bin/ls: No such file" "and the whiteout hides the image's file"
like "$out" "/data/tree: No such file" "and the image's directory"
like "$out" "/bin/cat" "other image files are still there"
out=$(capsula_exec --join never -- ls /bin/ls)
is "$out" /bin/ls "the image itself is untouched"
mkdir "$WORK/roots-dir"
out=$(capsula_exec --join never --overlay "$WORK/roots-dir" -- true 2>&1)
status=$?
if is_root; then
	is "$status" 125 "another user's directory is refused"
	like "$out" "roots-dir: it is not your directory" "and says why"
else
	skip "needs another user's directory"
	skip "needs another user's directory"
fi
as_user mkdir -m 0777 "$WORK/open-dir"
as_user chmod 0777 "$WORK/open-dir"
out=$(capsula_exec --join never --overlay "$WORK/open-dir" -- true 2>&1)
like "$out" "open-dir: others may write to it" "a directory others may write is refused"
out=$(capsula_exec --join never --overlay "$WORK/upper-dir" --writable-tmpfs -- true 2>&1)
like "$out" "one writable layer already; give one --overlay DIR, or --writable-tmpfs" \
	"--overlay DIR with --writable-tmpfs is refused"

# --overlay IMG: read-only layers, later ones on top.
out=$(capsula_exec --join never --overlay "$WORK/one.sqfs" --overlay "$WORK/two.sqfs" -- \
	sh -c 'cat /opt/f /opt/only-in-one; ls /bin/busybox; touch /opt/x 2>&1')
is "$(printf '%s\n' "$out" | head -n 3)" "$(printf 'two\none\n/bin/busybox')" \
	"two layers: the later one on top, the earlier and the image below"
like "$out" "Read-only file system" "layers alone leave the container read-only"
out=$(capsula_exec --join never --overlay "$WORK/two.sqfs" --overlay "$WORK/one.sqfs" -- cat /opt/f)
is "$out" one "in the other order, the other file wins"
out=$(capsula_exec --join never --overlay "$WORK/one.sqfs" --writable-tmpfs -- \
	sh -c 'echo changed > /opt/f && cat /opt/f')
is "$out" changed "a layer under --writable-tmpfs is writable too"
echo "not an image" > "$WORK/plain.txt"
chmod a+r "$WORK/plain.txt"
out=$(capsula_exec --join never --overlay "$WORK/plain.txt" -- true 2>&1)
like "$out" "image .*plain.txt: " "a file that is no image is refused as an image would be"
out=$(capsula_exec --join never --overlay "$WORK/missing" -- true 2>&1)
like "$out" "overlay .*missing: No such file or directory" "a missing --overlay path is named"

# Instances take the options: commands run in one share its writable layer.
as_user "$CAPSULA" instance start --writable-tmpfs "$IMAGE" writable-test
as_user "$CAPSULA" exec instance://writable-test sh -c 'echo shared > /etc/capsula-instance'
is "$(as_user "$CAPSULA" exec instance://writable-test cat /etc/capsula-instance 2>&1)" shared \
	"an instance with --writable-tmpfs keeps one command's change for the next"
as_user "$CAPSULA" instance stop writable-test

# --dry-run and the join key.
plan=$(capsula_exec --dry-run --writable-tmpfs --tmpfs-size 64M --overlay "$WORK/one.sqfs" -- true)
like "$plan" "layer +$WORK/one.sqfs" "--dry-run shows the layer"
like "$plan" "writable +tmpfs of 64 MiB over the image" "and the writable tmpfs"
plain=$(capsula_exec --dry-run -- true | grep '^join')
layered=$(printf '%s\n' "$plan" | grep '^join')
ok "the options are part of the join key" differ_nonempty "$plain" "$layered"
done_testing
