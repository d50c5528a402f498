/* The unix socket between a rank and its node's holder: a socket file named
 * by the join key in the user's private runtime directory (0700), which no
 * other user can create in, connect to or even look into, so nobody else can
 * take, flood or guess a holder's name. Peer uid checked in both directions,
 * every wait bounded, and file descriptors passed with SCM_RIGHTS. */
#ifndef CAPSULA_CHANNEL_H
#define CAPSULA_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/plan.h"

#define CHANNEL_MAX_FDS 4
/* How long either side waits for the other to send or receive. */
#define CHANNEL_TIMEOUT_S 10
/* How long a joiner tries again while a holder's backlog is full or it
 * just left: on a loaded node (dozens of ranks starting on two processors)
 * that may take seconds, so ten, with pauses growing from half a
 * millisecond to ten. */
#define CHANNEL_PATIENCE_US (10 * 1000000ULL)
#define CHANNEL_RETRY_FIRST_US 500
#define CHANNEL_RETRY_MAX_US 10000

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

/* A holder's listening socket, bound under its key in dir_fd. */
struct channel_listener {
	int fd;
	ino_t ino;   /* of the socket file: removed only while it is still this one */
};

/* Connect to the holder listening under key in dir_fd. Returns the
 * connected fd (blocking, with send and receive timeouts), or -1 with errno
 * ENOENT or ECONNREFUSED when no holder listens there, EAGAIN when its
 * backlog is full (err is set for other failures). */
int channel_connect(int dir_fd, const char *key, capsula_error *err);

/* Claim key: under the directory's lock, make sure no holder listens there
 * (a socket file left by a killed holder is removed), then bind and listen.
 * Returns 0 with *listener set, 1 when a holder listens there after all
 * (connect to it), -1 with err set. */
int channel_claim(int dir_fd, const char *key, struct channel_listener *listener,
                  capsula_error *err);

/* Remove the socket file under key if no holder listens there (one that
 * was killed, or stopped by a signal). */
void channel_forget(int dir_fd, const char *key);

/* Close the listener and remove its socket file, under the directory's
 * lock and only while the name is still its own. */
void channel_release(int dir_fd, const char *key, struct channel_listener *listener);

/* Is the peer of fd running as uid? */
int channel_peer_is(int fd, uid_t uid, pid_t *pid_out, capsula_error *err);

/* Send len bytes and nfds descriptors in one message. */
int channel_send(int fd, const void *buf, size_t len, const int *fds, size_t nfds);
/* Receive up to len bytes and up to *nfds descriptors (set to how many came).
 * Returns bytes received, 0 at end of stream, -1 on error. */
ssize_t channel_recv(int fd, void *buf, size_t len, int *fds, size_t *nfds);
/* The same for the next message of a SOCK_SEQPACKET socket, left there for
 * the next reader (each gets descriptors of its own); -1 with EMSGSIZE if
 * it or its descriptors do not fit. */
ssize_t channel_peek(int fd, void *buf, size_t len, int *fds, size_t *nfds);

#endif
