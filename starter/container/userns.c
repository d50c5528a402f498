#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "starter/container/userns.h"

#define USERNS_HINT \
	"user namespaces look disabled: ask the admin to set " \
	"user.max_user_namespaces > 0 (and kernel.unprivileged_userns_clone=1 " \
	"or kernel.apparmor_restrict_unprivileged_userns=0 where those exist)"

static int write_file(const char *path, const char *text, capsula_error *err)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t written;

	if (fd < 0)
		return fail(err, errno, NULL, "open %s", path);
	written = write(fd, text, len);
	if (written < 0 || (size_t)written != len) {
		int saved = written < 0 ? errno : EIO;

		close(fd);
		return fail(err, saved, NULL, "write '%.*s' to %s", (int)(len - 1), text, path);
	}
	if (close(fd) < 0)
		return fail(err, errno, NULL, "close %s", path);
	return 0;
}

bool uid_is_overflow(uid_t uid)
{
	unsigned overflow = 65534;
	FILE *f = fopen("/proc/sys/kernel/overflowuid", "re");

	if (f != NULL) {
		if (fscanf(f, "%u", &overflow) != 1)
			overflow = 65534;
		fclose(f);
	}
	return uid == (uid_t)overflow;
}

static int unshare_namespaces(capsula_error *err)
{
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0)
		return 0;
	if (errno == ENOSPC)
		return fail(err, errno, "end some of your containers (capsula instance list), or "
		            "ask the admin to raise user.max_user_namespaces",
		            "cannot create a user namespace: your user namespaces are exhausted");
	if (errno == EUSERS)
		return fail(err, errno, "run capsula from a less deeply nested container",
		            "cannot create a user namespace: 32 levels are nested already");
	if (errno == EPERM || errno == EINVAL)
		return fail(err, errno, USERNS_HINT, "cannot create a user namespace");
	return fail(err, errno, NULL, "cannot create a user namespace");
}

/* One id each: what an unprivileged process may write itself. */
static int write_single_maps(uid_t inner_uid, uid_t uid, gid_t inner_gid, gid_t gid,
                             capsula_error *err)
{
	char map[64];

	/* setgroups must be denied before an unprivileged gid_map is accepted. */
	if (write_file("/proc/self/setgroups", "deny\n", err) < 0)
		return -1;
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)inner_uid, (unsigned)uid);
	if (write_file("/proc/self/uid_map", map, err) < 0)
		return -1;
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)inner_gid, (unsigned)gid);
	return write_file("/proc/self/gid_map", map, err);
}

static int run_helper(const char *helper, pid_t target, unsigned long own,
                      const struct id_range *range, bool subids_from_root)
{
	char pid_text[24], own_text[24], start_text[24], count_text[24];
	char *argv[] = {(char *)helper, pid_text, "0", own_text, "1", "1", start_text,
	                count_text, NULL};
	char *from_root[] = {(char *)helper, pid_text, "0", start_text, count_text, count_text,
	                     own_text, "1", NULL};
	int status;
	pid_t pid;

	if (subids_from_root)
		memcpy(argv, from_root, sizeof argv);
	snprintf(pid_text, sizeof pid_text, "%d", (int)target);
	snprintf(own_text, sizeof own_text, "%lu", own);
	snprintf(start_text, sizeof start_text, "%lu", range->start);
	snprintf(count_text, sizeof count_text, "%lu", range->count);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execve(helper, argv, (char *[]){NULL});
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The user as 0 and their subordinate ids as 1..: only the setuid helpers
 * may write such maps, from outside the new namespace. A child made before
 * the unshare stays outside; it runs them once we are in. */
static int map_through_helpers(const struct capsula_plan *plan, capsula_error *err)
{
	pid_t self = getpid(), child;
	int go[2], status;
	char byte = 0;

	if (pipe2(go, O_CLOEXEC) < 0)
		return fail(err, errno, NULL, "pipe for newuidmap");
	child = fork();
	if (child < 0) {
		close(go[0]);
		close(go[1]);
		return fail(err, errno, NULL, "fork for newuidmap");
	}
	if (child == 0) {
		close(go[1]);
		if (read(go[0], &byte, 1) != 1)
			_exit(1);
		_exit(run_helper(plan->newuidmap, self, plan->uid, &plan->subuids,
		                 plan->subids_from_root) == 0 &&
		      run_helper(plan->newgidmap, self, plan->gid, &plan->subgids,
		                 plan->subids_from_root) == 0 ? 0 : 1);
	}
	close(go[0]);
	if (unshare_namespaces(err) < 0) {
		close(go[1]);
		waitpid(child, &status, 0);
		return -1;
	}
	if (write(go[1], &byte, 1) != 1) {
		close(go[1]);
		waitpid(child, &status, 0);
		return fail(err, errno, NULL, "start newuidmap");
	}
	close(go[1]);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return fail(err, errno, NULL, "wait for newuidmap");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail(err, 0, "check your lines in /etc/subuid and /etc/subgid, or ask the "
		            "admin", "%s or %s could not map your subordinate ids %lu-%lu",
		            plan->newuidmap, plan->newgidmap, plan->subuids.start,
		            plan->subuids.start + plan->subuids.count - 1);
	return 0;
}

/* Slave, not private: a file system the admin mounts later on the host
 * (an automounted project directory) still shows up inside. */
static int follow_host_mounts(capsula_error *err)
{
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return fail(err, errno, NULL, "make / a recursive slave mount");
	return 0;
}

int userns_create(uid_t uid, gid_t gid, capsula_error *err)
{
	if (unshare_namespaces(err) < 0 || write_single_maps(uid, uid, gid, gid, err) < 0)
		return -1;
	return follow_host_mounts(err);
}

int userns_create_for(const struct capsula_plan *plan, capsula_error *err)
{
	if (!plan->fakeroot)
		return userns_create(plan->uid, plan->gid, err);
	if (plan->newuidmap != NULL) {
		if (map_through_helpers(plan, err) < 0)
			return -1;
	} else if (unshare_namespaces(err) < 0 ||
	           write_single_maps(0, plan->uid, 0, plan->gid, err) < 0) {
		return -1;
	}
	return follow_host_mounts(err);
}
