/* The SPANK plugin: pyxis's --container-* options for srun, sbatch and
 * salloc. At a step's start that asks for a container, "capsula exec --hold"
 * makes it (the image pulled once per node through capsula's cache, the
 * site's capsula.conf applied as for any capsula command) while slurmstepd
 * sets up the tasks; each task then joins it itself and execs COMMAND in
 * it, or, where capsula has more to do than enter and exec, becomes
 * "capsula exec ... IMAGE COMMAND", which joins the same container (the
 * holder keyed by the job and step). A named container's image and
 * writable layer stay for later steps of the job, under the user's
 * ~/.capsula/slurm/HOST/JOB, which the job's epilog removes as the user. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/close_range.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "common/error.h"
#include "slurm/container_request.h"
#include "slurm/task_join.h"

SPANK_PLUGIN(capsula, 1);

#define PLUGIN "capsula"
#define STATE_DIR ".capsula/slurm"
#define ENV_PREFIX "CAPSULA_CONTAINER_"

/* The site's plugstack.conf arguments. */
static char capsula_path[PATH_MAX] = CAPSULA_BINDIR "/capsula";
static char cache_base[PATH_MAX];

static struct container_request request = {
	.writable = CHOICE_UNSET, .mount_home = CHOICE_UNSET, .remap_root = CHOICE_UNSET,
	.entrypoint = CHOICE_UNSET, .nv = CHOICE_UNSET,
};

enum {
	OPT_IMAGE, OPT_MOUNTS, OPT_WORKDIR, OPT_NAME, OPT_ENV, OPT_WRITABLE, OPT_READONLY,
	OPT_MOUNT_HOME, OPT_NO_MOUNT_HOME, OPT_REMAP_ROOT, OPT_NO_REMAP_ROOT, OPT_ENTRYPOINT,
	OPT_NO_ENTRYPOINT, OPT_NV,
};

static int take_option(int val, const char *optarg, int remote);

static struct spank_option options[] = {
	{"container-image", "IMAGE", "run the step's tasks in a capsula container of IMAGE: a "
	 ".sqfs or .sif path, docker://REF, or [USER@][REGISTRY#]IMAGE[:TAG]", 1, OPT_IMAGE,
	 take_option},
	{"container-mounts", "SRC[:DST[:ro|rw]],...", "bind host paths into the container", 1,
	 OPT_MOUNTS, take_option},
	{"container-workdir", "DIR", "start in DIR inside the container", 1, OPT_WORKDIR,
	 take_option},
	{"container-name", "NAME", "keep the container's image (and with --container-writable "
	 "its changes) for later steps of the job under NAME", 1, OPT_NAME, take_option},
	{"container-env", "NAME,...", "keep these variables' values from the job's environment "
	 "over the image's", 1, OPT_ENV, take_option},
	{"container-writable", NULL, "make the image writable (changes kept with "
	 "--container-name, else dropped)", 0, OPT_WRITABLE, take_option},
	{"container-readonly", NULL, "keep the image read-only (the default)", 0, OPT_READONLY,
	 take_option},
	{"container-mount-home", NULL, "bind the home directory (the default)", 0,
	 OPT_MOUNT_HOME, take_option},
	{"no-container-mount-home", NULL, "do not bind the home directory", 0, OPT_NO_MOUNT_HOME,
	 take_option},
	{"container-remap-root", NULL, "be root inside the container (capsula's --fakeroot)", 0,
	 OPT_REMAP_ROOT, take_option},
	{"no-container-remap-root", NULL, "be yourself inside the container (the default)", 0,
	 OPT_NO_REMAP_ROOT, take_option},
	{"container-entrypoint", NULL, "run the image's entrypoint with the command as its "
	 "arguments", 0, OPT_ENTRYPOINT, take_option},
	{"no-container-entrypoint", NULL, "run the command itself (the default)", 0,
	 OPT_NO_ENTRYPOINT, take_option},
	{"container-nv", NULL, "NVIDIA GPUs in the container (capsula's --nv)", 0, OPT_NV,
	 take_option},
	SPANK_OPTIONS_TABLE_END
};

static int set_text(char **field, const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0') {
		slurm_error(PLUGIN ": --%s needs a value", name);
		return -1;
	}
	free(*field);
	*field = strdup(value);
	if (*field == NULL) {
		slurm_error(PLUGIN ": --%s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

/* The yes/no options, each pair setting one field, and their variables
 * (CAPSULA_CONTAINER_ and the name). */
static const struct {
	const char *variable;
	int yes, no;  /* no is -1 where there is no such option */
	enum choice *field;
} choice_options[] = {
	{"WRITABLE", OPT_WRITABLE, OPT_READONLY, &request.writable},
	{"MOUNT_HOME", OPT_MOUNT_HOME, OPT_NO_MOUNT_HOME, &request.mount_home},
	{"REMAP_ROOT", OPT_REMAP_ROOT, OPT_NO_REMAP_ROOT, &request.remap_root},
	{"ENTRYPOINT", OPT_ENTRYPOINT, OPT_NO_ENTRYPOINT, &request.entrypoint},
	{"NV", OPT_NV, -1, &request.nv},
};

/* The options with a value, and their variables. */
static const struct {
	const char *variable;
	int option;
	char **field;
} text_options[] = {
	{"IMAGE", OPT_IMAGE, &request.image},
	{"MOUNTS", OPT_MOUNTS, &request.mounts},
	{"WORKDIR", OPT_WORKDIR, &request.workdir},
	{"NAME", OPT_NAME, &request.name},
	{"ENV", OPT_ENV, &request.env_names},
};

#define COUNT(table) (sizeof (table) / sizeof (table)[0])

static int take_switch(int val)
{
	for (size_t i = 0; i < COUNT(choice_options); i++)
		if (val == choice_options[i].yes || val == choice_options[i].no) {
			*choice_options[i].field = val == choice_options[i].yes ? CHOICE_YES : CHOICE_NO;
			return 0;
		}
	return -1;
}

static int take_option(int val, const char *optarg, int remote)
{
	char why[256];

	(void)remote;
	switch (val) {
	case OPT_IMAGE:
		if (set_text(&request.image, "container-image", optarg) < 0)
			return -1;
		if (request_image_ref(optarg, (char[PATH_MAX]){0}, PATH_MAX, why, sizeof why) < 0) {
			slurm_error(PLUGIN ": --container-image %s: %s", optarg, why);
			return -1;
		}
		return 0;
	case OPT_MOUNTS:
		if (set_text(&request.mounts, "container-mounts", optarg) < 0)
			return -1;
		if (request_check_mounts(optarg, why, sizeof why) < 0) {
			slurm_error(PLUGIN ": --container-mounts %s: %s", optarg, why);
			return -1;
		}
		return 0;
	case OPT_WORKDIR:
		if (optarg == NULL || optarg[0] != '/') {
			slurm_error(PLUGIN ": --container-workdir %s: not an absolute path",
			            optarg ? optarg : "");
			return -1;
		}
		return set_text(&request.workdir, "container-workdir", optarg);
	case OPT_NAME:
		if (optarg == NULL || optarg[0] == '\0' || optarg[0] == '.' ||
		    strchr(optarg, '/') != NULL) {
			slurm_error(PLUGIN ": --container-name %s: a name without / that does not "
			            "start with .", optarg ? optarg : "");
			return -1;
		}
		return set_text(&request.name, "container-name", optarg);
	case OPT_ENV:
		return set_text(&request.env_names, "container-env", optarg);
	default:
		return take_switch(val);
	}
}

/* "capsula=PATH" and "cache=DIR" in plugstack.conf. */
static int take_arguments(int ac, char **av)
{
	for (int i = 0; i < ac; i++) {
		const char *value = strchr(av[i], '=');
		char *target = NULL;

		if (value != NULL && strncmp(av[i], "capsula=", 8) == 0)
			target = capsula_path;
		else if (value != NULL && strncmp(av[i], "cache=", 6) == 0)
			target = cache_base;
		if (target == NULL || value[1] != '/' ||
		    snprintf(target, PATH_MAX, "%s", value + 1) >= PATH_MAX) {
			slurm_error(PLUGIN ": plugstack.conf argument '%s': expected capsula=PATH or "
			            "cache=DIR with an absolute path", av[i]);
			return -1;
		}
	}
	return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t context = spank_context();

	if (take_arguments(ac, av) < 0)
		return ESPANK_ERROR;
	if (context != S_CTX_LOCAL && context != S_CTX_REMOTE && context != S_CTX_ALLOCATOR)
		return ESPANK_SUCCESS;
	for (size_t i = 0; options[i].name != NULL; i++)
		if (spank_option_register(sp, &options[i]) != ESPANK_SUCCESS) {
			slurm_error(PLUGIN ": cannot register --%s", options[i].name);
			return ESPANK_ERROR;
		}
	return ESPANK_SUCCESS;
}

/* The job's environment's value of CAPSULA_CONTAINER_NAME, or NULL. */
static const char *variable(spank_t sp, const char *name, char *value, size_t size)
{
	char full[64];

	snprintf(full, sizeof full, ENV_PREFIX "%s", name);
	if (spank_getenv(sp, full, value, (int)size) != ESPANK_SUCCESS || value[0] == '\0')
		return NULL;
	return value;
}

/* CAPSULA_CONTAINER_IMAGE and the rest, where the option was not given. */
static void take_environment(spank_t sp)
{
	char value[4096];

	for (size_t i = 0; i < COUNT(text_options); i++)
		if (*text_options[i].field == NULL &&
		    variable(sp, text_options[i].variable, value, sizeof value) != NULL)
			take_option(text_options[i].option, value, 1);
	for (size_t i = 0; i < COUNT(choice_options); i++) {
		bool yes;

		if (*choice_options[i].field != CHOICE_UNSET ||
		    variable(sp, choice_options[i].variable, value, sizeof value) == NULL)
			continue;
		yes = strcmp(value, "0") != 0 && strcmp(value, "no") != 0;
		if (yes || choice_options[i].no >= 0)
			take_option(yes ? choice_options[i].yes : choice_options[i].no, NULL, 1);
	}
}

/* Make each missing directory of path (below the existing home) 0700, and
 * accept an existing one only if it is the user's real directory. */
static int make_private_dirs(char *path, size_t from, uid_t uid)
{
	for (char *end = path + from;; end++) {
		struct stat st;
		char saved = *end;

		if (saved != '/' && saved != '\0')
			continue;
		*end = '\0';
		if ((mkdir(path, 0700) < 0 && errno != EEXIST) || lstat(path, &st) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != uid) {
			if (errno == EEXIST || errno == 0)
				errno = EPERM;
			*end = saved;
			return -1;
		}
		*end = saved;
		if (saved == '\0')
			return 0;
	}
}

/* HOME/.capsula/slurm/HOST/JOB: a job's named containers on this node, in
 * the passwd entry's home, which the epilog finds as the tasks did
 * whatever HOME the job set. */
static int job_state_dir(const char *home, uint32_t job, char *out, size_t size)
{
	char host[256];

	if (gethostname(host, sizeof host) < 0)
		return -1;
	host[strcspn(host, ".")] = '\0';
	return snprintf(out, size, "%s/%s/%s/%u", home, STATE_DIR, host, job) >= (int)size ? -1 : 0;
}

/* A named container: the image the first step gave it, kept for later ones,
 * and with --container-writable its writable layer. */
static int use_name(spank_t sp, char *image, size_t image_size, char *overlay,
                    size_t overlay_size)
{
	char dir[PATH_MAX], record[PATH_MAX + 16], temp[PATH_MAX + 32];
	struct passwd *pw = getpwuid(getuid());
	uint32_t job = 0;
	FILE *f;

	errno = 0;
	if (pw == NULL || spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    job_state_dir(pw->pw_dir, job, dir, sizeof dir) < 0 ||
	    (size_t)snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", request.name) >=
	    sizeof dir - strlen(dir) || make_private_dirs(dir, strlen(pw->pw_dir) + 1, getuid()) < 0) {
		fprintf(stderr, "capsula: --container-name %s: cannot make %s: %s; check your home "
		        "directory\n", request.name, dir, strerror(errno));
		return -1;
	}
	snprintf(record, sizeof record, "%s/image", dir);
	if (image[0] != '\0') {
		snprintf(temp, sizeof temp, "%s.%ld", record, (long)getpid());
		f = fopen(temp, "w");
		if (f == NULL || fprintf(f, "%s\n", image) < 0 || fclose(f) != 0 ||
		    rename(temp, record) < 0) {
			fprintf(stderr, "capsula: --container-name %s: cannot write %s: %s\n",
			        request.name, record, strerror(errno));
			return -1;
		}
	} else {
		f = fopen(record, "r");
		if (f == NULL || fgets(image, (int)image_size, f) == NULL) {
			fprintf(stderr, "capsula: --container-name %s: no such container in this job; "
			        "give --container-image the first time\n", request.name);
			if (f != NULL)
				fclose(f);
			return -1;
		}
		fclose(f);
		image[strcspn(image, "\n")] = '\0';
	}
	if (request.writable != CHOICE_YES)
		return 0;
	if ((size_t)snprintf(overlay, overlay_size, "%s/overlay", dir) >= overlay_size ||
	    make_private_dirs(overlay, strlen(dir) + 1, getuid()) < 0) {
		fprintf(stderr, "capsula: --container-name %s: cannot make %s/overlay: %s; check your "
		        "home directory\n", request.name, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* cache=DIR: each user's pull cache is DIR/USER (DIR is the site's, sticky
 * and open to all, like /tmp). Called as the user, or (user_init) with the
 * user's effective ids. */
static int use_cache(spank_t sp, uid_t uid)
{
	char dir[PATH_MAX];
	struct passwd *pw;

	if (cache_base[0] == '\0')
		return 0;
	pw = getpwuid(uid);
	if (pw == NULL || snprintf(dir, sizeof dir, "%s/%s", cache_base, pw->pw_name) >= (int)sizeof dir ||
	    make_private_dirs(dir, strlen(cache_base) + 1, uid) < 0) {
		fprintf(stderr, "capsula: the site's cache %s: cannot use a directory of yours there: "
		        "%s; ask the administrator\n", cache_base, strerror(errno));
		return -1;
	}
	return spank_setenv(sp, "CAPSULA_CACHEDIR", dir, 1) == ESPANK_SUCCESS ? 0 : -1;
}

/* The name the step's tasks share their container by, the same whatever
 * the MPI plugin adds to each task's environment. */
static int step_job_name(spank_t sp, char *out, size_t size)
{
	uint32_t job = 0, step = 0;

	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS)
		return -1;
	snprintf(out, size, "slurm:%u.%u", job, step);
	return 0;
}

/* The step's and the task's command and environment, from Slurm. */
static int step_command(spank_t sp, uint32_t step, char ***command, char ***env)
{
	int argc = 0;

	if (spank_get_item(sp, S_JOB_ARGV, &argc, command) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_ENV, env) != ESPANK_SUCCESS)
		return -1;
	/* The batch script lies in slurmd's spool directory: bring it along. */
	request.script = step == SLURM_BATCH_SCRIPT && argc > 0 ? (*command)[0] : NULL;
	return 0;
}

/* The step's held container: the capsula --hold started at user_init,
 * killed at the step's end (spank exit). A pidfd, never a pid that might
 * be reused once Slurm has reaped it. */
static int held_pidfd = -1;
/* The socket its notice comes on (common/join_notice.h), which the tasks
 * inherit; -1 when the tasks join with a capsula of their own. */
static int notice_fd = -1;
/* What it said while making the container ready (its stderr, a pipe): the
 * step's first task on the node passes it on, as that the image is being
 * pulled. Never a failure's words: the tasks then run capsula exec, which
 * says them. */
static int held_said_fd = -1;

/* What the child that execs the held capsula needs. */
struct held_start {
	char **argv, **env;
	int devnull;
	int said;       /* its stderr: devnull, or the pipe to held_said_fd */
	int notice;     /* becomes REQUEST_NOTICE_FD; -1 for none */
	sigset_t mask;  /* slurmstepd's, restored just before the exec */
	uid_t uid;
	gid_t gid;
};

/* The child of clone(CLONE_VM | CLONE_VFORK) below, on a stack of its own:
 * it shares slurmstepd's memory until it execs, so it calls nothing that
 * touches it (no locks, no allocation, no libc state), only system calls.
 * Its ids become the job user's wholly (slurmstepd has dropped only its
 * effective ones, which is what allows it). */
static int exec_held(void *arg)
{
	const struct held_start *h = arg;
	/* The kernel's sigaction, all zero: SIG_DFL, no flags, empty mask.
	 * slurmstepd's handlers must not run here before the exec. */
	static const unsigned long default_action[4];

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, default_action, NULL, NSIG / 8);
	if (syscall(SYS_setresgid, h->gid, h->gid, h->gid) < 0 ||
	    syscall(SYS_setresuid, h->uid, h->uid, h->uid) < 0 ||
	    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ||
	    syscall(SYS_dup3, h->devnull, 0, 0) < 0 || syscall(SYS_dup3, h->devnull, 1, 0) < 0 ||
	    syscall(SYS_dup3, h->said, 2, 0) < 0 ||
	    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0 ||
	    (h->notice >= 0 && h->notice != REQUEST_NOTICE_FD &&
	     syscall(SYS_dup3, h->notice, REQUEST_NOTICE_FD, 0) < 0) ||
	    (h->notice == REQUEST_NOTICE_FD && syscall(SYS_fcntl, h->notice, F_SETFD, 0) < 0) ||
	    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &h->mask, NULL, NSIG / 8) < 0)
		syscall(SYS_exit, 127);
	syscall(SYS_execve, h->argv[0], h->argv, h->env);
	syscall(SYS_exit, 127);
	return 127;
}

/* Start argv as the job's user, without copying slurmstepd's memory (it is
 * threaded and large): the way posix_spawn does it, which cannot change
 * the ids. The pid, or -1. */
static pid_t spawn_held(char **argv, char **env, int notice, int said, uid_t uid, gid_t gid)
{
	struct held_start h = {.argv = argv, .env = env, .notice = notice, .uid = uid, .gid = gid};
	size_t stack_size = 64 * 1024;
	sigset_t all;
	char *stack;
	pid_t pid = -1;

	h.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	h.said = said >= 0 ? said : h.devnull;
	stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	             MAP_STACK, -1, 0);
	if (h.devnull >= 0 && stack != MAP_FAILED) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &h.mask);
		/* Back only once the child has exec'd or exited. */
		pid = clone(exec_held, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &h);
		pthread_sigmask(SIG_SETMASK, &h.mask, NULL);
	}
	if (stack != MAP_FAILED)
		munmap(stack, stack_size);
	if (h.devnull >= 0)
		close(h.devnull);
	return pid;
}

/* Can the tasks join the held container themselves and exec the command?
 * Not where capsula does more than enter it and exec: an entrypoint, root
 * in the container, a writable layer to watch. */
static bool tasks_may_join(void)
{
	return request.entrypoint != CHOICE_YES && request.remap_root != CHOICE_YES &&
	       request.writable != CHOICE_YES;
}

/* The held capsula's notice socket and stderr pipe, each as {ours, its};
 * its end of the pipe never blocks it, a full pipe loses words instead. */
static int open_held_channels(int notice[2], int said[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, notice) < 0)
		return -1;
	if (pipe2(said, O_CLOEXEC) < 0 || fcntl(said[1], F_SETFL, O_NONBLOCK) < 0) {
		if (said[0] >= 0) {
			close(said[0]);
			close(said[1]);
		}
		close(notice[0]);
		close(notice[1]);
		notice[0] = notice[1] = said[0] = said[1] = -1;
		return -1;
	}
	return 0;
}

/* After privileges are dropped, before the tasks are forked: start the
 * capsula that makes the step's container ready (the image pulled, the
 * namespaces, mounts and binds made, the command's files read ahead) while
 * slurmstepd sets up the tasks, which then only join it. Best effort and
 * silent: if it fails, each task's own capsula does the work and says
 * what went wrong. Not for named containers (their records are written as
 * the task). */
int slurm_spank_user_init(spank_t sp, int ac, char **av)
{
	char ref[PATH_MAX], job_name[64], why[256];
	char **command = NULL, **env = NULL, **argv;
	uint32_t step = 0, local_tasks = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	int notice[2] = {-1, -1}, said[2] = {-1, -1};
	pid_t pid;

	(void)ac;
	(void)av;
	if (!spank_remote(sp))
		return ESPANK_SUCCESS;
	take_environment(sp);
	/* A lone task on the node that runs capsula exec has nobody to share
	 * the work with: made ahead, its container would cost a second capsula
	 * for nothing. One that joins it itself runs none. */
	if (!request_wanted(&request) || request.image == NULL || request.name != NULL ||
	    spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &local_tasks) != ESPANK_SUCCESS ||
	    (local_tasks < 2 && !tasks_may_join()) ||
	    spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS ||
	    step == SLURM_EXTERN_CONT || spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS || uid == 0 ||
	    step_job_name(sp, job_name, sizeof job_name) < 0 || use_cache(sp, uid) < 0 ||
	    step_command(sp, step, &command, &env) < 0)
		return ESPANK_SUCCESS;
	if (request_image_ref(request.image, ref, sizeof ref, why, sizeof why) < 0)
		return ESPANK_SUCCESS;
	request.job = job_name;
	request.hold = true;
	request.hold_notify = tasks_may_join() && open_held_channels(notice, said) == 0;
	argv = request_argv(&request, capsula_path, ref, NULL, env, command, why, sizeof why);
	pid = argv == NULL ? -1 : spawn_held(argv, env, notice[1], said[1], uid, gid);
	if (pid > 0)
		held_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (request.hold_notify) {
		close(notice[1]);
		close(said[1]);
		if (held_pidfd >= 0) {
			notice_fd = notice[0];
			held_said_fd = said[0];
		} else {
			close(notice[0]);
			close(said[0]);
		}
	}
	request.hold = request.hold_notify = false;
	request.job = NULL;
	request_argv_free(argv);
	return ESPANK_SUCCESS;
}

/* The step's end in slurmstepd: the held container's last member goes. */
int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (!spank_remote(sp) || held_pidfd < 0)
		return ESPANK_SUCCESS;
	(void)syscall(SYS_pidfd_send_signal, held_pidfd, SIGKILL, NULL, 0);
	close(held_pidfd);
	held_pidfd = -1;
	if (notice_fd >= 0)
		close(notice_fd);
	if (held_said_fd >= 0)
		close(held_said_fd);
	notice_fd = held_said_fd = -1;
	return ESPANK_SUCCESS;
}

/* The task's environment as the container's: the variables capsula
 * would set, change or drop, those Slurm gave this task alone kept. */
static int apply_environment(spank_t sp, const struct join_notice *notice)
{
	const char *at = NULL;

	for (const char *change; (change = notice_next_change(notice, &at)) != NULL;) {
		char *name = strdup(change + 1);
		char *equals = name == NULL ? NULL : strchr(name, '=');
		spank_err_t done = ESPANK_ERROR;

		if (change[0] == '+' && equals != NULL) {
			*equals = '\0';
			done = spank_setenv(sp, name, equals + 1, 1);
		} else if (change[0] == '-' && name != NULL) {
			done = spank_unsetenv(sp, name);
		}
		free(name);
		if (done != ESPANK_SUCCESS)
			return -1;
	}
	return 0;
}

/* The first task on the node passes on what the held capsula said while
 * it made the container ready; the others only close their copy. */
static void pass_on_held_words(spank_t sp)
{
	uint32_t local_id = 1;
	char words[4096];
	ssize_t got;

	if (held_said_fd < 0)
		return;
	if (spank_get_item(sp, S_TASK_ID, &local_id) == ESPANK_SUCCESS && local_id == 0 &&
	    fcntl(held_said_fd, F_SETFL, O_NONBLOCK) == 0)
		while ((got = read(held_said_fd, words, sizeof words)) > 0)
			if (write(STDERR_FILENO, words, (size_t)got) != got)
				break;
	close(held_said_fd);
	held_said_fd = -1;
}

/* Join the step's held container from the task itself, when it made one
 * and said how, and exec the command there as capsula would: no capsula
 * process per task. Returns only when the task is to run capsula exec
 * instead; any failure once inside ends the task, in capsula's words and
 * with its statuses. */
static void join_held(spank_t sp, uint32_t step)
{
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	struct join_notice notice;
	char **command = NULL, **env = NULL;
	int joined;

	if (notice_fd < 0 || notice_read(notice_fd, &notice) < 0)
		return;
	close(notice_fd);
	notice_fd = -1;
	pass_on_held_words(sp);
	joined = task_join(&notice, getuid(), &err);
	if (joined > 0) {
		notice_free(&notice);
		return;
	}
	if (joined == 0 && (apply_environment(sp, &notice) < 0 ||
	                    step_command(sp, step, &command, &env) < 0))
		fail(&err, 0, "run the step again", "the task's environment in the container");
	else if (joined == 0)
		task_exec(&notice, command, env, &err);  /* returns only on failure */
	error_print(&err);
	_exit(err.status);
}

/* Just before Slurm would exec the task's command, as the user: exec it in
 * the step's held container, or exec capsula with it. Nothing returns to
 * Slurm on success; a failure is one line on the task's stderr and
 * capsula's own status. */
int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	char image[PATH_MAX] = "", ref[PATH_MAX], overlay[PATH_MAX + 16], job_name[64], why[256];
	char **command = NULL, **env = NULL, **argv;
	uint32_t step = 0;

	(void)ac;
	(void)av;
	if (!spank_remote(sp))
		return ESPANK_SUCCESS;
	take_environment(sp);
	if (!request_wanted(&request))
		return ESPANK_SUCCESS;
	if (spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS || step == SLURM_EXTERN_CONT)
		return ESPANK_SUCCESS;
	/* Gone with slurmstepd: killed with it (a node failure), a task must
	 * not keep its container on the node. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1) {
		fprintf(stderr, "capsula: the task's parent is gone: %s\n", strerror(errno));
		_exit(125);
	}
	join_held(sp, step);
	overlay[0] = '\0';
	if (request.image != NULL)
		snprintf(image, sizeof image, "%s", request.image);
	if ((request.name != NULL && use_name(sp, image, sizeof image, overlay, sizeof overlay) < 0) ||
	    use_cache(sp, getuid()) < 0)
		_exit(125);
	if (request_image_ref(image, ref, sizeof ref, why, sizeof why) < 0) {
		fprintf(stderr, "capsula: --container-image %s: %s\n", image, why);
		_exit(125);
	}
	if (step_job_name(sp, job_name, sizeof job_name) < 0 ||
	    step_command(sp, step, &command, &env) < 0) {
		fprintf(stderr, "capsula: cannot read the task's command and environment from "
		        "Slurm\n");
		_exit(125);
	}
	request.job = job_name;
	argv = request_argv(&request, capsula_path, ref, overlay[0] ? overlay : NULL, env, command,
	                    why, sizeof why);
	if (argv == NULL) {
		fprintf(stderr, "capsula: the container's command line: %s\n", why);
		_exit(125);
	}
	execve(capsula_path, argv, env);
	fprintf(stderr, "capsula: cannot run %s: %s; ask the administrator (plugstack.conf: "
	        "capsula=PATH)\n", capsula_path, strerror(errno));
	_exit(125);
}

/* overlayfs leaves its work/work at mode 0: open every directory first. */
static int open_directory(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if ((type == FTW_D || type == FTW_DNR) && chmod(path, (st->st_mode & 07777) | 0700) < 0)
		return errno == ENOENT ? 0 : -1;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* As the job's user: the writable layers first (capsula removes what a
 * --fakeroot run gave to subordinate ids), then the rest. */
static void remove_job_state(const char *dir)
{
	struct dirent **names = NULL;
	int count = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < count; i++) {
		char overlay[PATH_MAX + 300];
		pid_t pid = -1;

		snprintf(overlay, sizeof overlay, "%s/%s/overlay", dir, names[i]->d_name);
		free(names[i]);
		if (access(overlay, F_OK) == 0)
			pid = fork();
		if (pid == 0) {
			execl(capsula_path, capsula_path, "overlay", "clean", overlay, (char *)NULL);
			_exit(127);
		}
		if (pid > 0 && waitpid(pid, NULL, 0) < 0)
			slurm_error(PLUGIN ": capsula overlay clean %s: %s", overlay, strerror(errno));
	}
	free(names);
	if (count >= 0 && (nftw(dir, open_directory, 16, FTW_PHYS) < 0 ||
	                   nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0))
		slurm_error(PLUGIN ": cannot remove %s: %s", dir, strerror(errno));
}

/* The job's end on each of its nodes, as root: its named containers go,
 * removed as the user, never by root in a directory the user controls. */
int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	char dir[PATH_MAX];
	struct passwd *pw;
	uint32_t job = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	int status;
	pid_t pid;

	(void)ac;
	(void)av;
	if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS) {
		slurm_error(PLUGIN ": the job's epilog has no user or job id from Slurm");
		return ESPANK_SUCCESS;
	}
	if (uid == 0 || (pw = getpwuid(uid)) == NULL ||
	    job_state_dir(pw->pw_dir, job, dir, sizeof dir) < 0)
		return ESPANK_SUCCESS;
	gid = pw->pw_gid;
	pid = fork();
	if (pid < 0) {
		slurm_error(PLUGIN ": job %u: fork: %s", job, strerror(errno));
		return ESPANK_SUCCESS;
	}
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0 ||
		    clearenv() != 0 || setenv("HOME", pw->pw_dir, 1) < 0 ||
		    setenv("USER", pw->pw_name, 1) < 0 ||
		    setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1) < 0) {
			slurm_error(PLUGIN ": job %u: cannot become uid %u: %s", job, (unsigned)uid,
			            strerror(errno));
			_exit(1);
		}
		remove_job_state(dir);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			break;
	return ESPANK_SUCCESS;
}
