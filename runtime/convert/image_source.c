#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "runtime/convert/archive_reader.h"
#include "runtime/convert/image_source.h"
#include "runtime/convert/image_tree.h"

#define MAX_DOCUMENT_SIZE (16u << 20)
#define MAX_INDEX_DEPTH 4
#define HINT_TAMPERED "the image is damaged or was tampered with; fetch or save it again"
#define HINT_PICK "pick one with SOURCE:TAG or --tag TAG"

const char *source_kind_name(enum source_kind kind)
{
	static const char *const names[] = {
		[SOURCE_DIRECTORY] = "directory",
		[SOURCE_TARBALL] = "tarball",
		[SOURCE_DOCKER_ARCHIVE] = "docker archive",
		[SOURCE_OCI_LAYOUT] = "OCI layout",
		[SOURCE_OCI_ARCHIVE] = "OCI archive",
	};
	return names[kind];
}

/* ---------------------------------------------------------------- kinds */

static bool has_member(const struct image_source *s, const char *name)
{
	size_t lo = 0, hi = s->members.count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->members.items[mid], name);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* The regular members of an archive, sorted; a name twice is refused, as
 * which copy counts would depend on the reader. */
static int scan_archive(struct image_source *s, capsula_error *err)
{
	struct archive *a;
	struct archive_entry *e;
	char name[4096];
	int r, entries = 0;

	if (archive_reader_open_file(&a, s->path, err) < 0)
		return -1;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		entries++;
		if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != NULL ||
		    tree_clean_path(archive_entry_pathname(e), name, sizeof name) < 0)
			continue;
		if (strvec_push(&s->members, name) < 0) {
			archive_read_free(a);
			return fail(err, errno, NULL, "%s", s->path);
		}
	}
	if (r != ARCHIVE_EOF || entries == 0) {
		if (entries == 0)
			fail(err, 0, "give a directory, a tar archive, a docker save archive or an "
			     "OCI layout", "%s is not a tar archive (%s)", s->path,
			     archive_error_string(a) ? archive_error_string(a) : "empty");
		else
			archive_reader_fail(a, err, s->path);
		archive_read_free(a);
		return -1;
	}
	archive_read_free(a);
	strvec_sort(&s->members);
	for (size_t i = 1; i < s->members.count; i++)
		if (strcmp(s->members.items[i - 1], s->members.items[i]) == 0)
			return fail(err, 0, HINT_TAMPERED, "%s holds two members named %s", s->path,
			            s->members.items[i]);
	return 0;
}

static bool exists_at(int dir_fd, const char *name)
{
	struct stat st;

	return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Directories that hold an image in a form capsula does not read are
 * refused rather than packed as a root file system of blob files. */
static int detect_directory(struct image_source *s, capsula_error *err)
{
	if (exists_at(s->dir_fd, "oci-layout")) {
		s->kind = SOURCE_OCI_LAYOUT;
		return 0;
	}
	if (exists_at(s->dir_fd, "manifest.json") && exists_at(s->dir_fd, "version"))
		return fail(err, 0, "copy it into an OCI layout first: skopeo copy dir:DIR oci:LAYOUT",
		            "%s is a containers-image 'dir:' layout, which capsula does not read",
		            s->path);
	if (exists_at(s->dir_fd, "index.json") && exists_at(s->dir_fd, "blobs"))
		return fail(err, 0, "an OCI layout needs its oci-layout file",
		            "%s looks like an OCI layout without an oci-layout file", s->path);
	if (exists_at(s->dir_fd, "manifest.json") && exists_at(s->dir_fd, "repositories"))
		return fail(err, 0, "give the archive itself, as docker save wrote it",
		            "%s is an unpacked docker save archive", s->path);
	s->kind = SOURCE_DIRECTORY;
	return 0;
}

static int split_tag(const char *source, struct image_source *s, capsula_error *err)
{
	const char *colon = strrchr(source, ':');
	struct stat st;

	if (stat(source, &st) == 0 || colon == NULL || strchr(colon, '/') != NULL ||
	    colon[1] == '\0') {
		s->path = strdup(source);
		return s->path ? 0 : fail(err, errno, NULL, "%s", source);
	}
	s->path = strndup(source, (size_t)(colon - source));
	s->tag = strdup(colon + 1);
	if (s->path == NULL || s->tag == NULL)
		return fail(err, errno, NULL, "%s", source);
	return 0;
}

int source_open(const char *source, const char *tag, struct image_source *s, capsula_error *err)
{
	struct stat st;

	memset(s, 0, sizeof *s);
	s->dir_fd = -1;
	if (split_tag(source, s, err) < 0)
		return -1;
	if (tag != NULL) {
		free(s->tag);
		if ((s->tag = strdup(tag)) == NULL)
			return fail(err, errno, NULL, "--tag");
	}
	if (stat(s->path, &st) < 0)
		return fail(err, errno, "check the source path", "build source %s", s->path);
	if (S_ISDIR(st.st_mode)) {
		s->dir_fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->dir_fd < 0)
			return fail(err, errno, NULL, "build source %s", s->path);
		if (detect_directory(s, err) < 0)
			return -1;
	} else if (S_ISREG(st.st_mode)) {
		if (scan_archive(s, err) < 0)
			return -1;
		if (has_member(s, "oci-layout") && has_member(s, "index.json"))
			s->kind = SOURCE_OCI_ARCHIVE;
		else if (has_member(s, "manifest.json"))
			s->kind = SOURCE_DOCKER_ARCHIVE;
		else
			s->kind = SOURCE_TARBALL;
	} else {
		return fail(err, 0, NULL, "build source %s is neither a file nor a directory", s->path);
	}
	if (s->tag != NULL && (s->kind == SOURCE_DIRECTORY || s->kind == SOURCE_TARBALL))
		return fail(err, 0, "a tag picks an image of a docker archive or an OCI layout",
		            "%s is a %s, which holds no tagged images", s->path,
		            source_kind_name(s->kind));
	return 0;
}

int source_open_directory(int dir_fd, const char *name, struct image_source *s,
                          capsula_error *err)
{
	memset(s, 0, sizeof *s);
	s->path = strdup(name);
	if (s->path == NULL)
		return fail(err, errno, NULL, "%s", name);
	s->dir_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0)
		return fail(err, errno, NULL, "build source %s", name);
	return detect_directory(s, err);
}

void source_close(struct image_source *s)
{
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	free(s->path);
	free(s->tag);
	strvec_free(&s->members);
	memset(s, 0, sizeof *s);
	s->dir_fd = -1;
}

/* ---------------------------------------------------------------- blobs */

static int open_beneath(struct image_source *s, const char *member, struct blob *b,
                        capsula_error *err)
{
	/* Never through a symbolic link: a layout could otherwise name any
	 * file its builder can read. O_NONBLOCK: a FIFO must not hang us. */
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;

	b->fd = (int)syscall(SYS_openat2, s->dir_fd, member, &how, sizeof how);
	if (b->fd < 0)
		return fail(err, errno, errno == ELOOP || errno == EXDEV ? HINT_TAMPERED : NULL,
		            "%s/%s%s", s->path, member,
		            errno == ELOOP ? " goes through a symbolic link" : "");
	if (fstat(b->fd, &st) < 0)
		return fail(err, errno, NULL, "%s/%s", s->path, member);
	if (!S_ISREG(st.st_mode))
		return fail(err, 0, HINT_TAMPERED, "%s/%s is not a regular file", s->path, member);
	return 0;
}

static int open_whole_file(struct image_source *s, struct blob *b, capsula_error *err)
{
	struct stat st;

	b->fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (b->fd < 0 || fstat(b->fd, &st) < 0)
		return fail(err, errno, NULL, "%s", s->path);
	if (!S_ISREG(st.st_mode))
		return fail(err, 0, NULL, "%s is not a regular file", s->path);
	return 0;
}

static int open_member(struct image_source *s, const char *member, struct blob *b,
                       capsula_error *err)
{
	struct archive_entry *e;
	char name[4096];
	int r;

	if (!has_member(s, member))
		return fail(err, 0, HINT_TAMPERED, "%s holds no file %s", s->path, member);
	if (archive_reader_open_file(&b->outer, s->path, err) < 0)
		return -1;
	while ((r = archive_read_next_header(b->outer, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		if (tree_clean_path(archive_entry_pathname(e), name, sizeof name) < 0 ||
		    strcmp(name, member) != 0)
			continue;
		/* The archive's own file, never where a link points. */
		if (archive_entry_filetype(e) == AE_IFREG && archive_entry_hardlink(e) == NULL)
			return 0;
	}
	if (r != ARCHIVE_EOF)
		return archive_reader_fail(b->outer, err, s->path);
	return fail(err, 0, HINT_TAMPERED, "%s holds no file %s", s->path, member);
}

int blob_open(struct image_source *s, const char *member, struct blob *b, capsula_error *err)
{
	int ret;

	memset(b, 0, sizeof *b);
	b->fd = -1;
	b->name = member ? member : s->path;
	if (member == NULL)
		ret = open_whole_file(s, b, err);
	else if (s->kind == SOURCE_OCI_LAYOUT)
		ret = open_beneath(s, member, b, err);
	else
		ret = open_member(s, member, b, err);
	if (ret < 0)
		blob_close(b);
	return ret;
}

ssize_t blob_read(struct blob *b, void *buf, size_t size, capsula_error *err)
{
	ssize_t got;

	if (b->outer != NULL) {
		got = archive_read_data(b->outer, buf, size);
		if (got < 0)
			return archive_reader_fail(b->outer, err, b->name);
		return got;
	}
	do
		got = read(b->fd, buf, size);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return fail(err, errno, NULL, "read %s", b->name);
	return got;
}

void blob_close(struct blob *b)
{
	if (b->outer != NULL)
		archive_read_free(b->outer);
	if (b->fd >= 0)
		close(b->fd);
	b->outer = NULL;
	b->fd = -1;
}

int digest_check(struct sha256 *h, const char *expected, int64_t expected_size, uint64_t size,
                 const char *what, capsula_error *err)
{
	char hex[SHA256_HEX_BYTES];

	if (sha256_end_hex(h, hex) < 0)
		return fail(err, 0, NULL, "libcrypto failed to hash %s", what);
	if (expected_size >= 0 && (uint64_t)expected_size != size)
		return fail(err, 0, HINT_TAMPERED, "%s is %llu bytes, its descriptor says %lld", what,
		            (unsigned long long)size, (long long)expected_size);
	if (expected == NULL)
		return 0;
	if (strncmp(expected, "sha256:", 7) != 0 || strcmp(expected + 7, hex) != 0)
		return fail(err, 0, HINT_TAMPERED, "%s has digest sha256:%s, expected %s", what, hex,
		            expected);
	return 0;
}

/* A manifest, index or config: read whole, verified, then parsed. */
static int read_document(struct image_source *s, const char *member, const char *digest,
                         int64_t size, json_t **out, capsula_error *err)
{
	struct blob b;
	struct sha256 h;
	char *text = NULL;
	size_t length = 0;
	json_error_t error;
	int ret = -1;

	if (sha256_begin(&h) < 0)
		return fail(err, errno, "install libssl3 (libcrypto)", "load libcrypto for SHA-256");
	if (blob_open(s, member, &b, err) < 0)
		return -1;
	text = malloc(MAX_DOCUMENT_SIZE + 1);
	if (text == NULL) {
		fail(err, errno, NULL, "%s", member);
		goto out;
	}
	for (;;) {
		ssize_t got = blob_read(&b, text + length, MAX_DOCUMENT_SIZE + 1 - length, err);

		if (got < 0)
			goto out;
		if (got == 0)
			break;
		length += (size_t)got;
		if (length > MAX_DOCUMENT_SIZE) {
			fail(err, 0, HINT_TAMPERED, "%s is larger than %u MiB", member,
			     MAX_DOCUMENT_SIZE >> 20);
			goto out;
		}
	}
	sha256_update(&h, text, length);
	if (digest_check(&h, digest, size, length, member, err) < 0)
		goto out;
	*out = json_loadb(text, length, 0, &error);
	if (*out == NULL) {
		fail(err, 0, HINT_TAMPERED, "%s: line %d: %s", member, error.line, error.text);
		goto out;
	}
	ret = 0;
out:
	free(text);
	blob_close(&b);
	return ret;
}

/* ---------------------------------------------------------------- images */

static int push_layer(struct image_description *d, const char *member, const char *digest,
                      int64_t size, const char *diff_id, capsula_error *err)
{
	struct layer_ref *grown = realloc(d->layers, (d->layer_count + 1) * sizeof *grown);
	struct layer_ref *l;

	if (grown == NULL)
		return fail(err, errno, NULL, "layers");
	d->layers = grown;
	l = &d->layers[d->layer_count++];
	memset(l, 0, sizeof *l);
	l->size = size;
	if ((member && !(l->member = strdup(member))) || (digest && !(l->digest = strdup(digest))) ||
	    (diff_id && !(l->diff_id = strdup(diff_id))))
		return fail(err, errno, NULL, "layers");
	return 0;
}

/* The config's run settings and its layers' diff_ids. */
static int read_config(struct image_source *s, const char *member, const char *digest,
                       int64_t size, struct image_description *d, json_t **diff_ids,
                       capsula_error *err)
{
	json_t *document;
	char why[200];

	if (read_document(s, member, digest, size, &document, err) < 0)
		return -1;
	if (image_config_from_json(document, &d->config, why, sizeof why) < 0) {
		json_decref(document);
		return fail(err, 0, HINT_TAMPERED, "image config %s: %s", member, why);
	}
	d->has_config = 1;
	*diff_ids = json_incref(json_object_get(json_object_get(document, "rootfs"), "diff_ids"));
	json_decref(document);
	return 0;
}

static const char *diff_id_at(const json_t *diff_ids, size_t i, size_t layer_count,
                              capsula_error *err, int *bad)
{
	const char *id;

	*bad = 0;
	if (diff_ids == NULL)
		return NULL;
	if (!json_is_array(diff_ids) || json_array_size(diff_ids) != layer_count) {
		*bad = fail(err, 0, HINT_TAMPERED, "the config lists %zu diff_ids for %zu layers",
		            json_is_array(diff_ids) ? json_array_size(diff_ids) : 0, layer_count);
		return NULL;
	}
	id = json_string_value(json_array_get(diff_ids, i));
	if (!sha256_digest_valid(id)) {
		*bad = fail(err, 0, HINT_TAMPERED, "the config's diff_id %zu is not a sha256 digest",
		            i + 1);
		return NULL;
	}
	return id;
}

/* docker save names files by their digest: <hex>.json, blobs/sha256/<hex>. */
static void digest_from_name(const char *name, char *digest, size_t size)
{
	const char *base = strrchr(name, '/');
	size_t hex;

	base = base ? base + 1 : name;
	hex = strspn(base, "0123456789abcdef");
	digest[0] = '\0';
	if (hex == 64 && (base[64] == '\0' || strcmp(base + 64, ".json") == 0) &&
	    (base == name || strncmp(name, "blobs/sha256/", 13) == 0))
		snprintf(digest, size, "sha256:%.64s", base);
}

static bool has_repo_tag(const json_t *image, const char *tag)
{
	size_t i;
	const json_t *t;
	size_t len = strlen(tag);

	json_array_foreach(json_object_get(image, "RepoTags"), i, t) {
		const char *name = json_string_value(t);

		if (name == NULL)
			continue;
		/* "app:1", or the same with its registry and repository path. */
		if (strcmp(name, tag) == 0 ||
		    (strlen(name) > len && name[strlen(name) - len - 1] == '/' &&
		     strcmp(name + strlen(name) - len, tag) == 0))
			return true;
	}
	return false;
}

static int list_repo_tags(const json_t *manifest, char *out, size_t size)
{
	size_t i, k, at = 0;
	const json_t *image, *t;

	out[0] = '\0';
	json_array_foreach(manifest, i, image) {
		json_array_foreach(json_object_get(image, "RepoTags"), k, t) {
			int n = snprintf(out + at, size - at, "%s%s", at ? ", " : "",
			                 json_string_value(t) ? json_string_value(t) : "?");

			if (n < 0 || (size_t)n >= size - at)
				return 0;
			at += (size_t)n;
		}
	}
	return 0;
}

static int pick_docker_image(struct image_source *s, const json_t *manifest,
                             const json_t **image, capsula_error *err)
{
	char tags[512];
	size_t i, found = 0;
	const json_t *candidate;

	*image = NULL;
	if (!json_is_array(manifest) || json_array_size(manifest) == 0)
		return fail(err, 0, HINT_TAMPERED, "%s: manifest.json lists no image", s->path);
	if (s->tag == NULL && json_array_size(manifest) == 1) {
		*image = json_array_get(manifest, 0);
		return 0;
	}
	json_array_foreach(manifest, i, candidate) {
		if (s->tag != NULL && has_repo_tag(candidate, s->tag)) {
			*image = candidate;
			found++;
		}
	}
	if (found == 1)
		return 0;
	list_repo_tags(manifest, tags, sizeof tags);
	if (s->tag == NULL)
		return fail(err, 0, HINT_PICK, "%s holds %zu images (%s)", s->path,
		            json_array_size(manifest), tags);
	return fail(err, 0, "the archive holds: see its tags above",
	            "%s holds %s image tagged %s (it has: %s)", s->path, found ? "more than one" : "no",
	            s->tag, tags[0] ? tags : "no tags");
}

static int describe_docker(struct image_source *s, struct image_description *d,
                           capsula_error *err)
{
	json_t *manifest = NULL, *diff_ids = NULL;
	const json_t *image, *layers, *layer;
	const char *config;
	char digest[80], member[4096];
	size_t i;
	int ret = -1;

	if (read_document(s, "manifest.json", NULL, -1, &manifest, err) < 0 ||
	    pick_docker_image(s, manifest, &image, err) < 0)
		goto out;
	config = json_string_value(json_object_get(image, "Config"));
	layers = json_object_get(image, "Layers");
	if (config == NULL || !json_is_array(layers) ||
	    tree_clean_path(config, member, sizeof member) < 0) {
		fail(err, 0, HINT_TAMPERED, "%s: manifest.json has no usable Config and Layers",
		     s->path);
		goto out;
	}
	digest_from_name(member, digest, sizeof digest);
	if (read_config(s, member, digest[0] ? digest : NULL, -1, d, &diff_ids, err) < 0)
		goto out;
	json_array_foreach(layers, i, layer) {
		const char *name = json_string_value(layer);
		int bad;
		const char *diff_id = diff_id_at(diff_ids, i, json_array_size(layers), err, &bad);

		if (bad)
			goto out;
		if (name == NULL || tree_clean_path(name, member, sizeof member) < 0 ||
		    member[0] == '\0') {
			fail(err, 0, HINT_TAMPERED, "%s: layer %zu is not a plain relative path",
			     s->path, i + 1);
			goto out;
		}
		digest_from_name(member, digest, sizeof digest);
		if (push_layer(d, member, digest[0] ? digest : NULL, -1, diff_id, err) < 0)
			goto out;
	}
	ret = 0;
out:
	json_decref(diff_ids);
	json_decref(manifest);
	return ret;
}

static const char *host_architecture(void)
{
	static struct utsname u;

	if (uname(&u) < 0)
		return "";
	if (strcmp(u.machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	return u.machine;
}

static bool for_this_machine(const json_t *descriptor)
{
	const json_t *platform = json_object_get(descriptor, "platform");
	const char *arch = json_string_value(json_object_get(platform, "architecture"));
	const char *os = json_string_value(json_object_get(platform, "os"));

	return arch != NULL && strcmp(arch, host_architecture()) == 0 &&
	       (os == NULL || strcmp(os, "linux") == 0);
}

static const char *ref_name(const json_t *descriptor)
{
	const json_t *annotations = json_object_get(descriptor, "annotations");
	const char *name = json_string_value(json_object_get(annotations,
	                                                     "org.opencontainers.image.ref.name"));

	return name ? name : json_string_value(json_object_get(annotations,
	                                                       "io.containerd.image.name"));
}

static bool matches_tag(const json_t *descriptor, const char *tag)
{
	const char *name = ref_name(descriptor);
	size_t len = strlen(tag);

	return name != NULL && (strcmp(name, tag) == 0 ||
	        (strlen(name) > len && strcmp(name + strlen(name) - len, tag) == 0 &&
	         strchr("/:", name[strlen(name) - len - 1]) != NULL));
}

/* What an index offers, for the message when the choice is not clear. */
static void describe_choices(const json_t *manifests, char *out, size_t size)
{
	size_t i, at = 0;
	const json_t *m;

	out[0] = '\0';
	json_array_foreach(manifests, i, m) {
		const json_t *platform = json_object_get(m, "platform");
		const char *name = ref_name(m);
		const char *os = json_string_value(json_object_get(platform, "os"));
		const char *arch = json_string_value(json_object_get(platform, "architecture"));
		int n;

		if (name != NULL)
			n = snprintf(out + at, size - at, "%s%s", at ? ", " : "", name);
		else
			n = snprintf(out + at, size - at, "%s%s/%s", at ? ", " : "", os ? os : "?",
			             arch ? arch : "?");
		if (n < 0 || (size_t)n >= size - at)
			return;
		at += (size_t)n;
	}
}

/* Of an index's manifests: the tagged one (top level only), else the only
 * one, else the one for this machine. */
static int pick_descriptor(struct image_source *s, const json_t *index, bool top,
                           const json_t **out, capsula_error *err)
{
	const json_t *manifests = json_object_get(index, "manifests"), *m, *chosen = NULL;
	size_t i, found = 0;
	char choices[512];

	if (!json_is_array(manifests) || json_array_size(manifests) == 0)
		return fail(err, 0, HINT_TAMPERED, "%s: an index lists no manifest", s->path);
	describe_choices(manifests, choices, sizeof choices);
	if (top && s->tag != NULL) {
		json_array_foreach(manifests, i, m)
			if (matches_tag(m, s->tag))
				chosen = m, found++;
		if (found != 1)
			return fail(err, 0, "give one of its tags", "%s holds %s image tagged %s "
			            "(it has: %s)", s->path, found ? "more than one" : "no", s->tag,
			            choices);
	} else if (json_array_size(manifests) == 1) {
		chosen = json_array_get(manifests, 0);
	} else {
		json_array_foreach(manifests, i, m)
			if (for_this_machine(m))
				chosen = m, found++;
		if (found != 1 && top)
			return fail(err, 0, HINT_PICK, "%s holds %zu images (%s)", s->path,
			            json_array_size(manifests), choices);
		if (found != 1)
			return fail(err, 0, "build on a machine of one of these platforms",
			            "the image has %s linux/%s variant (it has: %s)",
			            found ? "more than one" : "no", host_architecture(), choices);
	}
	*out = chosen;
	return 0;
}

static int blob_member(const json_t *descriptor, char *member, size_t size, const char **digest,
                       int64_t *length, capsula_error *err)
{
	const json_t *size_value = json_object_get(descriptor, "size");

	*digest = json_string_value(json_object_get(descriptor, "digest"));
	if (!sha256_digest_valid(*digest))
		return fail(err, 0, HINT_TAMPERED, "descriptor digest '%s' is not sha256:HEX",
		            *digest ? *digest : "(none)");
	if (!json_is_integer(size_value) || json_integer_value(size_value) < 0)
		return fail(err, 0, HINT_TAMPERED, "descriptor of %s has no size", *digest);
	*length = json_integer_value(size_value);
	snprintf(member, size, "blobs/sha256/%s", *digest + 7);
	return 0;
}

/* index.json down to one image manifest, each step verified. */
static int find_manifest(struct image_source *s, json_t **manifest, capsula_error *err)
{
	json_t *document;
	bool top = true;

	if (s->manifest != NULL) {
		char member[128];

		if (!sha256_digest_valid(s->manifest))
			return fail(err, 0, NULL, "manifest digest '%s' is not sha256:HEX", s->manifest);
		snprintf(member, sizeof member, "blobs/sha256/%s", s->manifest + 7);
		if (read_document(s, member, s->manifest, -1, manifest, err) < 0)
			return -1;
		if (json_object_get(*manifest, "layers") != NULL)
			return 0;
		json_decref(*manifest);
		return fail(err, 0, HINT_TAMPERED, "%s is not an image manifest", s->manifest);
	}
	if (read_document(s, "index.json", NULL, -1, &document, err) < 0)
		return -1;
	for (int depth = 0; depth <= MAX_INDEX_DEPTH; depth++) {
		const json_t *descriptor;
		const char *digest;
		char member[128];
		int64_t size;
		json_t *next;

		if (pick_descriptor(s, document, top, &descriptor, err) < 0 ||
		    blob_member(descriptor, member, sizeof member, &digest, &size, err) < 0 ||
		    read_document(s, member, digest, size, &next, err) < 0) {
			json_decref(document);
			return -1;
		}
		json_decref(document);
		document = next;
		top = false;
		if (json_object_get(document, "manifests") == NULL) {
			*manifest = document;
			return 0;
		}
	}
	json_decref(document);
	return fail(err, 0, HINT_TAMPERED, "%s: image indexes nest too deeply", s->path);
}

static int check_layer_type(const json_t *descriptor, size_t i, capsula_error *err)
{
	const char *type = json_string_value(json_object_get(descriptor, "mediaType"));

	if (type != NULL && strstr(type, "encrypted") != NULL)
		return fail(err, 0, "decrypt the image first (skopeo copy --decryption-key)",
		            "layer %zu is encrypted (%s)", i + 1, type);
	return 0;
}

static int describe_oci(struct image_source *s, struct image_description *d, capsula_error *err)
{
	json_t *manifest, *diff_ids = NULL;
	const json_t *layers, *layer;
	const char *digest;
	char member[128];
	int64_t size;
	size_t i;
	int ret = -1;

	if (find_manifest(s, &manifest, err) < 0)
		return -1;
	layers = json_object_get(manifest, "layers");
	if (json_object_get(manifest, "fsLayers") != NULL) {
		fail(err, 0, "convert it to a current format (skopeo copy)",
		     "%s: schema 1 manifests are not supported", s->path);
		goto out;
	}
	if (!json_is_array(layers)) {
		fail(err, 0, HINT_TAMPERED, "%s: the manifest lists no layers", s->path);
		goto out;
	}
	if (blob_member(json_object_get(manifest, "config"), member, sizeof member, &digest, &size,
	                err) < 0 ||
	    read_config(s, member, digest, size, d, &diff_ids, err) < 0)
		goto out;
	json_array_foreach(layers, i, layer) {
		int bad;
		const char *diff_id = diff_id_at(diff_ids, i, json_array_size(layers), err, &bad);

		if (bad || check_layer_type(layer, i, err) < 0 ||
		    blob_member(layer, member, sizeof member, &digest, &size, err) < 0 ||
		    push_layer(d, member, digest, size, diff_id, err) < 0)
			goto out;
	}
	ret = 0;
out:
	json_decref(diff_ids);
	json_decref(manifest);
	return ret;
}

int source_describe(struct image_source *s, struct image_description *d, capsula_error *err)
{
	memset(d, 0, sizeof *d);
	switch (s->kind) {
	case SOURCE_DIRECTORY:
		return 0;
	case SOURCE_TARBALL:
		return push_layer(d, NULL, NULL, -1, NULL, err);
	case SOURCE_DOCKER_ARCHIVE:
		return describe_docker(s, d, err);
	case SOURCE_OCI_LAYOUT:
	case SOURCE_OCI_ARCHIVE:
		return describe_oci(s, d, err);
	}
	return fail(err, EINVAL, NULL, "source kind");
}

void image_description_free(struct image_description *d)
{
	for (size_t i = 0; i < d->layer_count; i++) {
		free(d->layers[i].member);
		free(d->layers[i].digest);
		free(d->layers[i].diff_id);
	}
	free(d->layers);
	image_config_free(&d->config);
	memset(d, 0, sizeof *d);
}
