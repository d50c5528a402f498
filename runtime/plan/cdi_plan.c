#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/small_file.h"
#include "common/trusted_dir.h"
#include "runtime/config/cdi_spec.h"
#include "runtime/config/site_config.h"
#include "runtime/plan/cdi_plan.h"

#define MAX_SPEC_FILES 256
#define FIX_SPEC "ask the administrator to fix the CDI spec"

struct spec_file {
	char path[PATH_MAX];
	size_t priority;  /* its directory's place in the list: later wins */
	json_t *spec;
	bool applied;     /* its own edits, once for all its devices */
};

struct spec_set {
	struct spec_file *files;
	size_t count;
};

static void spec_set_free(struct spec_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		json_decref(set->files[i].spec);
	free(set->files);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Only root's files, closed to others' writes: whoever could change a spec
 * could bind any host path or device into containers. */
static int read_spec(int dir_fd, const char *dir, const char *name, size_t priority,
                     struct spec_set *set, capsula_error *err)
{
	struct trusted_owners root = trusted_root_and(0);
	struct spec_file *file;
	char why[96], *text;
	struct stat st;
	size_t length;
	int fd;

	if (set->count == MAX_SPEC_FILES)
		return fail(err, 0, "ask the administrator", "more than %d CDI spec files",
		            MAX_SPEC_FILES);
	file = &set->files[set->count];
	memset(file, 0, sizeof *file);
	snprintf(file->path, sizeof file->path, "%s/%s", dir, name);
	file->priority = priority;
	fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errno, FIX_SPEC, "CDI spec %s", file->path);
	if (fstat(fd, &st) < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "CDI spec %s", file->path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, 0, FIX_SPEC, "CDI spec %s: not a regular file", file->path);
	}
	if (trusted_dir_problem(&st, &root, why, sizeof why) != NULL || (st.st_mode & 022) != 0) {
		close(fd);
		return fail(err, 0, "the administrator must make it root's and closed to others' "
		            "writes", "CDI spec %s is not root's or others may write it", file->path);
	}
	if (read_small_fd(fd, file->path, CDI_SPEC_MAX_BYTES, &text, &length, err) < 0)
		return -1;
	if (cdi_spec_parse(text, length, file->path, &file->spec, err) < 0) {
		free(text);
		return -1;
	}
	free(text);
	set->count++;
	return 0;
}

static int read_spec_dir(const char *dir, size_t priority, struct spec_set *set,
                         capsula_error *err)
{
	struct trusted_owners root = trusted_root_and(0);
	char *names[MAX_SPEC_FILES];
	size_t count = 0;
	struct dirent *entry;
	int dir_fd, list_fd, ret = 0;
	DIR *listing;

	errno = 0;
	dir_fd = trusted_dir_open(dir, &root, false, "CDI spec directory", NULL,
	                          "the administrator must make it and the directories above "
	                          "it root's", err);
	if (dir_fd < 0)
		return errno == ENOENT ? 0 : -1;  /* no specs there */
	list_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	listing = list_fd >= 0 ? fdopendir(list_fd) : NULL;
	if (listing == NULL) {
		int saved = errno;

		if (list_fd >= 0)
			close(list_fd);
		close(dir_fd);
		return fail(err, saved, "ask the administrator", "CDI spec directory %s", dir);
	}
	while ((entry = readdir(listing)) != NULL && ret == 0) {
		if (entry->d_name[0] == '.' || !cdi_spec_name(entry->d_name))
			continue;
		if (count == MAX_SPEC_FILES || (names[count] = strdup(entry->d_name)) == NULL)
			ret = fail(err, count == MAX_SPEC_FILES ? 0 : errno, "ask the administrator",
			           "CDI spec directory %s: more than %d specs", dir, MAX_SPEC_FILES);
		else
			count++;
	}
	closedir(listing);
	qsort(names, count, sizeof names[0], by_name);
	for (size_t i = 0; i < count; i++) {
		if (ret == 0)
			ret = read_spec(dir_fd, dir, names[i], priority, set, err);
		free(names[i]);
	}
	close(dir_fd);
	return ret;
}

static int read_specs(const struct capsula_config *config, struct spec_set *set,
                      capsula_error *err)
{
	static const char *const defaults[] = CDI_DEFAULT_SPEC_DIRS;
	const char *const *dirs = defaults;
	size_t count = sizeof defaults / sizeof defaults[0];

	if (config->cdi_dirs.count > 0) {
		dirs = (const char *const *)config->cdi_dirs.items;
		count = config->cdi_dirs.count;
	}
	set->files = calloc(MAX_SPEC_FILES, sizeof *set->files);
	if (set->files == NULL)
		return fail(err, errno, NULL, "CDI specs");
	for (size_t i = 0; i < count; i++)
		if (read_spec_dir(dirs[i], i, set, err) < 0)
			return -1;
	return 0;
}

/* What one device's edits are applied with, and named by in messages. */
struct edit_context {
	const struct host_facts *facts;
	const char *device;    /* as the user wrote it */
	const char *spec;      /* the spec file's path */
	struct bind_list *binds;
	struct strvec *env;
	capsula_error *err;
};

static int spec_problem(const struct edit_context *c, const char *hint, const char *what)
{
	return fail(c->err, 0, hint, "--device %s: CDI spec %s: %s", c->device, c->spec, what);
}

static const char *string_at(json_t *object, const char *key)
{
	return json_string_value(json_object_get(object, key));
}

/* Its host path: absent, a missing device is this node's problem. */
static int host_source(const struct edit_context *c, const char *path, char **source)
{
	*source = c->facts->resolve(path);
	if (*source == NULL)
		return fail(c->err, errno, "ask the administrator: the spec names what this node "
		            "lacks", "--device %s: CDI spec %s: host %s", c->device, c->spec, path);
	return 0;
}

/* A node capsula cannot make (no mknod as a user): the host's own is bound,
 * and must be what the spec says it is. */
static int apply_node(const struct edit_context *c, json_t *node)
{
	const char *path = string_at(node, "path");
	const char *host = string_at(node, "hostPath");
	const char *type = string_at(node, "type");
	json_t *major = json_object_get(node, "major"), *minor = json_object_get(node, "minor");
	char *source, what[PATH_MAX + 160];
	struct stat st;
	int ret;

	if (path == NULL || path[0] != '/' || (host != NULL && host[0] != '/'))
		return spec_problem(c, FIX_SPEC, "a device node without an absolute path");
	if (host_source(c, host != NULL ? host : path, &source) < 0)
		return -1;
	if (stat(source, &st) < 0) {
		ret = fail(c->err, errno, NULL, "--device %s: %s", c->device, source);
		free(source);
		return ret;
	}
	what[0] = '\0';
	if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
		snprintf(what, sizeof what, "%s is not a device node on this host", source);
	else if (type != NULL && strcmp(type, S_ISCHR(st.st_mode) ? "c" : "b") != 0 &&
	         !(S_ISCHR(st.st_mode) && strcmp(type, "u") == 0))
		snprintf(what, sizeof what, "%s is no device of type '%s' on this host", source, type);
	else if ((json_is_integer(major) && json_integer_value(major) != major(st.st_rdev)) ||
	         (json_is_integer(minor) && json_integer_value(minor) != minor(st.st_rdev)))
		snprintf(what, sizeof what, "%s is device %u:%u on this host, not the spec's "
		         "%lld:%lld (capsula binds the host's node, it cannot make one)", source,
		         major(st.st_rdev), minor(st.st_rdev),
		         json_is_integer(major) ? json_integer_value(major) : (long long)major(st.st_rdev),
		         json_is_integer(minor) ? json_integer_value(minor) : (long long)minor(st.st_rdev));
	if (what[0] != '\0') {
		free(source);
		return spec_problem(c, "ask the administrator to fix the spec or the node", what);
	}
	ret = bind_list_add(c->binds, source, path, BIND_DEVICES);
	if (ret < 0)
		fail(c->err, errno, NULL, "bind %s", source);
	free(source);
	return ret;
}

/* Options of a bind as runtimes pass them to mount(8). capsula's binds are
 * nosuid and nodev already; propagation does not cross its namespace. */
static int mount_flags(const struct edit_context *c, json_t *options, unsigned *flags)
{
	static const char *const harmless[] = {
		"bind", "rbind", "rw", "nosuid", "nodev", "noexec", "private", "rprivate", "slave",
		"rslave", "shared", "rshared", "relatime", "norelatime", "noatime", NULL,
	};
	size_t i;
	json_t *option;

	*flags = 0;
	json_array_foreach(options, i, option) {
		const char *text = json_string_value(option);
		bool known = text != NULL && strcmp(text, "ro") == 0;

		for (size_t k = 0; text != NULL && !known && harmless[k] != NULL; k++)
			known = strcmp(text, harmless[k]) == 0;
		if (!known) {
			char what[200];

			snprintf(what, sizeof what, "mount option '%s' is not one capsula applies to a "
			         "bind", text != NULL ? text : "(not a string)");
			return spec_problem(c, FIX_SPEC, what);
		}
		if (strcmp(text, "ro") == 0)
			*flags |= BIND_READONLY;
	}
	return 0;
}

static int apply_mount(const struct edit_context *c, json_t *mount)
{
	const char *host = string_at(mount, "hostPath");
	const char *inside = string_at(mount, "containerPath");
	const char *type = string_at(mount, "type");
	unsigned flags;
	char *source;
	int ret;

	if (type != NULL && strcmp(type, "bind") != 0 && strcmp(type, "none") != 0) {
		char what[200];

		snprintf(what, sizeof what, "a mount of type '%s': capsula makes binds only", type);
		return spec_problem(c, FIX_SPEC, what);
	}
	if (host == NULL || inside == NULL || host[0] != '/' || inside[0] != '/')
		return spec_problem(c, FIX_SPEC, "a mount without an absolute hostPath and "
		                    "containerPath");
	if (mount_flags(c, json_object_get(mount, "options"), &flags) < 0 ||
	    host_source(c, host, &source) < 0)
		return -1;
	ret = bind_list_add(c->binds, source, inside, flags);
	if (ret < 0)
		fail(c->err, errno, NULL, "bind %s", source);
	free(source);
	return ret;
}

/* Hooks are programs a runtime runs as root at points of a container's
 * creation; capsula has no such points and runs nothing the user did not
 * ask for. Extra groups cannot be had in a user namespace. */
static int refuse_unsupported(const struct edit_context *c, json_t *edits)
{
	json_t *hooks = json_object_get(edits, "hooks");
	json_t *gids = json_object_get(edits, "additionalGids");

	if (json_array_size(hooks) > 0) {
		char what[PATH_MAX + 200];
		json_t *first = json_array_get(hooks, 0);

		snprintf(what, sizeof what, "it has hooks (%s: %s), and capsula runs none",
		         string_at(first, "hookName") ? string_at(first, "hookName") : "?",
		         string_at(first, "path") ? string_at(first, "path") : "?");
		return spec_problem(c, "ask the administrator for a spec without hooks (for NVIDIA "
		                    "GPUs, --nv needs none)", what);
	}
	if (json_array_size(gids) > 0)
		return spec_problem(c, "ask the administrator for a spec without them",
		                    "it adds groups (additionalGids), which a user namespace "
		                    "cannot give");
	if (json_object_get(edits, "intelRdt") != NULL)
		return spec_problem(c, "ask the administrator for a spec without it",
		                    "it sets intelRdt, which needs root");
	return 0;
}

static int apply_edits(const struct edit_context *c, json_t *edits)
{
	size_t i;
	json_t *item;

	if (edits == NULL)
		return 0;
	if (!json_is_object(edits))
		return spec_problem(c, FIX_SPEC, "containerEdits is not an object");
	if (refuse_unsupported(c, edits) < 0)
		return -1;
	json_array_foreach(json_object_get(edits, "env"), i, item) {
		const char *assignment = json_string_value(item);

		if (assignment == NULL || assignment[0] == '=' || strchr(assignment, '=') == NULL)
			return spec_problem(c, FIX_SPEC, "an env entry that is not NAME=VALUE");
		if (strvec_push(c->env, assignment) < 0)
			return fail(c->err, errno, NULL, "--device %s", c->device);
	}
	json_array_foreach(json_object_get(edits, "deviceNodes"), i, item)
		if (apply_node(c, item) < 0)
			return -1;
	json_array_foreach(json_object_get(edits, "mounts"), i, item)
		if (apply_mount(c, item) < 0)
			return -1;
	return 0;
}

/* The device's entry in spec, or NULL. */
static json_t *device_in(json_t *spec, const char *kind, const char *name)
{
	const char *spec_kind = string_at(spec, "kind");
	size_t i;
	json_t *device;

	if (spec_kind == NULL || strcmp(spec_kind, kind) != 0)
		return NULL;
	json_array_foreach(json_object_get(spec, "devices"), i, device) {
		const char *device_name = string_at(device, "name");

		if (device_name != NULL && strcmp(device_name, name) == 0)
			return device;
	}
	return NULL;
}

/* The names the specs give a kind, for a message. */
static void known_names(const struct spec_set *set, const char *kind, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t f = 0; f < set->count; f++) {
		const char *spec_kind = string_at(set->files[f].spec, "kind");
		size_t i;
		json_t *device;

		if (spec_kind == NULL || strcmp(spec_kind, kind) != 0)
			continue;
		json_array_foreach(json_object_get(set->files[f].spec, "devices"), i, device) {
			const char *name = string_at(device, "name");
			int n;

			if (name == NULL || used >= size)
				continue;
			n = snprintf(out + used, size - used, "%s%s=%s", used ? ", " : "", kind, name);
			used += n > 0 ? (size_t)n : 0;
		}
	}
}

/* Find it where the latest directory defines it; two specs of that
 * directory defining it are the administrator's mistake. */
static int find_device(const struct spec_set *set, const char *qualified, const char *kind,
                       const char *name, size_t *file, json_t **device, capsula_error *err)
{
	*device = NULL;
	for (size_t f = set->count; f > 0; f--) {
		json_t *found = device_in(set->files[f - 1].spec, kind, name);

		if (found == NULL)
			continue;
		if (*device != NULL && set->files[f - 1].priority == set->files[*file].priority)
			return fail(err, 0, "ask the administrator to keep one",
			            "--device %s: both %s and %s define it", qualified,
			            set->files[f - 1].path, set->files[*file].path);
		if (*device != NULL)
			break;
		*device = found;
		*file = f - 1;
	}
	if (*device == NULL) {
		char known[512];

		known_names(set, kind, known, sizeof known);
		if (known[0] != '\0')
			return fail(err, 0, "use one of the devices the specs define",
			            "--device %s: no such CDI device here (there are: %s)", qualified,
			            known);
		return fail(err, 0, "ask the administrator which devices this node has",
		            "--device %s: no CDI spec on this node defines it", qualified);
	}
	return 0;
}

int plan_cdi_devices(const struct exec_options *opts, const struct host_facts *facts,
                     struct bind_list *binds, struct strvec *env, capsula_error *err)
{
	const struct capsula_config *config = facts_config(facts);
	struct spec_set set = {0};
	int ret = 0;

	if (opts->devices.count == 0)
		return 0;
	if (!config->cdi_devices)
		return fail(err, 0, "ask the administrator", "--device %s: CDI devices are not "
		            "allowed here (%s: allow cdi devices = no)", opts->devices.items[0],
		            config->path);
	if (read_specs(config, &set, err) < 0) {
		spec_set_free(&set);
		return -1;
	}
	for (size_t i = 0; ret == 0 && i < opts->devices.count; i++) {
		struct edit_context c = {facts, opts->devices.items[i], NULL, binds, env, err};
		char kind[256], name[256];
		json_t *device = NULL;
		size_t file = 0;
		bool seen = false;

		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(opts->devices.items[k], c.device) == 0;
		if (seen)
			continue;  /* given twice */
		ret = cdi_device_name(c.device, kind, sizeof kind, name, sizeof name, err);
		if (ret == 0)
			ret = find_device(&set, c.device, kind, name, &file, &device, err);
		if (ret < 0)
			break;
		c.spec = set.files[file].path;
		if (!set.files[file].applied)
			ret = apply_edits(&c, json_object_get(set.files[file].spec, "containerEdits"));
		set.files[file].applied = true;
		if (ret == 0)
			ret = apply_edits(&c, json_object_get(device, "containerEdits"));
	}
	spec_set_free(&set);
	return ret;
}
