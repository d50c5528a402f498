/* Paths inside a squashfs image, walked with libsquashfuse the way the
 * kernel would walk them in the container: symlinks followed, never out of
 * the image. Shared by the FUSE server and the runtime's metadata reads. */
#ifndef CAPSULA_IMAGE_PATH_H
#define CAPSULA_IMAGE_PATH_H

#include <squashfuse/squashfuse.h>

/* Find an absolute path. Returns 0, or -1 with errno set. */
int image_path_resolve(sqfs *fs, sqfs_inode_id root, const char *path, sqfs_inode *out);

#endif
