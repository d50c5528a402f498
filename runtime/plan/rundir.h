/* The user's private runtime directory on this node: where instance records
 * and the holders' sockets live. No other user can take its place:
 *   1. $XDG_RUNTIME_DIR/capsula, when XDG_RUNTIME_DIR is a private directory
 *      of the user (what a login session gives),
 *   2. else HOME/.capsula/run/HOSTNAME ($HOME when it is a directory of the
 *      user's, else the home of the passwd entry),
 *   3. else /tmp/capsula-UID (refused when someone else made it).
 * Each directory is made 0700 and checked: the user's own, not a symlink,
 * closed to everyone else (one of the user's own that was opened to others
 * is made private again, with a warning, rather than given up). */
#ifndef CAPSULA_RUNDIR_H
#define CAPSULA_RUNDIR_H

#include <stddef.h>

#include "common/error.h"
#include "common/plan.h"

int rundir_path(char *out, size_t size, capsula_error *err);

/* Open (making it if needed) the directory of the user's holder sockets in
 * that directory, checked once open: the user's own, mode 0700. */
int rundir_open_sockets(int *fd_out, capsula_error *err);

#endif
