#!/bin/sh
# The folders' dependencies point one way: each folder's README.md says
# what it may include ("May include: ..."), every #include of the sources
# keeps to it, and those declarations form no cycle.
. "$abs_top_srcdir/tests/lib/common.sh"

cd "$abs_top_srcdir" || bail_out "cannot enter $abs_top_srcdir"

allowed() {  # FOLDER: the folders it may include, one per line
	sed -n 's/^May include: //p' "$1/README.md" 2>/dev/null | tr ' ' '\n' | grep -E '^[a-z/]+$'
}

folders=$(find common runtime starter -name '*.[ch]' -exec dirname {} \; | sort -u)
for folder in $folders; do
	ok "$folder/README.md says what $folder may include" \
		grep -q '^May include: ' "$folder/README.md"
done

bad=$(find common runtime starter -name '*.[ch]' | sort | while read -r file; do
	folder=$(dirname "$file")
	sed -n 's/^#include "\([a-z_/]*\/[a-z_]*\.h\)"$/\1/p' "$file" | while read -r header; do
		target=$(dirname "$header")
		[ "$target" = "$folder" ] && continue
		allowed "$folder" | grep -qx "$target" || printf ' %s->%s' "$file" "$header"
	done
done)
is "${bad# }" "" "every #include keeps to its folder's README.md"

# tsort fails on a cycle; the pairs are "included-folder folder".
pairs=$(for folder in $folders; do
	for target in $(allowed "$folder"); do
		[ "$target" = "$folder" ] || echo "$target $folder"
	done
done)
ok "the folders' declared dependencies have no cycle" sh -c "printf '%s\n' \"\$1\" | tsort >/dev/null 2>&1" _ "$pairs"
cycle=$(printf 'runtime/plan runtime/image\nruntime/image runtime/plan\n' | tsort 2>&1 >/dev/null)
like "$cycle" "loop" "a cycle would be found"

# starter/ shows runtime/ only starter.h, and never reads runtime/.
is "$(grep -rh '#include "starter/' runtime | sort -u)" '#include "starter/starter.h"' \
	"runtime/ includes only starter/starter.h of starter/"
is "$(grep -rl '#include "runtime/' starter common | tr '\n' ' ')" "" \
	"starter/ and common/ include nothing of runtime/"
done_testing
