#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "starter/join/channel.h"
#include "starter/join/holder.h"
#include "starter/starter.h"

/* How long a stopped holder gets to go, after SIGTERM and after SIGKILL. */
#define STOP_WAIT_MS 5000

/* Ask the holder under key for its pidfd. Only a holder of our own user is
 * asked, over a connection that is bounded at every step; whatever else
 * listens under one of the key's names is passed over. */
static int holder_pidfd(const unsigned char *secret, const char *key)
{
	char name[JOIN_KEY_SIZE];

	for (unsigned slot = 0; slot < CHANNEL_SLOTS; slot++) {
		struct holder_reply reply;
		capsula_error ignored;
		int pidfd = -1;
		size_t nfds = 1;
		ssize_t got;
		int conn;

		if (channel_name(secret, key, slot, name, sizeof name, &ignored) < 0)
			return -1;
		conn = channel_connect(name, &ignored);
		if (conn < 0)
			continue;
		if (channel_peer_is(conn, getuid(), NULL, &ignored) != 1 ||
		    channel_send(conn, &(char){CHANNEL_STATUS}, 1, NULL, 0) < 0) {
			close(conn);
			continue;
		}
		got = channel_recv(conn, &reply, sizeof reply, &pidfd, &nfds);
		close(conn);
		if (got == (ssize_t)sizeof reply && nfds == 1)
			return pidfd;
		if (nfds == 1)
			close(pidfd);
	}
	return -1;
}

bool starter_instance_running(const unsigned char *secret, const char *key)
{
	int pidfd = holder_pidfd(secret, key);

	if (pidfd < 0)
		return false;
	close(pidfd);
	return true;
}

int starter_start_instance(const struct capsula_plan *plan, pid_t *holder, capsula_error *err)
{
	char name[JOIN_KEY_SIZE];

	/* A fresh key: a name that is taken can only be another user's. */
	for (unsigned slot = 0; slot < CHANNEL_SLOTS; slot++) {
		int listen_fd;
		int ret;

		if (channel_name(plan->join_secret, plan->join_key, slot, name, sizeof name, err) < 0)
			return -1;
		if (channel_listen(name, &listen_fd, err) < 0) {
			if (errno == EADDRINUSE)
				continue;
			return -1;
		}
		ret = holder_spawn(plan, listen_fd, holder, err);
		close(listen_fd);
		return ret;
	}
	return fail(err, 0, "ask the administrator to find who takes them",
	            "all %d socket names for the instance are taken by other users", CHANNEL_SLOTS);
}

static bool gone_within(int pidfd, int ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int ready;

	do
		ready = poll(&p, 1, ms);
	while (ready < 0 && errno == EINTR);
	return ready > 0;
}

int starter_stop_instance(const unsigned char *secret, const char *key, capsula_error *err)
{
	int pidfd = holder_pidfd(secret, key);
	int ret = 0;

	if (pidfd < 0)
		return 0;  /* already gone */
	/* Signals go through the holder's own pidfd: never to a reused pid. */
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
		ret = fail(err, errno, NULL, "stop the instance's holder");
	else if (!gone_within(pidfd, STOP_WAIT_MS) &&
	         ((syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) ||
	          !gone_within(pidfd, STOP_WAIT_MS)))
		ret = fail(err, errno, "look at it with ps and kill it", "the instance's holder "
		           "does not end");
	close(pidfd);
	return ret;
}
