#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/environ.h"
#include "common/trusted_dir.h"
#include "runtime/config/bindspec.h"
#include "runtime/config/paths.h"
#include "runtime/image/image_run.h"
#include "runtime/plan/cdi_plan.h"
#include "runtime/plan/env.h"
#include "runtime/plan/fakeroot_plan.h"
#include "runtime/plan/gpu_plan.h"
#include "runtime/plan/joinkey.h"
#include "runtime/plan/overlay_plan.h"
#include "runtime/plan/plan.h"

/* FUSE workers: one per processor, at least two so that a rank's page
 * faults and the readahead behind them are served side by side. */
#define MIN_FUSE_THREADS 2
#define DEFAULT_MAX_FUSE_THREADS 8
#define MAX_FUSE_THREADS 64
#define DEFAULT_FUSE_CACHE_MB 64
#define MAX_FUSE_CACHE_MB 65536

static char *host_resolve(const char *path)
{
	return realpath(path, NULL);
}

/* Where the file open as fd is, by the kernel's account. */
static char *path_of_fd(int fd)
{
	char link[64];
	char *path = malloc(PATH_MAX);
	ssize_t len;

	if (path == NULL)
		return NULL;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	len = readlink(link, path, PATH_MAX - 1);
	if (len <= 0 || path[0] != '/') {
		free(path);
		return NULL;
	}
	path[len] = '\0';
	return path;
}

static int gather_groups(struct host_facts *facts, capsula_error *err)
{
	int count = getgroups(0, NULL);

	if (count < 0)
		return fail(err, errno, NULL, "supplementary groups");
	facts->groups = calloc((size_t)count + 1, sizeof *facts->groups);
	if (facts->groups == NULL)
		return fail(err, errno, NULL, "supplementary groups");
	count = getgroups(count, facts->groups);
	if (count < 0)
		return fail(err, errno, NULL, "supplementary groups");
	facts->group_count = (size_t)count;
	return 0;
}

int host_facts_gather(struct host_facts *facts, capsula_error *err)
{
	extern char **environ;
	const char *pwd = getenv("PWD");
	char *real = getcwd(NULL, 0);
	struct capsula_config *config;
	struct stat a, b;

	memset(facts, 0, sizeof *facts);
	if (real == NULL)
		return fail(err, errno, "cd to a directory that exists", "current directory");
	facts->environ = environ;
	facts->cwd_real = real;
	/* Keep the user's spelling of the current directory when $PWD names it. */
	facts->cwd = real;
	if (pwd != NULL && pwd[0] == '/' && stat(pwd, &a) == 0 && stat(real, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		facts->cwd = pwd;
	facts->home = getenv("HOME");
	facts->uid = getuid();
	facts->gid = getgid();
	facts->cpus = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	facts->resolve = host_resolve;
	if (gather_groups(facts, err) < 0)
		return -1;
	config = malloc(sizeof *config);
	if (config == NULL)
		return fail(err, errno, NULL, "configuration");
	facts->config = config;
	if (config_load(CAPSULA_CONFIG_FILE, config, err) < 0)
		return -1;
	if (!config->user_binds) {
		struct passwd *pw = getpwuid(facts->uid);

		if (pw == NULL || pw->pw_dir == NULL || pw->pw_dir[0] != '/')
			return fail(err, errno, "ask the administrator to fix your account",
			            "no home directory for uid %u in the user database",
			            (unsigned)facts->uid);
		facts->passwd_home = strdup(pw->pw_dir);
		if (facts->passwd_home == NULL)
			return fail(err, errno, NULL, "home directory");
	}
	return 0;
}

void host_facts_free(struct host_facts *facts)
{
	free((char *)facts->cwd_real);
	free((char *)facts->passwd_home);
	free(facts->groups);
	facts->cwd_real = facts->cwd = facts->passwd_home = NULL;
	facts->groups = NULL;
	if (facts->config != NULL) {
		config_free((struct capsula_config *)facts->config);
		free((struct capsula_config *)facts->config);
		facts->config = NULL;
	}
}

const struct capsula_config *facts_config(const struct host_facts *facts)
{
	static struct capsula_config defaults;

	if (facts->config != NULL)
		return facts->config;
	config_defaults(&defaults);
	return &defaults;
}

/* Host devices a minimal /dev gets, and the host paths every container has. */
static const char *const minimal_devices[] = {
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
	"/dev/tty", "/dev/pts", "/dev/ptmx", NULL,
};
static const char *const optional_files[] = {
	"/etc/hosts", "/etc/resolv.conf", "/etc/localtime", NULL,
};

/* Sources are resolved on the host now: once the container is being built,
 * an absolute symlink on the host would resolve against the wrong root. */
static int add_host_path(struct bind_list *binds, const struct host_facts *facts,
                         const char *path, unsigned flags, capsula_error *err)
{
	char *source = facts->resolve(path);
	int ret;

	if (source == NULL) {
		if (flags & BIND_OPTIONAL)
			return 0;
		return fail(err, errno, "ask the admin: the host lacks it", "host %s", path);
	}
	ret = bind_list_add(binds, source, path, flags);
	free(source);
	if (ret < 0)
		return fail(err, errno, NULL, "bind %s", path);
	return 0;
}

/* Binds as written (the site's, the user's), sources resolved on the host.
 * origin names where a missing source came from, NULL for the command line. */
static int add_resolved_binds(struct bind_list *binds, const struct bind_list *wanted,
                              const struct host_facts *facts, const char *origin,
                              const char *hint, capsula_error *err)
{
	for (size_t i = 0; i < wanted->count; i++) {
		const struct capsula_bind *b = &wanted->items[i];
		char *source = facts->resolve(b->source);
		int ret;

		if (source == NULL)
			return fail(err, errno, hint, "bind source %s%s%s", b->source,
			            origin ? " from " : "", origin ? origin : "");
		ret = bind_list_add(binds, source, b->destination, b->flags);
		free(source);
		if (ret < 0)
			return fail(err, errno, NULL, "bind %s", b->source);
	}
	return 0;
}

/* What the administrator adds to every container. */
static int add_site_binds(struct bind_list *binds, const struct exec_options *opts,
                          const struct host_facts *facts, capsula_error *err)
{
	const struct capsula_config *config = facts_config(facts);

	for (size_t i = 0; opts->dev_mode == DEV_MINIMAL && i < config->devices.count; i++)
		if (add_host_path(binds, facts, config->devices.items[i], BIND_DEVICES, err) < 0)
			return -1;
	return add_resolved_binds(binds, &config->binds, facts, config->path,
	                          "ask the administrator to fix it", err);
}

/* An image in an image directory is the administrator's only when it and
 * every directory above it are root's (or the site's image owner's) and
 * closed to others' writes: a directory of the user's there would let the
 * user put anything in it. The walk is made in this mount namespace, and
 * must end at the very file that is open: a path that another namespace
 * chose (/proc/PID/root/...) names some other file here. */
static int check_site_image(const struct capsula_config *config, const char *real,
                            const struct capsula_image *image, capsula_error *err)
{
	struct trusted_owners owners = trusted_root_and(config->has_image_owner ?
	                                                config->image_owner : 0);
	const char *slash = strrchr(real, '/');
	char dir[PATH_MAX], why[96];
	struct stat st;
	int dir_fd, ret;

	snprintf(dir, sizeof dir, "%.*s", slash == real ? 1 : (int)(slash - real), real);
	dir_fd = trusted_dir_open(dir, &owners, false, "image", real, "an image directory's images "
	                          "and directories must be root's (or the site's 'image owner')",
	                          err);
	if (dir_fd < 0)
		return -1;
	ret = fstatat(dir_fd, slash + 1, &st, AT_SYMLINK_NOFOLLOW);
	close(dir_fd);
	if (ret < 0 || st.st_dev != image->dev || st.st_ino != image->ino)
		return fail(err, ret < 0 ? errno : 0, "name the image by its path in the "
		            "administrator's directory", "image %s is not the file %s names here",
		            image->path, real);
	if (trusted_dir_problem(&st, &owners, why, sizeof why) != NULL)
		return fail(err, 0, "ask the administrator to install it there", "image %s %s",
		            real, why);
	return 0;
}

int facts_allow_image(const struct host_facts *facts, const struct capsula_image *image,
                      capsula_error *err)
{
	const struct capsula_config *config = facts_config(facts);
	char *real;
	bool allowed;
	int ret = 0;

	if (config->image_dirs.count == 0)
		return 0;
	/* The file that is open, not the path: a path can be swapped between a
	 * check and the open. */
	real = image->fd >= 0 ? path_of_fd(image->fd) : facts->resolve(image->path);
	allowed = real != NULL && config_allows_image(config, real);
	if (!allowed)
		ret = fail(err, 0, "copy the image into one of them, or ask the administrator",
		           "image %s is not in a directory the administrator allows (%s: image "
		           "directory)", image->path, config->path);
	/* A cache entry is capsula's own, opened and checked against its record. */
	else if (image->fd >= 0 && !image->cached)
		ret = check_site_image(config, real, image, err);
	free(real);
	return ret;
}

/* The administrator's limits on what this launch asks for. */
static int check_limits(const struct exec_options *opts, const struct host_facts *facts,
                        const struct bind_list *user_binds, const struct capsula_image *image,
                        capsula_error *err)
{
	const struct capsula_config *config = facts_config(facts);

	if (!config->user_binds && (user_binds->count > 0 || opts->home != NULL ||
	                            opts->overlays.count > 0))
		return fail(err, 0, "remove -B, --home, --overlay and CAPSULA_BIND, or ask the "
		            "administrator", "binds of your own are not allowed here (%s: allow "
		            "user binds = no)", config->path);
	if (!config->dev_host && opts->dev_mode == DEV_HOST)
		return fail(err, 0, "leave out --dev host, or ask the administrator",
		            "--dev host is not allowed here (%s: allow dev host = no)", config->path);
	return facts_allow_image(facts, image, err);
}

/* --contain: an empty directory of the container's own at path. */
static int add_private_tmpfs(struct bind_list *binds, const char *path, capsula_error *err)
{
	if (bind_list_add(binds, "tmpfs", path, BIND_TMPFS) < 0)
		return fail(err, errno, NULL, "private %s", path);
	return 0;
}

static int add_system_binds(struct bind_list *binds, const struct exec_options *opts,
                            const struct host_facts *facts, capsula_error *err)
{
	if (add_host_path(binds, facts, "/proc", 0, err) < 0 ||
	    add_host_path(binds, facts, "/sys", 0, err) < 0)
		return -1;
	if (opts->dev_mode == DEV_HOST) {
		if (add_host_path(binds, facts, "/dev", BIND_DEVICES, err) < 0)
			return -1;
	} else {
		for (size_t i = 0; minimal_devices[i] != NULL; i++)
			if (add_host_path(binds, facts, minimal_devices[i], BIND_DEVICES, err) < 0)
				return -1;
		if ((!(opts->no_mount & NO_MOUNT_SHM) &&
		     add_host_path(binds, facts, "/dev/shm", BIND_OPTIONAL, err) < 0) ||
		    add_host_path(binds, facts, "/dev/infiniband", BIND_OPTIONAL | BIND_DEVICES,
		                  err) < 0)
			return -1;
	}
	if (opts->contain) {
		if (add_private_tmpfs(binds, "/tmp", err) < 0)
			return -1;
	} else if (!(opts->no_mount & NO_MOUNT_TMP) && add_host_path(binds, facts, "/tmp", 0, err) < 0) {
		return -1;
	}
	for (size_t i = 0; optional_files[i] != NULL; i++)
		if (add_host_path(binds, facts, optional_files[i],
		                  BIND_OPTIONAL | BIND_READONLY, err) < 0)
			return -1;
	return 0;
}

/* The home directory: --home SRC[:DST], else $HOME at its own path. */
static int add_home(struct bind_list *binds, const struct exec_options *opts,
                    const struct host_facts *facts, char **home_out, capsula_error *err)
{
	char *spec = NULL;
	char *colon;
	char *source;
	const char *destination;
	int ret = 0;

	*home_out = NULL;
	if (opts->no_home || (opts->no_mount & NO_MOUNT_HOME))
		return 0;
	if (opts->home != NULL) {
		spec = strdup(opts->home);
		if (spec == NULL)
			return fail(err, errno, NULL, "--home");
	} else if (facts->passwd_home != NULL) {
		/* Where user binds are not allowed, $HOME is just another path the
		 * user chose: the home is the one the user database gives. */
		spec = strdup(facts->passwd_home);
		if (spec == NULL)
			return fail(err, errno, NULL, "home directory");
	} else {
		if (facts->home == NULL || facts->home[0] != '/')
			return 0;
		spec = strdup(facts->home);
		if (spec == NULL)
			return fail(err, errno, NULL, "$HOME");
	}
	colon = strchr(spec, ':');
	if (colon != NULL)
		*colon = '\0';
	destination = colon ? colon + 1 : spec;
	if (destination[0] != '/') {
		ret = fail(err, 0, "write --home SRC[:DST] with an absolute DST",
		           "home destination '%s' is not absolute", destination);
		goto out;
	}
	if (opts->contain && opts->home == NULL) {
		/* The home's path, but none of its files. */
		ret = bind_list_add(binds, "tmpfs", destination, BIND_TMPFS);
	} else {
		source = facts->resolve(spec);
		if (source == NULL) {
			ret = fail(err, errno, "create it, or use --home DIR or --no-home",
			           "home directory %s", spec);
			goto out;
		}
		ret = bind_list_add(binds, source, destination, 0);
		free(source);
	}
	if (ret < 0) {
		ret = fail(err, errno, NULL, "home");
		goto out;
	}
	*home_out = strdup(destination);
	if (*home_out == NULL)
		ret = fail(err, errno, NULL, "home");
out:
	free(spec);
	return ret;
}

/* Does a bind bring the host's path? (A private tmpfs hides it.) */
static bool covered_by_bind(const struct bind_list *binds, const char *path)
{
	for (size_t i = 0; i < binds->count; i++)
		if (!(binds->items[i].flags & BIND_TMPFS) &&
		    path_is_under(path, binds->items[i].destination))
			return true;
	return false;
}

/* Start where the user is: bind the current directory unless a bind already
 * brings it, or it is one of the image's system directories. Where user
 * binds are not allowed, binding it would be one: start in the home. */
static int choose_cwd(struct bind_list *binds, const struct exec_options *opts,
                      const struct host_facts *facts, const char *image_workdir,
                      const char *home, char **cwd_out, capsula_error *err)
{
	const char *cwd = opts->pwd ? opts->pwd : image_workdir ? image_workdir : facts->cwd;
	bool may_bind = facts_config(facts)->user_binds && !opts->contain &&
	                !(opts->no_mount & NO_MOUNT_CWD);

	if (cwd == facts->cwd && !may_bind && !covered_by_bind(binds, cwd))
		cwd = home != NULL ? home : "/";
	*cwd_out = strdup(cwd);
	if (*cwd_out == NULL)
		return fail(err, errno, NULL, "current directory");
	if (cwd != facts->cwd || covered_by_bind(binds, cwd) || path_is_system(cwd))
		return 0;
	if (bind_list_add(binds, facts->cwd_real, cwd, 0) < 0)
		return fail(err, errno, NULL, "current directory");
	return 0;
}

/* CAPSULA_BIND (the user's defaults), then -B, in order. */
static int collect_user_binds(const struct exec_options *opts, const struct host_facts *facts,
                              struct bind_list *out, capsula_error *err)
{
	const char *defaults = env_get(facts->environ, "CAPSULA_BIND");

	if (defaults != NULL && defaults[0] != '\0' && bindspec_parse(defaults, out, err) < 0) {
		snprintf(err->message + strlen(err->message),
		         sizeof err->message - strlen(err->message), " (in CAPSULA_BIND)");
		return -1;
	}
	for (size_t i = 0; i < opts->binds.count; i++) {
		const struct capsula_bind *b = &opts->binds.items[i];

		if (bind_list_add(out, b->source, b->destination, b->flags) < 0)
			return fail(err, errno, NULL, "bind %s", b->source);
	}
	return 0;
}

/* The devices' variables come last: a device is set up as its spec says. */
static int make_environment(const struct exec_options *opts, const struct host_facts *facts,
                            char *const *image_env, const struct strvec *device_env,
                            struct capsula_plan *plan, capsula_error *err)
{
	struct strvec env = {0};
	struct env_request req = {
		.host = facts->environ,
		.cleanenv = opts->cleanenv,
		.home = plan->home,
		.image_path = plan->image.path,
		.image_env = image_env,
		.env_files = opts->env_files.items,
		.assignments = opts->env.items,
	};

	if (env_build(&req, &env, err) < 0 ||
	    (opts->gpus != 0 && plan_gpu_environment(&env, err) < 0)) {
		strvec_free(&env);
		return -1;
	}
	for (size_t i = 0; i < device_env->count; i++)
		if (env_set(&env, device_env->items[i]) < 0) {
			strvec_free(&env);
			return fail(err, errno, NULL, "the environment");
		}
	plan->envp = env.items;
	return 0;
}

static int copy_argv(char *const *command, struct capsula_plan *plan, capsula_error *err)
{
	struct strvec argv = {0};

	for (char *const *a = command; a != NULL && *a != NULL; a++) {
		if (strvec_push(&argv, *a) < 0) {
			strvec_free(&argv);
			return fail(err, errno, NULL, "command line");
		}
	}
	if (argv.count == 0)
		return fail(err, 0, "give a command after the image", "no command to run");
	plan->argv = argv.items;
	return 0;
}

static int number_from_env(char **env, const char *name, unsigned long max,
                           unsigned long fallback, unsigned long *out, capsula_error *err)
{
	const char *text = env_get(env, name);
	char *end;

	*out = fallback;
	if (text == NULL || *text == '\0')
		return 0;
	errno = 0;
	*out = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || *out < 1 || *out > max || text[0] == '-')
		return fail(err, 0, "unset it or give a whole number",
		            "%s=%s: not a number from 1 to %lu", name, text, max);
	return 0;
}

static int choose_server_tuning(const struct host_facts *facts, struct capsula_plan *plan,
                                capsula_error *err)
{
	unsigned long threads = facts->cpus;
	unsigned long cache_mb;
	const char *prefetch = env_get(facts->environ, "CAPSULA_PREFETCH");

	if (threads < MIN_FUSE_THREADS)
		threads = MIN_FUSE_THREADS;
	if (threads > DEFAULT_MAX_FUSE_THREADS)
		threads = DEFAULT_MAX_FUSE_THREADS;
	if (number_from_env(facts->environ, "CAPSULA_FUSE_THREADS", MAX_FUSE_THREADS,
	                    threads, &threads, err) < 0 ||
	    number_from_env(facts->environ, "CAPSULA_FUSE_CACHE_MB", MAX_FUSE_CACHE_MB,
	                    DEFAULT_FUSE_CACHE_MB, &cache_mb, err) < 0)
		return -1;
	if (prefetch != NULL && strcmp(prefetch, "0") != 0 && strcmp(prefetch, "1") != 0)
		return fail(err, 0, "set it to 0 or 1", "CAPSULA_PREFETCH=%s: not 0 or 1", prefetch);
	plan->prefetch = prefetch == NULL || strcmp(prefetch, "1") == 0;
	plan->fuse_threads = (unsigned)threads;
	plan->fuse_cache_bytes = (size_t)cache_mb << 20;
	return 0;
}

int plan_build(const struct exec_options *opts, const struct host_facts *facts,
               struct capsula_image *image, const struct image_run *run,
               struct capsula_plan *plan, capsula_error *err)
{
	struct bind_list binds = {0};
	struct bind_list user_binds = {0};
	struct strvec device_env = {0};
	char job_buf[256];
	const char *job_id = NULL;

	memset(plan, 0, sizeof *plan);
	plan->socket_dir_fd = -1;
	plan->image = *image;
	image->fd = -1;
	image->path = NULL;
	plan->uid = facts->uid;
	plan->gid = facts->gid;
	plan->dev_mode = opts->dev_mode;
	plan->verbosity = opts->verbosity;
	plan->timing = opts->timing || opts->verbosity > 0;

	if (opts->fakeroot)
		plan_fakeroot(facts, plan);
	if (collect_user_binds(opts, facts, &user_binds, err) < 0 ||
	    check_limits(opts, facts, &user_binds, &plan->image, err) < 0 ||
	    plan_overlays(opts, facts, plan, err) < 0 ||
	    add_system_binds(&binds, opts, facts, err) < 0 ||
	    add_site_binds(&binds, opts, facts, err) < 0 ||
	    (opts->gpus != 0 && plan_gpu_binds(opts, facts, &binds, err) < 0) ||
	    plan_cdi_devices(opts, facts, &binds, &device_env, err) < 0 ||
	    add_home(&binds, opts, facts, &plan->home, err) < 0 ||
	    choose_cwd(&binds, opts, facts, run && opts->mode == RUN_RUN ? run->workdir : NULL,
	               plan->home, &plan->cwd, err) < 0 ||
	    add_resolved_binds(&binds, &user_binds, facts, NULL,
	                       "create it on the host or fix the -B option", err) < 0) {
		plan->binds = binds.items;
		plan->bind_count = binds.count;
		bind_list_free(&user_binds);
		strvec_free(&device_env);
		return -1;
	}
	bind_list_free(&user_binds);
	plan->binds = binds.items;
	plan->bind_count = binds.count;

	if (make_environment(opts, facts, run ? run->env.items : NULL, &device_env, plan, err) < 0 ||
	    (opts->mode != RUN_INSTANCE &&
	     copy_argv(run ? run->argv.items : opts->command, plan, err) < 0) ||
	    choose_server_tuning(facts, plan, err) < 0) {
		strvec_free(&device_env);
		return -1;
	}
	strvec_free(&device_env);

	if (opts->join == JOIN_AUTO)
		job_id = opts->job ? opts->job : launcher_job_id(facts->environ, job_buf, sizeof job_buf);
	if (opts->hold && job_id == NULL)
		return fail(err, 0, "give --job ID, or start it from mpirun or srun",
		            "--hold: no job to keep the container for");
	plan->hold = opts->hold;
	plan->hold_notify_fd = opts->hold ? opts->hold_notify_fd : -1;
	/* Without a launcher, the same launch again soon finds the container
	 * warm: no namespaces, mounts or decompression to do twice. */
	join_key_make(plan, job_id ? job_id : opts->join == JOIN_AUTO ? "reuse" : NULL,
	              facts->groups, facts->group_count);
	plan->join_shared = job_id != NULL;
	plan->grace_ms = job_id ? facts_config(facts)->grace_ms :
	                 opts->join == JOIN_AUTO ? facts_config(facts)->reuse_grace_ms : 0;
	if (opts->mode == RUN_INSTANCE)
		plan->prefetch = false;  /* no command to warm the cache for */
	return 0;
}
