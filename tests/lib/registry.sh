# A real registry for the pull tests: Debian's docker-registry (the
# distribution project's server) on 127.0.0.1 only, with a CA and a
# certificate made here, and basic (htpasswd) or token authentication.
# Needs WORK. registry_start sets REG (127.0.0.1:PORT).
# shellcheck shell=sh

REG_USER=puller
REG_PASSWORD='s3cret pass:1'

registry_require() {
	for tool in docker-registry skopeo openssl htpasswd socat curl; do
		command -v $tool >/dev/null 2>&1 ||
			skip_all "no $tool on the host (apt-get install docker-registry skopeo openssl apache2-utils socat curl)"
	done
}

# A CA, and a certificate for 127.0.0.1 signed by it, in DIR.
registry_certs() {  # DIR
	(cd "$1" &&
	 openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=capsula-test-ca \
		-keyout ca.key -out ca.crt &&
	 openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr &&
	 printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > server.ext &&
	 openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
		-extfile server.ext -out server.crt &&
	 mkdir -p certs && cp ca.crt certs/ca.crt && chmod a+r ca.crt certs certs/ca.crt) >/dev/null 2>&1
}

free_port() {
	while :; do
		port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
		ss -ltn | grep -q ":$port " || break
	done
	echo "$port"
}

# Start (or, given the same DIR again, restart on the same port and storage).
registry_start() {  # DIR AUTH(htpasswd|token|none) [plain]
	dir=$1
	mkdir -p "$dir/storage"
	[ -f "$dir/port" ] || free_port > "$dir/port"
	port=$(cat "$dir/port")
	if [ ! -f "$dir/config.yml" ]; then
		{
			printf 'version: 0.1\nlog:\n  level: info\n  formatter: text\n'
			printf 'storage:\n  filesystem:\n    rootdirectory: %s/storage\n' "$dir"
			printf '  delete:\n    enabled: true\n'
			printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
			if [ "${3:-}" != plain ]; then
				printf '  tls:\n    certificate: %s/server.crt\n    key: %s/server.key\n' "$WORK" "$WORK"
			fi
			case $2 in
			htpasswd)
				htpasswd -Bbn "$REG_USER" "$REG_PASSWORD" > "$dir/htpasswd"
				printf 'auth:\n  htpasswd:\n    realm: capsula-test\n    path: %s/htpasswd\n' "$dir" ;;
			token)
				printf 'auth:\n  token:\n    realm: https://127.0.0.1:%s/token\n' "$TOKEN_PORT"
				printf '    service: capsula-registry\n    issuer: capsula-test\n'
				printf '    rootcertbundle: %s/token.crt\n' "$WORK" ;;
			esac
		} > "$dir/config.yml"
	fi
	docker-registry serve "$dir/config.yml" >> "$dir/log" 2>&1 &
	echo $! > "$dir/pid"
	REG=127.0.0.1:$port
	scheme=https; [ "${3:-}" = plain ] && scheme=http
	for _ in $(seq 100); do
		curl -s -o /dev/null --cacert "$WORK/ca.crt" "$scheme://$REG/v2/" && return 0
		sleep 0.1
	done
	cat "$dir/log" >&2
	return 1
}

registry_stop() {  # DIR
	[ -f "$1/pid" ] && kill -9 "$(cat "$1/pid")" 2>/dev/null
	[ -f "$1/pid" ] && while kill -0 "$(cat "$1/pid")" 2>/dev/null; do sleep 0.05; done
	rm -f "$1/pid"
}

# How many times the registry in DIR served GET of blob DIGEST (200 or
# 206), from any repository or from REPO.
blob_gets() {  # DIR DIGEST [REPO]
	grep -c "\"GET /v2/${3:-[^ ]*}/blobs/$2 HTTP/[0-9.]*\" 20[06] " "$1/log"
}

# A token service as the registry's `auth: token` expects: JWTs signed
# with a key made here, served over TLS by socat, one bash per request.
token_service_start() {
	(cd "$WORK" &&
	 openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=capsula-test-token \
		-keyout token.key -out token.crt) >/dev/null 2>&1 || return 1
	TOKEN_PORT=$(free_port)
	TOKEN_DIR=$WORK TOKEN_USER=$REG_USER TOKEN_PASSWORD=$REG_PASSWORD \
	TOKEN_LIFETIME=${TOKEN_LIFETIME:-300} TOKEN_LOG=$WORK/token.log \
		socat "OPENSSL-LISTEN:$TOKEN_PORT,bind=127.0.0.1,reuseaddr,fork,cert=$WORK/server.crt,key=$WORK/server.key,verify=0" \
		EXEC:"bash $abs_top_srcdir/tests/pull/token-service" 2>>"$WORK/token.err" &
	echo $! > "$WORK/token.pid"
	for _ in $(seq 100); do
		curl -s -o /dev/null --cacert "$WORK/ca.crt" "https://127.0.0.1:$TOKEN_PORT/token" && return 0
		sleep 0.1
	done
	return 1
}

# A registry that answers what its files in DIR say (tests/pull/hostile-registry),
# plain HTTP on 127.0.0.1; sets HOSTILE (127.0.0.1:PORT).
hostile_start() {  # DIR
	mkdir -p "$1"
	port=$(free_port)
	HOSTILE_DIR=$1 HOSTILE_PORT=$port \
		socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
		EXEC:"bash $abs_top_srcdir/tests/pull/hostile-registry" 2>>"$1/err" &
	echo $! > "$1/pid"
	HOSTILE=127.0.0.1:$port
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://$HOSTILE/v2/" && return 0
		sleep 0.1
	done
	return 1
}

# Push an OCI layout's tagged image (all its platforms) as REPO:TAG.
push() {  # LAYOUT:TAG REPO:TAG [CREDENTIALS]
	skopeo copy -q --all --preserve-digests ${3:+--dest-creds "$3"} --dest-cert-dir "$WORK/certs" \
		"oci:$1" "docker://$REG/$2"
}

registries_stop() {  # stop every registry under WORK and the token service
	for pid in "$WORK"/*/pid "$WORK"/token.pid; do
		[ -f "$pid" ] && kill -9 "$(cat "$pid")" 2>/dev/null
	done
	return 0
}

# The pull tests' common start: the tools, a static busybox for the images,
# the test CA, and every server stopped at the end.
registry_test_start() {
	registry_require
	trap 'registries_stop; rm -rf "$WORK"' EXIT
	busybox=$(command -v busybox || echo /bin/busybox)
	[ -x "$busybox" ] || skip_all "no static busybox on the host (apt-get install busybox-static)"
	registry_certs "$WORK" || bail_out "cannot make the test CA and certificate"
}
