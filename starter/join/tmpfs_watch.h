/* A writable tmpfs that runs full: the kernel tells nobody but the writer
 * (ENOSPC), so the rank's process stays as the command's parent and tells
 * the user which limit that was, while the command runs or, at the latest,
 * before the process its launcher waits for exits. A line written by the
 * holder could come after the shell's next prompt. */
#ifndef CAPSULA_TMPFS_WATCH_H
#define CAPSULA_TMPFS_WATCH_H

#include "common/error.h"

/* Fork: returns 0 in the child, which goes on to exec the command; the
 * parent watches it and ends as it ends, and never returns. -1 with err set
 * when the watch cannot be set up (nothing forked then). */
int tmpfs_watch_fork(unsigned long long tmpfs_bytes, capsula_error *err);

#endif
