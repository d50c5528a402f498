#include "config.h"

#include <stdbool.h>
#include <unistd.h>

#include "runtime/config/site_config.h"
#include "runtime/image/converter.h"
#include "runtime/image/image_cache.h"
#include "runtime/image/pulled_image.h"

static int look_up(const struct image_ref *ref, const struct platform *platform, char *path,
                   size_t size, capsula_error *err)
{
	struct capsula_config config;
	struct image_cache cache;
	int found;

	if (config_load(CAPSULA_CONFIG_FILE, &config, err) < 0)
		return -1;
	found = cache_locate(&config, &cache, 0, err) < 0 ? -1 :
	        cache_lookup(&cache, ref, platform, path, size, err);
	config_free(&config);
	return found;
}

int pulled_image_path(const char *text, char *path, size_t size, capsula_error *err)
{
	/* Progress only where someone watches: not from every rank of a batch job. */
	bool watched = isatty(STDERR_FILENO);
	const char *args[] = {"pull", "--if-missing", watched ? text : "--quiet",
	                      watched ? NULL : text, NULL};
	struct image_ref ref;
	struct platform platform;
	int found, status;

	if (image_ref_parse(text, &ref, err) < 0 || platform_parse(NULL, &platform, err) < 0)
		return -1;
	found = look_up(&ref, &platform, path, size, err);
	if (found != 0)
		return found < 0 ? -1 : 0;
	status = converter_run(args, err);
	if (status < 0)
		return -1;
	if (status != 0) {
		/* capsula-convert said why; one line is enough. */
		err->status = status;
		err->message[0] = '\0';
		return -1;
	}
	found = look_up(&ref, &platform, path, size, err);
	if (found == 0)
		return fail(err, 0, "pull it with capsula pull", "%s is not in the cache after a pull",
		            text);
	return found < 0 ? -1 : 0;
}
