#!/bin/sh
# make install puts no setuid, setgid or file-capability bit anywhere.
. "$abs_top_srcdir/tests/lib/common.sh"

dest=$WORK/install
make -s -C "$abs_top_builddir" install DESTDIR="$dest" >/dev/null 2>&1
ok "make install DESTDIR=... installs the capsula binary" \
	[ -n "$(find "$dest" -name capsula -type f -perm -u+x)" ]
ok "the man page is installed" [ -n "$(find "$dest" -name capsula.1 -type f)" ]
is "$(find "$dest" -perm /6000 | wc -l)" 0 "no setuid or setgid file is installed"
if command -v getcap >/dev/null 2>&1; then
	is "$(find "$dest" -type f -exec getcap {} + 2>/dev/null | wc -l)" 0 "no file capability is installed"
else
	skip "getcap (libcap2-bin) is not installed"
fi
done_testing
