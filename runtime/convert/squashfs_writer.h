/* Writing a squashfs image with libsquashfs: file data is compressed on
 * several threads as it streams in, in whatever order the sources give it;
 * the inode and directory tables are written from the merged tree at the
 * end, each file with the owner the tree gives it. */
#ifndef CAPSULA_SQUASHFS_WRITER_H
#define CAPSULA_SQUASHFS_WRITER_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "runtime/convert/image_tree.h"

struct squashfs_writer;

struct squashfs_writer_options {
	const char *compression;   /* zstd, gzip, xz or lz4 */
	int level;                 /* of zstd, gzip or xz; 0: the default */
	unsigned block_size;
	unsigned workers;          /* compressing threads */
	const char *name;          /* the output, for messages */
	bool reuse_blocks;         /* take blocks already compressed (no level was asked) */
};

/* Write to fd (a new, empty file). */
int squashfs_writer_open(struct squashfs_writer **out, int fd,
                         const struct squashfs_writer_options *opts, capsula_error *err);

/* One regular file's data: begin, append as it comes, end. */
int squashfs_writer_begin_file(struct squashfs_writer *w, struct tree_inode *inode,
                               capsula_error *err);
int squashfs_writer_append(struct squashfs_writer *w, const void *data, size_t size,
                           capsula_error *err);
/* size bytes of zeros (a hole of a sparse file): stored as sparse blocks. */
int squashfs_writer_append_zeros(struct squashfs_writer *w, uint64_t size, capsula_error *err);
int squashfs_writer_end_file(struct squashfs_writer *w, capsula_error *err);

/* A file with holes (inode->size its whole size): begin, data at offsets
 * that only grow, end. What is not given is a hole, costing only its
 * entries in the block list. */
int squashfs_writer_begin_sparse(struct squashfs_writer *w, struct tree_inode *inode,
                                 capsula_error *err);
int squashfs_writer_sparse_data(struct squashfs_writer *w, uint64_t offset, const void *data,
                                size_t size, capsula_error *err);
int squashfs_writer_end_sparse(struct squashfs_writer *w, capsula_error *err);
/* Whether blocks another image stored with this compressor and block size
 * may be written as they are. */
bool squashfs_writer_takes_blocks(const struct squashfs_writer *w, unsigned compression_id,
                                  unsigned block_size);
/* Between begin_sparse and end_sparse: block index as another image stored
 * it, word its entry in that image's block list (size and the uncompressed
 * bit), data its bytes. */
int squashfs_writer_sparse_stored(struct squashfs_writer *w, uint64_t index, uint32_t word,
                                  const void *data, capsula_error *err);
/* Between begin_sparse and end_sparse: the caller has looked for an
 * earlier file with the same bytes and found none; the block writer need
 * not look again after writing it. */
void squashfs_writer_sparse_unique(struct squashfs_writer *w);
/* Between begin_sparse and end_sparse: the file's tail lies in fragment
 * block index of this image (from squashfs_writer_stored_fragment), at
 * offset; the file has no block past its last whole one. */
void squashfs_writer_sparse_fragment(struct squashfs_writer *w, uint32_t index,
                                     uint32_t offset);
/* A file holding the same bytes as earlier, whose data this image has
 * already (written as stored): its inode points there too. */
int squashfs_writer_same_data(struct squashfs_writer *w, struct tree_inode *inode,
                              const struct tree_inode *earlier, capsula_error *err);
/* A fragment block as another image stored it (word: its size and the
 * uncompressed bit, as that image's fragment table has it), copied as it
 * is, between files; *index is its number in this image's fragment table.
 * Only for images whose blocks squashfs_writer_takes_blocks. */
int squashfs_writer_stored_fragment(struct squashfs_writer *w, uint32_t word, const void *data,
                                    uint32_t *index, capsula_error *err);
/* A file smaller than a block whose data is the piece at offset of
 * fragment block index (from squashfs_writer_stored_fragment): written
 * with no data of its own. */
int squashfs_writer_fragment_file(struct squashfs_writer *w, struct tree_inode *inode,
                                  uint32_t index, uint32_t offset, capsula_error *err);

/* All data is in: write the tables of tree and the superblock. */
int squashfs_writer_finish(struct squashfs_writer *w, struct tree *tree, capsula_error *err);

/* Bytes written so far (for progress). */
unsigned long long squashfs_writer_bytes(const struct squashfs_writer *w);
/* Extended attributes skipped because squashfs cannot store their prefix. */
unsigned squashfs_writer_skipped_xattrs(const struct squashfs_writer *w, const char **first);

void squashfs_writer_free(struct squashfs_writer *w);

#endif
