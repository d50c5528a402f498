/* Reading files of an image before any container exists: its run
 * metadata (capsula's, Apptainer's) and, for inspect, its package data. */
#ifndef CAPSULA_IMAGE_FILES_H
#define CAPSULA_IMAGE_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <squashfuse/squashfuse.h>

#include "common/error.h"
#include "common/plan.h"
#include "common/strvec.h"
#include "runtime/image/file_access.h"

struct image_files {
	sqfs fs;
	bool ready;
};

int image_files_open(struct image_files *files, const struct capsula_image *image,
                     capsula_error *err);
void image_files_close(struct image_files *files);

/* A whole file of at most max bytes (NUL-terminated in memory), symlinks
 * followed inside the image. Returns 0, or -1 with errno (ENOENT, EFBIG,
 * EISDIR, EIO). */
int image_files_read(struct image_files *files, const char *path, size_t max,
                     char **data, size_t *length);
/* The names in a directory, sorted. */
int image_files_list(struct image_files *files, const char *dir, struct strvec *names);
/* Is there something at path (symlinks followed), and of what type? */
bool image_files_exists(struct image_files *files, const char *path, mode_t *mode);
/* The image as a file_access for code that also reads the host. */
struct file_access image_files_access(struct image_files *files);
/* Count of inodes in the image. */
unsigned long image_files_inode_count(const struct image_files *files);

#endif
