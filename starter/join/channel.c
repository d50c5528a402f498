#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/hmac_sha256.h"
#include "starter/join/channel.h"

static socklen_t abstract_address(const char *key, struct sockaddr_un *addr)
{
	int len;

	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	/* Leading NUL: an abstract name, gone with the socket, nothing on disk. */
	len = snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1, "%s", key);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
}

int channel_name(const unsigned char secret[JOIN_SECRET_SIZE], const char *key, unsigned slot,
                 char *name, size_t size, capsula_error *err)
{
	unsigned char mac[HMAC_SHA256_BYTES];
	char message[JOIN_KEY_SIZE + 16];
	int len = snprintf(message, sizeof message, "%s/%u", key, slot);
	size_t at;

	/* Keyed with the user's own secret, so that nobody else can know a
	 * name before the user's holder binds it: a name cannot be taken in
	 * advance. 128 bits of the MAC are plenty to be unguessable. */
	if (len < 0 || (size_t)len >= sizeof message)
		return fail(err, ENAMETOOLONG, NULL, "socket name for %s", key);
	hmac_sha256(secret, JOIN_SECRET_SIZE, message, (size_t)len, mac);
	at = (size_t)snprintf(name, size, "capsula-");
	for (unsigned i = 0; i < 16 && at + 2 < size; i++, at += 2)
		snprintf(name + at, size - at, "%02x", mac[i]);
	return 0;
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
	struct timeval timeout = {.tv_sec = CHANNEL_TIMEOUT_S};
	struct sockaddr_un addr;
	socklen_t addrlen = abstract_address(key, &addr);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

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
		return fail(err, saved, NULL, "connect to holder @%s", key);
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

/* Find the socket bound to the abstract name in the kernel's table of unix
 * sockets (sock_diag) and report its owner's uid. */
static int scan_unix_sockets(int nl, const char *name, uid_t *owner)
{
	char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t name_len = strlen(name);
	int found = -1;

	for (;;) {
		ssize_t got = recv(nl, buf, sizeof buf, 0);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)got);
		     h = NLMSG_NEXT(h, got)) {
			struct unix_diag_msg *msg = NLMSG_DATA(h);
			const char *bound = NULL;
			size_t bound_len = 0;
			int attr_len;
			bool has_uid = false;
			uid_t uid = 0;

			if (h->nlmsg_type == NLMSG_DONE)
				return found;
			if (h->nlmsg_type == NLMSG_ERROR)
				return -1;
			attr_len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *msg));
			for (struct rtattr *a = (struct rtattr *)(msg + 1); RTA_OK(a, attr_len);
			     a = RTA_NEXT(a, attr_len)) {
				if (a->rta_type == UNIX_DIAG_NAME) {
					bound = RTA_DATA(a);
					bound_len = RTA_PAYLOAD(a);
				} else if (a->rta_type == UNIX_DIAG_UID && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
					uint32_t value;

					memcpy(&value, RTA_DATA(a), sizeof value);
					uid = (uid_t)value;
					has_uid = true;
				}
			}
			/* Abstract names begin with a NUL byte. */
			if (found < 0 && has_uid && bound != NULL && bound_len == name_len + 1 &&
			    bound[0] == '\0' && memcmp(bound + 1, name, name_len) == 0) {
				*owner = uid;
				found = 0;
			}
		}
	}
}

int channel_owner(const char *key, uid_t *owner)
{
	struct {
		struct nlmsghdr header;
		struct unix_diag_req request;
	} query = {
		.header = {
			.nlmsg_len = sizeof query,
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		},
		.request = {
			.sdiag_family = AF_UNIX,
			.udiag_states = ~0U,
			.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_UID,
		},
	};
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int found;

	if (nl < 0)
		return -1;
	if (send(nl, &query, sizeof query, 0) != (ssize_t)sizeof query) {
		close(nl);
		return -1;
	}
	found = scan_unix_sockets(nl, key, owner);
	close(nl);
	return found;
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
