#!/bin/sh
# capsula pull from a registry with token authentication (the registry's
# `auth: token`, with a token service of the test's that signs with its own
# key): anonymous and authenticated tokens, a refused password, a token
# renewed when it expires mid-pull; eight concurrent pulls and the ranks of
# an mpirun fetch each blob once; the cache listed and cleaned.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
. "$abs_top_srcdir/tests/lib/layout.sh"
. "$abs_top_srcdir/tests/lib/registry.sh"
registry_test_start
# Tokens live 4 s (3 s at least: the service counts whole seconds), so that a
# slow pull outlives its first one, while a loaded machine still gets each
# token to the registry in time: the registry allows a minute of clock skew,
# so they expire 56 s before they are made.
TOKEN_LIFETIME=-56 token_service_start || bail_out "the token service did not start"
registry_start "$WORK/r" token || bail_out "the registry did not start (see above)"
CREDS="$REG_USER:$REG_PASSWORD"
CACHE=$WORK/cache

pull() {  # [OPTIONS] REF: as the user, anonymous, with the test CA
	as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_TLS_CA="$WORK/ca.crt" "$CAPSULA" pull "$@"
}
pull_as_puller() {  # [OPTIONS] REF
	as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_TLS_CA="$WORK/ca.crt" \
		CAPSULA_DOCKER_USERNAME="$REG_USER" CAPSULA_DOCKER_PASSWORD="$REG_PASSWORD" \
		"$CAPSULA" pull "$@"
}
in_image() {  # IMAGE COMMAND...
	img=$1; shift
	as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_TLS_CA="$WORK/ca.crt" "$CAPSULA" exec "$img" "$@"
}
digest_of() { printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"; }
tokens() { grep -c "$1" "$WORK/token.log"; }

echo '{"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]}, "rootfs": {"type": "layers"}}' \
	> "$WORK/config.json"
mkdir -p "$WORK/l1/bin" "$WORK/l2/etc" "$WORK/slow1" "$WORK/slow2"
cp "$busybox" "$WORK/l1/bin/busybox"
for applet in sh cat ls sha256sum; do ln -s busybox "$WORK/l1/bin/$applet"; done
echo "token" > "$WORK/l2/etc/served"
tar --owner=0 --group=0 -C "$WORK/l1" -cf - . | gzip -n > "$WORK/l1.tar.gz"
tar --owner=0 --group=0 -C "$WORK/l2" -cf "$WORK/l2.tar" .
make_layout "$WORK/layout" v1 "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/l2.tar"
ok "skopeo pushes with a token from the test's token service" push "$WORK/layout:v1" public/app:v1 "$CREDS"
push "$WORK/layout:v1" private/app:v1 "$CREDS"

# ---------------------------------------------------------------- tokens

path=$(pull -q "$REG/public/app:v1" 2>"$WORK/err"); rc=$?
is "$rc" 0 "an anonymous token pulls a public repository"
is "$(in_image "$path" cat /etc/served)" token "and the image runs"
ok "the token service was asked anonymously" test "$(tokens 'anonymous repository:public/app:pull')" -ge 1

out=$(pull -q "$REG/private/app:v1" 2>&1); rc=$?
is "$rc" 125 "an anonymous token does not open a private repository"
like "$out" "access denied by $REG.*capsula login $REG" "which says to log in"
path=$(pull_as_puller -q "$REG/private/app:v1" 2>&1); rc=$?
is "$rc" 0 "with credentials the token opens it"
ok "the credentials went to the token service" test "$(tokens "$REG_USER repository:private/app:pull")" -ge 1
out=$(as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_TLS_CA="$WORK/ca.crt" CAPSULA_DOCKER_USERNAME="$REG_USER" \
	CAPSULA_DOCKER_PASSWORD=wrong "$CAPSULA" pull -q "$REG/private/app:v1" 2>&1); rc=$?
is "$rc" 125 "a wrong password is refused by the token service"
like "$out" "token from https://127.0.0.1:$TOKEN_PORT/token: access denied.*credentials from CAPSULA_DOCKER_USERNAME/PASSWORD were refused" \
	"naming the token service and where the credentials came from"
unlike "$out" "$REG_PASSWORD" "without printing the password"

# Two 12 MiB layers at 2 MiB/s, one at a time: the second starts 6 s in,
# after the first token has expired, is refused, and the pull asks for a new
# token.
head -c $((12 << 20)) /dev/urandom > "$WORK/slow1/a"
head -c $((12 << 20)) /dev/urandom > "$WORK/slow2/b"
tar --owner=0 --group=0 -C "$WORK/slow1" -cf "$WORK/slow1.tar" .
tar --owner=0 --group=0 -C "$WORK/slow2" -cf "$WORK/slow2.tar" .
make_layout "$WORK/layout" slow "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/slow1.tar" "$WORK/slow2.tar"
push "$WORK/layout:slow" public/slow:v1 "$CREDS"
before=$(tokens 'anonymous repository:public/slow:pull')
path=$(pull -q --parallel 1 --limit-rate 2M "$REG/public/slow:v1" 2>&1); rc=$?
is "$rc" 0 "a pull that outlives its token completes"
[ "$rc" = 0 ] || diag "$path"
ok "having asked for a new token" test "$(( $(tokens 'anonymous repository:public/slow:pull') - before ))" -ge 2
is "$(in_image "$path" sha256sum /b | cut -d' ' -f1)" "$(sha256sum "$WORK/slow2/b" | cut -d' ' -f1)" \
	"the layer fetched with the new token is whole"

# ---------------------------------------------------------------- many at once

mkdir -p "$WORK/c/etc"
echo concurrent > "$WORK/c/etc/served"
head -c $((4 << 20)) /dev/urandom > "$WORK/c/etc/payload"
tar --owner=0 --group=0 -C "$WORK/c" -cf "$WORK/c.tar" .
make_layout "$WORK/layout" many "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/c.tar"
push "$WORK/layout:many" public/many:v1 "$CREDS"
rm -rf "$CACHE"
pids=""
for i in 1 2 3 4 5 6 7 8; do
	{ pull -q "$REG/public/many:v1" > "$WORK/many.$i" 2>&1; echo $? > "$WORK/rc.$i"; } &
	pids="$pids $!"
done
for pid in $pids; do wait "$pid"; done
is "$(cat "$WORK"/rc.* | sort -u | tr '\n' ' ')" "0 " "eight concurrent pulls of one image all succeed"
is "$(sort -u "$WORK"/many.* | wc -l)" 1 "and name the same image"
for blob in "$WORK/l1.tar.gz" "$WORK/c.tar" "$WORK/config.json"; do
	is "$(blob_gets "$WORK/r" "$(digest_of "$blob")" public/many)" 1 \
		"eight pulls fetched $(basename "$blob") once"
done
is "$(in_image "$(cat "$WORK/many.1")" cat /etc/served)" concurrent "the image they share runs"

# Two images that share a layer, pulled at once: one fetches it, the other
# waits for it.
mkdir -p "$WORK/d/etc"
echo other > "$WORK/d/etc/served"
tar --owner=0 --group=0 -C "$WORK/d" -cf "$WORK/d.tar" .
make_layout "$WORK/layout" other "$WORK/config.json" "$WORK/c.tar" "$WORK/d.tar"
make_layout "$WORK/layout" another "$WORK/config.json" "$WORK/c.tar" "$WORK/l2.tar"
push "$WORK/layout:other" public/shared:a "$CREDS"
push "$WORK/layout:another" public/shared:b "$CREDS"
rm -rf "$CACHE"
pids=""
for tag in a b a b; do
	pull -q --limit-rate 8M "$REG/public/shared:$tag" >/dev/null 2>&1 &
	pids="$pids $!"
done
for pid in $pids; do wait "$pid"; done
is "$(blob_gets "$WORK/r" "$(digest_of "$WORK/c.tar")" public/shared)" 1 \
	"two images pulled at once fetch the layer they share once"

if command -v mpirun >/dev/null 2>&1; then
	mkdir -p "$WORK/m/etc"
	echo "from the registry" > "$WORK/m/etc/served"
	tar --owner=0 --group=0 -C "$WORK/m" -cf "$WORK/m.tar" .
	make_layout "$WORK/layout" mpi "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/m.tar"
	push "$WORK/layout:mpi" public/mpi:v1 "$CREDS"
	out=$(as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_TLS_CA="$WORK/ca.crt" \
		mpirun --oversubscribe -n 4 "$CAPSULA" exec "docker://$REG/public/mpi:v1" cat /etc/served 2>&1); rc=$?
	is "$rc" 0 "mpirun -n 4 capsula exec docker://REF pulls and runs"
	is "$(printf '%s\n' "$out" | grep -c '^from the registry$')" 4 "every rank ran in the pulled image"
	is "$(blob_gets "$WORK/r" "$(digest_of "$WORK/m.tar")")" 1 "the four ranks fetched its layer once"
	is "$(grep -c '"GET /v2/public/mpi/manifests/v1 HTTP/[0-9.]*" 200 ' "$WORK/r/log")" 1 \
		"and asked for the tag once: the others found it in the cache"
else
	skip "no mpirun on the host (apt-get install openmpi-bin)"
fi

# ---------------------------------------------------------------- the cache

out=$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" cache list 2>&1)
like "$out" "$REG/public/shared:a +linux-amd64 +sha256:" "cache list names each pulled tag with its platform"
like "$out" "[0-9]+ images \([0-9.]+ MiB\), [0-9]+ blobs" "and sums up images and blobs"
out=$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" cache clean --older-than 1 2>&1)
like "$out" "removed 0 files" "clean --older-than 1 keeps what was used today"
out=$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" cache clean 2>&1); rc=$?
is "$rc" 0 "clean removes everything"
is "$(find "$CACHE/images" "$CACHE/blobs" "$CACHE/refs" -type f | wc -l)" 0 "images, blobs and tags"
is "$(in_image "docker://$REG/public/many:v1" cat /etc/served)" concurrent \
	"exec docker://REF pulls again what was cleaned"

done_testing
