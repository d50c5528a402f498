#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/sha256.h"
#include "common/small_file.h"
#include "common/timing.h"
#include "runtime/config/site_config.h"
#include "runtime/convert/budget.h"
#include "runtime/image/image.h"
#include "runtime/image/image_cache.h"
#include "runtime/image/image_config.h"
#include "runtime/image/image_ref.h"
#include "runtime/pull/registry.h"
#include "runtime/push/layer_stream.h"
#include "runtime/push/push.h"

#define RUN_CONFIG_MAX (1u << 20)
#define PUSH_RECORD_MAX 16384
#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"
/* Changes when the same image and options would give another layer. */
#define LAYER_RECORD_KIND "capsula layer 2"
#define READ_CHUNK (1u << 20)

struct push {
	const struct push_options *opts;
	struct squashfs_layer_set *layers;
	json_t *run_config;           /* the image's {"config": {...}}, or NULL */
	char *config_text;
	char *manifest_text;
	struct registry_connection connection;
	struct tree tree;
	struct build_budget budget;
	struct capsula_image image;
	struct layer_blob layer;
	struct capsula_config config;
	struct layer_stream stream;
	struct registry registry;
	int layer_fd;
	struct image_cache cache;
	bool tree_made;
	bool layer_settled;           /* the registry holds it: nothing to make or send */
	bool streamed;                /* the registry holds the layer, but for the digest */
	bool registry_open;
	char image_key[SHA256_HEX_BYTES]; /* the image's bytes and the layer options */
	char config_digest[72];
	char layer_note[400];         /* how the registry came to hold the layer */
	char name[700];
	struct image_ref ref;
};

static int parse_reference(struct push *p, capsula_error *err)
{
	if (image_ref_parse(p->opts->ref, &p->ref, err) < 0)
		return -1;
	if (p->ref.tag[0] == '\0')
		return fail(err, 0, "name a tag: docker://REGISTRY/REPOSITORY:TAG",
		            "%s: a push needs a tag, not only a digest", p->opts->ref);
	image_ref_format(&p->ref, p->name, sizeof p->name);
	return 0;
}

static int open_image(struct push *p, capsula_error *err)
{
	struct squashfs_info info;
	struct squashfs_layer layer = {.path = p->opts->image};

	p->image.fd = -1;
	if (image_open(p->opts->image, &p->image, &info, err) < 0)
		return -1;
	layer.offset = p->image.offset;
	if (squashfs_layers_open(&p->layers, &layer, 1, err) < 0)
		return -1;
	budget_init(&p->budget, p->config.max_image_entries, p->config.max_image_bytes,
	            CAPSULA_CONFIG_FILE);
	if (tree_init(&p->tree, false, err) < 0)
		return -1;
	p->tree_made = true;
	return squashfs_layers_merge(p->layers, &p->tree, &p->budget, err);
}

static const struct tree_node *child_named(const struct tree_node *dir, const char *name)
{
	for (const struct tree_node *n = dir ? dir->children : NULL; n != NULL; n = n->next)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

struct text_buffer {
	char *data;
	size_t length;
};

static int append_text(void *arg, const void *data, size_t size, capsula_error *err)
{
	struct text_buffer *b = arg;
	char *grown = realloc(b->data, b->length + size + 1);

	if (grown == NULL)
		return fail(err, ENOMEM, NULL, "image config");
	memcpy(grown + b->length, data, size);
	b->data = grown;
	b->length += size;
	b->data[b->length] = '\0';
	return 0;
}

/* What capsula build or pull wrote of how to run the image. */
static int read_run_config(struct push *p, capsula_error *err)
{
	const struct tree_node *node = child_named(child_named(p->tree.root,
	                                           IMAGE_METADATA_DIR + 1), "config.json");
	struct text_buffer text = {0};
	json_error_t problem;

	if (node == NULL || !S_ISREG(node->inode->mode))
		return 0;
	if (node->inode->size > RUN_CONFIG_MAX)
		return fail(err, 0, "rebuild the image", "%s: %s is larger than %u bytes",
		            p->opts->image, IMAGE_CONFIG_PATH, RUN_CONFIG_MAX);
	if (squashfs_layers_read(p->layers, node->inode, append_text, &text, err) < 0) {
		free(text.data);
		return -1;
	}
	p->run_config = json_loadb(text.data ? text.data : "", text.length, 0, &problem);
	free(text.data);
	if (!json_is_object(json_object_get(p->run_config, "config")))
		return fail(err, 0, "rebuild the image", "%s: %s: %s", p->opts->image,
		            IMAGE_CONFIG_PATH, p->run_config ? "no \"config\" object" : problem.text);
	return 0;
}

/* The same image and options always give the same layer: the key of
 * what an earlier push made of them. */
static int hash_image(struct push *p, capsula_error *err)
{
	unsigned char *buffer = malloc(READ_CHUNK);
	struct sha256 hash;
	char options[64];
	off_t at = 0;
	ssize_t n;

	if (buffer == NULL)
		return fail(err, ENOMEM, NULL, "%s", p->opts->image);
	if (sha256_begin(&hash) < 0) {
		free(buffer);
		return fail(err, 0, "install libssl3", "%s: hash", p->opts->image);
	}
	while ((n = pread(p->image.fd, buffer, READ_CHUNK, at)) > 0) {
		sha256_update(&hash, buffer, (size_t)n);
		at += n;
	}
	free(buffer);
	if (n < 0)
		return fail(err, errno, NULL, "%s: read", p->opts->image);
	snprintf(options, sizeof options, "\n%s %s %d", LAYER_RECORD_KIND,
	         p->opts->layer.compression, p->opts->layer.level);
	sha256_update(&hash, options, strlen(options));
	if (sha256_end_hex(&hash, p->image_key) < 0)
		return fail(err, 0, "install libssl3", "%s: hash", p->opts->image);
	return 0;
}

static void layer_record_name(const struct push *p, char *out, size_t size)
{
	snprintf(out, size, "pushed/from-%s", p->image_key);
}

/* The layer this image gave before: 1 when recalled into p->layer. A
 * record that does not read is only a missed help. */
static int recall_layer(struct push *p)
{
	char name[CACHE_NAME_MAX], *text = NULL;
	size_t length;
	capsula_error ignored;
	json_t *doc;
	const char *digest, *diff_id;
	int found = 0;

	layer_record_name(p, name, sizeof name);
	if (read_small_at(p->cache.fd, name, PUSH_RECORD_MAX, &text, &length, &ignored) < 0)
		return 0;
	doc = json_loadb(text, length, 0, NULL);
	digest = json_string_value(json_object_get(doc, "digest"));
	diff_id = json_string_value(json_object_get(doc, "diff_id"));
	if (digest != NULL && diff_id != NULL && strlen(digest) == 71 && strlen(diff_id) == 71 &&
	    json_integer_value(json_object_get(doc, "size")) > 0) {
		snprintf(p->layer.digest, sizeof p->layer.digest, "%s", digest);
		snprintf(p->layer.diff_id, sizeof p->layer.diff_id, "%s", diff_id);
		p->layer.size = (uint64_t)json_integer_value(json_object_get(doc, "size"));
		p->layer.entries = (uint64_t)json_integer_value(json_object_get(doc, "entries"));
		found = 1;
	}
	json_decref(doc);
	free(text);
	return found;
}

static int remember_layer(const struct push *p, capsula_error *err)
{
	char name[CACHE_NAME_MAX], *text;
	json_t *doc = json_pack("{s:s, s:s, s:I, s:I}", "digest", p->layer.digest, "diff_id",
	                        p->layer.diff_id, "size", (json_int_t)p->layer.size, "entries",
	                        (json_int_t)p->layer.entries);
	int ret;

	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	if (text == NULL)
		return fail(err, ENOMEM, NULL, "push record");
	layer_record_name(p, name, sizeof name);
	ret = cache_write_at(p->cache.fd, name, text, strlen(text), 0600, err);
	free(text);
	return ret;
}

/* Streamed while it is written, unless chunks were asked for (they are
 * sent once the layer is whole) or nothing is uploaded. */
static bool stream_wanted(const struct push *p)
{
	return !p->opts->no_upload && p->opts->chunk_size == 0;
}

/* The layer goes to a file that has no name: nothing is left behind. */
static int make_layer(struct push *p, capsula_error *err)
{
	uint64_t start = timing_now_us();
	struct layer_watcher watcher = {.grew = layer_stream_grew, .arg = &p->stream};
	bool streaming = false;
	int ret;

	p->layer_fd = openat(p->cache.fd, "partial", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (p->layer_fd < 0)
		return fail(err, errno, "set CAPSULA_CACHEDIR to a directory on a local file system",
		            "layer file in %s/partial", p->cache.dir);
	if (stream_wanted(p))
		streaming = layer_stream_start(&p->stream, &p->connection, p->layer_fd, err) == 0;
	ret = layer_tar_write(p->layers, &p->tree, p->layer_fd, &p->opts->layer,
	                      streaming ? &watcher : NULL, &p->layer, err);
	if (streaming) {
		p->streamed = layer_stream_end(&p->stream, ret == 0) == 0;
		if (ret == 0 && !p->streamed && !p->opts->quiet)
			fprintf(stderr, "capsula: warning: the layer could not be sent as it was made "
			        "(%s); it is sent whole\n", p->stream.err.message);
	}
	if (ret < 0)
		return -1;
	if (!p->opts->quiet)
		fprintf(stderr, "capsula: layer: %llu entries, %.1f MB (%s) in %.1f s\n",
		        (unsigned long long)p->layer.entries, (double)p->layer.size / 1e6,
		        p->opts->layer.compression, (double)(timing_now_us() - start) / 1e6);
	return remember_layer(p, err);
}

static void format_time(uint32_t seconds, char *out, size_t size)
{
	time_t t = (time_t)seconds;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "1970-01-01T00:00:00Z");
}

/* When the image was made: SOURCE_DATE_EPOCH if set, else its root's time,
 * never the moment of the push (the same image, the same config). */
static uint32_t image_time(const struct push *p)
{
	uint32_t t;

	return timing_source_date(&t) ? t : p->tree.root->inode->mtime;
}

static int make_config(struct push *p, capsula_error *err)
{
	struct platform host;
	char created[32];
	json_t *doc, *run;

	if (platform_parse(NULL, &host, err) < 0)
		return -1;
	format_time(image_time(p), created, sizeof created);
	/* A reference of our own, which json_pack's "o" takes over. */
	run = p->run_config ? json_incref(json_object_get(p->run_config, "config")) : json_object();
	doc = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:[s]}, s:[{s:s, s:s}]}",
	                "created", created, "architecture", host.architecture, "os", "linux",
	                "config", run, "rootfs", "type", "layers", "diff_ids", p->layer.diff_id,
	                "history", "created", created, "created_by", "capsula push");
	if (doc != NULL && host.variant[0] != '\0')
		json_object_set_new(doc, "variant", json_string(host.variant));
	p->config_text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	if (p->config_text == NULL)
		return fail(err, ENOMEM, NULL, "image config");
	sha256_digest_of(p->config_text, strlen(p->config_text), p->config_digest);
	return p->config_digest[0] ? 0 : fail(err, ELIBACC, "install libssl3", "hash");
}

static int make_manifest(struct push *p, capsula_error *err)
{
	json_t *doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}]}",
	                        "schemaVersion", 2, "mediaType", OCI_MANIFEST,
	                        "config", "mediaType", OCI_CONFIG, "digest", p->config_digest,
	                        "size", (json_int_t)strlen(p->config_text),
	                        "layers", "mediaType", layer_media_type(p->opts->layer.compression),
	                        "digest", p->layer.digest, "size", (json_int_t)p->layer.size);

	p->manifest_text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	return p->manifest_text ? 0 : fail(err, ENOMEM, NULL, "manifest");
}

static int open_registry(struct push *p, capsula_error *err)
{
	struct registry_settings settings = {
		.ca_file = p->opts->access.tls_ca,
		.insecure = p->opts->access.insecure,
		.retries = p->opts->access.retries,
		.quiet = p->opts->quiet,
		.push = true,
		.chunk_size = p->opts->chunk_size,
	};

	registry_apply_site(&settings, &p->config, p->ref.registry);
	if (registry_open(&p->registry, &p->ref, &settings, err) < 0)
		return -1;
	p->registry_open = true;
	return registry_connect(&p->connection, &p->registry, err);
}

static void pushed_name(const char *digest, char *out, size_t size)
{
	snprintf(out, size, "pushed/%.64s", digest + strlen("sha256:"));
}

/* The repositories this user pushed a layer to before, one a line. */
static char *earlier_pushes(const struct push *p, const char *digest)
{
	char name[CACHE_NAME_MAX], *text = NULL;
	size_t length;
	capsula_error ignored;

	pushed_name(digest, name, sizeof name);
	if (read_small_at(p->cache.fd, name, PUSH_RECORD_MAX, &text, &length, &ignored) < 0)
		return NULL;
	return text;
}

/* A repository of the same registry that got the layer before lends it:
 * the registry links it in, and nothing is sent. */
static int mount_earlier(struct push *p, const char *digest, char *from, size_t from_size,
                         capsula_error *err)
{
	char *text = earlier_pushes(p, digest), *line, *save = NULL;
	size_t length = strlen(p->ref.registry);
	bool mounted = false;

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL && !mounted;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, p->ref.registry, length) != 0 || line[length] != '/' ||
		    strcmp(line + length + 1, p->ref.repository) == 0)
			continue;
		if (registry_mount_blob(&p->connection, digest, line + length + 1, &mounted, err) < 0) {
			free(text);
			return -1;
		}
		if (mounted)
			snprintf(from, from_size, "%s", line + length + 1);
	}
	free(text);
	return mounted ? 1 : 0;
}

static bool has_line(const char *text, const char *line)
{
	size_t length = strlen(line);

	for (const char *at = text; at != NULL && *at != '\0'; at = strchr(at, '\n')) {
		at += *at == '\n';
		if (strncmp(at, line, length) == 0)
			return true;
	}
	return false;
}

static int remember_push(const struct push *p, const char *digest, capsula_error *err)
{
	char name[CACHE_NAME_MAX], entry[600], *text = earlier_pushes(p, digest), *joined = NULL;
	int ret = 0;

	snprintf(entry, sizeof entry, "%s/%s\n", p->ref.registry, p->ref.repository);
	if (text == NULL || !has_line(text, entry)) {
		/* Only a help for the next push: a full record starts again. */
		if (text != NULL && strlen(text) + strlen(entry) > PUSH_RECORD_MAX)
			text[0] = '\0';
		if (asprintf(&joined, "%s%s", text ? text : "", entry) < 0)
			ret = fail(err, ENOMEM, NULL, "push record");
		pushed_name(digest, name, sizeof name);
		if (ret == 0)
			ret = cache_write_at(p->cache.fd, name, joined, strlen(joined), 0600, err);
		free(joined);
	}
	free(text);
	return ret;
}

/* 1 when the repository holds the blob, or another one of the registry
 * lent it; note says which. */
static int blob_there(struct push *p, const char *digest, char *note, size_t note_size,
                      capsula_error *err)
{
	bool has = false;
	char from[300] = "";
	int mounted = 0;

	if (registry_has_blob(&p->connection, digest, &has, err) < 0)
		return -1;
	if (!has && (mounted = mount_earlier(p, digest, from, sizeof from, err)) < 0)
		return -1;
	snprintf(note, note_size, "%s%s", has ? "already there" : "mounted from ", from);
	return has || mounted;
}

/* A blob the repository already holds is not sent again. */
static int send_blob(struct push *p, int fd, const char *data, uint64_t size, const char *digest,
                     const char *label, capsula_error *err)
{
	uint64_t done = 0;
	char note[400];
	int there = blob_there(p, digest, note, sizeof note, err);

	if (there < 0 || (!there &&
	                  registry_push_blob(&p->connection, fd, data, size, digest, &done, err) < 0))
		return -1;
	if (!p->opts->quiet)
		fprintf(stderr, "capsula: %s %s: %s\n", label, digest, there ? note : "sent");
	return 0;
}

/* The layer of an image pushed before, when the registry holds it still
 * (or can lend it): neither made nor sent again. */
static int settle_layer(struct push *p, capsula_error *err)
{
	int there;

	if (hash_image(p, err) < 0)
		return -1;
	if (recall_layer(p) == 1) {
		if (p->opts->no_upload)
			return 0;
		there = blob_there(p, p->layer.digest, p->layer_note, sizeof p->layer_note, err);
		if (there != 0) {
			p->layer_settled = there == 1;
			return there < 0 ? -1 : 0;
		}
	}
	return make_layer(p, err);
}

/* The streamed layer is committed under its digest; a registry that
 * refuses gets it whole. */
static int send_layer(struct push *p, capsula_error *err)
{
	capsula_error refused = {0};

	if (p->layer_settled) {
		if (!p->opts->quiet)
			fprintf(stderr, "capsula: layer %s: %s\n", p->layer.digest, p->layer_note);
		return 0;
	}
	if (p->streamed && registry_commit_blob(&p->connection, p->stream.url, sizeof p->stream.url,
	                                        p->layer.digest, &refused) == 0) {
		if (!p->opts->quiet)
			fprintf(stderr, "capsula: layer %s: sent\n", p->layer.digest);
		return 0;
	}
	if (p->streamed && !p->opts->quiet)
		fprintf(stderr, "capsula: warning: %s; the layer is sent whole\n", refused.message);
	return send_blob(p, p->layer_fd, NULL, p->layer.size, p->layer.digest, "layer", err);
}

static int upload(struct push *p, capsula_error *err)
{
	return send_layer(p, err) < 0 || remember_push(p, p->layer.digest, err) < 0 ||
	       send_blob(p, -1, p->config_text, strlen(p->config_text), p->config_digest, "config",
	                 err) < 0 ||
	       registry_put_manifest(&p->connection, p->ref.tag, p->manifest_text,
	                             strlen(p->manifest_text), OCI_MANIFEST, err) < 0 ? -1 : 0;
}

static void release(struct push *p)
{
	registry_disconnect(&p->connection);
	if (p->registry_open)
		registry_close(&p->registry);
	free(p->manifest_text);
	free(p->config_text);
	if (p->layer_fd >= 0)
		close(p->layer_fd);
	json_decref(p->run_config);
	if (p->tree_made)
		tree_free(&p->tree);
	if (p->layers != NULL)
		squashfs_layers_close(p->layers);
	if (p->image.fd >= 0)
		close(p->image.fd);
	free(p->image.path);
	cache_close(&p->cache);
	config_free(&p->config);
}

int push_image(const struct push_options *opts, char digest[72], capsula_error *err)
{
	struct push p = {.opts = opts, .cache.fd = -1, .layer_fd = -1, .image.fd = -1};
	int ret = -1;

	if (parse_reference(&p, err) < 0 ||
	    config_load(CAPSULA_CONFIG_FILE, &p.config, err) < 0 ||
	    cache_locate(&p.config, &p.cache, 1, err) < 0 ||
	    open_image(&p, err) < 0 || read_run_config(&p, err) < 0 ||
	    (!opts->no_upload && open_registry(&p, err) < 0) || settle_layer(&p, err) < 0 ||
	    make_config(&p, err) < 0 || make_manifest(&p, err) < 0)
		goto out;
	if (!opts->no_upload && upload(&p, err) < 0)
		goto out;
	sha256_digest_of(p.manifest_text, strlen(p.manifest_text), digest);
	if (!opts->quiet && !opts->no_upload)
		fprintf(stderr, "capsula: pushed %s (%s)\n", p.name, digest);
	ret = 0;
out:
	release(&p);
	return ret;
}
