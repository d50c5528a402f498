#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/environ.h"
#include "runtime/plan/env.h"
#include "runtime/plan/gpu.h"
#include "runtime/plan/gpu_plan.h"

static int bind_into(struct bind_list *binds, const char *dir, const struct strvec *sources,
                     const struct strvec *names, capsula_error *err)
{
	for (size_t i = 0; i < sources->count; i++) {
		char destination[4096];

		snprintf(destination, sizeof destination, "%s/%s", dir, names->items[i]);
		if (bind_list_add(binds, sources->items[i], destination, BIND_READONLY) < 0)
			return fail(err, errno, NULL, "bind %s", sources->items[i]);
	}
	return 0;
}

static void warn_missing(const struct exec_options *opts, unsigned kind,
                         const struct gpu_files *found, size_t devices_before,
                         size_t libraries_before)
{
	if (opts->verbosity < 0)
		return;
	if (found->devices.count == devices_before && opts->dev_mode == DEV_MINIMAL)
		fprintf(stderr, "capsula: warning: %s: no %s GPU device on this node\n",
		        gpu_option(kind), gpu_vendor(kind));
	if (found->libraries.count == libraries_before)
		fprintf(stderr, "capsula: warning: %s: no %s driver library in the ld.so cache\n",
		        gpu_option(kind), gpu_vendor(kind));
}

int plan_gpu_binds(const struct exec_options *opts, const struct host_facts *facts,
                   struct bind_list *binds, capsula_error *err)
{
	const char *ld_cache, *search_path;
	struct gpu_files found = {0};
	int ret = 0;

	gpu_search_places(facts_config(facts)->user_binds, facts->environ, &ld_cache,
	                  &search_path);
	for (unsigned kind = GPU_NVIDIA; ret == 0 && kind <= GPU_AMD; kind <<= 1) {
		size_t devices = found.devices.count, libraries = found.libraries.count;

		if (!(opts->gpus & kind))
			continue;
		ret = gpu_find(kind, ld_cache, search_path, &found, err);
		if (ret == 0)
			warn_missing(opts, kind, &found, devices, libraries);
	}
	/* --dev host brings every device already. */
	for (size_t i = 0; ret == 0 && opts->dev_mode == DEV_MINIMAL && i < found.devices.count; i++)
		if (bind_list_add(binds, found.devices.items[i], found.devices.items[i],
		                  BIND_DEVICES) < 0)
			ret = fail(err, errno, NULL, "bind %s", found.devices.items[i]);
	if (ret == 0)
		ret = bind_into(binds, GPU_LIB_DIR, &found.libraries, &found.library_names, err);
	if (ret == 0)
		ret = bind_into(binds, GPU_BIN_DIR, &found.programs, &found.program_names, err);
	gpu_files_free(&found);
	return ret;
}

static int prepend(struct strvec *env, const char *name, const char *dir)
{
	const char *old = env_get(env->items, name);
	char *assignment;
	int ret;

	if (asprintf(&assignment, "%s=%s%s%s", name, dir, old && *old ? ":" : "",
	             old ? old : "") < 0)
		return -1;
	ret = env_set(env, assignment);
	free(assignment);
	return ret;
}

int plan_gpu_environment(struct strvec *env, capsula_error *err)
{
	if (prepend(env, "LD_LIBRARY_PATH", GPU_LIB_DIR) < 0 ||
	    prepend(env, "PATH", GPU_BIN_DIR) < 0)
		return fail(err, errno, NULL, "environment");
	return 0;
}
