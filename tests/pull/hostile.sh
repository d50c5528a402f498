#!/bin/sh
# capsula pull against a registry that lies: a bearer token that would
# smuggle headers into every request, one too long to carry, error messages
# and platform names full of terminal escapes and newlines. Nothing the
# registry sends reaches a request or the terminal as it is. And a push to
# one that refuses streamed uploads.
. "$abs_top_srcdir/tests/lib/common.sh"
. "$abs_top_srcdir/tests/lib/registry.sh"
registry_test_start
H=$WORK/hostile
hostile_start "$H" || bail_out "the hostile registry did not start"
pull() { as_user CAPSULA_CACHEDIR="$WORK/cache" "$CAPSULA" pull --insecure "$@"; }
requests() { cat "$H/requests.log" 2>/dev/null; }
printf '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no such tag"}]}' > "$H/errors.json"
ESC=$(printf '\033')
BEL=$(printf '\007')

# ---------------------------------------------------------------- tokens
printf '"abc\\r\\nX-Injected: yes"' > "$H/token"
: > "$H/requests.log"
err=$(pull "$HOSTILE/team/app:v1" 2>&1); rc=$?
is "$rc" 125 "a token with CR LF in it is refused"
like "$err" "token from http://$HOSTILE/token: the token holds a character no HTTP header may carry \(0x0d\); tell the registry's operator" \
	"saying why"
unlike "$(requests)" "X-Injected" "no request carried the smuggled header"
unlike "$(requests)" "Bearer abc" "nor the token itself"
like "$(requests)" "GET /token" "though the token was asked for, so the checks above can fail"

long=$(head -c 9000 /dev/zero | tr '\0' t)
printf '"%s"' "$long" > "$H/token"
err=$(pull "$HOSTILE/team/app:v1" 2>&1); rc=$?
is "$rc" 125 "a token longer than 8 KiB is refused"
like "$err" "the token is longer than 8192 bytes" "in so many words, not cut short"

fine=$(head -c 6000 /dev/zero | tr '\0' k)
printf '"%s"' "$fine" > "$H/token"
: > "$H/requests.log"
err=$(pull "$HOSTILE/team/app:v1" 2>&1); rc=$?
is "$rc" 125 "with a 6000-byte token the pull reaches the manifest (which is not there)"
like "$err" "not found on $HOSTILE \(MANIFEST_UNKNOWN: no such tag\)" "and says so"
is "$(grep -c "^Authorization: Bearer $fine\$" "$H/requests.log")" 1 \
	"the manifest request carried the whole token"
rm -f "$H/token"

# ---------------------------------------------------------------- words
printf '{"errors":[{"code":"DENIED","message":"\\u001b]0;pwned\\u0007\\u001b[2J\\ncapsula: all is fine"}]}' \
	> "$H/errors.json"
err=$(pull "$HOSTILE/team/app:v1" 2>&1); rc=$?
is "$rc" 125 "an error message with escapes and a newline fails the pull"
is "$(printf '%s\n' "$err" | wc -l)" 1 "in one line"
unlike "$err" "$ESC|$BEL" "with no escape or bell byte in it"
like "$err" 'DENIED: \\x1b\]0;pwned\\x07\\x1b\[2J\\x0acapsula: all is fine\)' \
	"the registry's words are shown, escaped"

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":1,"platform":{"os":"linux\\u001b[31m","architecture":"evil\\u009b1m"}}]}' \
	"$(printf x | sha256sum | cut -c1-64)" > "$H/manifest"
err=$(pull "$HOSTILE/team/app:v1" 2>&1); rc=$?
is "$rc" 125 "an index with no image for this machine fails the pull"
unlike "$err" "$ESC" "its hostile platform names print without an escape byte"
like "$err" 'it has: linux\\x1b\[31m/evil\\xc2\\x9b1m\)' "but escaped, C1 controls too"
rm -f "$H/manifest"

# ---------------------------------------------------------------- pushes
# A registry that takes uploads, but not streamed ones: the layer, sent as
# it was made, is sent again whole once it is.
rm -f "$H/token"
touch "$H/uploads"
: > "$H/requests.log"
out=$(as_user CAPSULA_CACHEDIR="$WORK/cache" "$CAPSULA" push --insecure "$IMAGE" \
	"docker://$HOSTILE/team/app:v1" 2>"$WORK/push.err"); rc=$?
is "$rc" 0 "a push to a registry that refuses streamed uploads succeeds"
[ "$rc" = 0 ] || diag "$(cat "$WORK/push.err")"
like "$(cat "$WORK/push.err")" "warning: the layer could not be sent as it was made \(.*\); it is sent whole" \
	"saying the layer is sent whole"
is "$(grep -c '^PATCH /v2/team/app/blobs/uploads/u1$' "$H/requests.log")" 1 "after one streamed try"
like "$(requests)" "PUT /v2/team/app/blobs/uploads/u1\?digest=sha256:[0-9a-f]{64}" \
	"the layer went whole under its digest"
like "$out" '^sha256:[0-9a-f]{64}$' "and the manifest's digest is printed"
rm -f "$H/uploads"

done_testing
