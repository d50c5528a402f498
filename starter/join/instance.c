#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "starter/join/channel.h"
#include "starter/join/holder.h"
#include "starter/starter.h"

/* How long a stopped holder gets to go, after SIGTERM and after SIGKILL. */
#define STOP_WAIT_MS 5000
#define HOLDER_NAME "capsula-holder"

/* The process start time in /proc/PID/stat (field 22), 0 when there is no
 * such live process of ours named like a holder. */
static unsigned long long holder_started(pid_t pid)
{
	char path[64], text[1024];
	const char *name, *fields;
	unsigned long long started = 0;
	struct stat st;
	ssize_t got;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* procfs files have no size: one read of the line. */
	got = fstat(fd, &st) == 0 && st.st_uid == getuid() ? read(fd, text, sizeof text - 1) : -1;
	close(fd);
	if (got <= 0)
		return 0;
	text[got] = '\0';
	/* "PID (NAME) STATE PPID ...": the fields after the last ')', each after
	 * one space; the start time is the 22nd. */
	name = strstr(text, " (" HOLDER_NAME ") ");
	fields = strrchr(text, ')');
	if (name != NULL && fields != NULL && fields[1] == ' ' && fields[2] != 'Z') {
		const char *at = fields + 1;

		for (int field = 3; field < 22 && at != NULL; field++)
			at = strchr(at + 1, ' ');
		if (at != NULL)
			started = strtoull(at + 1, NULL, 10);
	}
	return started;
}

/* A pidfd of the record's process, if it is still the holder it named. */
static int pidfd_of_recorded(const struct instance_holder *h)
{
	int pidfd;

	if (h->pid <= 0 || h->started == 0)
		return -1;
	pidfd = (int)syscall(SYS_pidfd_open, h->pid, 0);
	/* Checked after the open: a pid reused before it has another start time. */
	if (pidfd >= 0 && holder_started(h->pid) != h->started) {
		close(pidfd);
		return -1;
	}
	return pidfd;
}

/* Ask the holder for its pidfd over its socket. Returns the pidfd, or -1
 * with *listening telling whether anything listens under the key. */
static int ask_holder(int dir_fd, const char *key, bool *listening)
{
	struct holder_reply reply;
	capsula_error ignored;
	int pidfd = -1;
	size_t nfds = 1;
	ssize_t got;
	int conn = channel_connect(dir_fd, key, &ignored);

	*listening = conn >= 0 || errno == EAGAIN;
	if (conn < 0)
		return -1;
	if (channel_peer_is(conn, getuid(), NULL, &ignored) != 1 ||
	    channel_send(conn, &(char){CHANNEL_STATUS}, 1, NULL, 0) < 0) {
		close(conn);
		return -1;
	}
	got = channel_recv(conn, &reply, sizeof reply, &pidfd, &nfds);
	close(conn);
	if (got == (ssize_t)sizeof reply && nfds == 1)
		return pidfd;
	if (nfds == 1)
		close(pidfd);
	return -1;
}

/* The holder's pidfd: from the holder itself, else from its recorded pid
 * and start time (a holder too busy to answer, or whose socket is gone). */
static enum instance_state holder_pidfd(int dir_fd, const struct instance_holder *h, int *pidfd)
{
	bool listening;

	*pidfd = ask_holder(dir_fd, h->key, &listening);
	if (*pidfd >= 0)
		return INSTANCE_RUNNING;
	*pidfd = pidfd_of_recorded(h);
	if (*pidfd >= 0)
		return INSTANCE_RUNNING;
	return listening ? INSTANCE_BUSY : INSTANCE_GONE;
}

enum instance_state starter_instance_state(int socket_dir_fd, const struct instance_holder *h)
{
	int pidfd;
	enum instance_state state = holder_pidfd(socket_dir_fd, h, &pidfd);

	if (pidfd >= 0)
		close(pidfd);
	return state;
}

int starter_start_instance(const struct capsula_plan *plan, struct instance_holder *holder,
                           capsula_error *err)
{
	struct channel_listener listener;
	int ret = channel_claim(plan->socket_dir_fd, plan->join_key, &listener, err);

	if (ret < 0)
		return -1;
	/* A fresh key: a holder listening under it already cannot be. */
	if (ret == 1)
		return fail(err, EADDRINUSE, "run the command again", "instance socket %s",
		            plan->join_key);
	ret = holder_spawn(plan, listener.fd, listener.ino, &holder->pid, err);
	if (ret < 0) {
		channel_release(plan->socket_dir_fd, plan->join_key, &listener);
		return -1;
	}
	close(listener.fd);
	holder->started = holder_started(holder->pid);
	return 0;
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

int starter_stop_instance(int socket_dir_fd, const struct instance_holder *h,
                          capsula_error *err)
{
	int pidfd;
	enum instance_state state = holder_pidfd(socket_dir_fd, h, &pidfd);
	int ret = 0;

	if (state == INSTANCE_GONE) {
		channel_forget(socket_dir_fd, h->key);
		return 0;
	}
	if (state == INSTANCE_BUSY)
		return fail(err, EAGAIN, "try again in a moment", "the instance's holder does not "
		            "answer (its socket's queue is full)");
	/* Signals go through the holder's own pidfd: never to a reused pid. */
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
		ret = fail(err, errno, NULL, "stop the instance's holder");
	else if (!gone_within(pidfd, STOP_WAIT_MS) &&
	         ((syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) ||
	          !gone_within(pidfd, STOP_WAIT_MS)))
		ret = fail(err, errno, "look at it with ps and kill it", "the instance's holder "
		           "does not end");
	close(pidfd);
	/* A holder ended by a signal could not take its socket file along. */
	if (ret == 0)
		channel_forget(socket_dir_fd, h->key);
	return ret;
}
