/* Reading a squashfs image with libsquashfuse, for the FUSE server and the
 * runtime's metadata reads alike: opening it, and paths inside it, walked
 * the way the kernel would walk them in the container: symlinks followed,
 * never out of the image. */
#ifndef CAPSULA_IMAGE_READER_H
#define CAPSULA_IMAGE_READER_H

#include <squashfuse/squashfuse.h>

#include "common/error.h"
#include "common/plan.h"

/* libsquashfuse's reader of the image's squashfs (at image->offset in
 * image->fd); sqfs_destroy() ends it. */
int image_reader_open(sqfs *fs, const struct capsula_image *image, capsula_error *err);

/* Find an absolute path. Returns 0, or -1 with errno set. */
int image_path_resolve(sqfs *fs, sqfs_inode_id root, const char *path, sqfs_inode *out);

#endif
