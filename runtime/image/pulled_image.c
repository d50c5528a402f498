#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "runtime/config/site_config.h"
#include "runtime/image/converter.h"
#include "runtime/image/image_cache.h"
#include "runtime/image/pulled_image.h"

/* The image's descriptor, -2 when REF is not in the cache, -1 on error. */
static int look_up(const struct image_ref *ref, const struct platform *platform, char *path,
                   size_t size, capsula_error *err)
{
	struct capsula_config config;
	struct image_cache cache;
	char digest[72], name[CACHE_NAME_MAX];
	int found, fd = -1;

	if (config_load(CAPSULA_CONFIG_FILE, &config, err) < 0)
		return -1;
	found = cache_locate(&config, &cache, 0, err) < 0 ? -1 :
	        cache_lookup(&cache, ref, platform, digest, err);
	if (found == 1) {
		cache_image_name(digest, name, sizeof name);
		snprintf(path, size, "%s/%s", cache.dir, name);
		fd = cache_open_image(&cache, digest, err);
	}
	cache_close(&cache);
	config_free(&config);
	return found == 1 ? fd : found == 0 ? -2 : -1;
}

int pulled_image_open(const char *text, const struct pull_access *access, char *path,
                      size_t size, capsula_error *err)
{
	const char *args[8];
	size_t n = 0;
	struct image_ref ref;
	struct platform platform;
	int fd, status;

	if (image_ref_parse(text, &ref, err) < 0 || platform_parse(NULL, &platform, err) < 0)
		return -1;
	fd = look_up(&ref, &platform, path, size, err);
	if (fd != -2)
		return fd;
	args[n++] = "pull";
	args[n++] = "--if-missing";
	if (access->insecure)
		args[n++] = "--insecure";
	if (access->tls_ca != NULL) {
		args[n++] = "--tls-ca";
		args[n++] = access->tls_ca;
	}
	/* Progress only where someone watches: not from every rank of a job. */
	if (!access->shown || !isatty(STDERR_FILENO))
		args[n++] = "--quiet";
	args[n++] = text;
	args[n] = NULL;
	if (access->shown) {
		fprintf(stderr, "capsula: %s is not in the cache: pulling it (once for this node)\n",
		        text);
		fflush(stderr);
	}
	status = converter_run(args, err);
	if (status < 0)
		return -1;
	if (status != 0) {
		/* capsula-convert said why; one line is enough. */
		err->status = status;
		err->message[0] = '\0';
		return -1;
	}
	fd = look_up(&ref, &platform, path, size, err);
	if (fd == -2)
		return fail(err, 0, "pull it with capsula pull", "%s is not in the cache after a pull",
		            text);
	return fd;
}
