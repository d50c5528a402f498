#!/bin/sh
# capsula pull from a real registry (Debian's docker-registry) on 127.0.0.1
# with TLS from a test CA and basic authentication, and from one over plain
# HTTP: credentials, TLS, errors, whiteouts and zstd layers, platforms, a
# tampered blob, and pulls interrupted (registry stopped, pull killed) then
# completed without fetching again what had arrived.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
. "$abs_top_srcdir/tests/lib/layout.sh"
. "$abs_top_srcdir/tests/lib/registry.sh"
registry_test_start
registry_start "$WORK/r1" htpasswd || bail_out "the registry did not start (see above)"
R1=$REG
CREDS="$REG_USER:$REG_PASSWORD"
CACHE=$WORK/cache
AUTH=$WORK/auth.json

pull() {  # [NAME=VALUE...] [OPTIONS] REF [OUT]: as the user, with the test CA
	as_user CAPSULA_CACHEDIR="$CACHE" REGISTRY_AUTH_FILE="$AUTH" CAPSULA_TLS_CA="$WORK/ca.crt" \
		"$CAPSULA" pull "$@"
}
in_image() {  # IMAGE COMMAND...
	img=$1; shift
	as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" exec "$img" "$@"
}
digest_of() { printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"; }

# Three layers: busybox (gzip); a whiteout and an opaque directory (tar);
# a file in a zstd layer.
echo '{"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]}, "rootfs": {"type": "layers"}}' \
	> "$WORK/config.json"
mkdir -p "$WORK/l1/bin" "$WORK/l1/etc/opaque" "$WORK/l2/etc/opaque" "$WORK/l3/etc"
cp "$busybox" "$WORK/l1/bin/busybox"
for applet in sh cat ls sha256sum test; do ln -s busybox "$WORK/l1/bin/$applet"; done
echo lower > "$WORK/l1/etc/gone"
echo lower > "$WORK/l1/etc/opaque/old"
: > "$WORK/l2/etc/.wh.gone"
: > "$WORK/l2/etc/opaque/.wh..wh..opq"
echo upper > "$WORK/l2/etc/opaque/new"
echo zstd > "$WORK/l3/etc/from-zstd"
tar --owner=0 --group=0 -C "$WORK/l1" -cf - . | gzip -n > "$WORK/l1.tar.gz"
tar --owner=0 --group=0 -C "$WORK/l2" -cf "$WORK/l2.tar" .
tar --owner=0 --group=0 -C "$WORK/l3" -cf - . | zstd -q > "$WORK/l3.tar.zst"
make_layout "$WORK/layout" v1 "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/l2.tar" "$WORK/l3.tar.zst"
ok "skopeo pushes a three-layer image to the registry" push "$WORK/layout:v1" app:v1 "$CREDS"

# ---------------------------------------------------------------- credentials

out=$(pull -q "$R1/app:v1" 2>&1); rc=$?
is "$rc" 125 "without credentials the pull fails with status 125"
like "$out" "access denied by $R1.*capsula login $R1" "saying so and how to log in"
is "$(printf '%s\n' "$out" | wc -l)" 1 "in one line"

out=$(as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_TLS_CA="$WORK/ca.crt" CAPSULA_DOCKER_USERNAME="$REG_USER" \
	CAPSULA_DOCKER_PASSWORD=wrong "$CAPSULA" pull -q "$R1/app:v1" 2>&1); rc=$?
is "$rc" 125 "a wrong password fails"
like "$out" "credentials from CAPSULA_DOCKER_USERNAME/PASSWORD were refused" \
	"naming where the credentials came from"

out=$(printf 'wrong\n' | as_user REGISTRY_AUTH_FILE="$AUTH" CAPSULA_TLS_CA="$WORK/ca.crt" \
	"$CAPSULA" login -u "$REG_USER" "$R1" 2>&1); rc=$?
is "$rc" 125 "login with a wrong password fails"
ok "and stores nothing" test ! -e "$AUTH"
out=$(printf '%s\n' "$REG_PASSWORD" | as_user REGISTRY_AUTH_FILE="$AUTH" \
	CAPSULA_TLS_CA="$WORK/ca.crt" "$CAPSULA" login -u "$REG_USER" "$R1" 2>&1); rc=$?
is "$rc" 0 "login with the right password (from standard input) succeeds"
is "$(stat -c %a "$AUTH" 2>/dev/null)" 600 "the credentials file is 0600"
is "$(jq -r ".auths[\"$R1\"].auth" "$AUTH" | base64 -d)" "$CREDS" "in the auths format docker reads"
unlike "$out" "s3cret" "login never prints the password"

mkdir -p "$WORK/xdg/containers" && cp "$AUTH" "$WORK/xdg/containers/auth.json"
chown -R "$TEST_UID:$TEST_GID" "$WORK/xdg" 2>/dev/null
path=$(pull -q "$R1/app:v1" 2>"$WORK/err"); rc=$?
is "$rc" 0 "with the stored credentials the pull succeeds"
like "$path" "^$CACHE/images/[0-9a-f]{64}\.sqfs$" "and prints the cached image's path"
unlike "$(cat "$WORK/err")" "s3cret" "without printing the password"
is "$(in_image "$path" cat /etc/opaque/new)" upper "the image runs"
is "$(in_image "$path" ls /etc/opaque)" new "an opaque directory hides the lower layer's files"
ok "a whiteout removes a lower layer's file" in_image "$path" test ! -e /etc/gone
is "$(in_image "$path" cat /etc/from-zstd)" zstd "a zstd layer is read"
is "$(in_image "docker://$R1/app:v1" cat /etc/opaque/new)" upper \
	"exec docker://REF runs the pulled image from the cache"
as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" instance start "docker://$R1/app:v1" pulled 2>/dev/null
is "$(as_user "$CAPSULA" exec instance://pulled cat /etc/opaque/new)" upper \
	"an instance starts from docker://REF"
as_user "$CAPSULA" instance stop pulled >/dev/null 2>&1
manifest=$(curl -sI --cacert "$WORK/ca.crt" -u "$CREDS" \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json' "https://$R1/v2/app/manifests/v1" |
	tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
is "$(basename "$path" .sqfs)" "${manifest#sha256:}" "the image is named by its manifest digest"
is "$(blob_gets "$WORK/r1" "$(digest_of "$WORK/l1.tar.gz")")" 1 "each blob was fetched once"

# Docker's own formats (which have no zstd): skopeo writes schema 2 v2.
make_layout "$WORK/layout" docker "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/l2.tar"
skopeo copy -q --format v2s2 --dest-creds "$CREDS" --dest-cert-dir "$WORK/certs" \
	"oci:$WORK/layout:docker" "docker://$R1/app:docker"
docker_image=$(as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_TLS_CA="$WORK/ca.crt" \
	XDG_RUNTIME_DIR="$WORK/xdg" "$CAPSULA" pull "$R1/app:docker" 2>"$WORK/err")
is "$(in_image "$docker_image" cat /etc/opaque/new)" upper \
	"a Docker schema 2 manifest pulls, with credentials from \$XDG_RUNTIME_DIR/containers/auth.json"
like "$(cat "$WORK/err")" "^capsula: layer 1/2 sha256:[0-9a-f]{12}: " \
	"without a terminal, one line per blob"

pull -q "$R1/app:v1" "$WORK/out.sqfs" >/dev/null 2>&1
ok "pull REF OUT.sqfs writes the image there too" cmp "$path" "$WORK/out.sqfs"
out=$(pull -q "$R1/app:v1" "$WORK/out.sqfs" 2>&1); rc=$?
is "$rc" 125 "and does not replace it without --force"
is "$(blob_gets "$WORK/r1" "$(digest_of "$WORK/l1.tar.gz")")" 1 "pulling again fetches no blob"
as_user CAPSULA_CACHEDIR="$CACHE" REGISTRY_AUTH_FILE="$AUTH" CAPSULA_TLS_CA="$WORK/ca.crt" \
	"$CAPSULA" build -q "$WORK/built.sqfs" "docker://$R1/app:v1" 2>/dev/null
ok "capsula build OUT docker://REF makes the same image" cmp "$path" "$WORK/built.sqfs"

# ---------------------------------------------------------------- errors

out=$(as_user CAPSULA_CACHEDIR="$CACHE" REGISTRY_AUTH_FILE="$AUTH" "$CAPSULA" pull -q \
	"$R1/app:v1" 2>&1); rc=$?
is "$rc" 125 "a registry whose CA is not trusted fails"
like "$out" "TLS with $R1 failed.*--tls-ca" "naming the CA option"
out=$(pull -q "$R1/app:missing" 2>&1); rc=$?
is "$rc" 125 "a missing tag fails"
like "$out" "$R1/app:missing: not found on $R1 \(MANIFEST_UNKNOWN" "as not found, with the registry's code"
out=$(pull -q "$R1/nothing-here:v1" 2>&1); rc=$?
like "$out" "not found on $R1 \((NAME_UNKNOWN|MANIFEST_UNKNOWN)" "a missing repository fails as not found"
closed=$(free_port)
out=$(pull -q "127.0.0.1:$closed/app:v1" 2>&1); rc=$?
is "$rc" 125 "a registry that is not there fails"
like "$out" "cannot connect to 127.0.0.1:$closed.*registry runs" "as a refused connection, at once"
out=$(pull -q "no-such-host.invalid/app:v1" 2>&1); rc=$?
like "$out" "unknown host no-such-host.invalid" "an unknown host is named"
out=$(pull -q "$R1/App:v1" 2>&1); rc=$?
like "$out" "not a valid repository name" "a malformed reference is refused before any request"

# A registry that always says 429, with its reason and a Retry-After.
cat > "$WORK/busy" <<'BUSY'
#!/bin/sh
while read -r line && [ "$(printf '%s' "$line" | tr -d '\r')" != "" ]; do :; done
body='{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit reached"}]}'
printf 'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "${#body}" "$body"
BUSY
busy_port=$(free_port)
socat "TCP-LISTEN:$busy_port,bind=127.0.0.1,reuseaddr,fork" EXEC:"sh $WORK/busy" &
echo $! > "$WORK/busy.pid"
for _ in $(seq 50); do ss -ltn | grep -q ":$busy_port " && break; sleep 0.1; done
start=$(date +%s)
out=$(pull -q --insecure --retries 2 "127.0.0.1:$busy_port/app:v1" 2>&1); rc=$?
is "$rc" 125 "a registry that keeps answering 429 fails the pull"
like "$out" "too many requests to 127.0.0.1:$busy_port \(TOOMANYREQUESTS: pull rate limit reached\)" \
	"with the registry's own message"
ok "after trying again as Retry-After said (twice, 1 s each)" test $(($(date +%s) - start)) -ge 2
kill "$(cat "$WORK/busy.pid")" 2>/dev/null

# ---------------------------------------------------------------- tampering

mkdir -p "$WORK/t/etc"
echo "the registry's copy" > "$WORK/t/etc/data"
tar --owner=0 --group=0 -C "$WORK/t" -cf "$WORK/t.tar" .
make_layout "$WORK/layout" tampered "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/t.tar"
push "$WORK/layout:tampered" app:tampered "$CREDS"
layer=$(digest_of "$WORK/t.tar")
stored=$(find "$WORK/r1/storage" -path "*/blobs/sha256/*/${layer#sha256:}/data")
# Same size, one byte changed: only the digest can tell.
printf 'X' | dd of="$stored" bs=1 seek=600 conv=notrunc 2>/dev/null
out=$(pull -q "$R1/app:tampered" 2>&1); rc=$?
is "$rc" 125 "a blob changed in the registry's storage fails the pull"
like "$out" "blob $layer of $R1/app: received [0-9]+ bytes with digest sha256:" "naming the blob"
ok "nothing of it is kept in the cache" test ! -e "$CACHE/blobs/sha256/${layer#sha256:}"
ok "not even a partial download" test ! -e "$CACHE/partial/${layer#sha256:}"
ok "and no image is recorded for the tag" test ! -e "$CACHE/refs/$R1/app/tampered,linux-amd64"

# ---------------------------------------------------------------- platforms

mkdir -p "$WORK/amd/etc" "$WORK/arm/etc"
echo amd64 > "$WORK/amd/etc/platform"
echo arm64 > "$WORK/arm/etc/platform"
tar --owner=0 --group=0 -C "$WORK/amd" -cf "$WORK/amd.tar" .
tar --owner=0 --group=0 -C "$WORK/arm" -cf "$WORK/arm.tar" .
sed 's/"amd64"/"arm64"/' "$WORK/config.json" > "$WORK/config-arm.json"
amd=$(layout_manifest "$WORK/multi" "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/amd.tar")
arm=$(layout_manifest "$WORK/multi" "$WORK/config-arm.json" "$WORK/l1.tar.gz" "$WORK/arm.tar")
index=$(layout_platform_index "$WORK/multi" "$amd linux/amd64" "$arm linux/arm64")
layout_tag "$WORK/multi" multi application/vnd.oci.image.index.v1+json "$index"
ok "skopeo pushes a multi-platform index" push "$WORK/multi:multi" app:multi "$CREDS"
case $(uname -m) in
x86_64)
	path=$(pull -q "$R1/app:multi" 2>&1)
	is "$(in_image "$path" cat /etc/platform)" amd64 "an index gives this machine's image" ;;
*) skip "this machine is not amd64" ;;
esac
path=$(pull -q --platform linux/arm64 "$R1/app:multi" 2>&1)
is "$(in_image "$path" cat /etc/platform)" arm64 "--platform linux/arm64 picks the arm64 image"
out=$(pull -q --platform linux/s390x "$R1/app:multi" 2>&1); rc=$?
is "$rc" 125 "a platform the index lacks fails"
like "$out" "has no image for linux/s390x \(it has: linux/amd64, linux/arm64\); pick one with --platform" \
	"listing the platforms it has"

# ---------------------------------------------------------------- plain HTTP

registry_start "$WORK/r2" none plain || bail_out "the plain HTTP registry did not start"
R2=$REG
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$R2" > "$WORK/registries.conf"
skopeo --registries-conf "$WORK/registries.conf" copy -q --preserve-digests "oci:$WORK/layout:v1" "docker://$R2/public/app:v1"
out=$(pull -q "$R2/public/app:v1" 2>&1); rc=$?
is "$rc" 125 "a plain-HTTP registry is not reached without being named insecure"
like "$out" "$R2 answered without TLS .*use --insecure" \
	"HTTPS is tried, never plain HTTP as a fallback, and the line says to use --insecure"
path=$(pull -q --insecure "$R2/public/app:v1" 2>&1); rc=$?
is "$rc" 0 "--insecure pulls over plain HTTP, anonymously"
is "$(in_image "$path" cat /etc/opaque/new)" upper "the same image"

# exec, run, shell, inspect and instance start with docker://REF take the
# pull's --insecure and --tls-ca; the first pull says that it pulls.
out=$(as_user CAPSULA_CACHEDIR="$WORK/cache-plain" "$CAPSULA" exec "docker://$R2/public/app:v1" true 2>&1); rc=$?
is "$rc" 125 "exec docker://REF of a plain-HTTP registry without --insecure fails"
like "$out" "use --insecure" "and says to use --insecure"
out=$(as_user CAPSULA_CACHEDIR="$WORK/cache-plain" "$CAPSULA" exec --insecure "docker://$R2/public/app:v1" \
	cat /etc/opaque/new 2>"$WORK/exec-err"); rc=$?
is "$out" upper "exec --insecure docker://REF pulls over plain HTTP and runs"
like "$(cat "$WORK/exec-err")" "docker://$R2/public/app:v1 is not in the cache: pulling it" \
	"saying that it pulls"
is "$(as_user CAPSULA_CACHEDIR="$WORK/cache-plain-shell" "$CAPSULA" shell --insecure "docker://$R2/public/app:v1" \
	-c 'cat /etc/opaque/new' 2>/dev/null)" upper "shell --insecure docker://REF"
out=$(as_user CAPSULA_CACHEDIR="$WORK/cache-inspect" "$CAPSULA" inspect --insecure "docker://$R2/public/app:v1" 2>/dev/null); rc=$?
is "$rc" 0 "inspect --insecure docker://REF pulls and inspects"
like "$out" '^Env: +PATH=/bin$' "showing the image's config"
REG=$R1

# ---------------------------------------------------------------- interrupted

# 48 MiB that does not compress, fetched at 8 MiB/s: time to interrupt.
mkdir -p "$WORK/big"
head -c $((48 << 20)) /dev/urandom > "$WORK/big/data"
tar --owner=0 --group=0 -C "$WORK/big" -cf "$WORK/big.tar" .
make_layout "$WORK/layout" big "$WORK/config.json" "$WORK/l1.tar.gz" "$WORK/big.tar"
push "$WORK/layout:big" app:big "$CREDS"
big=$(digest_of "$WORK/big.tar")
partial=$CACHE/partial/${big#sha256:}
partial_size() { stat -c %s "$partial" 2>/dev/null || echo 0; }
wait_partial() {  # BYTES: until the partial download is at least that big
	for _ in $(seq 300); do
		[ "$(partial_size)" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
pull -q --parallel 1 --retries 0 --limit-rate 8M "$R1/app:big" >"$WORK/out1" 2>&1 &
bg=$!
wait_partial $((4 << 20)) || diag "the download did not start"
registry_stop "$WORK/r1"
wait $bg; rc=$?
is "$rc" 125 "a pull whose registry stops fails"
like "$(cat "$WORK/out1")" "blob $big" "naming the blob it was fetching"
have=$(partial_size)
ok "what had arrived is kept to resume" test "$have" -ge $((4 << 20))
ok "and no image is recorded" test ! -e "$CACHE/refs/$R1/app/big,linux-amd64"

registry_start "$WORK/r1" htpasswd || bail_out "the registry did not restart"
pull -q --parallel 1 --limit-rate 8M "$R1/app:big" >/dev/null 2>&1 &
bg=$!
wait_partial $((have + (4 << 20))) || diag "the second download did not start"
pkill -KILL -f "capsula-convert pull -q --parallel 1 --limit-rate 8M $R1/app:big"
wait $bg
ok "a pull killed mid-blob records no image" test ! -e "$CACHE/refs/$R1/app/big,linux-amd64"
path=$(pull -q "$R1/app:big" 2>&1); rc=$?
is "$rc" 0 "the next pull completes"
is "$(in_image "$path" sha256sum /data | cut -d' ' -f1)" "$(sha256sum "$WORK/big/data" | cut -d' ' -f1)" \
	"with every byte of the big layer right"
# The registry logs a request when it ends, so the first, cut by the
# registry's own death, is not there: every later one must be a range.
is "$(grep -c "\"GET /v2/app/blobs/$big HTTP/[0-9.]*\" 200 " "$WORK/r1/log")" 0 \
	"after the restart the big blob was never sent whole again"
ok "the later pulls asked only for the rest (206)" \
	test "$(grep -c "\"GET /v2/app/blobs/$big HTTP/[0-9.]*\" 206 " "$WORK/r1/log")" -ge 2
is "$(blob_gets "$WORK/r1" "$(digest_of "$WORK/l1.tar.gz")")" 1 \
	"a blob that had arrived was not fetched again"
ok "no partial download is left" test ! -e "$partial"

# ---------------------------------------------------------------- disk full

if is_root; then
	mkdir -p "$WORK/small"
	mount -t tmpfs -o size=8m,mode=0700 tmpfs "$WORK/small"
	chown "$TEST_UID:$TEST_GID" "$WORK/small"
	out=$(as_user CAPSULA_CACHEDIR="$WORK/small/cache" REGISTRY_AUTH_FILE="$AUTH" \
		CAPSULA_TLS_CA="$WORK/ca.crt" "$CAPSULA" pull -q "$R1/app:big" 2>&1); rc=$?
	is "$rc" 125 "a cache on a full disk fails the pull"
	like "$out" "No space left on device; free space there, or pull into another cache with CAPSULA_CACHEDIR" \
		"saying so and what to do"
	ok "recording no image" test ! -e "$WORK/small/cache/refs/$R1/app/big,linux-amd64"
	umount "$WORK/small"
else
	skip "filling a disk needs a tmpfs mounted as root"
fi

# ---------------------------------------------------------------- a terminal

if command -v script >/dev/null; then
	out=$(as_user CAPSULA_CACHEDIR="$WORK/tty-cache" REGISTRY_AUTH_FILE="$AUTH" \
		CAPSULA_TLS_CA="$WORK/ca.crt" script -qec "$CAPSULA pull $R1/app:v1" /dev/null 2>&1)
	like "$out" "layer 1/3 +sha256:[0-9a-f]{12} \[#+\] +[0-9.]+/[0-9.]+ MiB +[0-9.]+ MiB/s" \
		"on a terminal each layer has a progress bar with its rate"
	like "$out" "total +\[#+\]" "and the whole pull one more"
	# exec docker://REF on a terminal: the first rank of a job (or a plain
	# run) says it pulls and shows progress, the others stay quiet.
	out=$(as_user CAPSULA_CACHEDIR="$WORK/tty-exec-cache" REGISTRY_AUTH_FILE="$AUTH" \
		script -qec "$CAPSULA exec --tls-ca $WORK/ca.crt docker://$R1/app:v1 true" /dev/null 2>&1)
	like "$out" "pulling it" "exec docker://REF on a terminal says that it pulls"
	like "$out" "layer 1/3 +sha256:[0-9a-f]{12} \[#+\]" "with the pull's progress"
	out=$(as_user CAPSULA_CACHEDIR="$WORK/tty-rank-cache" REGISTRY_AUTH_FILE="$AUTH" \
		PMIX_NAMESPACE=job.1 PMIX_RANK=1 \
		script -qec "$CAPSULA exec --tls-ca $WORK/ca.crt docker://$R1/app:v1 true" /dev/null 2>&1)
	unlike "$out" "pulling it|layer 1/3" "another rank of a job pulls in silence"
else
	skip "no script(1) to give the pull a terminal (apt-get install bsdutils)"
fi

# exec and instance start with --tls-ca (here, after the counts of fetches
# above, since they fetch into caches of their own).
out=$(as_user CAPSULA_CACHEDIR="$WORK/cache-tls" REGISTRY_AUTH_FILE="$AUTH" "$CAPSULA" exec "docker://$R1/app:v1" true 2>&1); rc=$?
is "$rc" 125 "exec docker://REF of a registry with a private CA fails without it"
like "$out" "give it with --tls-ca FILE" "naming --tls-ca"
out=$(as_user CAPSULA_CACHEDIR="$WORK/cache-tls" REGISTRY_AUTH_FILE="$AUTH" "$CAPSULA" exec --tls-ca "$WORK/ca.crt" "docker://$R1/app:v1" \
	cat /etc/opaque/new 2>/dev/null)
is "$out" upper "exec --tls-ca FILE docker://REF pulls and runs"
as_user CAPSULA_CACHEDIR="$WORK/cache-tls-instance" REGISTRY_AUTH_FILE="$AUTH" "$CAPSULA" instance start --tls-ca "$WORK/ca.crt" \
	"docker://$R1/app:v1" pulled-tls 2>/dev/null
is "$(as_user "$CAPSULA" exec instance://pulled-tls cat /etc/opaque/new 2>/dev/null)" upper \
	"instance start --tls-ca FILE docker://REF"
as_user "$CAPSULA" instance stop pulled-tls >/dev/null 2>&1

done_testing
