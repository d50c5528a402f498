#!/bin/sh
# A block of the image that no longer decompresses: the reader gets EIO and
# the user is told once which image is damaged, the holder goes on serving
# the rest, and nothing is left afterwards; capsula verify finds the damage.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

mksquashfs=$(command -v mksquashfs || echo /usr/sbin/mksquashfs)
busybox=$(command -v busybox || echo /bin/busybox)
mkdir "$WORK/root"
seq 1 200000 > "$WORK/root/numbers.txt"
echo intact > "$WORK/root/small.txt"
"$mksquashfs" "$WORK/root" "$WORK/corrupt.sqfs" -all-root -noappend -quiet -no-progress >/dev/null
cp "$busybox" "$WORK/busybox"
chmod -R a+rX "$WORK"
# mksquashfs writes file data right after the 96-byte superblock, so this
# lands inside the compressed blocks of numbers.txt and leaves the
# superblock, the inodes and the directories whole.
printf 'CORRUPTED-BLOCK-CORRUPTED-BLOCK-CORRUPTED-BLOCK-CORRUPTED-BLOCK' |
	dd of="$WORK/corrupt.sqfs" bs=1 seek=40000 conv=notrunc 2>/dev/null

out=$(as_user "$CAPSULA" exec "$WORK/corrupt.sqfs" "$WORK/busybox" sh -c '
	"$0" cat /numbers.txt > /dev/null 2> /tmp/read-error-$$ ; echo "status $?"
	"$0" cat /tmp/read-error-$$; rm -f /tmp/read-error-$$
	"$0" cat /small.txt
	"$0" ls /' "$WORK/busybox" 2>&1)
rc=$?
like "$out" "status [1-9]" "reading the corrupted block fails"
like "$out" "(I/O|Input/output) error" "with EIO"
like "$out" "intact" "the holder goes on serving the rest of the image"
like "$out" "numbers.txt" "and its directories"
is "$rc" 0 "the container's command ends normally"
is "$(holders_after_exit)" 0 "no holder is left"
is "$(printf '%s\n' "$out" | grep -c "is damaged")" 1 "the user is told once that the image is damaged"
like "$out" "capsula: $WORK/corrupt.sqfs is damaged: a block of file data cannot be decoded.*rebuild the image or fetch it again" \
	"naming the image and what to do"

# capsula verify: every part decoded; 0 only for an intact image.
out=$(as_user "$CAPSULA" verify "$WORK/corrupt.sqfs" 2>&1); rc=$?
is "$rc" 1 "verify of the damaged image exits 1"
like "$out" "is damaged: /numbers.txt: the data at byte [0-9]+ cannot be read" "naming the file and where"
out=$(as_user "$CAPSULA" verify "$IMAGE" 2>&1); rc=$?
is "$rc" 0 "verify of an intact image exits 0"
like "$out" "intact: [0-9]+ files" "saying what it read"
head -c 60000 "$WORK/corrupt.sqfs" > "$WORK/truncated.sqfs"
chmod a+r "$WORK/truncated.sqfs"
out=$(as_user "$CAPSULA" verify "$WORK/truncated.sqfs" 2>&1); rc=$?
is "$rc" 1 "verify of a truncated image exits 1"
like "$out" "truncated: 60000 of [0-9]+ bytes" "saying where it ends"
out=$(as_user "$CAPSULA" verify "$WORK/busybox" 2>&1); rc=$?
is "$rc" 125 "verify of a file that is no image exits 125"

# The ways a flipped byte shows up: a command killed by SIGBUS or SIGSEGV
# because the kernel could not read its pages, or a read failing: each time
# the user is told which image is damaged.
img=$abs_top_builddir/tests/images/busybox.sqfs
size=$(stat -c %s "$img")
told=0 died=0
for i in $(seq 1 12); do
	cp "$img" "$WORK/flipped.sqfs"
	printf '\377\377\377\377' | dd of="$WORK/flipped.sqfs" bs=1 seek=$((96 + (size - 4096) * i / 13)) \
		conv=notrunc 2>/dev/null
	chmod a+r "$WORK/flipped.sqfs"
	out=$(as_user "$CAPSULA" exec --join never "$WORK/flipped.sqfs" sh -c 'ls -R / >/dev/null; cat /data/* >/dev/null' 2>&1)
	case $? in
	126|135|139) died=$((died + 1))
		case $out in *"is damaged"*) told=$((told + 1)) ;; *) diag "not told: $out" ;; esac ;;
	esac
done
ok "flipped bytes killed or failed some commands ($died of 12)" [ "$died" -gt 0 ]
is "$told" "$died" "and each time the user was told the image is damaged"

done_testing
