#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/site_config.h"
#include "runtime/doctor/checks.h"
#include "runtime/plan/gpu.h"

/* "a, b, c" of the last path components, cut to fit. */
static void join_names(const struct strvec *paths, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < paths->count && used < size; i++) {
		const char *slash = strrchr(paths->items[i], '/');
		int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "",
		                 slash ? slash + 1 : paths->items[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* What --nv and --rocm would bring into a container on this node. */
void check_gpus(struct check_list *list)
{
	static const struct { unsigned kind; const char *name; } kinds[] = {
		{GPU_NVIDIA, "gpu nvidia"},
		{GPU_AMD, "gpu amd"},
	};
	extern char **environ;
	struct capsula_config config;
	const char *ld_cache, *search_path;
	capsula_error ignored;
	bool user_binds;

	/* The same places a launch looks in (a broken configuration is
	 * reported by its own check; here it allows nothing of the user's). */
	user_binds = config_load(CAPSULA_CONFIG_FILE, &config, &ignored) == 0 && config.user_binds;
	config_free(&config);
	gpu_search_places(user_binds, environ, &ld_cache, &search_path);
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		struct gpu_files found = {0};
		char devices[160], libraries[240], programs[80];
		capsula_error err;

		if (gpu_find(kinds[k].kind, ld_cache, search_path, &found, &err) < 0) {
			check_add(list, kinds[k].name, CHECK_WARN, NULL, "%s", err.message);
			gpu_files_free(&found);
			continue;
		}
		join_names(&found.devices, devices, sizeof devices);
		join_names(&found.library_names, libraries, sizeof libraries);
		join_names(&found.program_names, programs, sizeof programs);
		if (found.devices.count == 0)
			check_add(list, kinds[k].name, CHECK_INFO, NULL, "no %s GPU device%s%s",
			          gpu_vendor(kinds[k].kind), found.libraries.count ?
			          "; driver libraries: " : "", libraries);
		else if (found.libraries.count == 0)
			check_add(list, kinds[k].name, CHECK_WARN,
			          "install the GPU driver's user-space libraries and run ldconfig",
			          "%s: %s, but no driver library in the ld.so cache", gpu_option(kinds[k].kind),
			          devices);
		else
			check_add(list, kinds[k].name, CHECK_OK, NULL,
			          "%s binds %s; libraries %s; programs %s", gpu_option(kinds[k].kind), devices,
			          libraries, found.programs.count ? programs : "none");
		gpu_files_free(&found);
	}
}
