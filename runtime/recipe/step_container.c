#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/timing.h"
#include "runtime/image/image.h"
#include "runtime/plan/fakeroot_plan.h"
#include "runtime/recipe/step_container.h"
#include "starter/starter.h"

#define STEP_FUSE_CACHE_BYTES (16u << 20)

static const char *const step_devices[] = {
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", NULL,
};
static const char *const step_files[] = {"/etc/resolv.conf", "/etc/hosts", NULL};

static int add_bind(struct capsula_plan *plan, const char *source, const char *destination,
                    unsigned flags)
{
	struct capsula_bind *grown = realloc(plan->binds, (plan->bind_count + 1) * sizeof *grown);

	if (grown == NULL)
		return -1;
	plan->binds = grown;
	grown = &grown[plan->bind_count];
	grown->source = strdup(source);
	grown->destination = strdup(destination);
	grown->flags = flags;
	if (grown->source == NULL || grown->destination == NULL) {
		free(grown->source);
		free(grown->destination);
		return -1;
	}
	plan->bind_count++;
	return 0;
}

static int add_binds(struct capsula_plan *plan, const struct strvec *extra)
{
	int ret = add_bind(plan, "/proc", "/proc", 0) | add_bind(plan, "/sys", "/sys", BIND_READONLY);

	for (size_t i = 0; ret == 0 && step_devices[i] != NULL; i++)
		ret = add_bind(plan, step_devices[i], step_devices[i], BIND_DEVICES | BIND_OPTIONAL);
	if (ret == 0)
		ret = add_bind(plan, "tmpfs", "/dev/shm", BIND_TMPFS);
	if (ret == 0)
		ret = add_bind(plan, "devpts", "/dev/pts", BIND_DEVPTS);
	for (size_t i = 0; ret == 0 && step_files[i] != NULL; i++)
		ret = add_bind(plan, step_files[i], step_files[i], BIND_READONLY | BIND_OPTIONAL);
	for (size_t i = 0; ret == 0 && extra != NULL && i < extra->count; i++) {
		const char *spec = extra->items[i], *colon = strchr(spec, ':');
		char *source = colon ? strndup(spec, (size_t)(colon - spec)) : NULL;

		ret = source == NULL ? -1 : add_bind(plan, source, colon + 1, 0);
		free(source);
	}
	return ret;
}

void step_mount_points(const struct strvec *binds, struct strvec *out)
{
	static const char *const made[] = {"proc", "sys", "dev", "etc/resolv.conf", "etc/hosts"};

	for (size_t i = 0; i < sizeof made / sizeof made[0]; i++)
		strvec_push(out, made[i]);
	for (size_t i = 0; binds != NULL && i < binds->count; i++) {
		const char *dest = strchr(binds->items[i], ':');

		if (dest != NULL)
			strvec_push(out, dest + 1 + strspn(dest + 1, "/"));
	}
}

/* The identity part of a plan: root inside, the maps the user may have. */
static void plan_identity(const struct step_identity *id, struct capsula_plan *plan)
{
	plan->uid = id->uid;
	plan->gid = id->gid;
	plan->fakeroot = true;
	if (id->full_map) {
		plan->subuids = id->subuids;
		plan->subgids = id->subgids;
		plan->newuidmap = strdup(id->newuidmap);
		plan->newgidmap = strdup(id->newgidmap);
		plan->subids_from_root = id->subids_from_root;
	}
}

static int step_plan(const struct step_identity *id, const struct step_view *v,
                     struct capsula_plan *plan, capsula_error *err)
{
	struct squashfs_info info;

	memset(plan, 0, sizeof *plan);
	plan->image.fd = -1;
	plan->socket_dir_fd = fcntl(id->socket_dir_fd, F_DUPFD_CLOEXEC, 3);
	if (plan->socket_dir_fd < 0)
		return fail(err, errno, NULL, "the socket directory");
	plan_identity(id, plan);
	if (image_open(v->base, &plan->image, &info, err) < 0)
		return -1;
	if (v->layers->count > MAX_IMAGE_LAYERS)
		return fail(err, E2BIG, "merge some steps (&& in one RUN)",
		            "more than %d steps that change files in one stage", MAX_IMAGE_LAYERS);
	plan->layers = calloc(v->layers->count + 1, sizeof *plan->layers);
	if (plan->layers == NULL)
		return fail(err, ENOMEM, NULL, "step layers");
	for (size_t i = 0; i < v->layers->count; i++) {
		plan->layers[i].fd = -1;
		if (image_open(v->layers->items[i], &plan->layers[i], &info, err) < 0)
			return -1;
		plan->layer_count++;
	}
	plan->overlay = OVERLAY_DIR;
	plan->overlay_dir = strdup(v->work);
	plan->dev_mode = DEV_MINIMAL;
	plan->cwd = strdup(v->cwd);
	plan->argv = calloc(2, sizeof *plan->argv);
	plan->envp = calloc(1, sizeof *plan->envp);
	if (plan->overlay_dir == NULL || plan->cwd == NULL || plan->argv == NULL ||
	    plan->envp == NULL || add_binds(plan, v->binds) < 0)
		return fail(err, ENOMEM, NULL, "step container");
	join_key_private(id->uid, plan->join_key, sizeof plan->join_key);
	plan->grace_ms = 0;
	plan->fuse_threads = 2;
	plan->fuse_cache_bytes = STEP_FUSE_CACHE_BYTES;
	plan->verbosity = id->verbosity;
	return 0;
}

/* ---------------------------------------------------------------- children */

/* What a child says when it fails, through a pipe to the builder. */
static void tell_failure(int fd, const capsula_error *err)
{
	size_t n = strlen(err->message);

	if (write(fd, err->message, n) != (ssize_t)n)
		return;  /* the builder is gone: nobody to tell */
}

/* Fork a child with a pipe back to us: the child holds the write end, we
 * the read end. */
static int start_child(int pipe_fds[2], pid_t *child, capsula_error *err)
{
	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
		return fail(err, errno, NULL, "pipe for a build step");
	fflush(NULL);
	*child = fork();
	if (*child < 0) {
		int saved = errno;

		close(pipe_fds[0]);
		close(pipe_fds[1]);
		return fail(err, saved, NULL, "fork a build step");
	}
	close(pipe_fds[*child == 0 ? 0 : 1]);
	return 0;
}

/* Wait for child; its status, and the message it sent when it failed. */
static int wait_child(pid_t child, int pipe_fd, int *status, capsula_error *err)
{
	char message[sizeof err->message];
	ssize_t got;
	int raw;

	do
		got = read(pipe_fd, message, sizeof message - 1);
	while (got < 0 && errno == EINTR);
	close(pipe_fd);
	while (waitpid(child, &raw, 0) < 0)
		if (errno != EINTR)
			return fail(err, errno, NULL, "wait for a build step");
	*status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
	if (got > 0) {
		message[got] = '\0';
		snprintf(err->message, sizeof err->message, "%s", message);
		err->status = EXIT_CAPSULA_FAILED;
	}
	return got > 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- a step's end */

/* How long what a step left behind (its container's holder, leaving; a
 * daemon a package's script started) may take before it is killed. */
#define STEP_LEFTOVER_GRACE_US 2000000

/* Signal every child of ours: orphans of the step, given to us as their
 * subreaper. */
static void signal_children(int signal_number)
{
	DIR *tasks = opendir("/proc/self/task");
	struct dirent *task;

	if (tasks == NULL)
		return;
	while ((task = readdir(tasks)) != NULL) {
		char path[sizeof "/proc/self/task//children" + sizeof task->d_name];
		FILE *children;
		long pid;

		if (task->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/children", task->d_name);
		children = fopen(path, "re");
		if (children == NULL)
			continue;
		while (fscanf(children, "%ld", &pid) == 1)
			if (pid > 0)
				kill((pid_t)pid, signal_number);
		fclose(children);
	}
	closedir(tasks);
}

/* A step is over once every process it started is gone, not when its
 * command exits: until then its work directory may still be written and
 * its container's mounts held. The builder is the subreaper of the step's
 * processes, so they come back to it; they get a moment to end, then are
 * killed, as docker ends a step's container. */
static void end_step_processes(void)
{
	uint64_t deadline = timing_now_us() + STEP_LEFTOVER_GRACE_US;
	bool killing = false;

	for (;;) {
		pid_t pid = waitpid(-1, NULL, killing ? 0 : WNOHANG);

		if (pid < 0 && errno == ECHILD)
			return;
		if (pid < 0 && errno != EINTR)
			return;  /* cannot happen with a valid call: nothing to wait on */
		if (pid != 0)
			continue;
		if (timing_now_us() > deadline) {
			killing = true;
			signal_children(SIGKILL);
			continue;
		}
		usleep(5000);
	}
}

int step_container_run(const struct step_identity *id, const struct step_view *v,
                       step_body body, void *arg, int *status, capsula_error *err)
{
	struct capsula_plan plan;
	int pipe_fds[2], ret;
	pid_t child;

	if (step_plan(id, v, &plan, err) < 0) {
		plan_free(&plan);
		return -1;
	}
	for (size_t i = 0; v->argv != NULL && v->argv[i] != NULL; i++) {
		char **grown = realloc(plan.argv, (i + 2) * sizeof *grown);

		if (grown == NULL || (grown[i] = strdup(v->argv[i])) == NULL) {
			plan.argv = grown ? grown : plan.argv;
			plan_free(&plan);
			return fail(err, ENOMEM, NULL, "step command");
		}
		grown[i + 1] = NULL;
		plan.argv = grown;
	}
	for (size_t i = 0; v->envp != NULL && v->envp[i] != NULL; i++) {
		char **grown = realloc(plan.envp, (i + 2) * sizeof *grown);

		if (grown == NULL || (grown[i] = strdup(v->envp[i])) == NULL) {
			plan.envp = grown ? grown : plan.envp;
			plan_free(&plan);
			return fail(err, ENOMEM, NULL, "step environment");
		}
		grown[i + 1] = NULL;
		plan.envp = grown;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		plan_free(&plan);
		return fail(err, errno, NULL, "become the subreaper of a build step");
	}
	if (start_child(pipe_fds, &child, err) < 0) {
		plan_free(&plan);
		return -1;
	}
	if (child == 0) {
		capsula_error inner = {.status = EXIT_CAPSULA_FAILED};

		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (starter_enter(&plan, &inner) == 0)
			body(&plan, arg, &inner);
		tell_failure(pipe_fds[1], &inner);
		_exit(inner.status ? inner.status : EXIT_CAPSULA_FAILED);
	}
	ret = wait_child(child, pipe_fds[0], status, err);
	end_step_processes();
	plan_free(&plan);
	return ret;
}

/* ---------------------------------------------------------------- the user's own ids */

void step_identity_init(struct step_identity *id)
{
	struct host_facts facts = {.uid = getuid(), .gid = getgid()};
	struct capsula_plan maps = {.image.fd = -1, .socket_dir_fd = -1, .verbosity = -1};

	plan_fakeroot(&facts, &maps);
	*id = (struct step_identity){
		.uid = facts.uid, .gid = facts.gid, .full_map = maps.newuidmap != NULL,
		.subuids = maps.subuids, .subgids = maps.subgids,
		.newuidmap = maps.newuidmap, .newgidmap = maps.newgidmap,
		.socket_dir_fd = -1, .verbosity = -1,
	};
}

void step_identity_release(struct step_identity *id)
{
	free((char *)id->newuidmap);
	free((char *)id->newgidmap);
	id->newuidmap = id->newgidmap = NULL;
}

int step_in_user_namespace(const struct step_identity *id,
                           int (*fn)(void *arg, capsula_error *err), void *arg,
                           capsula_error *err)
{
	struct capsula_plan plan = {.image.fd = -1, .socket_dir_fd = -1};
	int pipe_fds[2], status = 0, ret;
	pid_t child;

	plan_identity(id, &plan);
	if (start_child(pipe_fds, &child, err) < 0) {
		plan_free(&plan);
		return -1;
	}
	if (child == 0) {
		capsula_error inner = {.status = EXIT_CAPSULA_FAILED};

		if ((!id->full_map || starter_unshare_ids(&plan, &inner) == 0) && fn(arg, &inner) == 0)
			_exit(0);
		tell_failure(pipe_fds[1], &inner);
		_exit(EXIT_CAPSULA_FAILED);
	}
	ret = wait_child(child, pipe_fds[0], &status, err);
	plan_free(&plan);
	if (ret == 0 && status != 0)
		ret = fail(err, 0, NULL, "a build step's helper ended with status %d", status);
	return ret;
}

static int open_up(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	/* A directory closed even to its owner (overlayfs's work/work). */
	if (type == FTW_D || type == FTW_DNR)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int step_remove_tree(const char *path, capsula_error *err)
{
	nftw(path, open_up, 32, FTW_PHYS);
	if (nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return fail(err, errno, NULL, "remove the build's work directory %s", path);
	return 0;
}
