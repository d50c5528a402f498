#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_out.h"
#include "common/library_dirs.h"
#include "common/mpi_version.h"
#include "common/small_file.h"
#include "runtime/image/image_config.h"
#include "runtime/image/mpi_stack.h"

#define DPKG_STATUS "/var/lib/dpkg/status"
#define MAX_STATUS_SIZE (64u << 20)
#define MAX_LIBRARY_SIZE (32u << 20)

static int read_host_file(void *context, const char *path, size_t max, char **data,
                          size_t *length)
{
	capsula_error ignored;

	(void)context;
	return read_small_file(path, max, data, length, &ignored);
}

static int list_host_dir(void *context, const char *path, struct strvec *names)
{
	DIR *dir = opendir(path);
	struct dirent *d;

	(void)context;
	if (dir == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.' && strvec_push(names, d->d_name) < 0)
			break;
	closedir(dir);
	strvec_sort(names);
	return 0;
}

const struct file_access host_files = {read_host_file, list_host_dir, NULL};

/* Is the stanza at s (up to its blank line) for package, and installed? */
static bool stanza_is(const char *s, const char *end, const char *package)
{
	size_t n = strlen(package);
	bool named = false, installed = false;

	for (const char *line = s; line < end; line = strchr(line, '\n') + 1) {
		if (strncmp(line, "Package: ", 9) == 0)
			named = strncmp(line + 9, package, n) == 0 && (line[9 + n] == '\n' || line[9 + n] == '\0');
		else if (strncmp(line, "Status: ", 8) == 0)
			installed = strncmp(line + 8, "install ok installed", 20) == 0;
		if (strchr(line, '\n') == NULL || strchr(line, '\n') >= end)
			break;
	}
	return named && installed;
}

int dpkg_version(const char *status, const char *package, char *out, size_t size)
{
	const char *s = status;

	while (*s != '\0') {
		const char *end = strstr(s, "\n\n");
		const char *version;

		end = end ? end + 1 : s + strlen(s);
		if (stanza_is(s, end, package)) {
			version = s;
			while (version < end && strncmp(version, "Version: ", 9) != 0) {
				version = strchr(version, '\n');
				if (version == NULL || version >= end)
					return -1;
				version++;
			}
			if (version >= end)
				return -1;
			version += 9;
			/* Drop the epoch ("1:") and the Debian revision ("-3+b1"). */
			const char *colon = strchr(version, ':');
			const char *stop = version + strcspn(version, "\n");
			if (colon != NULL && colon < stop)
				version = colon + 1;
			const char *dash = memrchr(version, '-', (size_t)(stop - version));
			if (dash != NULL)
				stop = dash;
			snprintf(out, size, "%.*s", (int)(stop - version), version);
			return 0;
		}
		s = end[0] == '\n' ? end + 1 : end;
	}
	return -1;
}

/* The first of several package names (they change across releases). */
static void version_from_dpkg(const char *status, const char *const *packages, char *out)
{
	for (size_t i = 0; packages[i] != NULL; i++)
		if (dpkg_version(status, packages[i], out, STACK_VERSION_SIZE) == 0)
			return;
}

/* Paths below dir matching rest, a pattern whose components may hold
 * wildcards, found through files as glob(3) would find them on disk. */
static void expand_pattern(const struct file_access *files, const char *dir, const char *rest,
                           struct strvec *out)
{
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	struct strvec names = {0};
	char part[256], path[4096];

	if (n == 0 || n >= sizeof part)
		return;
	memcpy(part, rest, n);
	part[n] = '\0';
	if (strpbrk(part, "*?[") == NULL) {
		strvec_push(&names, part);
	} else if (files->list(files->context, dir[0] ? dir : "/", &names) < 0) {
		return;
	}
	for (size_t i = 0; i < names.count; i++) {
		if (fnmatch(part, names.items[i], FNM_PERIOD) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, names.items[i]);
		if (slash != NULL)
			expand_pattern(files, path, slash + 1, out);
		else
			strvec_push(out, path);
	}
	strvec_free(&names);
}

/* Open MPI's version from its libopen-pal, where the container's own check
 * looks for it (common/mpi_version.c). */
static void openmpi_from_library(const struct file_access *files, char *out)
{
	for (size_t p = 0; openmpi_library_patterns[p] != NULL && out[0] == '\0'; p++) {
		struct strvec paths = {0};

		expand_pattern(files, "", openmpi_library_patterns[p] + 1, &paths);
		for (size_t i = 0; i < paths.count && out[0] == '\0'; i++) {
			char *data;
			size_t length;

			if (files->read(files->context, paths.items[i], MAX_LIBRARY_SIZE, &data,
			                &length) < 0)
				continue;
			if (mpi_version_find(data, length, out, STACK_VERSION_SIZE) < 0)
				out[0] = '\0';
			free(data);
		}
		strvec_free(&paths);
	}
}

/* rdma-core's providers: DIR/libibverbs/libNAME-rdmavN.so */
static void verbs_providers(const struct file_access *files, const struct strvec *dirs,
                            struct strvec *providers)
{
	for (size_t i = 0; i < dirs->count; i++) {
		struct strvec names = {0};
		char dir[4096];

		snprintf(dir, sizeof dir, "%s/libibverbs", dirs->items[i]);
		if (files->list(files->context, dir, &names) < 0)
			continue;
		for (size_t j = 0; j < names.count; j++) {
			const char *name = names.items[j];
			const char *dash = strstr(name, "-rdmav");

			if (strncmp(name, "lib", 3) != 0 || dash == NULL)
				continue;
			char *provider = strndup(name + 3, (size_t)(dash - name - 3));
			bool seen = false;

			for (size_t k = 0; provider != NULL && k < providers->count; k++)
				seen = seen || strcmp(providers->items[k], provider) == 0;
			if (provider != NULL && !seen)
				strvec_push_owned(providers, provider);
			else
				free(provider);
		}
		strvec_free(&names);
	}
}

void mpi_stack_detect(const struct file_access *files, struct mpi_stack *stack)
{
	static const char *const openmpi[] = {"libopenmpi3", "libopenmpi3t64", "libopenmpi40", NULL};
	static const char *const pmix[] = {"libpmix2", "libpmix2t64", NULL};
	static const char *const libfabric[] = {"libfabric1", NULL};
	static const char *const rdma[] = {"rdma-core", "ibverbs-providers", "libibverbs1", NULL};
	struct strvec dirs = {0};
	char *status;
	size_t length;

	memset(stack, 0, sizeof *stack);
	if (files->read(files->context, DPKG_STATUS, MAX_STATUS_SIZE, &status, &length) == 0) {
		version_from_dpkg(status, openmpi, stack->openmpi);
		version_from_dpkg(status, pmix, stack->pmix);
		version_from_dpkg(status, libfabric, stack->libfabric);
		version_from_dpkg(status, rdma, stack->rdma_core);
		free(status);
	}
	for (size_t i = 0; library_dirs[i] != NULL; i++)
		strvec_push(&dirs, library_dirs[i]);
	if (stack->openmpi[0] == '\0')
		openmpi_from_library(files, stack->openmpi);
	verbs_providers(files, &dirs, &stack->verbs_providers);
	strvec_free(&dirs);
}

void mpi_stack_free(struct mpi_stack *stack)
{
	strvec_free(&stack->verbs_providers);
}

static json_t *version_json(const char *version)
{
	return version[0] == '\0' ? json_null() : json_text(version);
}

json_t *mpi_stack_json(const struct mpi_stack *stack)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o}", "openmpi", version_json(stack->openmpi),
	                 "pmix", version_json(stack->pmix),
	                 "libfabric", version_json(stack->libfabric),
	                 "rdma_core", version_json(stack->rdma_core),
	                 "verbs_providers", json_text_list(stack->verbs_providers.items,
	                                                   stack->verbs_providers.count));
}
