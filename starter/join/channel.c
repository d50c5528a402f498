#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "starter/join/channel.h"

#define LOCK_NAME ".lock"
#define LOCK_PAUSE_US 1000

/* The socket file through the directory's descriptor: the path is walked
 * from the directory capsula checked, never from its name again, and it
 * stays short however long the user's home path is. */
static socklen_t socket_address(int dir_fd, const char *key, struct sockaddr_un *addr)
{
	int len;

	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	len = snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", dir_fd, key);
	if (len < 0 || (size_t)len >= sizeof addr->sun_path)
		return 0;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)len + 1);
}

int channel_connect(int dir_fd, const char *key, capsula_error *err)
{
	struct timeval timeout = {.tv_sec = CHANNEL_TIMEOUT_S};
	struct sockaddr_un addr;
	socklen_t addrlen = socket_address(dir_fd, key, &addr);
	int fd;

	if (addrlen == 0)
		return fail(err, ENAMETOOLONG, NULL, "holder socket %s", key);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(err, errno, NULL, "holder socket");
	/* Non-blocking: a listener whose backlog is full answers EAGAIN at once
	 * instead of keeping us waiting for as long as it likes. */
	if (connect(fd, (struct sockaddr *)&addr, addrlen) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		if (saved == ECONNREFUSED || saved == ENOENT || saved == EAGAIN)
			return -1;
		return fail(err, saved, NULL, "connect to holder %s", key);
	}
	if (fcntl(fd, F_SETFL, 0) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "set up the holder socket");
	}
	return fd;
}

/* The directory's lock, taken within CHANNEL_TIMEOUT_S: only the user's
 * own processes can hold it, each for a few system calls. */
static int lock_directory(int dir_fd, capsula_error *err)
{
	int fd = openat(dir_fd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return fail(err, errno, NULL, "lock your runtime directory's sockets");
	for (unsigned waited_us = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited_us += LOCK_PAUSE_US) {
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    waited_us >= CHANNEL_TIMEOUT_S * 1000000u) {
			int saved = errno;

			close(fd);
			return fail(err, saved, "find the capsula process of yours that hangs and end it",
			            "lock your runtime directory's sockets");
		}
		usleep(LOCK_PAUSE_US);
	}
	return fd;
}

static int bind_and_listen(int dir_fd, const char *key, struct channel_listener *listener,
                           capsula_error *err)
{
	struct sockaddr_un addr;
	socklen_t addrlen = socket_address(dir_fd, key, &addr);
	struct stat st;
	int fd;

	if (addrlen == 0)
		return fail(err, ENAMETOOLONG, NULL, "holder socket %s", key);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errno, NULL, "holder socket");
	if (bind(fd, (struct sockaddr *)&addr, addrlen) < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "holder socket %s in your runtime directory", key);
	}
	if (listen(fd, 128) < 0 || fstatat(dir_fd, key, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int saved = errno;

		close(fd);
		unlinkat(dir_fd, key, 0);
		return fail(err, saved, NULL, "listen on holder socket %s", key);
	}
	listener->fd = fd;
	listener->ino = st.st_ino;
	return 0;
}

/* With the directory locked: 1 when a holder listens under key, 0 when
 * nobody does (and no socket file is left), -1 with err set. Names are
 * bound only under the lock, and listened on at once: a name nobody listens
 * on now is a killed holder's. */
static int remove_if_stale(int dir_fd, const char *key, capsula_error *err)
{
	int conn = channel_connect(dir_fd, key, err);

	if (conn >= 0) {
		close(conn);
		return 1;
	}
	if (errno == EAGAIN)
		return 1;
	if (errno != ENOENT && errno != ECONNREFUSED)
		return -1;
	if (unlinkat(dir_fd, key, 0) < 0 && errno != ENOENT)
		return fail(err, errno, NULL, "remove the stale holder socket %s", key);
	return 0;
}

int channel_claim(int dir_fd, const char *key, struct channel_listener *listener,
                  capsula_error *err)
{
	int lock = lock_directory(dir_fd, err);
	int ret;

	if (lock < 0)
		return -1;
	ret = remove_if_stale(dir_fd, key, err);
	if (ret == 0)
		ret = bind_and_listen(dir_fd, key, listener, err);
	close(lock);
	return ret;
}

void channel_forget(int dir_fd, const char *key)
{
	capsula_error ignored;
	int lock = lock_directory(dir_fd, &ignored);

	if (lock < 0)
		return;
	remove_if_stale(dir_fd, key, &ignored);
	close(lock);
}

void channel_release(int dir_fd, const char *key, struct channel_listener *listener)
{
	capsula_error ignored;
	struct stat st;
	int lock;

	if (listener->fd < 0)
		return;
	lock = lock_directory(dir_fd, &ignored);
	if (fstatat(dir_fd, key, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == listener->ino)
		unlinkat(dir_fd, key, 0);
	close(listener->fd);
	listener->fd = -1;
	if (lock >= 0)
		close(lock);
}

int channel_peer_is(int fd, uid_t uid, pid_t *pid_out, capsula_error *err)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return fail(err, errno, NULL, "SO_PEERCRED on holder socket");
	if (pid_out != NULL)
		*pid_out = cred.pid;
	return cred.uid == uid;
}

int channel_send(int fd, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(CHANNEL_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > CHANNEL_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof control);
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, nfds * sizeof(int));
	}
	for (;;) {
		ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (sent >= 0)
			return (size_t)sent == len ? 0 : (errno = EMSGSIZE, -1);
		if (errno != EINTR)
			return -1;
	}
}

/* One message and its descriptors (received close-on-exec); *msg_flags
 * gets the message's flags. */
static ssize_t receive(int fd, void *buf, size_t len, int flags, int *fds, size_t *nfds,
                       int *msg_flags)
{
	union {
		char buf[CMSG_SPACE(CHANNEL_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof control.buf,
	};
	size_t want = *nfds;
	ssize_t got;

	*nfds = 0;
	do
		got = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | flags);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -1;
	*msg_flags = msg.msg_flags;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int passed;

			memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
			if (*nfds < want)
				fds[(*nfds)++] = passed;
			else
				close(passed);
		}
	}
	return got;
}

ssize_t channel_recv(int fd, void *buf, size_t len, int *fds, size_t *nfds)
{
	int msg_flags;

	return receive(fd, buf, len, MSG_WAITALL, fds, nfds, &msg_flags);
}

ssize_t channel_peek(int fd, void *buf, size_t len, int *fds, size_t *nfds)
{
	int msg_flags = 0;
	ssize_t got = receive(fd, buf, len, MSG_PEEK, fds, nfds, &msg_flags);

	if (got > 0 && (msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
		for (size_t i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		errno = EMSGSIZE;
		return -1;
	}
	return got;
}
