/* The image, served in-process: a FUSE mount this process makes itself (no
 * fusermount, no helper) and a pool of worker threads answering it. */
#ifndef CAPSULA_FUSE_SERVER_H
#define CAPSULA_FUSE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/plan.h"

struct image_fs;

/* Open /dev/fuse. The kernel ties a FUSE mount to the user namespace of
 * whoever opened the device, so call this inside the new user namespace. */
int fuse_device_open(int *fd_out, capsula_error *err);

/* Mount a read-only FUSE file system served through fuse_fd at mountpoint,
 * owned by uid and gid (as seen in the caller's user namespace); with
 * allow_other, other ids of that namespace may use it too. */
int fuse_mount_at(const char *source, int fuse_fd, const char *mountpoint, uid_t uid,
                  gid_t gid, bool allow_other, capsula_error *err);

/* Mount image (the plan's or one of its layers) read-only at mountpoint
 * through fuse_fd and serve it from up to plan->fuse_threads threads until
 * the process exits. */
int fuse_server_start(const struct capsula_plan *plan, const struct capsula_image *image,
                      int fuse_fd, const char *mountpoint, struct image_fs **served,
                      capsula_error *err);

/* Serve an empty directory (dir) or file named name in the directory with
 * inode number parent, where the image has nothing by that name, as a
 * mount point. Only while the container is being built. Returns 0, or -1
 * when no more can be added (MOUNT_POINTS_MAX). */
int fuse_server_add_mount_point(struct image_fs *served, uint64_t parent, const char *name,
                                bool dir);
/* Whether the image's directory with inode number parent has an entry
 * name, or a mount point added there: 1 or 0; -1 when that cannot be told
 * without asking through the mount. */
int fuse_server_has_entry(struct image_fs *served, uint64_t parent, const char *name);
/* The image's regular file with inode number ino, read without the mount,
 * as image_fs_read_whole. */
int fuse_server_read_file(struct image_fs *served, uint64_t ino, size_t max, char **text,
                          size_t *length);

#endif
