#!/bin/sh
# The site configuration's path follows configure: configuring another
# prefix or sysconfdir over a tree built before rebuilds what reads it, so
# the installed binary reads the file the administrator put in place.
. "$abs_top_srcdir/tests/lib/common.sh"
command -v git >/dev/null || skip_all "no git to copy the sources (apt-get install git)"
git -C "$abs_top_srcdir" rev-parse --git-dir >/dev/null 2>&1 ||
	skip_all "the sources are not a git checkout: nothing to copy them from"

is "$("$CAPSULA" --version -v | sed -n 2p)" "site configuration: $CAPSULA_CONFIG_FILE" \
	"capsula --version -v names the configuration file of this build"

src=$WORK/src
mkdir -p "$src"
git -C "$abs_top_srcdir" ls-files -z --cached --others --exclude-standard |
	(cd "$abs_top_srcdir" && xargs -0 cp --parents -t "$src" 2>/dev/null)
build() {  # CONFIGURE-ARGS...: configure and build the binary, quietly
	(cd "$src" && ./configure "$@" >"$WORK/configure.log" 2>&1 && make -j"$(nproc)" capsula >"$WORK/make.log" 2>&1)
}
(cd "$src" && ./autogen.sh >/dev/null 2>&1) || bail_out "autogen.sh failed in a copy of the sources"
build --prefix="$WORK/first" || bail_out "the first build failed: $(tail -n 3 "$WORK/make.log")"
is "$("$src/capsula" --version -v | sed -n 2p)" "site configuration: $WORK/first/etc/capsula/capsula.conf" \
	"--prefix sets where the configuration is read"
build --prefix="$WORK/first" --sysconfdir=/etc || bail_out "the second build failed"
is "$("$src/capsula" --version -v | sed -n 2p)" "site configuration: /etc/capsula/capsula.conf" \
	"configuring another sysconfdir over the built tree rebuilds the binary with it"
like "$(grep -c 'CC ' "$WORK/make.log")" "^[1-9]" "and make recompiled what reads it"
done_testing
