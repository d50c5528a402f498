/* An image's files as one OCI layer: a pax tar stream of the image's tree,
 * entries sorted by name, with the owners, modes, times, hard links,
 * devices and extended attributes the image has (capsula's own /.capsula
 * left out: the image config carries it), compressed with gzip or zstd as
 * it is written. The same image always gives the same bytes. */
#ifndef CAPSULA_LAYER_TAR_H
#define CAPSULA_LAYER_TAR_H

#include <stdint.h>

#include "common/error.h"
#include "runtime/convert/image_tree.h"
#include "runtime/convert/squashfs_layers.h"

struct layer_tar_options {
	const char *compression;  /* "gzip" or "zstd" */
	int level;                /* 0: the compressor's default */
	unsigned threads;         /* zstd's; 0: one */
};

struct layer_blob {
	char digest[72];          /* sha256 of the compressed stream */
	char diff_id[72];         /* sha256 of the tar */
	uint64_t size;            /* compressed bytes */
	uint64_t entries;
};

/* Who is told, after each write, how many bytes the file holds. */
struct layer_watcher {
	void (*grew)(void *arg, uint64_t written);
	void *arg;
};

/* Write t (merged from set) into fd, a new empty file; watcher may be NULL. */
int layer_tar_write(struct squashfs_layer_set *set, struct tree *t, int fd,
                    const struct layer_tar_options *opts, const struct layer_watcher *watcher,
                    struct layer_blob *blob, capsula_error *err);

/* The layer's media type for a compression. */
const char *layer_media_type(const char *compression);

#endif
