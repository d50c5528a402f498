#!/bin/sh
# Signatures: capsula sign writes cosign's form, and capsula pull checks it
# (--verify-key, and the site's image policy) against a real registry:
# signed images verify, whether capsula or openssl made the signature;
# unsigned ones, signatures by another key, over another digest or with a
# tampered payload are refused; a policy for reg/a does not cover reg/ab;
# a verified pull's record lets exec docker:// run with the registry gone.
# It writes the system's configuration file, so no other test may run.
export CAPSULA_TEST_EXCLUSIVE=1
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers
. "$abs_top_srcdir/tests/lib/layout.sh"
. "$abs_top_srcdir/tests/lib/registry.sh"
take_site_config "writing $CAPSULA_CONFIG_FILE needs root"
registry_test_start
trap 'registries_stop; release_site_config' EXIT
registry_start "$WORK/r1" htpasswd || bail_out "the registry did not start (see above)"
CACHE=$WORK/cache
K=$WORK/keys

capsula_as_user() {  # capsula COMMAND... as the user, logged in, with the test CA
	as_user CAPSULA_CACHEDIR="$CACHE" CAPSULA_DOCKER_USERNAME="$REG_USER" \
		CAPSULA_DOCKER_PASSWORD="$REG_PASSWORD" CAPSULA_TLS_CA="$WORK/ca.crt" "$CAPSULA" "$@"
}
pull() { capsula_as_user pull "$@"; }
api() {  # curl ARGS...: the registry's API as the test's pusher
	curl -sf --cacert "$WORK/ca.crt" -u "$REG_USER:$REG_PASSWORD" "$@"
}
upload_blob() {  # REPO FILE: prints its digest
	d=sha256:$(sha256sum "$2" | cut -d' ' -f1)
	loc=$(api -X POST -D - -o /dev/null "https://$REG/v2/$1/blobs/uploads/" |
		tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
	case $loc in /*) loc=https://$REG$loc ;; esac
	case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
	api -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" \
		"$loc${sep}digest=$d" -o /dev/null && echo "$d"
}
# A signature manifest made here, with openssl: PAYLOAD signed by KEY, put
# under the .sig tag of DIGEST in REPO.
put_signature() {  # REPO DIGEST PAYLOAD-FILE SIGNATURE-BASE64
	pd=$(upload_blob "$1" "$3") || return 1
	printf '{"architecture":"","config":{},"os":"","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$pd" \
		> "$WORK/sigconfig.json"
	cd_=$(upload_blob "$1" "$WORK/sigconfig.json") || return 1
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%s,"digest":"%s"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":%s,"digest":"%s","annotations":{"dev.cosignproject.cosign/signature":"%s"}}]}' \
		"$(wc -c < "$WORK/sigconfig.json")" "$cd_" "$(wc -c < "$3")" "$pd" "$4" > "$WORK/sigmanifest.json"
	api -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary "@$WORK/sigmanifest.json" -o /dev/null \
		"https://$REG/v2/$1/manifests/sha256-${2#sha256:}.sig"
}
payload_for() {  # REPOSITORY DIGEST
	printf '{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":null}' "$1" "$2"
}
digest_of_tag() {  # REPO:TAG
	skopeo inspect --cert-dir "$WORK/certs" --creds "$REG_USER:$REG_PASSWORD" --format '{{.Digest}}' \
		"docker://$REG/$1"
}

# Keys as a user makes them: ECDSA P-256 and Ed25519, and another P-256.
mkdir -p "$K"
for k in ec other; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/$k.key" 2>/dev/null
done
openssl genpkey -algorithm ED25519 -out "$K/ed.key" 2>/dev/null
for k in ec other ed; do openssl pkey -in "$K/$k.key" -pubout -out "$K/$k.pub" 2>/dev/null; done
chmod -R a+rX "$K"
chown -R "$TEST_UID" "$K"
ok "openssl made the keys" test -s "$K/ed.pub"

# Images: one layer each, different contents.
mkdir -p "$WORK/l1/bin"
cp "$busybox" "$WORK/l1/bin/busybox"
for applet in sh cat echo; do ln -s busybox "$WORK/l1/bin/$applet"; done
echo '{"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]}, "rootfs": {"type": "layers"}}' \
	> "$WORK/config.json"
for name in signed unsigned other forged tampered a/app ab/app rejected/app; do
	echo "$name" > "$WORK/l1/name"
	tar --owner=0 --group=0 -C "$WORK/l1" -cf - . | gzip -n > "$WORK/l.tar.gz"
	rm -rf "$WORK/layout"
	make_layout "$WORK/layout" v1 "$WORK/config.json" "$WORK/l.tar.gz"
	push "$WORK/layout:v1" "$name:v1" "$REG_USER:$REG_PASSWORD" || bail_out "skopeo could not push $name"
done

# ---------------------------------------------------------------- capsula sign

out=$(capsula_as_user sign --key "$K/ec.key" "docker://$REG/signed:v1" 2>&1); rc=$?
is "$rc" 0 "capsula sign signs an image in the registry"
like "$out" "signed $REG/signed:v1 \(sha256:[0-9a-f]{64}\) with .*ec.key \(SHA256:" "naming the digest and the key"
sigs=$(skopeo inspect --cert-dir "$WORK/certs" --creds "$REG_USER:$REG_PASSWORD" --raw \
	"docker://$REG/signed:sha256-$(digest_of_tag signed:v1 | cut -d: -f2).sig" 2>&1)
is "$(printf '%s' "$sigs" | jq -r '.layers[0].mediaType')" application/vnd.dev.cosign.simplesigning.v1+json \
	"under the sha256-HEX.sig tag, as cosign keeps it"
out=$(capsula_as_user sign -q --key "$K/ed.key" "docker://$REG/signed:v1" 2>&1); rc=$?
is "$rc" 0 "a second key signs too"
sigs=$(skopeo inspect --cert-dir "$WORK/certs" --creds "$REG_USER:$REG_PASSWORD" --raw \
	"docker://$REG/signed:sha256-$(digest_of_tag signed:v1 | cut -d: -f2).sig" 2>&1)
is "$(printf '%s' "$sigs" | jq '.layers | length')" 2 "beside the first signature"

out=$(pull --verify-key "$K/ec.pub" "$REG/signed:v1" 2>&1); rc=$?
is "$rc" 0 "a pull with --verify-key of the ECDSA key verifies"
like "$out" "signed:v1 is signed by SHA256:" "and says by which key"
out=$(pull -q --verify-key "$K/ed.pub" "$REG/signed:v1" 2>&1); rc=$?
is "$rc" 0 "so does one with the Ed25519 key"
out=$(pull -q --verify-key "$K/other.pub" "$REG/signed:v1" 2>&1); rc=$?
is "$rc" 125 "a pull wanting another key is refused"
like "$out" "none of its 2 signatures is by .*other.pub" "saying no signature is by that key"
out=$(pull -q --verify-key "$K/ec.pub" "$REG/unsigned:v1" 2>&1); rc=$?
is "$rc" 125 "an unsigned image is refused"
like "$out" "unsigned:v1 is not signed, and --verify-key wants a signature by" "saying it is not signed"
is "$(printf '%s\n' "$out" | wc -l)" 1 "in one line"

# ---------------------------------------------------------------- made by openssl

d=$(digest_of_tag other:v1)
payload_for "$REG/other" "$d" > "$WORK/payload.json"
sig=$(openssl dgst -sha256 -sign "$K/ec.key" "$WORK/payload.json" | base64 -w0)
ok "openssl's signature is stored as cosign stores one" put_signature other "$d" "$WORK/payload.json" "$sig"
out=$(pull -q --verify-key "$K/ec.pub" "$REG/other:v1" 2>&1); rc=$?
is "$rc" 0 "a signature made with openssl verifies"
[ "$rc" = 0 ] || diag "$out"
openssl pkeyutl -sign -rawin -inkey "$K/ed.key" -in "$WORK/payload.json" -out "$WORK/ed.sig" 2>/dev/null
ok "an Ed25519 signature made with openssl too" put_signature other "$d" "$WORK/payload.json" "$(base64 -w0 < "$WORK/ed.sig")"
out=$(pull -q --verify-key "$K/ed.pub" "$REG/other:v1" 2>&1); rc=$?
is "$rc" 0 "and verifies"

# A true signature of another image's digest, put under this one's tag.
d=$(digest_of_tag forged:v1)
payload_for "$REG/signed" "$(digest_of_tag signed:v1)" > "$WORK/payload.json"
sig=$(openssl dgst -sha256 -sign "$K/ec.key" "$WORK/payload.json" | base64 -w0)
put_signature forged "$d" "$WORK/payload.json" "$sig"
out=$(pull -q --verify-key "$K/ec.pub" "$REG/forged:v1" 2>&1); rc=$?
is "$rc" 125 "a signature over another digest is refused"
like "$out" "the payload signs sha256:[0-9a-f]{64}, not $d" "saying what it signs"

# A payload changed after it was signed.
d=$(digest_of_tag tampered:v1)
payload_for "$REG/tampered" "$d" > "$WORK/payload.json"
sig=$(openssl dgst -sha256 -sign "$K/ec.key" "$WORK/payload.json" | base64 -w0)
sed 's/"optional":null/"optional":{"by":"mallory"}/' "$WORK/payload.json" > "$WORK/tampered.json"
put_signature tampered "$d" "$WORK/tampered.json" "$sig"
out=$(pull -q --verify-key "$K/ec.pub" "$REG/tampered:v1" 2>&1); rc=$?
is "$rc" 125 "a tampered payload is refused"
like "$out" "no signature verifies with the key" "saying the signature does not verify"

# ---------------------------------------------------------------- the site's policy

cp "$K/ec.pub" "$WORK/site-ec.pub"
chown root:root "$WORK/site-ec.pub"
chmod 0644 "$WORK/site-ec.pub"
write_conf <<CONF
image policy = $REG/a signed-by $WORK/site-ec.pub
image policy = $REG/rejected reject
CONF
out=$(pull -q "$REG/a/app:v1" 2>&1); rc=$?
is "$rc" 125 "under a signed-by policy an unsigned image is refused"
like "$out" "is not signed, and the site's policy for $REG/a wants a signature by" "naming the policy"
out=$(pull -q "$REG/ab/app:v1" 2>&1); rc=$?
is "$rc" 0 "a policy for reg/a does not cover reg/ab"
out=$(pull -q "$REG/rejected/app:v1" 2>&1); rc=$?
is "$rc" 125 "a rejected prefix is refused"
like "$out" "the site's policy for $REG/rejected rejects it" "saying so"
ok "before asking the registry" test "$(grep -c 'GET /v2/rejected/' "$WORK/r1/log")" = 0
out=$(capsula_as_user sign -q --key "$K/ec.key" "docker://$REG/a/app:v1" 2>&1); rc=$?
is "$rc" 0 "once signed"
out=$(pull -q "$REG/a/app:v1" 2>&1); rc=$?
is "$rc" 0 "the policy's image pulls"
out=$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" inspect "docker://$REG/a/app:v1" 2>&1)
like "$out" "Signed by: +SHA256:[0-9a-f]{64} \(signature of sha256:[0-9a-f]{64}\)" \
	"capsula inspect shows who signed the pulled image"
like "$out" "Digest: +sha256:[0-9a-f]{64}" "and the digest it came from"

# exec docker:// on every rank checks the record the verified pull left.
registries_stop
out=$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" exec "docker://$REG/a/app:v1" cat /name 2>&1); rc=$?
is "$out" "a/app" "with the registry gone, exec docker:// runs the verified image from its record"
chmod 0666 "$WORK/site-ec.pub"
out=$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" exec "docker://$REG/a/app:v1" cat /name 2>&1); rc=$?
is "$rc" 125 "a site key others may write is refused"
like "$out" "site-ec.pub .* not root's alone" "saying why"
chmod 0644 "$WORK/site-ec.pub"
write_conf <<CONF
image policy = $REG/a signed-by $WORK/site-ec.pub $K/other.pub
CONF
chown root:root "$K/other.pub"
out=$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" exec "docker://$REG/a/app:v1" cat /name 2>&1); rc=$?
is "$out" "a/app" "a policy that adds a key still accepts the recorded signer"
write_conf <<CONF
image policy = $REG/a signed-by $K/other.pub
CONF
out=$(as_user CAPSULA_CACHEDIR="$CACHE" "$CAPSULA" exec "docker://$REG/a/app:v1" cat /name 2>&1); rc=$?
is "$rc" 125 "a policy whose keys the record lacks asks the registry again (gone: refused)"

done_testing
