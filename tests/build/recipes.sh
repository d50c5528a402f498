#!/bin/sh
# capsula build from recipes, as an unprivileged user: Dockerfiles and
# definition files, what the image keeps (owners made by chown and useradd,
# ENV, WORKDIR, CMD, USER), the per-step cache and what invalidates it,
# multi-stage builds, build arguments, .dockerignore, hostile contexts, and
# a user without subordinate ids.
. "$abs_top_srcdir/tests/lib/common.sh"
require_containers

# Some steps run with the user's subordinate ids, which this test gives the
# user if it has none and takes away for the part without.
hold_subids
if is_root; then
	grep -q "^$TEST_USER:" /etc/subuid || echo "$TEST_USER:300000:65536" >> /etc/subuid
	grep -q "^$TEST_USER:" /etc/subgid || echo "$TEST_USER:300000:65536" >> /etc/subgid
fi

BASE=$STAGED_IMAGE
# The user's own cache, so that runs of this test do not see each other's.
build() {  # OUTPUT RECIPE-OR-CONTEXT [OPTIONS]: progress and errors on stdout
	out=$1 src=$2; shift 2
	as_user CAPSULA_CACHEDIR="$WORK/cache" "$CAPSULA" build "$@" "$out" "$src" 2>&1
}
in_image() {  # IMAGE COMMAND...
	img=$1; shift
	as_user "$CAPSULA" exec "$img" "$@"
}
context() {  # NAME: a fresh context directory of the user's
	rm -rf "${WORK:?}/$1"
	as_user mkdir -p "$WORK/$1"
	printf '%s\n' "$WORK/$1"
}
build_compressed() {  # OUTPUT RECIPE COMPRESSION ("default": capsula's own), replacing OUTPUT
	if [ "$3" = default ]; then
		build "$1" "$2" -F
	else
		build "$1" "$2" -F -c "$3"
	fi
}
owner_in() {  # IMAGE PATH: uid:gid as stored
	unsquashfs -lln "$1" "$2" 2>/dev/null | awk -v p="squashfs-root$2" '$NF == p {print $2}'
}
command -v unsquashfs >/dev/null || skip_all "no unsquashfs (apt-get install squashfs-tools)"

# ---------------------------------------------------------------- a Dockerfile

ctx=$(context app)
as_user sh -c "echo 'the data' > '$ctx/data.txt'; echo secret > '$ctx/secret.key'; printf '*.key\n' > '$ctx/.dockerignore'"
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
ENV GREETING=hello
ARG FLAVOUR=plain
RUN echo "\$GREETING \$FLAVOUR" > /made-by-run && mkdir -p /srv/app && chown 4321:4322 /srv/app
COPY . /srv/app/
WORKDIR /srv/app
CMD ["cat", "/srv/app/data.txt"]
EOF
out=$(build "$WORK/app.sqfs" "$ctx/Dockerfile"); rc=$?
is "$rc" 0 "a Dockerfile builds as the user"
[ "$rc" = 0 ] || diag "$out"
like "$out" '^\[1/6\] ENV GREETING=hello$' "each step is shown, numbered"
like "$out" '^capsula: wrote .*app.sqfs in [0-9.]+ s \(6 steps, 0 cached\)$' "and the summary says what was built"
is "$(as_user "$CAPSULA" run "$WORK/app.sqfs")" "the data" "CMD is what run runs"
like "$(as_user "$CAPSULA" inspect --json "$WORK/app.sqfs")" '"workdir": *"/srv/app"' "WORKDIR is in the image's config"
ok "and the directory is made" in_image "$WORK/app.sqfs" test -d /srv/app
is "$(in_image "$WORK/app.sqfs" sh -c 'echo $GREETING')" "hello" "ENV is in the image's environment"
is "$(in_image "$WORK/app.sqfs" cat /made-by-run)" "hello plain" "RUN saw ENV and ARG's default"
is "$(owner_in "$WORK/app.sqfs" /srv/app)" "4321/4322" "chown in RUN is kept in the image, with subordinate ids"
is "$(owner_in "$WORK/app.sqfs" /srv/app/data.txt)" "0/0" "COPY makes root's files by default"
ok ".dockerignore keeps files out" [ -z "$(owner_in "$WORK/app.sqfs" /srv/app/secret.key)" ]
ok "no image is left in the context's parent as a partial file" sh -c "! ls -a '$WORK' | grep -q partial"

# ---------------------------------------------------------------- the cache

out=$(build "$WORK/app.sqfs" "$ctx/Dockerfile" -F)
like "$out" '\(6 steps, 3 cached\)$' "a rebuild takes RUN, COPY and the WORKDIR from the cache"
as_user sh -c "echo 'new data' > '$ctx/data.txt'"
out=$(build "$WORK/app.sqfs" "$ctx/Dockerfile" -F)
like "$out" '\(6 steps, 1 cached\)$' "a changed file in the context rebuilds COPY, not RUN"
is "$(as_user "$CAPSULA" run "$WORK/app.sqfs")" "new data" "and the image has the new file"
out=$(build "$WORK/app.sqfs" "$ctx/Dockerfile" -F --build-arg FLAVOUR=spicy)
like "$out" '\(6 steps, 0 cached\)$' "another --build-arg value rebuilds the steps after the ARG"
is "$(in_image "$WORK/app.sqfs" cat /made-by-run)" "hello spicy" "and RUN saw it"
out=$(build "$WORK/app.sqfs" "$ctx/Dockerfile" -F --no-cache)
like "$out" '\(6 steps, 0 cached\)$' "--no-cache runs every step"
out=$(build "$WORK/app.sqfs" "$ctx/Dockerfile")
like "$out" "exists" "an existing output is kept without -F"
out=$(build "$WORK/arm.sqfs" "$ctx/Dockerfile" --platform linux/riscv64); rc=$?
is "$rc" 125 "--platform of another machine is refused"
like "$out" "not this machine's.*never emulated" "saying that steps run natively"

# docker's form: -f FILE and a context directory.
as_user mkdir -p "$ctx/docker"
as_user mv "$ctx/Dockerfile" "$ctx/docker/Dockerfile"
out=$(build "$WORK/f.sqfs" "$ctx" -f "$ctx/docker/Dockerfile"); rc=$?
is "$rc" 0 "-f FILE with a context directory builds"
is "$(as_user "$CAPSULA" run "$WORK/f.sqfs")" "new data" "with the context's files"

# The cache's build layers are listed and cleaned with the rest.
cache_cmd() { as_user CAPSULA_CACHEDIR="$WORK/cache" "$CAPSULA" cache "$@" 2>&1; }
like "$(cache_cmd list)" ' [1-9][0-9]* build layers \([0-9.]+ MiB\)$' "cache list counts the build layers"
like "$(cache_cmd clean)" '^capsula: removed [1-9][0-9]* files' "cache clean removes them"
like "$(cache_cmd list)" ' 0 build layers ' "and none is left"
out=$(build "$WORK/f.sqfs" "$ctx" -f "$ctx/docker/Dockerfile" -F)
like "$out" '\(6 steps, 0 cached\)$' "so the next build runs every step"

# ---------------------------------------------------------------- stages, heredocs, USER

ctx=$(context stages)
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE AS tools
RUN mkdir -p /out && echo "made in the first stage" > /out/tool.txt
RUN <<SCRIPT
echo line one > /out/heredoc.txt
echo line two >> /out/heredoc.txt
SCRIPT

FROM $BASE AS unused
RUN exit 3

FROM $BASE
COPY --from=tools /out/ /opt/
COPY --chown=55:66 <<NOTE /opt/note.txt
a note
NOTE
USER 1234
CMD ["id", "-u"]
EOF
out=$(build "$WORK/stages.sqfs" "$ctx/Dockerfile"); rc=$?
is "$rc" 0 "a multi-stage Dockerfile builds (a failing stage it does not use is not run)"
[ "$rc" = 0 ] || diag "$out"
is "$(in_image "$WORK/stages.sqfs" cat /opt/tool.txt)" "made in the first stage" "COPY --from takes a stage's files"
is "$(in_image "$WORK/stages.sqfs" cat /opt/heredoc.txt | tr '\n' ' ')" "line one line two " "RUN <<EOF runs the script"
is "$(in_image "$WORK/stages.sqfs" cat /opt/note.txt)" "a note" "COPY <<EOF writes the file"
is "$(owner_in "$WORK/stages.sqfs" /opt/note.txt)" "55/66" "with COPY --chown's owner"
like "$(as_user "$CAPSULA" inspect --json "$WORK/stages.sqfs")" '"user": *"1234"' "USER is in the image's config"
out=$(build "$WORK/target.sqfs" "$ctx/Dockerfile" --target tools); rc=$?
is "$rc" 0 "--target builds one stage"
ok "which is the stage named" in_image "$WORK/target.sqfs" test -f /out/tool.txt

# ---------------------------------------------------------------- the final image's data

# Files of several blocks, one with a hole, made by a step: the final image
# takes their blocks from the step's layer as stored (same compressor and
# block size) and compresses only the tails; an asked level compresses all
# again. Another reader (unsquashfs) must read what the step wrote.
ctx=$(context blocks)
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN mkdir /d && head -c 700000 /dev/urandom > /d/random && seq 1 90000 > /d/text && \\
    dd if=/dev/urandom of=/d/holey bs=131072 count=1 seek=4 2>/dev/null && \\
    cd /d && sha256sum random text holey > /sums
EOF
for compression in default zstd:4; do
	out=$(build_compressed "$WORK/blocks.sqfs" "$ctx/Dockerfile" "$compression"); rc=$?
	is "$rc" 0 "a step's multi-block files build into an image ($compression compression)"
	[ "$rc" = 0 ] || diag "$out"
	read_back=$(cd "$WORK" && for f in random text holey; do
		printf '%s  %s\n' "$(unsquashfs -cat blocks.sqfs "d/$f" | sha256sum | cut -d' ' -f1)" "$f"
	done)
	is "$read_back" "$(unsquashfs -cat "$WORK/blocks.sqfs" sums)" \
		"and another reader reads what the step wrote ($compression compression)"
done

# Small files and the tails of larger ones lie packed in fragment blocks.
# Those of a step's layer that the image keeps (at least half of each) go
# into it as the layer stores them, neither uncompressed nor packed again;
# a later step deleting most of a block's files has its survivors packed
# anew. Another reader reads every file as the steps wrote it; an asked
# level compresses all again.
ctx=$(context fragments)
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN mkdir /kept /thinned && for i in \$(seq 1 300); do seq \$i \$((i * 9)) > /kept/k\$i; \\
        seq \$i \$((i * 8)) > /thinned/t\$i; done && head -c 300000 /dev/urandom > /kept/tail && \\
    ln /kept/k1 /kept/k1-link
RUN rm /thinned/t*[1-9]
RUN cd / && find kept thinned -type f | sort | xargs sha256sum > /sums
EOF
fragments_of() {  # IMAGE OUTPUT: its fragment blocks as stored, sorted
	"$abs_top_builddir/tests/build/fragment-blocks" "$1" | sort > "$2"
}
for compression in default zstd:4; do
	out=$(build_compressed "$WORK/fragments.sqfs" "$ctx/Dockerfile" "$compression"); rc=$?
	is "$rc" 0 "a step's small files build into an image ($compression compression)"
	[ "$rc" = 0 ] || diag "$out"
	read_back=$(cd "$WORK" && unsquashfs -cat fragments.sqfs sums | while read -r _ f; do
		printf '%s  %s\n' "$(unsquashfs -cat fragments.sqfs "$f" | sha256sum | cut -d' ' -f1)" "$f"
	done)
	is "$read_back" "$(unsquashfs -cat "$WORK/fragments.sqfs" sums)" \
		"and another reader reads them as the steps wrote them ($compression compression)"
	# The first step's layer: the one that holds /kept/k300.
	layer=$(for l in "$WORK"/cache/build/layers/*.sqfs; do
		unsquashfs -l "$l" 2>/dev/null | grep -q 'kept/k300$' && printf '%s\n' "$l"; done)
	fragments_of "$layer" "$WORK/layer.fragments"
	fragments_of "$WORK/fragments.sqfs" "$WORK/image.fragments"
	taken=$(comm -12 "$WORK/layer.fragments" "$WORK/image.fragments" | wc -l)
	if [ "$compression" = default ]; then
		ok "the image took fragment blocks of the step's layer as stored ($taken of $(wc -l < "$WORK/layer.fragments"))" \
			[ "$taken" -gt 0 ]
	else
		is "$taken" 0 "none when a level is asked: all compressed again"
	fi
done

# ---------------------------------------------------------------- failures

ctx=$(context failing)
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN echo before
RUN echo the step says why >&2; exit 7
EOF
out=$(build "$WORK/failing.sqfs" "$ctx/Dockerfile"); rc=$?
is "$rc" 125 "a failing RUN fails the build with 125"
like "$out" 'the step says why' "the step's own output is shown"
like "$out" '^capsula: .*Dockerfile:3: RUN .*: exit status 7; ' "the error names the file, the line and the status"
ok "no image is written" [ ! -e "$WORK/failing.sqfs" ]

# A step that fills the disk its work goes to: a 16 MiB tmpfs as TMPDIR.
if is_root; then
	mkdir -p "$WORK/small" && mount -t tmpfs -o size=16m,mode=0700 tmpfs "$WORK/small" &&
		chown "$TEST_UID:$TEST_GID" "$WORK/small"
	as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN dd if=/dev/zero of=/big bs=1M count=64
EOF
	layers_before=$(find "$WORK/cache" -name '*.sqfs' | wc -l)
	out=$(as_user TMPDIR="$WORK/small" CAPSULA_CACHEDIR="$WORK/cache" "$CAPSULA" build \
		"$WORK/full.sqfs" "$ctx/Dockerfile" 2>&1); rc=$?
	is "$rc" 125 "a step that fills the disk fails the build"
	like "$out" '^capsula: .*Dockerfile:2: RUN dd .*: exit status 1; ' "in one line naming the step"
	is "$(find "$WORK/cache" -name '*.sqfs' | wc -l)" "$layers_before" "and nothing is cached"
	left=$(find "$WORK/small" -mindepth 1)
	is "$(printf "%s" "$left" | grep -c .)" 0 "nor left in TMPDIR once the build has returned"
	[ -z "$left" ] || diag "left: $left"
	umount "$WORK/small"
else
	for _ in 1 2 3 4; do skip "a small tmpfs for TMPDIR needs root to mount"; done
fi

as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
COPY ../outside.txt /
EOF
as_user sh -c "echo outside > '$WORK/outside.txt'"
out=$(build "$WORK/escape.sqfs" "$ctx/Dockerfile"); rc=$?
is "$rc" 125 "COPY of a path outside the context is refused"
like "$out" 'outside the (build )?context' "saying why"

as_user ln -s /etc/shadow "$ctx/link"
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
COPY link /copied-link
EOF
out=$(build "$WORK/link.sqfs" "$ctx/Dockerfile"); rc=$?
is "$rc" 0 "a symbolic link in the context that points out of it builds"
is "$(in_image "$WORK/link.sqfs" readlink /copied-link)" "/etc/shadow" "it is copied as a link, not followed"

# An absolute source is the context's, as docker has it, never the host's.
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
COPY /etc/hostname /copied-hostname
EOF
out=$(build "$WORK/absolute.sqfs" "$ctx/Dockerfile"); rc=$?
is "$rc" 125 "COPY of an absolute path the context lacks is refused (the host's file is not taken)"
like "$out" 'not in the build context' "saying where it looked"

# A FIFO in the context is copied as a FIFO, and the build does not wait on it.
as_user rm -f "$ctx/link"
as_user mkfifo "$ctx/pipe"
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
COPY . /ctx/
EOF
out=$(as_user timeout 60 env CAPSULA_CACHEDIR="$WORK/cache" "$CAPSULA" build "$WORK/fifo.sqfs" "$ctx/Dockerfile" 2>&1); rc=$?
is "$rc" 0 "a context with a FIFO builds"
ok "and the FIFO is a FIFO in the image" in_image "$WORK/fifo.sqfs" test -p /ctx/pipe

# What a step leaves running (a daemon a package's script started) does
# not outlive the step: the build waits for it a moment, then ends it.
marker="sleep 7$$"
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN ($marker &) ; echo started
EOF
# To a file, not a pipe: a process left behind would keep a pipe open,
# and the check below must fail, not wait for it.
build "$WORK/daemon.sqfs" "$ctx/Dockerfile" > "$WORK/daemon.out" 2>&1; rc=$?
out=$(cat "$WORK/daemon.out")
is "$rc" 0 "a step that leaves a process running builds"
[ "$rc" = 0 ] || diag "$out"
left=$(pgrep -u "$TEST_UID" -f "$marker")
# Ended before the check, which may end the test (make check-mutants).
[ -z "$left" ] || { diag "left: $left"; pkill -u "$TEST_UID" -f "$marker"; }
is "$(printf "%s" "$left" | grep -c .)" 0 "and nothing the step started is left once the build returns"

as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN ls $TEST_HOME/ > /home-seen 2>&1 || echo unreachable > /home-seen
EOF
out=$(build "$WORK/home.sqfs" "$ctx/Dockerfile")
is "$(in_image "$WORK/home.sqfs" cat /home-seen)" "unreachable" "a step does not see the user's home"

# A file an earlier layer already has, written again by a later step, is
# kept once in the image (the bytes compared, not guessed): here 1 MiB of
# random bytes copied, beside 1 MiB of other random bytes; a copy keeps
# its own mode, owner and links, not those of the file it copies.
ctx=$(context dedup)
as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN head -c 1048576 /dev/urandom > /one && head -c 1048576 /dev/urandom > /other && ln /one /one-link
RUN cp /one /two && cp /other /three && head -c 1048576 /dev/urandom > /four && \\
    chmod 444 /two && chown 4321:4322 /three
EOF
out=$(build "$WORK/dedup.sqfs" "$ctx/Dockerfile"); rc=$?
is "$rc" 0 "a recipe copying files of an earlier step builds"
[ "$rc" = 0 ] || diag "$out"
ok "the copies are the same bytes" in_image "$WORK/dedup.sqfs" sh -c 'cmp /one /two && cmp /other /three'
ok "and different files stay different" in_image "$WORK/dedup.sqfs" sh -c '! cmp -s /one /other && ! cmp -s /two /four'
is "$(in_image "$WORK/dedup.sqfs" stat -c '%a %h' /one /two)" "$(printf '644 2\n444 1')" \
	"a step's hard link is kept; a copy has its own mode and links"
is "$(owner_in "$WORK/dedup.sqfs" /three)" "4321/4322" "and its own owner"
base_size=$(stat -c %s "$BASE")
size=$(stat -c %s "$WORK/dedup.sqfs")
ok "the image keeps the copied data once ($size bytes over a $base_size-byte base, 5 MiB of files)" \
	[ "$size" -lt $((base_size + 3 * 1048576 + 262144)) ]

# ---------------------------------------------------------------- a definition file

ctx=$(context def)
as_user sh -c "echo hi > '$ctx/hello.txt'"
as_user sh -c "cat > '$ctx/app.def'" <<EOF
Bootstrap: localimage
From: $BASE

%files
    hello.txt /opt/hello.txt

%environment
    export APP_MODE=production

%post
    mkdir -p /opt/app
    echo "built at post" > /opt/app/post.txt
    chown 777:778 /opt/app

%runscript
    echo "runscript args: \$*"

%test
    test -f /opt/app/post.txt

%labels
    Version 1.0
EOF
out=$(build "$WORK/def.sqfs" "$ctx/app.def"); rc=$?
is "$rc" 0 "a definition file builds"
[ "$rc" = 0 ] || diag "$out"
is "$(as_user "$CAPSULA" run "$WORK/def.sqfs" a b)" "runscript args: a b" "%runscript is what run runs"
is "$(in_image "$WORK/def.sqfs" cat /opt/hello.txt)" "hi" "%files are copied"
is "$(in_image "$WORK/def.sqfs" sh -c 'echo $APP_MODE')" "production" "%environment is set"
is "$(owner_in "$WORK/def.sqfs" /opt/app)" "777/778" "chown in %post is kept"
like "$(as_user "$CAPSULA" inspect "$WORK/def.sqfs")" 'Version=1.0' "%labels are the image's labels"
is "$(in_image "$WORK/def.sqfs" cat /.singularity.d/labels.json | jq -r .Version)" "1.0" \
	"and are in Apptainer's labels.json"
like "$out" '%test' "%test runs after the build"
as_user sh -c "sed -i 's|test -f /opt/app/post.txt|test -f /opt/app/missing|' '$ctx/app.def'"
out=$(build "$WORK/def-test.sqfs" "$ctx/app.def"); rc=$?
is "$rc" 125 "a failing %test fails the build"
ok "and leaves no image" [ ! -e "$WORK/def-test.sqfs" ]
out=$(build "$WORK/def-test.sqfs" "$ctx/app.def" --notest); rc=$?
is "$rc" 0 "--notest skips it"

# Stages of a definition file: %files from an earlier one; %startscript and
# %help are kept where Apptainer keeps them, and inspect shows them.
as_user sh -c "cat > '$ctx/stages.def'" <<EOF
Bootstrap: localimage
From: $BASE
Stage: compile

%post
    echo compiled-in-stage-one > /built.txt

Bootstrap: localimage
From: $BASE
Stage: final

%files from compile
    /built.txt /opt/built.txt

%startscript
    echo service-started

%help
    Says hello.
    Run it with no arguments.
EOF
out=$(build "$WORK/def-stages.sqfs" "$ctx/stages.def"); rc=$?
is "$rc" 0 "a definition file of two stages builds"
[ "$rc" = 0 ] || diag "$out"
is "$(in_image "$WORK/def-stages.sqfs" cat /opt/built.txt)" "compiled-in-stage-one" \
	"%files from STAGE copies what that stage made"
ok "the first stage's own files stay out" in_image "$WORK/def-stages.sqfs" sh -c '! test -e /built.txt'
like "$(in_image "$WORK/def-stages.sqfs" cat /.singularity.d/startscript)" 'echo service-started' \
	"%startscript is Apptainer's startscript"
is "$(in_image "$WORK/def-stages.sqfs" stat -c %a /.singularity.d/startscript)" "755" "and can be run"
like "$(in_image "$WORK/def-stages.sqfs" cat /.singularity.d/runscript.help)" 'Says hello' \
	"%help is Apptainer's runscript.help"
info=$(as_user "$CAPSULA" inspect "$WORK/def-stages.sqfs")
like "$info" '^Help: +Says hello\.$' "inspect shows the help"
like "$info" '^ +Run it with no arguments\.$' "all of it"
like "$info" '^Startscript: +/\.singularity\.d/startscript$' "and that there is a startscript"
is "$(as_user "$CAPSULA" inspect --json "$WORK/def-stages.sqfs" | jq -r .startscript)" \
	"$(in_image "$WORK/def-stages.sqfs" cat /.singularity.d/startscript)" "inspect --json has the startscript"

# ---------------------------------------------------------------- a Debian base

# The suite's Debian image (made with mmdebstrap); what ch-image fails at:
# a user made by useradd owning a directory, and apt-get from the mirror.
debian=$abs_top_builddir/tests/images/mpi.sqfs
if [ -r "$debian" ]; then
	debian=$(stage_file "$debian")
	ctx=$(context debian)
	as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $debian
RUN useradd -u 4321 svc && mkdir -p /var/lib/svc && chown svc:svc /var/lib/svc
USER svc
RUN id -u > /var/lib/svc/uid && touch /var/lib/svc/made-by-svc
EOF
	out=$(build "$WORK/debian.sqfs" "$ctx/Dockerfile"); rc=$?
	is "$rc" 0 "useradd and chown of a new user build on a Debian base"
	[ "$rc" = 0 ] || diag "$out"
	is "$(owner_in "$WORK/debian.sqfs" /var/lib/svc)" "4321/4321" "the directory is the new user's in the image"
	is "$(in_image "$WORK/debian.sqfs" cat /var/lib/svc/uid)" "4321" "RUN after USER svc runs as svc"
	is "$(owner_in "$WORK/debian.sqfs" /var/lib/svc/made-by-svc)" "4321/4321" "and what it makes is svc's"

	as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $debian
RUN --mount=type=cache,target=/var/cache/apt rm -f /etc/apt/apt.conf.d/docker-clean; \\
    apt-get update -qq && apt-get install -y -qq --no-install-recommends hello
EOF
	if getent hosts deb.debian.org >/dev/null 2>&1; then
		out=$(build "$WORK/apt.sqfs" "$ctx/Dockerfile"); rc=$?
		is "$rc" 0 "apt-get install from Debian's mirror builds, unprivileged"
		[ "$rc" = 0 ] || diag "$(printf '%s\n' "$out" | tail -n 5)"
		is "$(in_image "$WORK/apt.sqfs" hello)" "Hello, world!" "and the package runs in the image"
		ok "apt's downloads (the cache mount) are not in the image" \
			sh -c "! unsquashfs -lln '$WORK/apt.sqfs' | grep -q 'var/cache/apt/archives/hello'"
		printf 'RUN --mount=type=cache,target=/var/cache/apt ls /var/cache/apt/archives/ > /cached-debs\n' |
			as_user sh -c "cat >> '$ctx/Dockerfile'"
		out=$(build "$WORK/apt2.sqfs" "$ctx/Dockerfile")
		like "$(in_image "$WORK/apt2.sqfs" cat /cached-debs)" '^hello_.*\.deb$' \
			"a later build finds them in the cache mount"
	else
		for _ in 1 2 3 4; do skip "no Debian mirror reachable from this machine"; done
	fi
else
	for _ in 1 2 3 4 5 6 7 8; do skip "the suite's Debian image was not built"; done
fi

# ---------------------------------------------------------------- without subordinate ids

if is_root; then
	without_subids
	ctx=$(context nosubids)
	as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN mkdir /made && chown 4321:4322 /made && touch /made/file && chown 99 /made/file
USER 4321
RUN id -u > /tmp/uid-in-run
EOF
	out=$(build "$WORK/nosubids.sqfs" "$ctx/Dockerfile" --no-cache); rc=$?
	is "$rc" 0 "without subordinate ids, chown in RUN still builds"
	[ "$rc" = 0 ] || diag "$out"
	is "$(owner_in "$WORK/nosubids.sqfs" /made)" "4321/4322" "and the owner it asked for is in the image"
	is "$(owner_in "$WORK/nosubids.sqfs" /made/file)" "99/0" "for files too"
	like "$out" 'USER 4321.*subordinate|subordinate ids.*USER' "a RUN under USER warns that it runs as root"
	if [ -r "$debian" ]; then
		as_user sh -c "cat > '$ctx/Dockerfile'" <<EOF
FROM $debian
RUN useradd -u 4321 svc && mkdir -p /var/lib/svc && chown svc:svc /var/lib/svc
EOF
		out=$(build "$WORK/debian-nosubids.sqfs" "$ctx/Dockerfile" --no-cache); rc=$?
		is "$rc" 0 "without subordinate ids, useradd and chown build on a Debian base"
		is "$(owner_in "$WORK/debian-nosubids.sqfs" /var/lib/svc)" "4321/4321" "and the owner is kept"
	else
		skip "the suite's Debian image was not built"
		skip "the suite's Debian image was not built"
	fi
else
	for _ in 1 2 3 4 5 6; do skip "building without subordinate ids needs /etc/subuid edited as root"; done
fi


# Reproducible builds: the same Dockerfile built twice, every step run again
# a second later, gives the same bytes with SOURCE_DATE_EPOCH or
# --reproducible; without, the times the steps ran differ.
ctx=$(context repro)
as_user sh -c "echo data > '$ctx/file' && cat > '$ctx/Dockerfile'" <<EOF
FROM $BASE
RUN mkdir -p /opt/app/empty && echo built > /opt/app/version && ln -s version /opt/app/current && ln /opt/app/version /opt/app/hard
COPY file /opt/app/
EOF
for n in 1 2; do
	build "$WORK/repro$n.sqfs" "$ctx/Dockerfile" -q --no-cache --reproducible > "$WORK/repro$n.out"
	as_user env SOURCE_DATE_EPOCH=1700000000 CAPSULA_CACHEDIR="$WORK/cache" "$CAPSULA" build -q --no-cache \
		"$WORK/epoch$n.sqfs" "$ctx/Dockerfile" > "$WORK/epoch$n.out" 2>&1
	build "$WORK/plain$n.sqfs" "$ctx/Dockerfile" -q --no-cache > "$WORK/plain$n.out"
	sleep 1.1
done
sum() { sha256sum "$1" | cut -d' ' -f1; }
is "$(sum "$WORK/repro1.sqfs")" "$(sum "$WORK/repro2.sqfs")" "two --reproducible builds are byte for byte the same"
[ -s "$WORK/repro1.out" ] && diag "$(cat "$WORK/repro1.out")"
is "$(sum "$WORK/epoch1.sqfs")" "$(sum "$WORK/epoch2.sqfs")" "so are two builds with SOURCE_DATE_EPOCH"
ok "which differ from the --reproducible ones (their time is another)" differ_nonempty \
	"$(sum "$WORK/epoch1.sqfs")" "$(sum "$WORK/repro1.sqfs")"
ok "two builds without differ (the control)" differ_nonempty "$(sum "$WORK/plain1.sqfs")" "$(sum "$WORK/plain2.sqfs")"
like "$(TZ=UTC unsquashfs -lls "$WORK/epoch1.sqfs" /opt/app/version 2>/dev/null)" '2023-11-14 22:13 squashfs-root/opt/app/version' \
	"a file a step wrote has the time SOURCE_DATE_EPOCH says"
out=$(as_user "$CAPSULA" inspect "$WORK/epoch1.sqfs")
like "$out" "Recipe: +FROM $BASE" "capsula inspect shows the recipe the image was built from"
like "$out" "^ +COPY file /opt/app/$" "all of it"
is "$(as_user "$CAPSULA" inspect --json "$WORK/epoch1.sqfs" | jq -r .recipe | grep -c '^COPY file /opt/app/$')" 1 \
	"and so does its JSON"

done_testing
