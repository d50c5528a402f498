#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/small_file.h"
#include "common/text.h"
#include "runtime/config/paths.h"
#include "runtime/config/image_policy.h"
#include "runtime/config/site_config.h"

#define MAX_CONFIG_SIZE (1u << 20)
#define MAX_GRACE_S 3600

void config_defaults(struct capsula_config *config)
{
	memset(config, 0, sizeof *config);
	config->user_binds = true;
	config->dev_host = true;
	config->cdi_devices = true;
	config->grace_ms = DEFAULT_GRACE_MS;
	config->reuse_grace_ms = DEFAULT_REUSE_GRACE_MS;
	config->tmpfs_bytes = DEFAULT_WRITABLE_TMPFS_BYTES;
	config->registry_deadline_s = DEFAULT_REGISTRY_DEADLINE_S;
	config->registry_min_rate = DEFAULT_REGISTRY_MIN_RATE;
	config->registry_rate_window_s = DEFAULT_REGISTRY_RATE_WINDOW_S;
	config->registry_retry_time_s = DEFAULT_REGISTRY_RETRY_TIME_S;
}

static int parse_yes_no(const char *value, bool *out)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0) {
		*out = false;
		return 0;
	}
	return -1;
}

static int parse_grace(const char *value, unsigned *ms)
{
	char *end;
	double seconds;

	errno = 0;
	seconds = strtod(value, &end);
	if (errno != 0 || end == value || *end != '\0' || !(seconds >= 0) || seconds > MAX_GRACE_S)
		return -1;
	*ms = (unsigned)(seconds * 1000 + 0.5);
	return 0;
}

static int parse_seconds(const char *value, unsigned *out)
{
	char *end;
	unsigned long seconds;

	errno = 0;
	seconds = strtoul(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || seconds < 1 ||
	    seconds > 86400)
		return -1;
	*out = (unsigned)seconds;
	return 0;
}

static int parse_count(const char *value, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(value, &end, 10);
	return errno != 0 || end == value || *end != '\0' || value[0] == '-' || *out < 1000 ? -1 : 0;
}

/* A user name or a number. */
static const char *set_owner(struct capsula_config *c, const char *value)
{
	struct passwd *pw = getpwnam(value);
	char *end;
	unsigned long uid;

	if (pw != NULL) {
		c->image_owner = pw->pw_uid;
	} else {
		errno = 0;
		uid = strtoul(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || uid >= (uid_t)-1)
			return "expected a user name or uid";
		c->image_owner = (uid_t)uid;
	}
	c->has_image_owner = true;
	return NULL;
}

static const char *set_path(char *out, size_t size, const char *value)
{
	if (value[0] != '/')
		return "expected an absolute path";
	if (snprintf(out, size, "%s", value) >= (int)size)
		return "path too long";
	return NULL;
}

/* One "setting = value" line; returns a reason on failure. */
static const char *apply(struct capsula_config *c, const char *key, const char *value,
                         capsula_error *err)
{
	if (strcmp(key, "image directory") == 0) {
		if (value[0] != '/')
			return "an image directory must be an absolute path";
		return strvec_push(&c->image_dirs, value) < 0 ? strerror(errno) : NULL;
	}
	if (strcmp(key, "image owner") == 0)
		return set_owner(c, value);
	if (strcmp(key, "bind") == 0) {
		size_t before = c->binds.count;

		if (bindspec_parse(value, &c->binds, err) < 0)
			return err->message;
		/* Resolved later from whatever directory the user is in. */
		for (size_t i = before; i < c->binds.count; i++)
			if (c->binds.items[i].source[0] != '/')
				return "a bind source must be an absolute path";
		return NULL;
	}
	if (strcmp(key, "device") == 0) {
		if (strncmp(value, "/dev/", 5) != 0)
			return "a device must be a path under /dev";
		return strvec_push(&c->devices, value) < 0 ? strerror(errno) : NULL;
	}
	if (strcmp(key, "allow user binds") == 0)
		return parse_yes_no(value, &c->user_binds) < 0 ? "expected yes or no" : NULL;
	if (strcmp(key, "allow dev host") == 0)
		return parse_yes_no(value, &c->dev_host) < 0 ? "expected yes or no" : NULL;
	if (strcmp(key, "allow cdi devices") == 0)
		return parse_yes_no(value, &c->cdi_devices) < 0 ? "expected yes or no" : NULL;
	if (strcmp(key, "cdi spec directory") == 0) {
		if (value[0] != '/')
			return "expected an absolute path";
		return strvec_push(&c->cdi_dirs, value) < 0 ? strerror(errno) : NULL;
	}
	if (strcmp(key, "holder grace") == 0)
		return parse_grace(value, &c->grace_ms) < 0 ? "expected seconds from 0 to 3600" : NULL;
	if (strcmp(key, "reuse grace") == 0)
		return parse_grace(value, &c->reuse_grace_ms) < 0 ? "expected seconds from 0 to 3600" :
		       NULL;
	if (strcmp(key, "writable tmpfs size") == 0)
		return parse_byte_size(value, &c->tmpfs_bytes) < 0 || c->tmpfs_bytes < (1u << 20) ?
		       "expected a size of at least 1M, such as 4G" : NULL;
	if (strcmp(key, "max image entries") == 0)
		return parse_count(value, &c->max_image_entries) < 0 ?
		       "expected a number of entries, at least 1000" : NULL;
	if (strcmp(key, "max image memory") == 0)
		return parse_byte_size(value, &c->max_image_bytes) < 0 || c->max_image_bytes < (1u << 20) ?
		       "expected a size of at least 1M, such as 2G" : NULL;
	if (strcmp(key, "cache directory") == 0)
		return set_path(c->cache_dir, sizeof c->cache_dir, value);
	if (strcmp(key, "registry ca") == 0)
		return set_path(c->registry_ca, sizeof c->registry_ca, value);
	if (strcmp(key, "registry deadline") == 0)
		return parse_seconds(value, &c->registry_deadline_s) < 0 ?
		       "expected seconds from 1 to 86400" : NULL;
	if (strcmp(key, "registry minimum rate") == 0)
		return parse_byte_size(value, &c->registry_min_rate) < 0 || c->registry_min_rate < 1 ?
		       "expected bytes a second, such as 10K" : NULL;
	if (strcmp(key, "registry rate window") == 0)
		return parse_seconds(value, &c->registry_rate_window_s) < 0 ?
		       "expected seconds from 1 to 86400" : NULL;
	if (strcmp(key, "registry retry time") == 0)
		return parse_seconds(value, &c->registry_retry_time_s) < 0 ?
		       "expected seconds from 1 to 86400" : NULL;
	if (strcmp(key, "insecure registry") == 0)
		return strvec_push(&c->insecure_registries, value) < 0 ? strerror(errno) : NULL;
	if (strcmp(key, "image policy") == 0) {
		struct image_policy_rule rule;
		static char why[300];

		if (image_policy_parse(value, &rule, why, sizeof why) < 0)
			return why;
		image_policy_rule_free(&rule);
		return strvec_push(&c->image_policies, value) < 0 ? strerror(errno) : NULL;
	}
	return "unknown setting";
}

int config_parse(const char *text, const char *name, struct capsula_config *config,
                 capsula_error *err)
{
	char *copy = strdup(text);
	char *line, *next;
	unsigned number = 0;

	if (copy == NULL)
		return fail(err, errno, NULL, "%s", name);
	snprintf(config->path, sizeof config->path, "%s", name);
	for (line = copy; line != NULL; line = next) {
		char *equals, *key, *value;
		const char *problem;
		capsula_error inner = {0};

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		number++;
		line = trim_space(line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		equals = strchr(line, '=');
		if (equals == NULL) {
			free(copy);
			return fail(err, 0, "write 'setting = value'; see capsula(1), FILES",
			            "%s line %u: no '='", name, number);
		}
		*equals = '\0';
		key = trim_space(line);
		value = trim_space(equals + 1);
		problem = apply(config, key, value, &inner);
		if (problem != NULL) {
			fail(err, 0, "see capsula(1), FILES", "%s line %u: %s: %s", name, number, key,
			     problem);
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

int config_load(const char *path, struct capsula_config *config, capsula_error *err)
{
	struct stat st;
	char *text;
	size_t length;
	int ret;

	config_defaults(config);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return fail(err, errno, "ask the administrator", "configuration %s", path);
	}
	/* Anyone who can change it could give themselves what the admin denied. */
	if (st.st_uid != 0 || (st.st_mode & 022) != 0)
		return fail(err, 0, "the administrator must make it root's and not writable by others",
		            "configuration %s is not owned by root or is writable by others", path);
	if (read_small_file(path, MAX_CONFIG_SIZE, &text, &length, err) < 0) {
		snprintf(err->message + strlen(err->message),
		         sizeof err->message - strlen(err->message), "; ask the administrator");
		return -1;
	}
	ret = config_parse(text, path, config, err);
	free(text);
	return ret;
}

void config_free(struct capsula_config *config)
{
	strvec_free(&config->image_dirs);
	strvec_free(&config->devices);
	strvec_free(&config->cdi_dirs);
	strvec_free(&config->insecure_registries);
	strvec_free(&config->image_policies);
	bind_list_free(&config->binds);
}

bool config_allows_image(const struct capsula_config *config, const char *real_path)
{
	if (config->image_dirs.count == 0)
		return true;
	for (size_t i = 0; i < config->image_dirs.count; i++) {
		char *dir = realpath(config->image_dirs.items[i], NULL);
		bool under = dir != NULL && path_is_under(real_path, dir);

		free(dir);
		if (under)
			return true;
	}
	return false;
}
