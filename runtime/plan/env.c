#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "runtime/plan/env.h"

static size_t name_length(const char *assignment)
{
	const char *eq = strchr(assignment, '=');

	return eq ? (size_t)(eq - assignment) : strlen(assignment);
}

static bool has_name(const char *assignment, const char *name)
{
	size_t len = strlen(name);

	return strncmp(assignment, name, len) == 0 && assignment[len] == '=';
}

int env_set(struct strvec *env, const char *assignment)
{
	size_t len = name_length(assignment);

	for (size_t i = 0; i < env->count; i++) {
		if (strncmp(env->items[i], assignment, len) == 0 && env->items[i][len] == '=') {
			char *copy = strdup(assignment);

			if (copy == NULL)
				return -1;
			free(env->items[i]);
			env->items[i] = copy;
			return 0;
		}
	}
	return strvec_push(env, assignment);
}

/* With --cleanenv only what a terminal session needs survives, and which
 * GPUs the batch system gave the job. */
static bool kept_when_clean(const char *assignment)
{
	static const char *const names[] = {
		"TERM", "LANG", "TZ", "USER", "LOGNAME", "CUDA_VISIBLE_DEVICES",
		"NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
		"GPU_DEVICE_ORDINAL", NULL,
	};

	if (strncmp(assignment, "LC_", 3) == 0)
		return true;
	for (size_t i = 0; names[i] != NULL; i++)
		if (has_name(assignment, names[i]))
			return true;
	return false;
}

static bool owned_by_image(const char *assignment)
{
	return has_name(assignment, "PATH") || has_name(assignment, "LD_LIBRARY_PATH");
}

/* A registry password is for capsula pull, not for the command. */
static bool secret(const char *assignment)
{
	return has_name(assignment, "CAPSULA_DOCKER_PASSWORD");
}

static bool valid_name(const char *s, size_t len)
{
	if (len == 0 || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

int env_file_load(const char *path, struct strvec *env, capsula_error *err)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int ret = 0;

	if (f == NULL)
		return fail(err, errno, NULL, "--env-file %s", path);
	while (ret == 0 && getline(&line, &cap, f) >= 0) {
		char *s = trim_space(line);
		char *eq;
		size_t vlen;

		lineno++;
		if (*s == '\0' || *s == '#')
			continue;
		if (strncmp(s, "export ", 7) == 0)
			s = trim_space(s + 7);
		eq = strchr(s, '=');
		if (eq == NULL || !valid_name(s, (size_t)(eq - s))) {
			ret = fail(err, 0, "each line must be NAME=VALUE",
			           "--env-file %s line %u: not an assignment", path, lineno);
			break;
		}
		vlen = strlen(eq + 1);
		if (vlen >= 2 && (eq[1] == '"' || eq[1] == '\'') && eq[vlen] == eq[1]) {
			memmove(eq + 1, eq + 2, vlen - 2);
			eq[vlen - 1] = '\0';
		}
		if (env_set(env, s) < 0)
			ret = fail(err, errno, NULL, "--env-file %s", path);
	}
	if (ret == 0 && ferror(f))
		ret = fail(err, errno, NULL, "--env-file %s: read error", path);
	free(line);
	fclose(f);
	return ret;
}

static int set_pair(struct strvec *env, const char *name, const char *value)
{
	char *assignment;
	int ret;

	if (asprintf(&assignment, "%s=%s", name, value) < 0)
		return -1;
	ret = env_set(env, assignment);
	free(assignment);
	return ret;
}

/* Scripts written for Apptainer look for these to know they run inside. */
static int set_apptainer_names(struct strvec *env, const char *image_path)
{
	const char *slash = strrchr(image_path, '/');
	const char *name = slash ? slash + 1 : image_path;

	return set_pair(env, "APPTAINER_CONTAINER", image_path) < 0 ||
	       set_pair(env, "APPTAINER_NAME", name) < 0 ||
	       set_pair(env, "SINGULARITY_CONTAINER", image_path) < 0 ||
	       set_pair(env, "SINGULARITY_NAME", name) < 0 ? -1 : 0;
}

int env_build(const struct env_request *req, struct strvec *out, capsula_error *err)
{
	for (char **e = req->host; e != NULL && *e != NULL; e++) {
		if (owned_by_image(*e) || secret(*e) || (req->cleanenv && !kept_when_clean(*e)))
			continue;
		if (strchr(*e, '=') == NULL)
			continue;
		if (strvec_push(out, *e) < 0)
			return fail(err, errno, NULL, "environment");
	}
	if (set_pair(out, "PATH", CONTAINER_DEFAULT_PATH) < 0 ||
	    (req->home != NULL && set_pair(out, "HOME", req->home) < 0) ||
	    set_pair(out, "CAPSULA_CONTAINER", req->image_path) < 0 ||
	    set_apptainer_names(out, req->image_path) < 0)
		return fail(err, errno, NULL, "environment");
	for (char *const *e = req->image_env; e != NULL && *e != NULL; e++)
		if (env_set(out, *e) < 0)
			return fail(err, errno, NULL, "image environment");
	for (char *const *f = req->env_files; f != NULL && *f != NULL; f++)
		if (env_file_load(*f, out, err) < 0)
			return -1;
	for (char *const *a = req->assignments; a != NULL && *a != NULL; a++)
		if (env_set(out, *a) < 0)
			return fail(err, errno, NULL, "--env %s", *a);
	return 0;
}
