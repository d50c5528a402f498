#!/bin/sh
# capsula inspect, as text and as JSON a JSON parser reads.
. "$abs_top_srcdir/tests/lib/common.sh"
command -v jq >/dev/null || skip_all "no jq to read the JSON output (apt-get install jq)"

out=$(as_user "$CAPSULA" inspect "$IMAGE"); rc=$?
is "$rc" 0 "inspect exits 0"
like "$out" "^Format: +squashfs 4.0$" "text: the format"
like "$out" "^Compression: +(gzip|zstd|xz|lz4)$" "text: the compression"
like "$out" "^Files: +[0-9]+$" "text: the file count"

json=$(as_user "$CAPSULA" inspect --json "$IMAGE"); rc=$?
is "$rc" 0 "inspect --json exits 0"
is_json "$json" "inspect --json prints valid JSON"
is "$(printf '%s' "$json" | jq -r .size)" "$(stat -c %s "$IMAGE")" "JSON: the size is the file's"
is "$(printf '%s' "$json" | jq -r .block_size)" \
	"$(unsquashfs -s "$IMAGE" | sed -n 's/^Block size \([0-9]*\)$/\1/p')" "JSON: the block size is the image's"
is "$(printf '%s' "$json" | jq -r .files)" \
	"$(unsquashfs -s "$IMAGE" | sed -n 's/^Number of inodes \([0-9]*\)$/\1/p')" "JSON: the file count is the image's inode count"
is "$(printf '%s' "$json" | jq -r .mpi.openmpi)" "3.1.6" \
	"JSON: Open MPI from the version string of the image's libopen-pal (a stand-in)"
is "$(printf '%s' "$json" | jq -r .mpi.pmix)" "null" "JSON: no PMIx in the busybox image"

# An image with a config and labels, built by capsula.
mkdir -p "$WORK/l/bin" && echo hi > "$WORK/l/bin/hello"
tar -C "$WORK/l" -cf "$WORK/layer.tar" .
cat > "$WORK/config.json" <<'JSON'
{"config": {"Env": ["A=1"], "Cmd": ["/bin/hello"], "Labels": {"org.opencontainers.image.title": "t\u00e9st \"quoted\""}}}
JSON
echo '[{"Config": "config.json", "Layers": ["layer.tar"]}]' > "$WORK/manifest.json"
tar -C "$WORK" -cf "$WORK/docker.tar" manifest.json config.json layer.tar
chmod -R a+rX "$WORK"
as_user "$CAPSULA" build "$WORK/labelled.sqfs" "$WORK/docker.tar" || bail_out "build failed"
json=$(as_user "$CAPSULA" inspect --json "$WORK/labelled.sqfs")
is "$(printf '%s' "$json" | jq -r '.labels["org.opencontainers.image.title"]')" \
	"$(printf 't\303\251st "quoted"')" "JSON: labels keep their text, quotes and non-ASCII included"
is "$(printf '%s' "$json" | jq -c .env)" '["A=1"]' "JSON: the image's Env"
is "$(printf '%s' "$json" | jq -c .cmd)" '["/bin/hello"]' "JSON: the image's Cmd"

# An image Apptainer built: its labels are in /.singularity.d/labels.json.
mkdir -p "$WORK/apptainer/.singularity.d"
printf '{"org.label-schema.build-arch": "amd64", "MAINTAINER": "hpc@site", "count": 3}' \
	> "$WORK/apptainer/.singularity.d/labels.json"
mksquashfs "$WORK/apptainer" "$WORK/apptainer.sqfs" -all-root -noappend -quiet -no-progress >/dev/null &&
	chmod a+r "$WORK/apptainer.sqfs"
out=$(as_user "$CAPSULA" inspect "$WORK/apptainer.sqfs" 2>&1)
like "$out" "^Labels: +.*MAINTAINER=hpc@site" "text: the labels of an Apptainer image"
is "$(as_user "$CAPSULA" inspect --json "$WORK/apptainer.sqfs" | jq -r '.labels["org.label-schema.build-arch"]')" \
	amd64 "JSON: the labels of an Apptainer image"
is "$(as_user "$CAPSULA" inspect --json "$WORK/apptainer.sqfs" | jq -r '.labels.count')" null \
	"a label that is not a string is left out"

if [ -r "$abs_top_builddir/tests/images/mpi.sqfs" ] && [ ! -e "$abs_top_builddir/tests/images/mpi.unavailable" ]; then
	mpi=$(stage_file "$abs_top_builddir/tests/images/mpi.sqfs")
	json=$(as_user "$CAPSULA" inspect --json "$mpi")
	like "$(printf '%s' "$json" | jq -r .mpi.openmpi)" '^4\.[0-9]+\.[0-9]+$' "the MPI image's Open MPI version"
	like "$(printf '%s' "$json" | jq -r .mpi.pmix)" '^[0-9]+\.[0-9]+' "its PMIx version"
	like "$(printf '%s' "$json" | jq -r .mpi.rdma_core)" '^[0-9]+' "its rdma-core version"
	like "$(printf '%s' "$json" | jq -r '.mpi.verbs_providers | join(" ")')" 'mlx5' "its verbs providers"
	like "$(as_user "$CAPSULA" inspect "$mpi")" "^Open MPI: +4\." "text: the Open MPI version"
else
	skip "the MPI image was not built"
fi

# An RPM distribution's layout: Open MPI under /usr/lib64/openmpi/lib, no
# dpkg database; found where the container's own check looks too.
mkdir -p "$WORK/rpm/usr/lib64/openmpi/lib"
printf 'stand-in\000v4.1.5\000' > "$WORK/rpm/usr/lib64/openmpi/lib/libopen-pal.so.40.30.2"
mksquashfs "$WORK/rpm" "$WORK/rpm.sqfs" -noappend -quiet -no-progress >/dev/null && chmod a+r "$WORK/rpm.sqfs"
is "$(as_user "$CAPSULA" inspect --json "$WORK/rpm.sqfs" | jq -r .mpi.openmpi)" "4.1.5" \
	"JSON: Open MPI under /usr/lib64/openmpi/lib"

err=$(as_user "$CAPSULA" inspect "$WORK/nope.sqfs" 2>&1); rc=$?
is "$rc" 125 "inspect of a missing image fails with 125"
like "$err" "^capsula: cannot open image" "and says why"

done_testing
