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
 * returned), an instance tool gets our own pidfd, so that it can wait for
 * us and signal us without ever naming a pid that might be reused. Returns
 * -1 for anything else, and for a peer that is not the container's user:
 * peers outside our user namespace's map read as the overflow uid, which
 * is never the user's (the launch refuses to run as it). */
static int answer_peer(int conn, uid_t uid, const struct container *c)
{
	struct timeval timeout = {.tv_sec = HANDSHAKE_TIMEOUT_S};
	struct holder_reply reply = {.status = HOLDER_READY, .holder = getpid()};
	int fds[2] = {c->userns_fd, c->mntns_fd};
	capsula_error err;
	int pidfd = -1;
	size_t nfds = 1;
	char request;

	if (uid_is_overflow(uid) || channel_peer_is(conn, uid, NULL, &err) != 1)
		return -1;
	if (setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0 ||
	    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) < 0)
		return -1;
	if (channel_recv(conn, &request, 1, &pidfd, &nfds) != 1)
		return -1;
	if (request == CHANNEL_STATUS && nfds == 0) {
		int self = (int)syscall(SYS_pidfd_open, getpid(), 0);

		if (self >= 0) {
			channel_send(conn, &reply, sizeof reply, &self, 1);
			close(self);
		}
		return -1;
	}
	if (request != CHANNEL_JOIN || nfds != 1) {
		if (nfds == 1)
			close(pidfd);
		return -1;
	}
	if (channel_send(conn, &reply, sizeof reply, fds, 2) < 0) {
		close(pidfd);
		return -1;
	}
	return pidfd;
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

/* Serve ranks until none is left and the grace period has passed. */
static void serve_ranks(int listen_fd, const struct capsula_plan *plan,
                        const struct container *c)
{
	struct pollfd *fds = NULL;
	size_t nranks = 0;
	uint64_t idle_deadline = timing_now_us() + FIRST_RANK_TIMEOUT_MS * 1000ULL;
	bool forever = plan->grace_ms == GRACE_FOREVER;

	for (;;) {
		struct pollfd *grown = realloc(fds, (nranks + 1) * sizeof *fds);
		int timeout_ms = -1;
		int ready;

		if (grown == NULL)
			break;
		fds = grown;
		fds[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		if (nranks == 0 && !forever) {
			uint64_t now = timing_now_us();

			if (now >= idle_deadline)
				break;
			timeout_ms = (int)((idle_deadline - now + 999) / 1000);
		}
		ready = poll(fds, nranks + 1, timeout_ms);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0)
			continue;
		/* Ranks that ended; pidfds are readable once the process is gone. */
		for (size_t i = 1; i <= nranks;) {
			if (fds[i].revents) {
				close(fds[i].fd);
				fds[i] = fds[nranks--];
				if (nranks == 0)
					idle_deadline = timing_now_us() + plan->grace_ms * 1000ULL;
			} else {
				i++;
			}
		}
		if (fds[0].revents & POLLIN) {
			int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			int pidfd = conn >= 0 ? answer_peer(conn, plan->uid, c) : -1;

			if (conn >= 0)
				close(conn);
			if (pidfd >= 0) {
				grown = realloc(fds, (nranks + 2) * sizeof *fds);
				if (grown == NULL) {
					close(pidfd);
					continue;
				}
				fds = grown;
				fds[++nranks] = (struct pollfd){.fd = pidfd, .events = POLLIN};
			}
		}
	}
	free(fds);
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
	const int keep[] = {plan->image.fd, listen_fd, report_fd};
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	struct container c = {-1, -1};
	struct identity id;
	int devnull;

	close_other_fds(keep, sizeof keep / sizeof keep[0]);
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
