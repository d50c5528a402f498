#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "runtime/convert/output_file.h"
#include "runtime/image/image_cache.h"
#include "runtime/pull/pull.h"
#include "runtime/pull/pull_fetch.h"
#include "runtime/pull/pull_verify.h"
#include "runtime/pull/registry.h"

#define HINT_REGISTRY "the registry sent something that is not an image; tell its operator"
#define MAX_LAYERS 1000
#define COPY_CHUNK (1u << 20)

struct pull {
	const struct pull_options *opts;
	struct image_ref ref;
	struct platform platform;
	char name[700];                  /* the reference as the user sees it */
	struct capsula_config config;
	struct image_cache cache;
	struct registry registry;
	bool registry_open;
	struct registry_connection connection;
	char digest[72];                 /* of the image manifest */
	char top_digest[72];             /* of what the reference names (a signature's) */
	struct pull_trust trust;
	json_t *manifest;
	struct fetch_blob *blobs;
	size_t blob_count;
	char image[CACHE_NAME_MAX];      /* the converted image, below the cache */
};

static bool is_schema1(const char *media_type)
{
	return strncmp(media_type, "application/vnd.docker.distribution.manifest.v1", 47) == 0;
}

static bool is_index(const json_t *doc, const char *media_type)
{
	return json_object_get(doc, "manifests") != NULL ||
	       strcmp(media_type, "application/vnd.oci.image.index.v1+json") == 0 ||
	       strcmp(media_type, "application/vnd.docker.distribution.manifest.list.v2+json") == 0;
}

static bool platform_matches(const json_t *descriptor, const struct platform *want, bool variant)
{
	const json_t *platform = json_object_get(descriptor, "platform");
	const char *os = json_string_value(json_object_get(platform, "os"));
	const char *arch = json_string_value(json_object_get(platform, "architecture"));
	const char *var = json_string_value(json_object_get(platform, "variant"));

	if (os == NULL || arch == NULL || strcmp(os, want->os) != 0 ||
	    strcmp(arch, want->architecture) != 0)
		return false;
	if (want->variant[0] != '\0')
		return var != NULL && strcmp(var, want->variant) == 0;
	/* Without a variant asked for: the plain one, or arm64's usual v8. */
	return !variant || var == NULL || strcmp(var, "v8") == 0;
}

static void list_platforms(const json_t *manifests, char *out, size_t size)
{
	const json_t *m;
	size_t i, at = 0;

	out[0] = '\0';
	json_array_foreach(manifests, i, m) {
		const json_t *platform = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(platform, "os"));
		const char *arch = json_string_value(json_object_get(platform, "architecture"));
		const char *var = json_string_value(json_object_get(platform, "variant"));
		int n;

		/* Attestations are listed as unknown/unknown. */
		if (os == NULL || arch == NULL || strcmp(os, "unknown") == 0)
			continue;
		n = snprintf(out + at, size - at, "%s%s/%s%s%s", at ? ", " : "", os, arch,
		             var ? "/" : "", var ? var : "");
		if (n < 0 || (size_t)n >= size - at)
			return;
		at += (size_t)n;
	}
}

static int pick_platform(struct pull *p, const json_t *index, const char **digest,
                         capsula_error *err)
{
	const json_t *manifests = json_object_get(index, "manifests"), *m;
	char wanted[100], offered[600];
	size_t i;

	for (int strict = 1; strict >= 0; strict--)
		json_array_foreach(manifests, i, m)
			if (platform_matches(m, &p->platform, strict)) {
				*digest = json_string_value(json_object_get(m, "digest"));
				if (*digest == NULL)
					return fail(err, 0, HINT_REGISTRY, "%s: an index entry has no digest",
					            p->name);
				return 0;
			}
	platform_format(&p->platform, wanted, sizeof wanted);
	list_platforms(manifests, offered, sizeof offered);
	return fail(err, 0, "pick one with --platform", "%s has no image for %s (it has: %s)",
	            p->name, wanted, offered[0] ? offered : "none");
}

static bool cache_has(const struct pull *p, const char *name)
{
	struct stat st;

	return fstatat(p->cache.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int store_blob(struct pull *p, const char *digest, const char *body, size_t length,
                      capsula_error *err)
{
	char name[CACHE_NAME_MAX];

	cache_blob_name(digest, name, sizeof name);
	if (cache_has(p, name))
		return 0;
	return cache_write_at(p->cache.fd, name, body, length, 0644, err);
}

/* One manifest or index, verified, parsed into p->manifest and kept in
 * the cache, where the conversion reads it again. */
static int fetch_manifest(struct pull *p, const char *reference, char *type, size_t type_size,
                          capsula_error *err)
{
	char *body;
	size_t length;
	json_error_t problem;
	int ret;

	if (registry_get_manifest(&p->connection, reference, &body, &length, type, type_size,
	                          p->digest, err) < 0)
		return -1;
	json_decref(p->manifest);
	p->manifest = NULL;
	if (is_schema1(type))
		ret = fail(err, 0, "push it again with a current tool (docker, skopeo)",
		           "%s: schema 1 manifests are not supported", p->name);
	else if ((p->manifest = json_loadb(body, length, JSON_REJECT_DUPLICATES, &problem)) == NULL)
		ret = fail(err, 0, HINT_REGISTRY, "%s: manifest: %s", p->name, problem.text);
	else if (!json_is_object(p->manifest))
		ret = fail(err, 0, HINT_REGISTRY, "%s: the manifest is not an object", p->name);
	else
		ret = store_blob(p, p->digest, body, length, err);
	free(body);
	return ret;
}

/* The tag (or digest) down to one image manifest for the platform. */
static int resolve(struct pull *p, capsula_error *err)
{
	char type[128], chosen[72];
	const char *digest;

	if (fetch_manifest(p, image_ref_reference(&p->ref), type, sizeof type, err) < 0)
		return -1;
	snprintf(p->top_digest, sizeof p->top_digest, "%s", p->digest);
	if (!is_index(p->manifest, type))
		return 0;
	if (pick_platform(p, p->manifest, &digest, err) < 0)
		return -1;
	if (!sha256_digest_valid(digest))
		return fail(err, 0, HINT_REGISTRY, "%s: index entry digest '%s' is not sha256:HEX",
		            p->name, digest);
	snprintf(chosen, sizeof chosen, "%s", digest);
	if (fetch_manifest(p, chosen, type, sizeof type, err) < 0)
		return -1;
	if (is_index(p->manifest, type))
		return fail(err, 0, HINT_REGISTRY, "%s: an index inside an index", p->name);
	return 0;
}

static int add_blob(struct pull *p, const json_t *descriptor, const char *label,
                    capsula_error *err)
{
	const char *digest = json_string_value(json_object_get(descriptor, "digest"));
	const char *type = json_string_value(json_object_get(descriptor, "mediaType"));
	const json_t *size = json_object_get(descriptor, "size");
	struct fetch_blob *b = &p->blobs[p->blob_count];

	if (!sha256_digest_valid(digest) || !json_is_integer(size) || json_integer_value(size) < 0)
		return fail(err, 0, HINT_REGISTRY, "%s: the %s's descriptor has no sha256 digest or "
		            "size", p->name, label);
	if (type != NULL && strstr(type, "encrypted") != NULL)
		return fail(err, 0, "pull an image that is not encrypted",
		            "%s: the %s is encrypted (%s)", p->name, label, type);
	memset(b, 0, sizeof *b);
	snprintf(b->digest, sizeof b->digest, "%s", digest);
	snprintf(b->label, sizeof b->label, "%s", label);
	b->size = json_integer_value(size);
	p->blob_count++;
	return 0;
}

static int list_blobs(struct pull *p, capsula_error *err)
{
	const json_t *layers = json_object_get(p->manifest, "layers"), *layer;
	size_t i, count = json_array_size(layers);
	char label[32];

	if (!json_is_array(layers) || count > MAX_LAYERS)
		return fail(err, 0, HINT_REGISTRY, "%s: the manifest lists no layers or too many",
		            p->name);
	p->blobs = calloc(count + 1, sizeof *p->blobs);
	if (p->blobs == NULL)
		return fail(err, errno, NULL, "%s", p->name);
	if (add_blob(p, json_object_get(p->manifest, "config"), "config", err) < 0)
		return -1;
	json_array_foreach(layers, i, layer) {
		snprintf(label, sizeof label, "layer %zu/%zu", i + 1, count);
		if (add_blob(p, layer, label, err) < 0)
			return -1;
	}
	return 0;
}

/* Straight from the cached blobs into squashfs, verified once more. */
static int convert(struct pull *p, capsula_error *err)
{
	struct build_options b = p->opts->build;

	char shown[CACHE_PATH_MAX];

	snprintf(shown, sizeof shown, "%s/%s", p->cache.dir, p->image);
	b.output = p->image;
	b.output_dir_fd = p->cache.fd;
	b.output_shown = shown;
	b.source = p->cache.dir;
	b.source_dir_fd = p->cache.fd;
	b.manifest = p->digest;
	b.force = true;
	return build_image(&b, err) < 0 ? -1 : cache_record_image(&p->cache, p->digest, err);
}

static int copy_bytes(int from, int to)
{
	static unsigned char buffer[COPY_CHUNK];
	ssize_t n;

	for (;;) {
		n = copy_file_range(from, NULL, to, NULL, COPY_CHUNK, 0);
		if (n == 0)
			return 0;
		if (n < 0)
			break;
	}
	if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
		return -1;
	while ((n = read(from, buffer, sizeof buffer)) > 0)
		if (write(to, buffer, (size_t)n) != n)
			return -1;
	return n < 0 ? -1 : 0;
}

/* OUT.sqfs: a copy of the cached image, appearing whole by a rename. */
static int copy_image(struct pull *p, const char *output, capsula_error *err)
{
	struct output_file out;
	int from = cache_open_image(&p->cache, p->digest, err), ret = -1;

	if (from < 0)
		return -1;
	if (output_open(&out, -1, output, NULL, true, err) == 0 && output_begin(&out, err) == 0) {
		if (copy_bytes(from, out.fd) < 0)
			fail(err, errno, errno == ENOSPC ? "free space there" : NULL, "write %s", output);
		else
			ret = output_commit(&out, err);
	}
	output_close(&out);
	close(from);
	return ret;
}

static int lock_reference(struct pull *p, capsula_error *err)
{
	char key[900], platform[100], hex[SHA256_HEX_BYTES], name[48];
	struct sha256 h;

	platform_format(&p->platform, platform, sizeof platform);
	snprintf(key, sizeof key, "%s,%s", p->name, platform);
	if (sha256_begin(&h) < 0)
		return fail(err, errno, "install libssl3", "hash %s", key);
	sha256_update(&h, key, strlen(key));
	if (sha256_end_hex(&h, hex) < 0)
		return fail(err, 0, NULL, "libcrypto failed to hash %s", key);
	snprintf(name, sizeof name, "ref-%.32s", hex);
	return cache_lock(&p->cache, name, err);
}

static int open_registry(struct pull *p, capsula_error *err)
{
	struct registry_settings settings = {
		.ca_file = p->opts->access.tls_ca,
		.insecure = p->opts->access.insecure,
		.retries = p->opts->access.retries,
		.quiet = p->opts->build.quiet,
		.max_rate = p->opts->max_rate / p->opts->parallel,
	};

	registry_apply_site(&settings, &p->config, p->ref.registry);
	if (registry_open(&p->registry, &p->ref, &settings, err) < 0)
		return -1;
	p->registry_open = true;
	return registry_connect(&p->connection, &p->registry, err);
}

/* Fetch and convert, unless another pull did while this one waited. */
static int make_image(struct pull *p, capsula_error *err)
{
	char name[96];
	int lock, ret = 0;

	cache_image_name(p->digest, p->image, sizeof p->image);
	if (cache_has(p, p->image))
		return 0;
	snprintf(name, sizeof name, "image-%s", p->digest + 7);
	lock = cache_lock(&p->cache, name, err);
	if (lock < 0)
		return -1;
	if (!cache_has(p, p->image))
		ret = list_blobs(p, err) < 0 ||
		      fetch_blobs(&p->registry, &p->cache, p->blobs, p->blob_count,
		                  p->opts->parallel, p->opts->build.quiet, err) < 0 ||
		      convert(p, err) < 0 ? -1 : 0;
	if (ret == 0)
		cache_unlock_remove(&p->cache, name, lock);
	else
		cache_unlock(lock);
	return ret;
}

static void release(struct pull *p)
{
	registry_disconnect(&p->connection);
	if (p->registry_open)
		registry_close(&p->registry);
	json_decref(p->manifest);
	free(p->blobs);
	pull_trust_free(&p->trust);
	cache_close(&p->cache);
	config_free(&p->config);
}

static int refuse_rejected(const struct pull *p, capsula_error *err)
{
	if (!p->trust.site_rejects)
		return 0;
	return fail(err, 0, "pull from elsewhere, or ask the site's administrators",
	            "%s: %s rejects it (%s)", p->name, p->trust.site_rule, CAPSULA_CONFIG_FILE);
}

/* Before a byte of a layer is fetched. */
static int check_signatures(struct pull *p, capsula_error *err)
{
	if (!pull_trust_required(&p->trust))
		return 0;
	if (pull_trust_verify(&p->trust, &p->connection, p->name, p->top_digest, err) < 0)
		return -1;
	if (!p->opts->build.quiet)
		fprintf(stderr, "capsula: %s is signed by %s\n", p->name, p->trust.checked.signers);
	return 0;
}

int pull_image(const struct pull_options *opts, char *image, size_t size, capsula_error *err)
{
	struct pull p = {.opts = opts, .cache.fd = -1};
	const char *output = opts->build.output;
	int ref_lock = -1, ret = -1, found = 0;

	if (image_ref_parse(opts->ref, &p.ref, err) < 0 ||
	    platform_parse(opts->platform, &p.platform, err) < 0)
		return -1;
	image_ref_format(&p.ref, p.name, sizeof p.name);
	if (output != NULL && !opts->build.force && access(output, F_OK) == 0)
		return fail(err, 0, "use --force to replace it", "%s exists", output);
	if (config_load(CAPSULA_CONFIG_FILE, &p.config, err) < 0 ||
	    pull_trust_load(&p.trust, &p.config, &p.ref, opts->verify_keys, opts->verify_key_count,
	                    err) < 0 ||
	    refuse_rejected(&p, err) < 0 ||
	    cache_locate(&p.config, &p.cache, 1, err) < 0 ||
	    (ref_lock = lock_reference(&p, err)) < 0)
		goto out;
	/* For exec docker://REF: what an earlier pull of the tag resolved to. */
	if (opts->if_missing &&
	    (found = cache_lookup(&p.cache, &p.ref, &p.platform, p.digest, err)) < 0)
		goto out;
	/* A rank checks what the pull that made the image recorded of its signers. */
	if (found && pull_trust_required(&p.trust) && !pull_trust_recorded(&p.trust, &p.cache, p.digest))
		found = 0;
	if (found)
		cache_image_name(p.digest, p.image, sizeof p.image);
	if (!found) {
		if (open_registry(&p, err) < 0 || resolve(&p, err) < 0 || check_signatures(&p, err) < 0 ||
		    make_image(&p, err) < 0 ||
		    cache_record_ref(&p.cache, &p.ref, &p.platform, p.digest, err) < 0 ||
		    pull_trust_record(&p.trust, &p.cache, p.digest, err) < 0)
			goto out;
		if (!opts->build.quiet)
			fprintf(stderr, "capsula: %s is %s\n", p.name, p.digest);
	}
	if (output != NULL && copy_image(&p, output, err) < 0)
		goto out;
	snprintf(image, size, "%s/%s", p.cache.dir, p.image);
	ret = 0;
out:
	cache_unlock(ref_lock);
	release(&p);
	return ret;
}
