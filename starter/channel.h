/* The unix socket between a rank and its node's holder: an abstract name
 * derived from the join key, peer uid checked in both directions, and file
 * descriptors passed with SCM_RIGHTS. */
#ifndef CAPSULA_CHANNEL_H
#define CAPSULA_CHANNEL_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

#define CHANNEL_MAX_FDS 4

/* The holder's reply to a rank, or its report to the rank that spawned it. */
struct holder_reply {
	int status;          /* 0 ready; otherwise the exit status to use */
	pid_t holder;        /* the holder's pid */
	char message[1024];  /* the holder's error, as capsula_error.message */
};

int channel_listen(const char *key, int *fd_out, capsula_error *err);
/* Returns the connected fd, or -1 with errno ECONNREFUSED/ENOENT when no
 * holder listens under key (err is set for other failures). */
int channel_connect(const char *key, capsula_error *err);

/* Is the peer of fd running as uid? */
int channel_peer_is(int fd, uid_t uid, pid_t *pid_out, capsula_error *err);

/* Send len bytes and nfds descriptors in one message. */
int channel_send(int fd, const void *buf, size_t len, const int *fds, size_t nfds);
/* Receive up to len bytes and up to *nfds descriptors (set to how many came).
 * Returns bytes received, 0 at end of stream, -1 on error. */
ssize_t channel_recv(int fd, void *buf, size_t len, int *fds, size_t *nfds);

#endif
