/* Reading one layer (or a rootfs tarball, or a directory) entry by entry
 * with libarchive, hashing as the bytes stream by: the blob as stored
 * (its digest) and, once decompressed, the tar stream (its diff_id). */
#ifndef CAPSULA_LAYER_READER_H
#define CAPSULA_LAYER_READER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/sha256.h"
#include "runtime/convert/budget.h"
#include "runtime/convert/image_source.h"
#include "runtime/convert/image_tree.h"

struct archive_entry;
struct disk_links;

#define LAYER_BUFFER (1u << 17)
#define LAYER_MAX_XATTRS 64

struct layer_reader {
	const struct layer_ref *ref;
	char name[160];           /* for messages */
	struct blob blob;
	struct sha256 blob_hash, diff_hash;
	uint64_t blob_bytes, diff_bytes;
	struct archive *raw;      /* the blob, decompressed */
	struct archive *tar;      /* the tar stream, or a directory */
	const char *directory;    /* a directory source: its path */
	size_t directory_len;
	struct archive_entry *disk_entry;
	uint64_t entry;           /* number of the current entry, from 1 */
	bool skip_diff_id;        /* a blob digest, checked again, is enough */
	bool again;               /* a second pass: its entries are charged already */
	struct build_budget *budget;  /* charged for each entry of a first pass; may be NULL */
	bool own_ids_are_root;    /* a host directory: the reader's own uid and gid are 0 */
	/* A build step's overlay upper directory: overlayfs's bookkeeping
	 * (but its opaque mark) and the step's own mount points (paths of
	 * capture_skip, when empty) left out. */
	bool capture;
	const struct strvec *capture_skip;
	capsula_error *err;
	bool failed;
	/* A directory source's files of several names, by device and inode:
	 * the first name each was read under (the others link to it). */
	struct disk_links *links;
	struct tree_xattr xattrs[LAYER_MAX_XATTRS];
	unsigned char in[LAYER_BUFFER];     /* the blob as stored */
	unsigned char out[LAYER_BUFFER];    /* decompressed */
};

/* Layer number index (from 0) of source as ref describes it. A second
 * read (again) checks only the blob's digest where it has one: the same
 * bytes cannot give another tar stream. */
int layer_open(struct layer_reader *l, struct image_source *source, const struct layer_ref *ref,
               unsigned index, bool again, capsula_error *err);
/* A directory read as if it were one layer. */
int layer_open_directory(struct layer_reader *l, const char *path, capsula_error *err);

/* The next entry, as the tree takes it: 1, 0 at the end, -1 on error
 * (also when the budget is spent, or the build was told to stop). */
int layer_next(struct layer_reader *l, struct tree_entry *entry, capsula_error *err);
/* The current entry's data: 1 with a block at offset (a jump over a hole
 * in a sparse file), 0 at its end, -1 on error. */
int layer_data(struct layer_reader *l, const void **data, size_t *size, uint64_t *offset,
               capsula_error *err);
/* Read what is left and check the digests; then or on error, close. */
int layer_finish(struct layer_reader *l, capsula_error *err);
void layer_close(struct layer_reader *l);

#endif
