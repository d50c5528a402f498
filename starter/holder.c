#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "starter/channel.h"
#include "starter/container.h"
#include "starter/holder.h"
#include "starter/identity.h"
#include "starter/userns.h"
#include "common/timing.h"

/* How long a new holder waits for its first rank before giving up. */
#define FIRST_RANK_TIMEOUT_MS 30000
/* A rank that connects must say hello within this time. */
#define HANDSHAKE_TIMEOUT_S 5

enum { HOLDER_READY = 0 };

static void report(int fd, int status, const char *message)
{
	struct holder_reply reply = {.status = status, .holder = getpid()};
	ssize_t ignored;

	snprintf(reply.message, sizeof reply.message, "%s", message ? message : "");
	ignored = write(fd, &reply, sizeof reply);
	(void)ignored;  /* the spawning rank may be gone; nothing to tell then */
}

/* Keep only the descriptors the holder needs (and stdio until setup is
 * done), so it holds none of the launcher's pipes or sockets open. */
static void close_other_fds(const int *keep, size_t count)
{
	unsigned next = 3;

	for (;;) {
		unsigned lowest = ~0U;

		for (size_t i = 0; i < count; i++)
			if (keep[i] >= (int)next && (unsigned)keep[i] < lowest)
				lowest = (unsigned)keep[i];
		if (lowest > next)
			close_range(next, lowest == ~0U ? ~0U : lowest - 1, 0);
		if (lowest == ~0U)
			break;
		next = lowest + 1;
	}
}

static void ignore_terminal_signals(void)
{
	static const int signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE};

	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		signal(signals[i], SIG_IGN);
}

/* Answer one connection: a rank gets the container (and we get its pidfd,
 * returned, and its stderr in *stderr_fd, or -1), an instance tool gets our
 * own pidfd, so that it can wait for us and signal us without ever naming a
 * pid that might be reused. Returns -1 for anything else, and for a peer
 * that is not the container's user: peers outside our user namespace's map
 * read as the overflow uid, which is never the user's (the launch refuses
 * to run as it). */
static int answer_peer(int conn, const struct capsula_plan *plan, const struct container *c,
                       int *stderr_fd)
{
	struct timeval timeout = {.tv_sec = HANDSHAKE_TIMEOUT_S};
	struct holder_reply reply = {.status = HOLDER_READY, .holder = getpid()};
	int fds[2] = {c->userns_fd, c->mntns_fd};
	int received[2] = {-1, -1};
	capsula_error err;
	size_t nfds = 2;
	char request;

	*stderr_fd = -1;
	if (uid_is_overflow(plan->uid) ||
	    channel_peer_is(conn, plan_inner_uid(plan), NULL, &err) != 1)
		return -1;
	if (setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0 ||
	    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) < 0)
		return -1;
	if (channel_recv(conn, &request, 1, received, &nfds) != 1)
		return -1;
	if (request == CHANNEL_STATUS && nfds == 0) {
		int self = (int)syscall(SYS_pidfd_open, getpid(), 0);

		if (self >= 0) {
			channel_send(conn, &reply, sizeof reply, &self, 1);
			close(self);
		}
		return -1;
	}
	if (request != CHANNEL_JOIN || nfds < 1 ||
	    channel_send(conn, &reply, sizeof reply, fds, 2) < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(received[i]);
		return -1;
	}
	*stderr_fd = nfds == 2 ? received[1] : -1;
	return received[0];
}

static void refuse_waiting_ranks(int listen_fd, const capsula_error *err)
{
	struct holder_reply reply = {.status = err->status};
	int conn;

	snprintf(reply.message, sizeof reply.message, "%s", err->message);
	if (fcntl(listen_fd, F_SETFL, O_NONBLOCK) < 0)
		return;
	while ((conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		channel_send(conn, &reply, sizeof reply, NULL, 0);
		close(conn);
	}
}

/* The ranks being served: fds[0] is the listening socket, fds[1..count]
 * the ranks' pidfds; stderr_fds[i] the stderr of rank i (or -1), kept
 * only while a writable tmpfs may need to tell them it is full. */
struct rank_set {
	struct pollfd *fds;
	int *stderr_fds;
	size_t count;
};

static int rank_add(struct rank_set *ranks, int pidfd, int stderr_fd)
{
	struct pollfd *fds = realloc(ranks->fds, (ranks->count + 2) * sizeof *fds);
	int *errs;

	if (fds == NULL)
		return -1;
	ranks->fds = fds;
	errs = realloc(ranks->stderr_fds, (ranks->count + 2) * sizeof *errs);
	if (errs == NULL)
		return -1;
	ranks->stderr_fds = errs;
	ranks->count++;
	fds[ranks->count] = (struct pollfd){.fd = pidfd, .events = POLLIN};
	errs[ranks->count] = stderr_fd;
	return 0;
}

static void rank_remove(struct rank_set *ranks, size_t i)
{
	close(ranks->fds[i].fd);
	if (ranks->stderr_fds[i] >= 0)
		close(ranks->stderr_fds[i]);
	ranks->fds[i] = ranks->fds[ranks->count];
	ranks->stderr_fds[i] = ranks->stderr_fds[ranks->count];
	ranks->count--;
}

/* A program that fills the writable tmpfs sees only ENOSPC; its user
 * should learn which limit that was, once each time it fills. */
static void watch_writable_tmpfs(const struct capsula_plan *plan, const struct container *c,
                                 const struct rank_set *ranks, bool *told)
{
	struct statfs fs;
	char line[320];
	int length;

	if (c->upper_fd < 0 || fstatfs(c->upper_fd, &fs) < 0 || fs.f_blocks == 0)
		return;
	if (fs.f_bavail > fs.f_blocks / 10) {
		*told = false;
		return;
	}
	if (fs.f_bavail > 0 || *told)
		return;
	*told = true;
	length = snprintf(line, sizeof line, "capsula: the container's writable tmpfs is full "
	                  "(%llu MiB): writes fail with 'No space left on device'; give it more "
	                  "with --tmpfs-size, or write to a host directory\n",
	                  plan->tmpfs_bytes >> 20);
	for (size_t i = 1; i <= ranks->count; i++)
		if (ranks->stderr_fds[i] >= 0 && write(ranks->stderr_fds[i], line,
		                                       (size_t)length) < 0)
			continue;  /* that rank's stderr is gone: nothing more to do */
}

#define TMPFS_WATCH_MS 500

/* Serve ranks until none is left and the grace period has passed. */
static void serve_ranks(int listen_fd, const struct capsula_plan *plan,
                        const struct container *c)
{
	struct rank_set ranks = {0};
	uint64_t idle_deadline = timing_now_us() + FIRST_RANK_TIMEOUT_MS * 1000ULL;
	bool forever = plan->grace_ms == GRACE_FOREVER;
	bool told_full = false;

	ranks.fds = malloc(sizeof *ranks.fds);
	ranks.stderr_fds = malloc(sizeof *ranks.stderr_fds);
	if (ranks.fds == NULL || ranks.stderr_fds == NULL)
		goto out;
	for (;;) {
		int timeout_ms = -1;
		int ready;

		ranks.fds[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		if (ranks.count == 0 && !forever) {
			uint64_t now = timing_now_us();

			if (now >= idle_deadline)
				break;
			timeout_ms = (int)((idle_deadline - now + 999) / 1000);
		}
		if (c->upper_fd >= 0 && (timeout_ms < 0 || timeout_ms > TMPFS_WATCH_MS))
			timeout_ms = TMPFS_WATCH_MS;
		ready = poll(ranks.fds, ranks.count + 1, timeout_ms);
		if (ready < 0 && errno != EINTR)
			break;
		watch_writable_tmpfs(plan, c, &ranks, &told_full);
		if (ready <= 0)
			continue;
		/* Ranks that ended; pidfds are readable once the process is gone. */
		for (size_t i = 1; i <= ranks.count;) {
			if (ranks.fds[i].revents) {
				rank_remove(&ranks, i);
				if (ranks.count == 0)
					idle_deadline = timing_now_us() + plan->grace_ms * 1000ULL;
			} else {
				i++;
			}
		}
		if (ranks.fds[0].revents & POLLIN) {
			int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			int stderr_fd = -1;
			int pidfd = conn >= 0 ? answer_peer(conn, plan, c, &stderr_fd) : -1;

			if (conn >= 0)
				close(conn);
			/* Holding a rank's stderr past its end would keep its
			 * launcher waiting: only while it lives, and only if needed. */
			if (stderr_fd >= 0 && c->upper_fd < 0) {
				close(stderr_fd);
				stderr_fd = -1;
			}
			if (pidfd >= 0 && rank_add(&ranks, pidfd, stderr_fd) < 0) {
				close(pidfd);
				if (stderr_fd >= 0)
					close(stderr_fd);
			}
		}
	}
out:
	free(ranks.fds);
	free(ranks.stderr_fds);
}

static void detach_stdio(int devnull)
{
	/* Keeping the rank's stdout or stderr open would make the launcher wait
	 * for the holder before it considers the rank finished. */
	dup2(devnull, STDIN_FILENO);
	dup2(devnull, STDOUT_FILENO);
	dup2(devnull, STDERR_FILENO);
	close(devnull);
}

static __attribute__((noreturn)) void holder_main(const struct capsula_plan *plan,
                                                  int listen_fd, int report_fd)
{
	int keep[3 + MAX_IMAGE_LAYERS] = {plan->image.fd, listen_fd, report_fd};
	size_t kept = 3;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	struct container c = {-1, -1, -1};
	struct identity id;
	int devnull;

	for (size_t i = 0; i < plan->layer_count && i < MAX_IMAGE_LAYERS; i++)
		keep[kept++] = plan->layers[i].fd;
	close_other_fds(keep, kept);
	ignore_terminal_signals();
	prctl(PR_SET_NAME, "capsula-holder", 0, 0, 0);
	if (chdir("/") < 0 || (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		fail(&err, errno, NULL, "holder setup");
		report(report_fd, err.status, err.message);
		_exit(EXIT_CAPSULA_FAILED);
	}
	if (identity_lookup(plan->uid, plan->gid, &id, &err) < 0 ||
	    container_build(plan, &id, &c, &err) < 0) {
		report(report_fd, err.status, err.message);
		refuse_waiting_ranks(listen_fd, &err);
		_exit(EXIT_CAPSULA_FAILED);
	}
	identity_free(&id);
	report(report_fd, HOLDER_READY, NULL);
	close(report_fd);
	detach_stdio(devnull);
	serve_ranks(listen_fd, plan, &c);
	/* The FUSE mount and everything else go with the last reference to the
	 * namespaces, which is ours. */
	_exit(0);
}

int holder_spawn(const struct capsula_plan *plan, int listen_fd, pid_t *holder,
                 capsula_error *err)
{
	struct holder_reply reply;
	int pipefd[2];
	ssize_t got;
	pid_t pid;
	int status;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fail(err, errno, NULL, "pipe for the holder");
	pid = fork();
	if (pid < 0) {
		int saved = errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return fail(err, saved, NULL, "fork the holder");
	}
	if (pid == 0) {
		close(pipefd[0]);
		/* Own session, then fork again: the holder is nobody's child in the
		 * launcher's process group and never gets the terminal's signals. */
		if (setsid() < 0)
			_exit(EXIT_CAPSULA_FAILED);
		pid = fork();
		if (pid < 0) {
			fail(err, errno, NULL, "fork the holder");
			report(pipefd[1], err->status, err->message);
			_exit(EXIT_CAPSULA_FAILED);
		}
		if (pid > 0)
			_exit(0);
		holder_main(plan, listen_fd, pipefd[1]);
	}
	close(pipefd[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	do
		got = read(pipefd[0], &reply, sizeof reply);
	while (got < 0 && errno == EINTR);
	close(pipefd[0]);
	if (got != (ssize_t)sizeof reply)
		return fail(err, got < 0 ? errno : 0, "run again with -vv and report it",
		            "the container holder exited during setup");
	if (reply.status == HOLDER_READY) {
		if (holder != NULL)
			*holder = reply.holder;
		return 0;
	}
	reply.message[sizeof reply.message - 1] = '\0';
	return fail_status(err, reply.status, 0, NULL, "%s", reply.message);
}
