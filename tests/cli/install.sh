#!/bin/sh
# make install puts no setuid, setgid or file-capability bit anywhere.
. "$abs_top_srcdir/tests/lib/common.sh"

dest=$WORK/install
make -s -C "$abs_top_builddir" install DESTDIR="$dest" >/dev/null 2>&1
ok "make install DESTDIR=... installs the capsula binary" \
	[ -n "$(find "$dest" -name capsula -type f -perm -u+x)" ]
ok "and capsula-convert, which builds images, in its libexec directory" \
	[ -n "$(find "$dest" -path '*/libexec/capsula/capsula-convert' -type f -perm -u+x)" ]
if [ -e "$abs_top_builddir/spank_capsula.so" ]; then
	ok "and the Slurm plugin in \$(libdir)/capsula" \
		[ -n "$(find "$dest" -path '*/lib/capsula/spank_capsula.so' -type f)" ]
else
	skip "the Slurm plugin was not built (no slurm/spank.h: apt-get install libslurm-dev)"
fi
man_page=$(find "$dest" -name capsula.1 -type f)
ok "the man page is installed" [ -n "$man_page" ]
if command -v man >/dev/null 2>&1; then
	text=$(MANWIDTH=100 man -l "$man_page" 2>/dev/null); rc=$?
	is "$rc" 0 "the man page renders with man -l"
	for word in "capsula exec" "capsula run" "capsula shell" "capsula build" "capsula pull" "capsula login" "capsula cache" "capsula inspect" \
	            "capsula doctor" "capsula instance start" "EXIT STATUS" "ENVIRONMENT" "FILES" \
	            "CAPSULA_BIND" "CAPSULA_CACHEDIR" "image directory" "image owner" "allow user binds" \
	            "cache directory"; do
		like "$text" "$word" "the man page documents $word"
	done
else
	skip "man is not installed"
fi
completion=$(find "$dest" -path '*/bash-completion/completions/capsula' -type f)
ok "the bash completion is installed" [ -n "$completion" ]
# Where bash-completion looks for this prefix: its completionsdir for the
# configured prefix, found by its own loader through the prefix's data dir.
prefix=$(sed -n 's/^prefix = //p' "$abs_top_builddir/Makefile")
if ! pkg-config --exists bash-completion 2>/dev/null || [ ! -r /usr/share/bash-completion/bash_completion ]; then
	skip "bash-completion is not installed (apt-get install bash-completion)"
	skip "bash-completion is not installed (apt-get install bash-completion)"
else
	want=$(pkg-config --define-variable=prefix="$prefix" --define-variable=datadir="$prefix/share" \
		--variable=completionsdir bash-completion)
	is "$completion" "$dest$want/capsula" "it goes to bash-completion's completionsdir for prefix $prefix"
	found=$(XDG_DATA_DIRS="$dest$prefix/share" bash -c \
		'. /usr/share/bash-completion/bash_completion; __load_completion capsula && complete -p capsula' 2>&1)
	like "$found" "complete -F _capsula capsula" "bash-completion's loader finds it there"
fi
if command -v bash >/dev/null 2>&1; then
	words=$(bash -c '_init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
		_filedir() { :; }
		. "$1"; COMP_WORDS=(capsula in); COMP_CWORD=1; _capsula; echo "${COMPREPLY[*]}"
		COMP_WORDS=(capsula build --c); COMP_CWORD=2; _capsula; echo "${COMPREPLY[*]}"' sh "$completion")
	is "$words" "inspect instance
--compression" "the completion offers commands and options"
fi
is "$(find "$dest" -perm /6000 | wc -l)" 0 "no setuid or setgid file is installed"
if command -v getcap >/dev/null 2>&1; then
	is "$(find "$dest" -type f -exec getcap {} + 2>/dev/null | wc -l)" 0 "no file capability is installed"
else
	skip "getcap (libcap2-bin) is not installed"
fi
done_testing
