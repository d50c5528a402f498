/* The unix socket between a rank and its node's holder: an abstract name
 * derived from the join key and the user's secret, peer uid checked in
 * both directions, every wait bounded, and file descriptors passed with
 * SCM_RIGHTS. */
#ifndef CAPSULA_CHANNEL_H
#define CAPSULA_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/plan.h"

#define CHANNEL_MAX_FDS 4
/* Names are secret, but one that was seen bound can be taken by another
 * user once its holder frees it; the next slot's name is one nobody has
 * seen. Every process walks the slots in the same order and stops at the
 * first that is free or its own user's, so the ranks of a job still meet. */
#define CHANNEL_SLOTS 8
/* How long either side waits for the other to send or receive. */
#define CHANNEL_TIMEOUT_S 10

/* What a connecting process asks the holder for. */
enum {
	CHANNEL_JOIN = 'R',    /* a rank: its pidfd in, the namespaces out */
	CHANNEL_STATUS = 'S',  /* instance tools: the holder's own pidfd out */
};

/* What a rank sends after CHANNEL_JOIN (with its pidfd and its stderr). */
struct join_request {
	uint64_t start_us;  /* when its capsula started (CLOCK_MONOTONIC) */
	uint32_t timing;    /* 1: report the command's run and the total */
};

/* The holder's reply to a rank, or its report to the rank that spawned it. */
struct holder_reply {
	int status;          /* 0 ready; otherwise the exit status to use */
	pid_t holder;        /* the holder's pid */
	char message[1024];  /* the holder's error, as capsula_error.message */
};

/* The abstract socket name of slot (0, 1, ...) of key: HMAC-SHA256 under
 * the user's secret. */
int channel_name(const unsigned char secret[JOIN_SECRET_SIZE], const char *key, unsigned slot,
                 char *name, size_t size, capsula_error *err);

int channel_listen(const char *name, int *fd_out, capsula_error *err);
/* Returns the connected fd (blocking, with send and receive timeouts), or
 * -1 with errno ECONNREFUSED/ENOENT when nothing listens under name, EAGAIN
 * when its listener's backlog is full (err is set for other failures). */
int channel_connect(const char *name, capsula_error *err);

/* The uid owning the socket bound to name, as this process's user
 * namespace sees it: 0 with *owner set, -1 when no such socket is found. */
int channel_owner(const char *name, uid_t *owner);

/* Is the peer of fd running as uid? */
int channel_peer_is(int fd, uid_t uid, pid_t *pid_out, capsula_error *err);

/* Send len bytes and nfds descriptors in one message. */
int channel_send(int fd, const void *buf, size_t len, const int *fds, size_t nfds);
/* Receive up to len bytes and up to *nfds descriptors (set to how many came).
 * Returns bytes received, 0 at end of stream, -1 on error. */
ssize_t channel_recv(int fd, void *buf, size_t len, int *fds, size_t *nfds);

#endif
