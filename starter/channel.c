#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "starter/channel.h"

static socklen_t abstract_address(const char *key, struct sockaddr_un *addr)
{
	int len;

	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	/* Leading NUL: an abstract name, gone with the socket, nothing on disk. */
	len = snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1, "%s", key);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
}

int channel_listen(const char *key, int *fd_out, capsula_error *err)
{
	struct sockaddr_un addr;
	socklen_t addrlen = abstract_address(key, &addr);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return fail(err, errno, NULL, "holder socket");
	if (bind(fd, (struct sockaddr *)&addr, addrlen) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		if (saved == EADDRINUSE)
			return -1;
		return fail(err, saved, NULL, "bind holder socket @%s", key);
	}
	if (listen(fd, 128) < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "listen on holder socket @%s", key);
	}
	*fd_out = fd;
	return 0;
}

int channel_connect(const char *key, capsula_error *err)
{
	struct sockaddr_un addr;
	socklen_t addrlen = abstract_address(key, &addr);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return fail(err, errno, NULL, "holder socket");
	if (connect(fd, (struct sockaddr *)&addr, addrlen) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		if (saved == ECONNREFUSED || saved == ENOENT)
			return -1;
		return fail(err, saved, NULL, "connect to holder @%s", key);
	}
	return fd;
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

ssize_t channel_recv(int fd, void *buf, size_t len, int *fds, size_t *nfds)
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
		got = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -1;
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
