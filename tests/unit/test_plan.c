#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "runtime/plan/plan.h"
#include "tests/unit/tap.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

/* The fake host: these paths exist, with /etc/localtime a symlink. */
static const char *const host_paths[] = {
	"/proc", "/sys", "/dev", "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
	"/dev/urandom", "/dev/tty", "/dev/pts", "/dev/ptmx", "/dev/shm", "/tmp",
	"/etc/hosts", "/home/alice", "/home/alice/proj", "/work/run1", "/scratch",
	"/usr/src/x", NULL,
};

static char *fake_resolve(const char *path)
{
	if (strcmp(path, "/etc/localtime") == 0)
		return strdup("/usr/share/zoneinfo/UTC");
	for (size_t i = 0; host_paths[i] != NULL; i++)
		if (strcmp(path, host_paths[i]) == 0)
			return strdup(path);
	errno = ENOENT;
	return NULL;
}

static struct host_facts facts(const char *cwd, char **environ)
{
	return (struct host_facts){
		.environ = environ, .cwd = cwd, .cwd_real = cwd, .home = "/home/alice",
		.uid = 1000, .gid = 100, .resolve = fake_resolve,
	};
}

static int build(int argc, char **argv, const struct host_facts *f,
                 struct capsula_plan *plan, capsula_error *err)
{
	struct exec_options opts;
	struct capsula_image image = {.path = strdup("/img.sqfs"), .fd = -1, .ino = 7};
	int ret;

	plan_free(plan);
	memset(err, 0, sizeof *err);
	if (exec_options_parse(argc, argv, &opts, err) < 0)
		return -1;
	ret = plan_build(&opts, f, &image, NULL, plan, err);
	exec_options_free(&opts);
	free(image.path);
	return ret;
}

static const struct capsula_bind *find_bind(const struct capsula_plan *plan, const char *dst)
{
	for (size_t i = 0; i < plan->bind_count; i++)
		if (strcmp(plan->binds[i].destination, dst) == 0)
			return &plan->binds[i];
	return NULL;
}

static size_t bind_index(const struct capsula_plan *plan, const char *dst)
{
	const struct capsula_bind *b = find_bind(plan, dst);

	return b ? (size_t)(b - plan->binds) : (size_t)-1;
}

int main(void)
{
	char *no_launcher[] = {"HOME=/home/alice", NULL};
	char *mpirun_env[] = {"PMIX_NAMESPACE=prterun-node1-1234@1", NULL};
	char *other_job[] = {"PMIX_NAMESPACE=prterun-node1-9999@1", NULL};
	char *slurm_env[] = {"SLURM_JOB_ID=77", "SLURM_STEP_ID=0", NULL};
	struct capsula_plan plan = {.image.fd = -1, .socket_dir_fd = -1};
	struct host_facts f = facts("/home/alice/proj", no_launcher);
	capsula_error err;
	char key[64];

	char *plain[] = {"exec", "img", "id", "-u", NULL};
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0, "plan built (%s)", err.message);
	ok(find_bind(&plan, "/proc") && find_bind(&plan, "/sys") && find_bind(&plan, "/tmp"),
	   "/proc, /sys and host /tmp are bound");
	ok(find_bind(&plan, "/dev/null") && find_bind(&plan, "/dev/pts") && find_bind(&plan, "/dev/shm"),
	   "a minimal /dev gets null, pts and the host's shm");
	ok(!find_bind(&plan, "/dev"), "the host /dev is not bound whole by default");
	ok(find_bind(&plan, "/dev/infiniband") == NULL, "/dev/infiniband skipped when the host lacks it");
	is_str(find_bind(&plan, "/etc/localtime")->source, "/usr/share/zoneinfo/UTC",
	       "host symlinks are resolved on the host");
	ok(find_bind(&plan, "/etc/resolv.conf") == NULL, "optional files missing on the host are left out");
	ok(find_bind(&plan, "/etc/hosts")->flags & BIND_READONLY, "/etc/hosts is read-only");
	ok(find_bind(&plan, "/home/alice") != NULL, "the caller's home is bound at its own path");
	ok(find_bind(&plan, "/home/alice/proj") == NULL, "a cwd inside home needs no bind of its own");
	is_str(plan.cwd, "/home/alice/proj", "the command starts in the cwd");
	ok(bind_index(&plan, "/proc") < bind_index(&plan, "/home/alice"),
	   "system binds come before the home");
	is_str(plan.argv[0], "id", "argv copied");
	ok(!plan.join_shared && strncmp(plan.join_key, "capsula-1000-", 13) == 0 &&
	   plan.grace_ms == DEFAULT_REUSE_GRACE_MS,
	   "no launcher: a container of the caller's, kept warm for the same launch (%s)",
	   plan.join_key);
	snprintf(key, sizeof key, "%s", plan.join_key);
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && strcmp(key, plan.join_key) == 0,
	   "the same plain exec again finds the same container");
	char *plain_never[] = {"exec", "--join", "never", "img", "id", NULL};
	ok(build(ARGC(plain_never), plain_never, &f, &plan, &err) == 0 &&
	   strcmp(key, plan.join_key) != 0 && plan.grace_ms == 0,
	   "--join never: a fresh container with no grace");
	char *plain_bind[] = {"exec", "-B", "/scratch", "img", "id", NULL};
	ok(build(ARGC(plain_bind), plain_bind, &f, &plan, &err) == 0 && strcmp(key, plan.join_key) != 0,
	   "another bind: another container");

	f = facts("/work/run1", no_launcher);
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && find_bind(&plan, "/work/run1"),
	   "a cwd outside the image's tree is bound");
	f = facts("/usr/src/x", no_launcher);
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && !find_bind(&plan, "/usr/src/x"),
	   "a cwd in the image's system tree is not bound over the image");

	char *pwd[] = {"exec", "--pwd", "/opt/app", "img", "id", NULL};
	f = facts("/work/run1", no_launcher);
	ok(build(ARGC(pwd), pwd, &f, &plan, &err) == 0 && !find_bind(&plan, "/work/run1"),
	   "--pwd: the host cwd is not bound");
	is_str(plan.cwd, "/opt/app", "--pwd sets the start directory");

	char *nohome[] = {"exec", "--no-home", "img", "id", NULL};
	ok(build(ARGC(nohome), nohome, &f, &plan, &err) == 0 && !find_bind(&plan, "/home/alice") &&
	   plan.home == NULL, "--no-home binds no home");

	char *home[] = {"exec", "--home", "/scratch:/home/me", "img", "id", NULL};
	ok(build(ARGC(home), home, &f, &plan, &err) == 0, "--home SRC:DST");
	is_str(find_bind(&plan, "/home/me")->source, "/scratch", "--home binds SRC at DST");
	is_str(plan.home, "/home/me", "and makes DST the home");

	char *userbind[] = {"exec", "-B", "/scratch:/data:ro", "img", "id", NULL};
	ok(build(ARGC(userbind), userbind, &f, &plan, &err) == 0, "user bind");
	ok(find_bind(&plan, "/data")->flags & BIND_READONLY, "the user's ro is kept");
	ok(bind_index(&plan, "/data") == plan.bind_count - 1, "user binds come last");

	char *missing[] = {"exec", "-B", "/nonexistent", "img", "id", NULL};
	ok(build(ARGC(missing), missing, &f, &plan, &err) < 0 &&
	   strstr(err.message, "bind source /nonexistent") && strstr(err.message, "No such file"),
	   "a missing bind source is an error naming it (%s)", err.message);

	char *devhost[] = {"exec", "--dev", "host", "img", "id", NULL};
	ok(build(ARGC(devhost), devhost, &f, &plan, &err) == 0 && find_bind(&plan, "/dev") &&
	   !find_bind(&plan, "/dev/null"), "--dev host binds the host /dev whole");

	f = facts("/home/alice", mpirun_env);
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && plan.join_shared && plan.grace_ms > 0,
	   "under mpirun the container is shared, with a grace period");
	snprintf(key, sizeof key, "%s", plan.join_key);
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && strcmp(key, plan.join_key) == 0,
	   "ranks of one job get one key");
	ok(build(ARGC(userbind), userbind, &f, &plan, &err) == 0 && strcmp(key, plan.join_key) != 0,
	   "different binds, different container");
	char *never[] = {"exec", "--join", "never", "img", "id", NULL};
	ok(build(ARGC(never), never, &f, &plan, &err) == 0 && !plan.join_shared,
	   "--join never opts out");
	f = facts("/home/alice", other_job);
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && strcmp(key, plan.join_key) != 0,
	   "another job, another container");
	f = facts("/home/alice", slurm_env);
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && plan.join_shared,
	   "srun's job step is a launcher too");

	/* The groups are part of the key: sg, newgrp, a job under another group. */
	gid_t groups_a[] = {100, 200}, groups_b[] = {100};
	f = facts("/home/alice", no_launcher);
	f.groups = groups_a;
	f.group_count = 2;
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0, "a launch with two groups");
	snprintf(key, sizeof key, "%s", plan.join_key);
	f.gid = 200;
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && strcmp(key, plan.join_key) != 0,
	   "another primary group, another container");
	f.gid = 100;
	f.groups = groups_b;
	f.group_count = 1;
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && strcmp(key, plan.join_key) != 0,
	   "other supplementary groups, another container");

	/* Devices work only where the policy puts them. */
	f = facts("/dev", no_launcher);
	f.home = "/dev";
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0, "HOME=/dev");
	ok(find_bind(&plan, "/dev/null") && (find_bind(&plan, "/dev/null")->flags & BIND_DEVICES),
	   "the minimal /dev's devices keep device access");
	ok(find_bind(&plan, "/dev") && !(find_bind(&plan, "/dev")->flags & BIND_DEVICES),
	   "a home at /dev does not");
	ok(!(find_bind(&plan, "/dev/shm")->flags & BIND_DEVICES), "nor does /dev/shm");
	ok(build(ARGC(devhost), devhost, &f, &plan, &err) == 0 &&
	   (plan.binds[bind_index(&plan, "/dev")].flags & BIND_DEVICES),
	   "--dev host's /dev keeps device access");
	char *dev_bind[] = {"exec", "-B", "/dev:/hostdev", "img", "id", NULL};
	ok(build(ARGC(dev_bind), dev_bind, &f, &plan, &err) == 0 &&
	   !(find_bind(&plan, "/hostdev")->flags & BIND_DEVICES), "-B /dev:/hostdev does not");

	/* Without user binds, the home is the passwd entry's and the cwd is not bound. */
	struct capsula_config no_user_binds;
	config_defaults(&no_user_binds);
	no_user_binds.user_binds = false;
	f = facts("/work/run1", no_launcher);
	f.home = "/scratch";
	f.passwd_home = "/home/alice";
	f.config = &no_user_binds;
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0, "no user binds: a plain exec runs");
	ok(find_bind(&plan, "/home/alice") && !find_bind(&plan, "/scratch"),
	   "the home is the passwd entry's, not $HOME");
	ok(!find_bind(&plan, "/work/run1"), "the cwd outside every bind is not bound");
	is_str(plan.cwd, "/home/alice", "the command starts in the home");
	f = facts("/home/alice/proj", no_launcher);
	f.passwd_home = "/home/alice";
	f.config = &no_user_binds;
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0, "no user binds, cwd in the home");
	is_str(plan.cwd, "/home/alice/proj", "a cwd inside the home is kept");
	config_free(&no_user_binds);

	f = facts("/home/alice", no_launcher);
	f.cpus = 1;
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && plan.fuse_threads == 2 &&
	   plan.fuse_cache_bytes == 64u << 20 && plan.prefetch,
	   "server defaults: two FUSE workers even on one processor, 64 MiB cache, prefetch");
	f.cpus = 128;
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && plan.fuse_threads == 8,
	   "at most eight FUSE workers by default");
	char *tuned_env[] = {"CAPSULA_FUSE_THREADS=3", "CAPSULA_FUSE_CACHE_MB=16",
	                     "CAPSULA_PREFETCH=0", NULL};
	f = facts("/home/alice", tuned_env);
	ok(build(ARGC(plain), plain, &f, &plan, &err) == 0 && plan.fuse_threads == 3 &&
	   plan.fuse_cache_bytes == 16u << 20 && !plan.prefetch,
	   "CAPSULA_FUSE_THREADS, CAPSULA_FUSE_CACHE_MB and CAPSULA_PREFETCH tune the server");
	char *bad_threads[] = {"CAPSULA_FUSE_THREADS=0", NULL};
	f = facts("/home/alice", bad_threads);
	ok(build(ARGC(plain), plain, &f, &plan, &err) < 0 &&
	   strstr(err.message, "CAPSULA_FUSE_THREADS=0: not a number from 1 to 64"),
	   "CAPSULA_FUSE_THREADS=0 is refused (%s)", err.message);
	char *bad_cache[] = {"CAPSULA_FUSE_CACHE_MB=12x", NULL};
	f = facts("/home/alice", bad_cache);
	ok(build(ARGC(plain), plain, &f, &plan, &err) < 0 && strstr(err.message, "CAPSULA_FUSE_CACHE_MB=12x"),
	   "a cache size that is not a number is refused");
	char *bad_prefetch[] = {"CAPSULA_PREFETCH=yes", NULL};
	f = facts("/home/alice", bad_prefetch);
	ok(build(ARGC(plain), plain, &f, &plan, &err) < 0 && strstr(err.message, "not 0 or 1"),
	   "CAPSULA_PREFETCH takes 0 or 1");

	plan_free(&plan);
	return tap_done();
}
