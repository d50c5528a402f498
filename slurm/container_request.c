#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slurm/container_request.h"

bool request_wanted(const struct container_request *r)
{
	return r->image != NULL || r->name != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

int request_image_ref(const char *given, char *out, size_t size, char *why, size_t why_size)
{
	const char *hash, *at, *image;
	size_t registry_len = 0;
	int n;

	if (given[0] == '\0') {
		snprintf(why, why_size, "an empty image");
		return -1;
	}
	if (given[0] == '/' || strncmp(given, "./", 2) == 0 || strncmp(given, "../", 3) == 0 ||
	    strstr(given, "://") != NULL || ends_with(given, ".sqfs") || ends_with(given, ".sif") ||
	    ends_with(given, ".squashfs")) {
		n = snprintf(out, size, "%s", given);
		goto done;
	}
	/* USER@ comes before REGISTRY#; without a #, an @ is a digest's. */
	hash = strchr(given, '#');
	at = strchr(given, '@');
	image = given;
	if (hash != NULL) {
		const char *registry = at != NULL && at < hash ? at + 1 : given;

		registry_len = (size_t)(hash - registry);
		if (registry_len == 0 || hash[1] == '\0' || strchr(hash + 1, '#') != NULL) {
			snprintf(why, why_size, "not [USER@][REGISTRY#]IMAGE[:TAG]");
			return -1;
		}
		image = hash + 1;
		n = snprintf(out, size, "docker://%.*s/%s", (int)registry_len, registry, image);
	} else {
		if (at != NULL && strncmp(at + 1, "sha256:", 7) != 0)
			image = at + 1;  /* USER@IMAGE */
		n = snprintf(out, size, "docker://%s", image);
	}
done:
	if (n < 0 || (size_t)n >= size) {
		snprintf(why, why_size, "too long");
		return -1;
	}
	return 0;
}

int request_check_mounts(const char *mounts, char *why, size_t why_size)
{
	const char *entry = mounts;

	for (;;) {
		size_t len = strcspn(entry, ",");
		char one[4096], *colon, *flags;

		if (len == 0 || len >= sizeof one) {
			snprintf(why, why_size, "an empty or too long entry");
			return -1;
		}
		memcpy(one, entry, len);
		one[len] = '\0';
		colon = strchr(one, ':');
		flags = colon != NULL ? strchr(colon + 1, ':') : NULL;
		if (flags != NULL)
			*flags++ = '\0';
		if (one[0] != '/' || (colon != NULL && colon[1] != '/')) {
			snprintf(why, why_size, "%.*s: SRC[:DST[:ro|rw]] with absolute paths", (int)len,
			         entry);
			return -1;
		}
		if (flags != NULL && strcmp(flags, "ro") != 0 && strcmp(flags, "rw") != 0) {
			snprintf(why, why_size, "%.*s: the flags are ro or rw", (int)len, entry);
			return -1;
		}
		if (entry[len] == '\0')
			return 0;
		entry += len + 1;
	}
}

struct arg_list {
	char **items;
	size_t count, room;
	bool failed;
};

static void add(struct arg_list *a, const char *text)
{
	char **bigger;

	if (a->failed)
		return;
	if (a->count + 2 > a->room) {
		a->room = a->room ? a->room * 2 : 32;
		bigger = realloc(a->items, a->room * sizeof *bigger);
		if (bigger == NULL) {
			a->failed = true;
			return;
		}
		a->items = bigger;
	}
	a->items[a->count] = strdup(text);
	if (a->items[a->count] == NULL) {
		a->failed = true;
		return;
	}
	a->items[++a->count] = NULL;
}

static const char *env_value(char *const *env, const char *name, size_t name_len)
{
	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		if (strncmp(env[i], name, name_len) == 0 && env[i][name_len] == '=')
			return env[i] + name_len + 1;
	return NULL;
}

/* --container-env NAME,...: these keep the step's value over the image's. */
static void add_env(struct arg_list *a, const char *names, char *const *env)
{
	for (const char *name = names; *name != '\0';) {
		size_t len = strcspn(name, ",");
		const char *value = len > 0 ? env_value(env, name, len) : NULL;

		if (value != NULL) {
			size_t size = len + strlen(value) + 2;
			char *assignment = malloc(size);

			if (assignment == NULL) {
				a->failed = true;
				return;
			}
			snprintf(assignment, size, "%.*s=%s", (int)len, name, value);
			add(a, "--env");
			add(a, assignment);
			free(assignment);
		}
		name += len + (name[len] == ',');
	}
}

char **request_argv(const struct container_request *r, const char *capsula, const char *image,
                    const char *overlay_dir, char *const *env, char *const *command, char *why,
                    size_t why_size)
{
	struct arg_list a = {0};

	add(&a, capsula);
	add(&a, r->entrypoint == CHOICE_YES ? "run" : "exec");
	if (r->mounts != NULL) {
		add(&a, "--bind");
		add(&a, r->mounts);
	}
	if (r->script != NULL) {
		size_t size = 2 * strlen(r->script) + 8;
		char *spec = malloc(size);

		if (spec == NULL) {
			a.failed = true;
		} else {
			snprintf(spec, size, "%s:%s:ro", r->script, r->script);
			add(&a, "--bind");
			add(&a, spec);
			free(spec);
		}
	}
	if (r->workdir != NULL) {
		add(&a, "--pwd");
		add(&a, r->workdir);
	}
	if (overlay_dir != NULL) {
		add(&a, "--overlay");
		add(&a, overlay_dir);
	} else if (r->writable == CHOICE_YES) {
		add(&a, "--writable-tmpfs");
	}
	if (r->mount_home == CHOICE_NO)
		add(&a, "--no-home");
	if (r->remap_root == CHOICE_YES)
		add(&a, "--fakeroot");
	if (r->nv == CHOICE_YES)
		add(&a, "--nv");
	if (r->env_names != NULL)
		add_env(&a, r->env_names, env);
	if (r->job != NULL) {
		add(&a, "--job");
		add(&a, r->job);
	}
	if (r->hold)
		add(&a, "--hold");
	if (r->hold && r->hold_notify) {
		char fd_text[16];

		snprintf(fd_text, sizeof fd_text, "%d", REQUEST_NOTICE_FD);
		add(&a, "--hold-notify");
		add(&a, fd_text);
	}
	/* Options end before the image; what follows it is the command's. */
	add(&a, "--");
	add(&a, image);
	for (size_t i = 0; command != NULL && command[i] != NULL; i++)
		add(&a, command[i]);
	if (a.failed) {
		snprintf(why, why_size, "%s", strerror(ENOMEM));
		request_argv_free(a.items);
		return NULL;
	}
	return a.items;
}

void request_argv_free(char **argv)
{
	for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}
