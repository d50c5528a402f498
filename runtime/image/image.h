#ifndef CAPSULA_IMAGE_H
#define CAPSULA_IMAGE_H

#include "common/error.h"
#include "common/plan.h"
#include "runtime/image/squashfs.h"

/* Open and validate IMAGE for the plan. Nothing is mounted. */
int image_open(const char *path, struct capsula_image *image,
               struct squashfs_info *info, capsula_error *err);
/* The same for an image already open as fd (which it takes), named path. */
int image_open_fd(int fd, const char *path, struct capsula_image *image,
                  struct squashfs_info *info, capsula_error *err);

#endif
