/* The FUSE low-level operations serving an image_fs (the session's userdata).
 * The image never changes while mounted, so everything the kernel can cache
 * (entries, misses, attributes, pages, directory listings, symlinks) is
 * cached for good. */
#ifndef CAPSULA_IMAGE_OPS_H
#define CAPSULA_IMAGE_OPS_H

#include "starter/imageserver/image_fs.h"

struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops image_operations;

#endif
