#!/bin/sh
# A block of the image that no longer decompresses: the reader gets EIO, the
# holder goes on serving the rest, and nothing is left afterwards.
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

done_testing
