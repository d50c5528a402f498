#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "runtime/image_source.h"
#include "runtime/json.h"
#include "runtime/stream.h"
#include "runtime/tar.h"

#define MAX_MANIFEST_SIZE (16u << 20)
#define MAX_INDEX_DEPTH 4

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

int read_small_file(const char *path, size_t max, char **data, size_t *length,
                    capsula_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *buf;
	size_t done = 0;

	if (fd < 0)
		return fail(err, errno, NULL, "cannot open %s", path);
	if (fstat(fd, &st) < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "%s", path);
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		close(fd);
		if (!S_ISREG(st.st_mode))
			return fail(err, EINVAL, NULL, "%s", path);
		return fail(err, 0, NULL, "%s is larger than %zu bytes", path, max);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return fail(err, errno, NULL, "%s", path);
	}
	while (done < (size_t)st.st_size) {
		ssize_t got = read(fd, buf + done, (size_t)st.st_size - done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int saved = errno;

			close(fd);
			free(buf);
			return fail(err, saved, NULL, "read %s", path);
		}
		if (got == 0)
			break;  /* it shrank meanwhile: what is there is all */
		done += (size_t)got;
	}
	close(fd);
	buf[done] = '\0';
	*data = buf;
	*length = done;
	return 0;
}

/* Top-level names of an uncompressed archive tell a docker or OCI archive
 * from a root file system. */
static int detect_archive(const char *source, enum source_kind *kind, capsula_error *err)
{
	struct stream s;
	struct tar_reader r;
	struct tar_entry *e;
	bool manifest = false, layout = false;
	int ret;

	*kind = SOURCE_TARBALL;
	if (stream_open(source, &s, err) < 0)
		return -1;
	if (s.tool != NULL)
		return stream_close(&s, err);
	tar_open(&r, s.fd, source);
	while ((ret = tar_next(&r, &e, err)) > 0) {
		const char *name = e->path[0] == '.' && e->path[1] == '/' ? e->path + 2 : e->path;

		manifest = manifest || strcmp(name, "manifest.json") == 0;
		layout = layout || strcmp(name, "oci-layout") == 0;
	}
	tar_close(&r);
	stream_close(&s, err);
	if (ret < 0)
		return fail(err, 0, "give a directory, a tar archive, a docker save archive or "
		            "an OCI layout", "%s is not a tar archive", source);
	if (manifest)
		*kind = SOURCE_DOCKER_ARCHIVE;
	else if (layout)
		*kind = SOURCE_OCI_ARCHIVE;
	return 0;
}

int source_detect(const char *source, enum source_kind *kind, capsula_error *err)
{
	struct stat st;
	char path[4096];

	if (stat(source, &st) < 0)
		return fail(err, errno, "check the source path", "build source %s", source);
	if (S_ISDIR(st.st_mode)) {
		snprintf(path, sizeof path, "%s/oci-layout", source);
		*kind = access(path, F_OK) == 0 ? SOURCE_OCI_LAYOUT : SOURCE_DIRECTORY;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return fail(err, 0, NULL, "build source %s is neither a file nor a directory", source);
	return detect_archive(source, kind, err);
}

static int read_json(const char *path, struct json *out, capsula_error *err)
{
	char why[160];
	char *text;
	size_t length;
	int ret;

	if (read_small_file(path, MAX_MANIFEST_SIZE, &text, &length, err) < 0)
		return -1;
	ret = json_parse(text, length, out, why, sizeof why);
	free(text);
	if (ret < 0)
		return fail(err, 0, "the image archive is damaged", "%s: %s", path, why);
	return 0;
}

/* A member path of the archive, never outside it. */
static int member_path(const char *dir, const char *name, char *out, size_t size,
                       capsula_error *err)
{
	if (name == NULL || name[0] == '/' || strstr(name, "..") != NULL)
		return fail(err, 0, "the image archive is hostile or damaged",
		            "archive member '%s' is not a plain relative path", name ? name : "");
	if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size)
		return fail(err, ENAMETOOLONG, NULL, "%s", name);
	return 0;
}

/* "sha256:HEX" -> DIR/blobs/sha256/HEX */
static int blob_path(const char *dir, const struct json *descriptor, char *out, size_t size,
                     capsula_error *err)
{
	const char *digest = json_string(json_get(descriptor, "digest"));
	const char *colon = digest ? strchr(digest, ':') : NULL;

	if (colon == NULL || colon == digest || colon[1] == '\0' ||
	    strspn(digest, "abcdefghijklmnopqrstuvwxyz0123456789+._-:") != strlen(digest) ||
	    strchr(colon + 1, ':') != NULL)
		return fail(err, 0, "the OCI layout is damaged", "bad digest '%s'",
		            digest ? digest : "(none)");
	if ((size_t)snprintf(out, size, "%s/blobs/%.*s/%s", dir, (int)(colon - digest), digest,
	                     colon + 1) >= size)
		return fail(err, ENAMETOOLONG, NULL, "%s", digest);
	return 0;
}

static int config_from_file(const char *path, struct image_config *config, capsula_error *err)
{
	struct json document;
	char why[160];
	int ret;

	if (read_json(path, &document, err) < 0)
		return -1;
	ret = image_config_from_json(&document, config, why, sizeof why);
	json_free(&document);
	if (ret < 0)
		return fail(err, 0, NULL, "%s: %s", path, why);
	return 0;
}

static int docker_layers(const char *dir, struct strvec *layers, struct image_config *config,
                         capsula_error *err)
{
	char path[4096];
	struct json manifest;
	const struct json *image, *list;
	int ret = -1;

	snprintf(path, sizeof path, "%s/manifest.json", dir);
	if (read_json(path, &manifest, err) < 0)
		return -1;
	image = manifest.type == JSON_ARRAY && manifest.count > 0 ? &manifest.items[0] : NULL;
	list = json_get(image, "Layers");
	if (image == NULL || list == NULL || list->type != JSON_ARRAY) {
		fail(err, 0, "save one image with docker save IMAGE -o FILE",
		     "%s/manifest.json lists no image with Layers", dir);
		goto out;
	}
	if (manifest.count > 1)
		fprintf(stderr, "capsula: warning: the archive holds %zu images; building the first\n",
		        manifest.count);
	for (size_t i = 0; i < list->count; i++) {
		if (member_path(dir, json_string(&list->items[i]), path, sizeof path, err) < 0)
			goto out;
		if (strvec_push(layers, path) < 0) {
			fail(err, errno, NULL, "layers");
			goto out;
		}
	}
	if (member_path(dir, json_string(json_get(image, "Config")), path, sizeof path, err) < 0 ||
	    config_from_file(path, config, err) < 0)
		goto out;
	ret = 0;
out:
	json_free(&manifest);
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

static bool is_index(const struct json *descriptor)
{
	const char *type = json_string(json_get(descriptor, "mediaType"));

	return type != NULL && (strstr(type, "image.index") != NULL ||
	                        strstr(type, "manifest.list") != NULL);
}

/* Of an index's manifests, the one for this machine, else the first. */
static const struct json *pick_manifest(const struct json *index)
{
	const struct json *list = json_get(index, "manifests");
	const char *arch = host_architecture();

	if (list == NULL || list->type != JSON_ARRAY || list->count == 0)
		return NULL;
	for (size_t i = 0; i < list->count; i++) {
		const struct json *platform = json_get(&list->items[i], "platform");
		const char *a = json_string(json_get(platform, "architecture"));

		if (platform == NULL || (a != NULL && strcmp(a, arch) == 0))
			return &list->items[i];
	}
	return &list->items[0];
}

static int oci_layers(const char *dir, struct strvec *layers, struct image_config *config,
                      capsula_error *err)
{
	char path[4096];
	struct json document;
	const struct json *descriptor, *list;
	int depth = 0;
	int ret = -1;

	snprintf(path, sizeof path, "%s/index.json", dir);
	if (read_json(path, &document, err) < 0)
		return -1;
	for (;;) {
		struct json next;
		bool nested;

		descriptor = pick_manifest(&document);
		if (descriptor == NULL) {
			fail(err, 0, "the OCI layout is damaged", "%s lists no manifest", path);
			goto out;
		}
		if (blob_path(dir, descriptor, path, sizeof path, err) < 0)
			goto out;
		nested = is_index(descriptor);
		if (read_json(path, &next, err) < 0)
			goto out;
		json_free(&document);
		document = next;
		if (!nested && json_get(&document, "manifests") == NULL)
			break;
		if (++depth > MAX_INDEX_DEPTH) {
			fail(err, 0, "the OCI layout is damaged", "image indexes nest too deeply");
			goto out;
		}
	}
	list = json_get(&document, "layers");
	if (list == NULL || list->type != JSON_ARRAY) {
		fail(err, 0, "the OCI layout is damaged", "manifest %s lists no layers", path);
		goto out;
	}
	for (size_t i = 0; i < list->count; i++) {
		if (blob_path(dir, &list->items[i], path, sizeof path, err) < 0)
			goto out;
		if (strvec_push(layers, path) < 0) {
			fail(err, errno, NULL, "layers");
			goto out;
		}
	}
	if (blob_path(dir, json_get(&document, "config"), path, sizeof path, err) < 0 ||
	    config_from_file(path, config, err) < 0)
		goto out;
	ret = 0;
out:
	json_free(&document);
	return ret;
}

int source_read_layers(const char *dir, enum source_kind kind, struct strvec *layers,
                       struct image_config *config, capsula_error *err)
{
	memset(config, 0, sizeof *config);
	if (kind == SOURCE_DOCKER_ARCHIVE)
		return docker_layers(dir, layers, config, err);
	return oci_layers(dir, layers, config, err);
}
