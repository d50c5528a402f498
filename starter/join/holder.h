/* The per-node holder: a small detached process that owns a container's
 * namespaces, serves its image, hands the namespaces to each rank that
 * connects, and leaves once the last rank is gone. */
#ifndef CAPSULA_HOLDER_H
#define CAPSULA_HOLDER_H

#include <sys/types.h>

#include "common/error.h"
#include "common/plan.h"

/* Start a holder for plan that serves the ranks connecting to listen_fd
 * (already bound and listening: the key is claimed before the fork, so of
 * ranks arriving together exactly one starts a holder). The holder removes
 * the socket file (inode socket_ino) when it leaves. Returns 0 once it is
 * ready (with its pid in *holder unless NULL), -1 with the holder's own
 * error otherwise. */
int holder_spawn(const struct capsula_plan *plan, int listen_fd, ino_t socket_ino,
                 pid_t *holder, capsula_error *err);

#endif
