#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "runtime/config/image_policy.h"
#include "runtime/config/site_config.h"
#include "runtime/image/converter.h"
#include "runtime/image/image_cache.h"
#include "runtime/image/pulled_image.h"

/* Does the site's image policy want more than the cache can say here? Its
 * keys and the record of who signed the image are capsula-convert's to
 * check (libcrypto stays off the launch path): then the pull, which finds
 * the image cached and the record, decides. */
static bool policy_applies(const struct capsula_config *config, const struct image_ref *ref)
{
	struct image_policy_rule rule;
	char why[300];
	int found = image_policy_find(&config->image_policies, ref->registry, ref->repository,
	                              &rule, why, sizeof why);
	bool applies = found != 0 && (found < 0 || rule.kind != POLICY_ACCEPT);

	if (found == 1)
		image_policy_rule_free(&rule);
	return applies;
}

/* The image's descriptor, -2 when REF is not in the cache, -3 when the pull
 * must say whether it may run, -1 on error. */
static int look_up(const struct image_ref *ref, const struct platform *platform,
                   bool after_pull, char *path, size_t size, capsula_error *err)
{
	struct capsula_config config;
	struct image_cache cache = {.fd = -1};
	char digest[72], name[CACHE_NAME_MAX];
	int found, fd = -1;

	if (config_load(CAPSULA_CONFIG_FILE, &config, err) < 0)
		return -1;
	if (!after_pull && policy_applies(&config, ref)) {
		config_free(&config);
		return -3;
	}
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
	fd = look_up(&ref, &platform, false, path, size, err);
	if (fd != -2 && fd != -3)
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
	if (access->shown && fd == -2) {
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
	fd = look_up(&ref, &platform, true, path, size, err);
	if (fd == -2)
		return fail(err, 0, "pull it with capsula pull", "%s is not in the cache after a pull",
		            text);
	return fd;
}
