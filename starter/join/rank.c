#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/environ.h"
#include "starter/join/channel.h"
#include "starter/join/rank.h"
#include "starter/join/tmpfs_watch.h"

int rank_receive(int conn, const struct capsula_plan *plan, int *userns_fd, int *mntns_fd,
                 capsula_error *err)
{
	struct join_request request = {.start_us = plan->start_us, .timing = plan->timing};
	struct holder_reply reply;
	int fds[2] = {-1, -1};
	int sent[2] = {-1, STDERR_FILENO};
	size_t sent_count = 2;
	size_t nfds = 2;
	ssize_t got;
	int pidfd;
	int ours;

	ours = channel_peer_is(conn, plan->uid, NULL, err);
	if (ours < 0)
		return -1;
	if (!ours)
		return fail(err, 0, "look at what runs as another user in your runtime directory",
		            "the holder socket %s is not served by you", plan->join_key);
	/* A pidfd, not a pid: the holder learns of our exit from the kernel,
	 * even after SIGKILL, and a reused pid can never be mistaken for us. */
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		return fail(err, errno, "capsula needs Linux 5.3 or newer", "pidfd_open");
	/* Our stderr too: the holder tells us there when the image turns out
	 * damaged, and what --timing measured. */
	sent[0] = pidfd;
	if (fcntl(STDERR_FILENO, F_GETFD) < 0)
		sent_count = 1;
	if (channel_send(conn, &(char){CHANNEL_JOIN}, 1, sent, sent_count) < 0 ||
	    channel_send(conn, &request, sizeof request, NULL, 0) < 0) {
		int saved = errno;

		close(pidfd);
		return saved == EPIPE || saved == ECONNRESET ? 1 :
		       fail(err, saved, NULL, "talk to the container holder");
	}
	close(pidfd);
	got = channel_recv(conn, &reply, sizeof reply, fds, &nfds);
	if (got == 0 || (got < 0 && errno == ECONNRESET))
		return 1;
	if (got != (ssize_t)sizeof reply)
		return fail(err, got < 0 ? errno : EPROTO, NULL, "read from the container holder");
	if (reply.status != 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		reply.message[sizeof reply.message - 1] = '\0';
		return fail_status(err, reply.status, 0, NULL, "%s", reply.message);
	}
	if (nfds != 2)
		return fail(err, EPROTO, NULL, "the container holder sent no namespaces");
	*userns_fd = fds[0];
	*mntns_fd = fds[1];
	return 0;
}

int rank_enter(int userns_fd, int mntns_fd, capsula_error *err)
{
	if (setns(userns_fd, CLONE_NEWUSER) < 0)
		return fail(err, errno, NULL, "enter the container's user namespace");
	if (setns(mntns_fd, CLONE_NEWNS) < 0)
		return fail(err, errno, NULL, "enter the container's mount namespace");
	close(userns_fd);
	close(mntns_fd);
	return 0;
}

static void enter_directory(const struct capsula_plan *plan)
{
	if (chdir(plan->cwd) == 0)
		return;
	if (plan->verbosity >= 0)
		fprintf(stderr, "capsula: warning: %s does not exist in the container; starting in %s\n",
		        plan->cwd, plan->home ? plan->home : "/");
	if (plan->home == NULL || chdir(plan->home) < 0)
		if (chdir("/") < 0)
			return;
}

/* With --fakeroot the user is root of the container's user namespace and
 * keeps its capabilities there (they count for nothing outside it): tools
 * that insist on root, and package managers, need them. */
static int drop_privileges(bool fakeroot, capsula_error *err)
{
	cap_t none;

	if (fakeroot)
		goto no_new_privs;
	/* Bounding set first: it needs CAP_SETPCAP, which goes last. */
	for (cap_value_t cap = 0; cap < (cap_value_t)cap_max_bits(); cap++)
		if (cap_drop_bound(cap) < 0 && errno != EINVAL)
			return fail(err, errno, NULL, "drop capability %d from the bounding set", cap);
	if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() < 0)
		return fail(err, errno, NULL, "clear ambient capabilities");
	none = cap_init();
	if (none == NULL)
		return fail(err, errno, NULL, "cap_init");
	if (cap_set_proc(none) < 0) {
		int saved = errno;

		cap_free(none);
		return fail(err, saved, NULL, "drop capabilities");
	}
	cap_free(none);
no_new_privs:
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errno, NULL, "set no_new_privs");
	return 0;
}

static int exec_failure(capsula_error *err, int errnum, const char *command)
{
	if (errnum == ENOENT || errnum == ENOTDIR)
		return fail_status(err, EXIT_NOT_FOUND, errnum,
		                   "check the command's name and the image's PATH",
		                   "%s: not found in the container", command);
	return fail_status(err, EXIT_CANNOT_EXECUTE, errnum, NULL,
	                   "%s: cannot execute", command);
}

/* execvp with the container's PATH (the command's environment, not ours). */
static int exec_command(char **argv, char **envp, capsula_error *err)
{
	const char *path = env_get(envp, "PATH");
	char candidate[PATH_MAX];
	int first_error = ENOENT;

	if (strchr(argv[0], '/') != NULL) {
		execve(argv[0], argv, envp);
		return exec_failure(err, errno, argv[0]);
	}
	if (path == NULL || path[0] == '\0')
		path = FALLBACK_SEARCH_PATH;
	for (const char *dir = path; ; dir++) {
		const char *end = strchrnul(dir, ':');
		int len = (int)(end - dir);

		snprintf(candidate, sizeof candidate, "%.*s%s%s", len, dir,
		         len ? "/" : "", argv[0]);
		execve(candidate, argv, envp);
		/* Remember a real problem (permission) over plain absence. */
		if (errno != ENOENT && errno != ENOTDIR && first_error == ENOENT)
			first_error = errno;
		if (*end == '\0')
			break;
		dir = end;
	}
	return exec_failure(err, first_error, argv[0]);
}

int rank_exec(const struct capsula_plan *plan, capsula_error *err)
{
	enter_directory(plan);
	if (drop_privileges(plan->fakeroot, err) < 0)
		return -1;
	if (plan->overlay == OVERLAY_TMPFS && tmpfs_watch_fork(plan->tmpfs_bytes, err) < 0)
		return -1;
	return exec_command(plan->argv, plan->envp, err);
}
