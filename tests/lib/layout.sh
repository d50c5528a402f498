# OCI layouts built by hand, so that their blobs can be tampered with and
# their indexes name platforms. Needs WORK, jq, sha256sum.
# shellcheck shell=sh

readable() { chmod -R a+rX "$@"; }

# layout_add_blob LAYOUT FILE: prints "DIGEST SIZE"
layout_add_blob() {
	sum=$(sha256sum "$2" | cut -d' ' -f1)
	mkdir -p "$1/blobs/sha256"
	cp "$2" "$1/blobs/sha256/$sum"
	printf 'sha256:%s %s' "$sum" "$(stat -c %s "$2")"
}

# layout_manifest LAYOUT CONFIG LAYER...: an image manifest blob, untagged;
# prints "DIGEST SIZE". A layer's type follows its name (.gz, .zst, else tar).
layout_manifest() {
	layout=$1 config=$2; shift 2
	mkdir -p "$layout"
	echo '{"imageLayoutVersion": "1.0.0"}' > "$layout/oci-layout"
	c=$(layout_add_blob "$layout" "$config")
	layers=""
	for layer in "$@"; do
		d=$(layout_add_blob "$layout" "$layer")
		case $layer in *.gz) type=tar+gzip ;; *.zst) type=tar+zstd ;; *) type=tar ;; esac
		layers="$layers${layers:+,}{\"mediaType\": \"application/vnd.oci.image.layer.v1.$type\", \"digest\": \"${d% *}\", \"size\": ${d#* }}"
	done
	printf '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "%s", "size": %s}, "layers": [%s]}' \
		"${c% *}" "${c#* }" "$layers" > "$WORK/manifest.tmp"
	layout_add_blob "$layout" "$WORK/manifest.tmp"
}

# layout_platform_index LAYOUT "DIGEST SIZE OS/ARCH"...: an image index blob
# of those manifests; prints "DIGEST SIZE".
layout_platform_index() {
	layout=$1; shift
	entries=""
	for m in "$@"; do
		# shellcheck disable=SC2086 # "DIGEST SIZE PLATFORM" split on purpose
		set -- $m
		entries="$entries${entries:+,}{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"$1\", \"size\": $2, \"platform\": {\"os\": \"${3%/*}\", \"architecture\": \"${3#*/}\"}}"
	done
	printf '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [%s]}' \
		"$entries" > "$WORK/index-blob.tmp"
	layout_add_blob "$layout" "$WORK/index-blob.tmp"
}

# layout_tag LAYOUT TAG MEDIA-TYPE "DIGEST SIZE": name a blob in index.json
layout_tag() {
	entry="{\"mediaType\": \"$3\", \"digest\": \"${4% *}\", \"size\": ${4#* }, \"annotations\": {\"org.opencontainers.image.ref.name\": \"$2\"}}"
	if [ -f "$1/index.json" ]; then
		jq -c ".manifests += [$entry]" "$1/index.json" > "$WORK/index.tmp"
		mv "$WORK/index.tmp" "$1/index.json"
	else
		echo "{\"schemaVersion\": 2, \"manifests\": [$entry]}" > "$1/index.json"
	fi
	readable "$1"
}

# make_layout LAYOUT TAG CONFIG LAYER...: one image, tagged
make_layout() {
	layout=$1 tag=$2 config=$3; shift 3
	m=$(layout_manifest "$layout" "$config" "$@")
	layout_tag "$layout" "$tag" application/vnd.oci.image.manifest.v1+json "$m"
}

manifest_of() {  # LAYOUT: path of its (first) manifest blob
	echo "$1/blobs/sha256/$(jq -r '.manifests[0].digest' "$1/index.json" | cut -d: -f2)"
}
