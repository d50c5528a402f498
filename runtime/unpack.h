/* Applying tar archives (image layers) to a staging directory, unprivileged:
 * OCI whiteouts, paths kept inside the staging root, device nodes skipped.
 * Modes the builder cannot keep on disk (a directory it could not enter, a
 * file it could not read) are remembered for mksquashfs instead. */
#ifndef CAPSULA_UNPACK_H
#define CAPSULA_UNPACK_H

#include <stdbool.h>
#include <stdio.h>

#include "common/error.h"

struct unpack {
	int root_fd;               /* the staging directory */
	bool whiteouts;            /* apply .wh. entries (image layers) */
	void *layer_paths;         /* tsearch tree: paths written by this layer */
	void *modes;               /* tsearch tree: path -> mode kept aside */
	unsigned devices_skipped;
	char first_device[256];
	unsigned entries;
};

int unpack_init(struct unpack *u, const char *root, bool whiteouts, capsula_error *err);
/* Apply one archive (compressed or not) on top of what is there. */
int unpack_archive(struct unpack *u, const char *archive, capsula_error *err);
/* Write mksquashfs pseudo definitions ("PATH m MODE 0 0") for the modes
 * kept aside, for paths that still exist. */
int unpack_write_modes(struct unpack *u, FILE *out, capsula_error *err);
void unpack_free(struct unpack *u);

/* Remove name under parent, recursively, never following symlinks. */
int remove_tree(int parent, const char *name);

/* Split a member name into a clean relative path: no leading '/' or "./",
 * no "." or empty parts. Returns -1 for a ".." part. "" is the root. */
int unpack_clean_path(const char *name, char *out, size_t size);

#endif
