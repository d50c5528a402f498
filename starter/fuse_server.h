/* The image, served in-process: libsquashfuse's low-level operations on a
 * FUSE mount this process makes itself (no fusermount, no helper). */
#ifndef CAPSULA_FUSE_SERVER_H
#define CAPSULA_FUSE_SERVER_H

#include <sys/types.h>

#include "common/error.h"
#include "common/plan.h"

/* Open /dev/fuse. The kernel ties a FUSE mount to the user namespace of
 * whoever opened the device, so call this inside the new user namespace. */
int fuse_device_open(int *fd_out, capsula_error *err);

/* Mount the image read-only at mountpoint through fuse_fd and serve it from
 * a thread of this process until the process exits. */
int fuse_server_start(const struct capsula_image *image, int fuse_fd,
                      const char *mountpoint, uid_t uid, gid_t gid, capsula_error *err);

#endif
