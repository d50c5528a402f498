/* What each rank does once it holds the container's namespaces: enter
 * them, start in the right directory, give up every privilege, and become
 * the command. */
#ifndef CAPSULA_RANK_H
#define CAPSULA_RANK_H

#include "common/error.h"
#include "common/plan.h"

/* Receive the namespaces from a connected holder. Returns 0 with the two
 * fds, 1 if the holder went away before answering (try again), -1 with err
 * set (also when the holder is not the user's). */
int rank_receive(int conn, const struct capsula_plan *plan, int *userns_fd, int *mntns_fd,
                 capsula_error *err);

/* Enter the container's user and mount namespaces. */
int rank_enter(int userns_fd, int mntns_fd, capsula_error *err);

/* Start directory, drop privileges, exec. Returns only on failure. */
int rank_exec(const struct capsula_plan *plan, capsula_error *err);

#endif
