#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>
#include <sqfs/xattr_writer.h>

#include "common/timing.h"
#include "runtime/convert/squashfs_writer.h"

#define DEVICE_BLOCK_SIZE 4096
#define HINT_SPACE "free some space or write the image elsewhere"

/* libsquashfs writes through this: the output's descriptor, with the
 * errno of a failed write kept for the message. */
struct fd_file {
	sqfs_file_t base;
	int fd;
	sqfs_u64 size;
	sqfs_u64 written_back;    /* bytes up to which writeback was started */
	bool no_writeback;        /* the file system cannot be asked to */
	int error;
};

struct squashfs_writer {
	struct fd_file file;
	const char *name;
	sqfs_super_t super;
	sqfs_compressor_t *cmp;
	sqfs_block_writer_t *blocks;
	sqfs_frag_table_t *fragments;
	sqfs_block_processor_t *proc;
	sqfs_id_table_t *ids;
	sqfs_xattr_writer_t *xattrs;
	sqfs_meta_writer_t *inode_table, *dir_table;
	sqfs_dir_writer_t *dirs;
	uint32_t inode_count;
	bool clamp_times;         /* SOURCE_DATE_EPOCH is set: no time after it */
	uint32_t source_date;
	unsigned block_size;
	bool reuse_blocks;
	bool file_open;
	struct sparse_file {          /* a file with holes, written on this thread */
		struct tree_inode *inode;
		unsigned char *block, *packed;
		uint64_t index;           /* of the block being filled */
		bool filled;              /* it holds data */
		bool written;             /* a block of the file went to the block writer */
		bool holes;               /* a block of it is a hole */
		bool tail_in_fragment;    /* its tail is a stored fragment's piece */
		bool known_unique;        /* the caller found no earlier copy of it */
	} sparse;
	unsigned skipped_xattrs;
	char first_skipped_xattr[128];
};

static int fd_read_at(sqfs_file_t *base, sqfs_u64 offset, void *buffer, size_t size)
{
	struct fd_file *f = (struct fd_file *)base;

	while (size > 0) {
		ssize_t got = pread(f->fd, buffer, size, (off_t)offset);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			f->error = got < 0 ? errno : EIO;
			return got < 0 ? SQFS_ERROR_IO : SQFS_ERROR_OUT_OF_BOUNDS;
		}
		buffer = (char *)buffer + got;
		offset += (sqfs_u64)got;
		size -= (size_t)got;
	}
	return 0;
}

/* Ask the kernel to start writing what the image has so far, as it grows:
 * the disk then works while the rest is compressed, and the fsync before
 * the image gets its name waits for the last piece only, not for all of
 * it. A write error it meets is the write's. */
static int start_writeback(struct fd_file *f)
{
	const sqfs_u64 step = 8u << 20;

	if (f->no_writeback || f->size < f->written_back + step)
		return 0;
	if (sync_file_range(f->fd, (off_t)f->written_back, (off_t)(f->size - f->written_back),
	                    SYNC_FILE_RANGE_WRITE) < 0) {
		if (errno == EIO || errno == ENOSPC) {
			f->error = errno;
			return SQFS_ERROR_IO;
		}
		f->no_writeback = true;
		return 0;
	}
	f->written_back = f->size;
	return 0;
}

static int fd_write_at(sqfs_file_t *base, sqfs_u64 offset, const void *buffer, size_t size)
{
	struct fd_file *f = (struct fd_file *)base;

	while (size > 0) {
		ssize_t put = pwrite(f->fd, buffer, size, (off_t)offset);

		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0) {
			f->error = put < 0 ? errno : EIO;
			return SQFS_ERROR_IO;
		}
		buffer = (const char *)buffer + put;
		offset += (sqfs_u64)put;
		size -= (size_t)put;
		if (offset > f->size)
			f->size = offset;
	}
	return start_writeback(f);
}

static sqfs_u64 fd_get_size(const sqfs_file_t *base)
{
	return ((const struct fd_file *)base)->size;
}

static int fd_truncate(sqfs_file_t *base, sqfs_u64 size)
{
	struct fd_file *f = (struct fd_file *)base;

	if (ftruncate(f->fd, (off_t)size) < 0) {
		f->error = errno;
		return SQFS_ERROR_IO;
	}
	f->size = size;
	return 0;
}

static void fd_destroy(sqfs_object_t *base)
{
	(void)base;  /* embedded in the writer, which owns the descriptor */
}

static const char *sqfs_reason(int code)
{
	switch (code) {
	case SQFS_ERROR_ALLOC: return "out of memory";
	case SQFS_ERROR_IO: return "input/output error";
	case SQFS_ERROR_COMPRESSOR: return "the compressor failed";
	case SQFS_ERROR_UNSUPPORTED: return "not supported by squashfs";
	case SQFS_ERROR_OVERFLOW: return "too large for squashfs";
	case SQFS_ERROR_ARG_INVALID: return "invalid argument";
	default: return "internal error of libsquashfs";
	}
}

/* A libsquashfs failure in capsula's words. */
static int writer_fail(struct squashfs_writer *w, int code, const char *what, capsula_error *err)
{
	if (code == SQFS_ERROR_IO && w->file.error != 0)
		return fail(err, w->file.error, w->file.error == ENOSPC ? HINT_SPACE : NULL,
		            "write %s (%s)", w->name, what);
	if (code == SQFS_ERROR_ALLOC)
		return fail(err, ENOMEM, "build on a machine with more memory", "%s", what);
	return fail(err, 0, NULL, "%s: %s (libsquashfs error %d)", what, sqfs_reason(code), code);
}

static int compressor_id(const char *name, SQFS_COMPRESSOR *id)
{
	static const struct { const char *name; SQFS_COMPRESSOR id; } known[] = {
		{"gzip", SQFS_COMP_GZIP}, {"xz", SQFS_COMP_XZ}, {"lz4", SQFS_COMP_LZ4},
		{"zstd", SQFS_COMP_ZSTD},
	};

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(name, known[i].name) == 0) {
			*id = known[i].id;
			return 0;
		}
	return -1;
}

/* Reproducible when asked: SOURCE_DATE_EPOCH stamps the image, and no
 * file is newer than it (what a build's steps wrote has the time they ran). */
static sqfs_u32 image_time(const struct squashfs_writer *w)
{
	return w->clamp_times ? w->source_date : (sqfs_u32)time(NULL);
}

#define ZSTD_DEFAULT_LEVEL 9

static int make_compressor(struct squashfs_writer *w, const struct squashfs_writer_options *opts,
                           SQFS_COMPRESSOR *id, capsula_error *err)
{
	sqfs_compressor_config_t cfg;
	int ret;

	if (compressor_id(opts->compression, id) < 0)
		return fail(err, 0, "use zstd, gzip, xz or lz4", "unknown compression '%s'",
		            opts->compression);
	ret = sqfs_compressor_config_init(&cfg, *id, opts->block_size, 0);
	/* zstd above 12 costs five times the time for 6% less (a Debian image). */
	if (ret == 0 && (opts->level > 0 || *id == SQFS_COMP_ZSTD))
		cfg.level = opts->level > 0 ? (unsigned)opts->level : ZSTD_DEFAULT_LEVEL;
	if (ret == 0)
		ret = sqfs_compressor_create(&cfg, &w->cmp);
	if (ret != 0)
		return fail(err, 0, "choose another with --compression",
		            "libsquashfs cannot compress with %s", opts->compression);
	return 0;
}

static int write_header(struct squashfs_writer *w, SQFS_COMPRESSOR id, unsigned block_size,
                        capsula_error *err)
{
	int ret = sqfs_super_init(&w->super, block_size, image_time(w), id);

	if (ret == 0)
		ret = sqfs_super_write(&w->super, &w->file.base);
	if (ret != 0)
		return writer_fail(w, ret, "superblock", err);
	ret = w->cmp->write_options(w->cmp, &w->file.base);
	if (ret < 0)
		return writer_fail(w, ret, "compressor options", err);
	if (ret > 0)
		w->super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;
	return 0;
}

static int make_data_writer(struct squashfs_writer *w, const struct squashfs_writer_options *opts,
                            capsula_error *err)
{
	sqfs_block_processor_desc_t desc = {
		.size = sizeof desc,
		.max_block_size = opts->block_size,
		.num_workers = opts->workers ? opts->workers : 1,
		.max_backlog = 10 * (opts->workers ? opts->workers : 1),
	};
	int ret;

	w->blocks = sqfs_block_writer_create(&w->file.base, DEVICE_BLOCK_SIZE, 0);
	w->fragments = sqfs_frag_table_create(0);
	w->ids = sqfs_id_table_create(0);
	w->xattrs = sqfs_xattr_writer_create(0);
	if (w->blocks == NULL || w->fragments == NULL || w->ids == NULL || w->xattrs == NULL)
		return fail(err, ENOMEM, NULL, "squashfs writer");
	desc.cmp = w->cmp;
	desc.wr = w->blocks;
	desc.tbl = w->fragments;
	ret = sqfs_block_processor_create_ex(&desc, &w->proc);
	if (ret != 0)
		return writer_fail(w, ret, "start the compressing threads", err);
	return 0;
}

int squashfs_writer_open(struct squashfs_writer **out, int fd,
                         const struct squashfs_writer_options *opts, capsula_error *err)
{
	struct squashfs_writer *w = calloc(1, sizeof *w);
	SQFS_COMPRESSOR id;

	*out = w;
	if (w == NULL)
		return fail(err, ENOMEM, NULL, "squashfs writer");
	w->name = opts->name;
	w->block_size = opts->block_size;
	w->reuse_blocks = opts->reuse_blocks;
	w->clamp_times = timing_source_date(&w->source_date);
	w->file.fd = fd;
	w->file.base.base.destroy = fd_destroy;
	w->file.base.read_at = fd_read_at;
	w->file.base.write_at = fd_write_at;
	w->file.base.get_size = fd_get_size;
	w->file.base.truncate = fd_truncate;
	if (make_compressor(w, opts, &id, err) < 0 ||
	    write_header(w, id, opts->block_size, err) < 0 ||
	    make_data_writer(w, opts, err) < 0)
		return -1;
	return 0;
}

int squashfs_writer_begin_file(struct squashfs_writer *w, struct tree_inode *inode,
                               capsula_error *err)
{
	int ret = sqfs_block_processor_begin_file(w->proc, &inode->sqfs, NULL, 0);

	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	inode->data_written = true;
	w->file_open = true;
	return 0;
}

int squashfs_writer_append(struct squashfs_writer *w, const void *data, size_t size,
                           capsula_error *err)
{
	int ret = sqfs_block_processor_append(w->proc, data, size);

	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	return 0;
}

int squashfs_writer_append_zeros(struct squashfs_writer *w, uint64_t size, capsula_error *err)
{
	static const unsigned char zeros[65536];

	while (size > 0) {
		size_t n = size < sizeof zeros ? (size_t)size : sizeof zeros;

		if (squashfs_writer_append(w, zeros, n, err) < 0)
			return -1;
		size -= n;
	}
	return 0;
}

int squashfs_writer_end_file(struct squashfs_writer *w, capsula_error *err)
{
	int ret = sqfs_block_processor_end_file(w->proc);

	w->file_open = false;
	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	return 0;
}

/* ---------------------------------------------------------------- holes */

/* A file with holes bypasses the compressing threads: each block that holds
 * data is compressed here and handed to the block writer, and a hole costs
 * a zero in the inode's block list, never a block of zeros through the
 * compressor, however large it is declared. The threads are drained first;
 * such files are rare. */

/* Block index's entry in the inode's block list (grown as libsquashfs
 * grows it: the payload after the inode). */
static int set_block_entry(sqfs_inode_generic_t **inode, uint64_t index, sqfs_u32 size)
{
	size_t needed = (size_t)(index + 1) * sizeof(sqfs_u32);
	sqfs_inode_generic_t *grown;

	if ((*inode)->payload_bytes_available < needed) {
		size_t room = (*inode)->payload_bytes_available ? (*inode)->payload_bytes_available :
		              16 * sizeof(sqfs_u32);

		while (room < needed)
			room *= 2;
		if (room > UINT32_MAX)
			return SQFS_ERROR_OVERFLOW;
		grown = realloc(*inode, sizeof **inode + room);
		if (grown == NULL)
			return SQFS_ERROR_ALLOC;
		*inode = grown;
		(*inode)->payload_bytes_available = (sqfs_u32)room;
	}
	(*inode)->extra[index] = size;
	if (needed > (*inode)->payload_bytes_used)
		(*inode)->payload_bytes_used = (sqfs_u32)needed;
	return 0;
}

static uint64_t block_length(const struct squashfs_writer *w, uint64_t index)
{
	uint64_t start = index * w->block_size, size = w->sparse.inode->size;

	return size - start < w->block_size ? size - start : w->block_size;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* What the block writer compares first when it looks for an earlier copy
 * of a file: a sample of the stored bytes. It compares the bytes
 * themselves before it takes a copy, so a sample that matches by chance
 * costs a read, never a wrong file. */
static sqfs_u32 stored_block_sample(const unsigned char *data, sqfs_u32 size)
{
	const sqfs_u32 span = 64;
	sqfs_u32 hash = 2166136261u;
	sqfs_u32 starts[3] = {0, size / 2, size > span ? size - span : 0};

	for (int part = 0; part < 3; part++)
		for (sqfs_u32 i = starts[part]; i < size && i < starts[part] + span; i++)
			hash = (hash ^ data[i]) * 16777619u;
	return hash;
}

/* The block being filled goes out: stored, or a hole. */
static int flush_sparse_block(struct squashfs_writer *w, capsula_error *err)
{
	struct sparse_file *s = &w->sparse;
	sqfs_inode_generic_t **inode = &s->inode->sqfs;
	size_t length = (size_t)block_length(w, s->index);
	sqfs_u32 flags = 0, entry;
	sqfs_s32 packed;
	sqfs_u64 location;
	int ret;

	if (!s->filled || all_zero(s->block, length)) {
		sqfs_inode_make_extended(*inode);
		(*inode)->data.file_ext.sparse += length;
		s->holes = true;
		ret = set_block_entry(inode, s->index, 0);
		return ret != 0 ? writer_fail(w, ret, "file data", err) : 0;
	}
	packed = w->cmp->do_block(w->cmp, s->block, (sqfs_u32)length, s->packed, w->block_size);
	if (packed < 0)
		return writer_fail(w, packed, "compress file data", err);
	if (!s->written)
		flags |= SQFS_BLK_FIRST_BLOCK;
	if (packed > 0)
		flags |= SQFS_BLK_IS_COMPRESSED;
	entry = packed > 0 ? (sqfs_u32)packed : (sqfs_u32)length | (1u << 24);
	{
		const unsigned char *stored = packed > 0 ? s->packed : s->block;
		sqfs_u32 size = packed > 0 ? (sqfs_u32)packed : (sqfs_u32)length;

		ret = w->blocks->write_data_block(w->blocks, NULL, size, stored_block_sample(stored, size),
		                                  flags, stored, &location);
	}
	if (ret == 0)
		ret = set_block_entry(inode, s->index, entry);
	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	s->written = true;
	memset(s->block, 0, w->block_size);
	s->filled = false;
	return 0;
}

/* Blocks up to (not including) index: the one being filled, then holes. */
static int advance_sparse(struct squashfs_writer *w, uint64_t index, capsula_error *err)
{
	struct sparse_file *s = &w->sparse;

	while (s->index < index) {
		if (flush_sparse_block(w, err) < 0)
			return -1;
		s->index++;
	}
	return 0;
}

int squashfs_writer_begin_sparse(struct squashfs_writer *w, struct tree_inode *inode,
                                 capsula_error *err)
{
	struct sparse_file *s = &w->sparse;
	int ret = sqfs_block_processor_sync(w->proc);

	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	memset(s, 0, sizeof *s);
	s->inode = inode;
	s->block = calloc(1, w->block_size);
	s->packed = malloc(w->block_size);
	inode->sqfs = calloc(1, sizeof *inode->sqfs);
	if (s->block == NULL || s->packed == NULL || inode->sqfs == NULL)
		return fail(err, ENOMEM, NULL, "file data");
	inode->sqfs->base.type = SQFS_INODE_FILE;
	sqfs_inode_set_frag_location(inode->sqfs, 0xFFFFFFFF, 0xFFFFFFFF);
	sqfs_inode_set_file_size(inode->sqfs, inode->size);
	inode->data_written = true;
	return 0;
}

int squashfs_writer_sparse_data(struct squashfs_writer *w, uint64_t offset, const void *data,
                                size_t size, capsula_error *err)
{
	struct sparse_file *s = &w->sparse;
	const unsigned char *p = data;

	while (size > 0) {
		uint64_t index = offset / w->block_size;
		size_t within = (size_t)(offset % w->block_size);
		size_t n = w->block_size - within < size ? w->block_size - within : size;

		if (advance_sparse(w, index, err) < 0)
			return -1;
		memcpy(s->block + within, p, n);
		s->filled = true;
		p += n;
		offset += n;
		size -= n;
	}
	return 0;
}

bool squashfs_writer_takes_blocks(const struct squashfs_writer *w, unsigned compression_id,
                                  unsigned block_size)
{
	return w->reuse_blocks && compression_id == w->super.compression_id &&
	       block_size == w->block_size;
}

int squashfs_writer_sparse_stored(struct squashfs_writer *w, uint64_t index, uint32_t word,
                                  const void *data, capsula_error *err)
{
	struct sparse_file *s = &w->sparse;
	sqfs_u32 flags = 0, size = SQFS_ON_DISK_BLOCK_SIZE(word);
	sqfs_u64 location;
	int ret;

	if (advance_sparse(w, index, err) < 0)
		return -1;
	if (size == 0 || size > w->block_size)
		return fail(err, 0, NULL, "write %s: a stored block of %u bytes", w->name,
		            (unsigned)size);
	if (!s->written)
		flags |= SQFS_BLK_FIRST_BLOCK;
	if (SQFS_IS_BLOCK_COMPRESSED(word))
		flags |= SQFS_BLK_IS_COMPRESSED;
	ret = w->blocks->write_data_block(w->blocks, NULL, size, stored_block_sample(data, size),
	                                  flags, data, &location);
	if (ret == 0)
		ret = set_block_entry(&s->inode->sqfs, index, word);
	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	s->written = true;
	s->index = index + 1;
	return 0;
}

void squashfs_writer_sparse_unique(struct squashfs_writer *w)
{
	w->sparse.known_unique = true;
}

void squashfs_writer_sparse_fragment(struct squashfs_writer *w, uint32_t index,
                                     uint32_t offset)
{
	sqfs_inode_set_frag_location(w->sparse.inode->sqfs, index, offset);
	w->sparse.tail_in_fragment = true;
}

int squashfs_writer_end_sparse(struct squashfs_writer *w, capsula_error *err)
{
	struct sparse_file *s = &w->sparse;
	uint64_t blocks = s->tail_in_fragment ? s->inode->size / w->block_size :
	                  (s->inode->size + w->block_size - 1) / w->block_size;
	sqfs_u32 flags = SQFS_BLK_LAST_BLOCK;
	sqfs_u64 location;
	int ret;

	if (advance_sparse(w, blocks, err) < 0)
		return -1;
	/* A file of blocks alone that an earlier file already holds is not
	 * kept twice: the block writer finds the earlier copy, compares the
	 * bytes, and gives its place. Not when the caller has looked already
	 * (files taken from layers as stored), nor with holes: the block list
	 * is then not the run of blocks it compares. */
	if (s->holes || s->known_unique)
		flags |= SQFS_BLK_DONT_DEDUPLICATE;
	/* Where the file's first stored block is (0 when it is all holes). */
	if (!s->written)
		flags |= SQFS_BLK_FIRST_BLOCK;
	ret = w->blocks->write_data_block(w->blocks, NULL, 0, 0, flags, NULL, &location);
	if (ret == 0)
		ret = sqfs_inode_set_file_block_start(s->inode->sqfs, location);
	free(s->block);
	free(s->packed);
	s->block = s->packed = NULL;
	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	return 0;
}

/* ---------------------------------------------------------------- fragments */

/* A layer's fragment block goes in whole, as the layer stores it: the small
 * files and tails in it are neither uncompressed nor packed and compressed
 * again. The compressing threads are drained first, so that the block
 * lands between files, never inside one's run of blocks. */
int squashfs_writer_stored_fragment(struct squashfs_writer *w, uint32_t word, const void *data,
                                    uint32_t *index, capsula_error *err)
{
	sqfs_u32 size = SQFS_ON_DISK_BLOCK_SIZE(word), flags = SQFS_BLK_FRAGMENT_BLOCK;
	sqfs_u64 location;
	int ret;

	if (size == 0 || size > w->block_size)
		return fail(err, 0, NULL, "write %s: a stored fragment block of %u bytes", w->name,
		            (unsigned)size);
	ret = sqfs_block_processor_sync(w->proc);
	if (SQFS_IS_BLOCK_COMPRESSED(word))
		flags |= SQFS_BLK_IS_COMPRESSED;
	if (ret == 0)
		ret = w->blocks->write_data_block(w->blocks, NULL, size, stored_block_sample(data, size),
		                                  flags, data, &location);
	if (ret == 0)
		ret = sqfs_frag_table_append(w->fragments, location, word, index);
	if (ret != 0)
		return writer_fail(w, ret, "fragment block", err);
	return 0;
}

int squashfs_writer_same_data(struct squashfs_writer *w, struct tree_inode *inode,
                              const struct tree_inode *earlier, capsula_error *err)
{
	size_t bytes = sizeof *earlier->sqfs + earlier->sqfs->payload_bytes_available;

	(void)w;
	inode->sqfs = malloc(bytes);
	if (inode->sqfs == NULL)
		return fail(err, ENOMEM, NULL, "file data");
	memcpy(inode->sqfs, earlier->sqfs, bytes);
	/* The data's, not the earlier file's own: its links and attributes. */
	if (inode->sqfs->base.type == SQFS_INODE_EXT_FILE) {
		inode->sqfs->data.file_ext.nlink = 1;
		inode->sqfs->data.file_ext.xattr_idx = 0xFFFFFFFF;
	}
	inode->data_written = true;
	return 0;
}

int squashfs_writer_fragment_file(struct squashfs_writer *w, struct tree_inode *inode,
                                  uint32_t index, uint32_t offset, capsula_error *err)
{
	int ret;

	inode->sqfs = calloc(1, sizeof *inode->sqfs);
	if (inode->sqfs == NULL)
		return fail(err, ENOMEM, NULL, "file data");
	inode->sqfs->base.type = SQFS_INODE_FILE;
	ret = sqfs_inode_set_file_size(inode->sqfs, inode->size);
	if (ret == 0)
		ret = sqfs_inode_set_frag_location(inode->sqfs, index, offset);
	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	inode->data_written = true;
	return 0;
}

/* ---------------------------------------------------------------- tables */

static uint32_t device_number(const struct tree_inode *i)
{
	/* The kernel's new_encode_dev(), which squashfs stores. */
	return (i->rdev_minor & 0xff) | (i->rdev_major << 8) | ((i->rdev_minor & ~0xffu) << 12);
}

static sqfs_inode_generic_t *special_inode(const struct tree_inode *i)
{
	size_t extra = S_ISLNK(i->mode) ? strlen(i->target) : 0;
	sqfs_inode_generic_t *n = calloc(1, sizeof *n + extra);

	if (n == NULL)
		return NULL;
	if (S_ISLNK(i->mode)) {
		n->base.type = SQFS_INODE_SLINK;
		n->data.slink.nlink = i->nlink;
		n->data.slink.target_size = (sqfs_u32)extra;
		memcpy(n->extra, i->target, extra);
		n->payload_bytes_available = n->payload_bytes_used = (sqfs_u32)extra;
	} else if (S_ISCHR(i->mode) || S_ISBLK(i->mode)) {
		n->base.type = S_ISCHR(i->mode) ? SQFS_INODE_CDEV : SQFS_INODE_BDEV;
		n->data.dev.nlink = i->nlink;
		n->data.dev.devno = device_number(i);
	} else {
		n->base.type = S_ISFIFO(i->mode) ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET;
		n->data.ipc.nlink = i->nlink;
	}
	return n;
}

static int xattr_index(struct squashfs_writer *w, const struct tree_inode *i, sqfs_u32 *index,
                       capsula_error *err)
{
	int ret = sqfs_xattr_writer_begin(w->xattrs, 0);

	for (size_t k = 0; ret == 0 && k < i->xattr_count; k++) {
		const struct tree_xattr *x = &i->xattrs[k];

		ret = sqfs_xattr_writer_add(w->xattrs, x->key, x->value, x->size);
		if (ret == SQFS_ERROR_UNSUPPORTED) {
			/* Only the user., trusted. and security. namespaces exist in squashfs. */
			if (w->skipped_xattrs++ == 0)
				snprintf(w->first_skipped_xattr, sizeof w->first_skipped_xattr, "%s", x->key);
			ret = 0;
		}
	}
	if (ret == 0)
		ret = sqfs_xattr_writer_end(w->xattrs, index);
	if (ret != 0)
		return writer_fail(w, ret, "extended attributes", err);
	return 0;
}

static int write_inode(struct squashfs_writer *w, struct tree_inode *i, sqfs_inode_generic_t *n,
                       capsula_error *err)
{
	sqfs_u64 block;
	sqfs_u32 offset, xattr = 0xFFFFFFFF;
	int ret = 0;

	if (i->xattr_count > 0 && xattr_index(w, i, &xattr, err) < 0)
		return -1;
	if (xattr != 0xFFFFFFFF)
		ret = sqfs_inode_set_xattr_index(n, xattr);
	if (ret == 0 && S_ISREG(i->mode) && i->nlink > 1) {
		ret = sqfs_inode_make_extended(n);
		n->data.file_ext.nlink = i->nlink;
	}
	if (ret != 0)
		return writer_fail(w, ret, "inode", err);
	n->base.mode = (sqfs_u16)i->mode;
	ret = sqfs_id_table_id_to_index(w->ids, i->uid, &n->base.uid_idx);
	if (ret == 0)
		ret = sqfs_id_table_id_to_index(w->ids, i->gid, &n->base.gid_idx);
	if (ret != 0)
		return writer_fail(w, ret, "id table", err);
	n->base.mod_time = w->clamp_times && i->mtime > w->source_date ? w->source_date : i->mtime;
	n->base.inode_number = i->number;
	sqfs_meta_writer_get_position(w->inode_table, &block, &offset);
	i->ref = (block << 16) | offset;
	ret = sqfs_meta_writer_write_inode(w->inode_table, n);
	if (ret != 0)
		return writer_fail(w, ret, "inode table", err);
	i->table_written = true;
	return 0;
}

static int write_leaf(struct squashfs_writer *w, struct tree_inode *i, capsula_error *err)
{
	sqfs_inode_generic_t *n;
	int ret;

	if (i->table_written)
		return 0;  /* another name of the same file */
	if (S_ISREG(i->mode))
		return write_inode(w, i, i->sqfs, err);
	n = special_inode(i);
	if (n == NULL)
		return fail(err, ENOMEM, NULL, "inode table");
	ret = write_inode(w, i, n, err);
	free(n);
	return ret;
}

/* Children first, so that a directory's listing knows where they are. */
static int write_dir(struct squashfs_writer *w, struct tree_node *dir, uint32_t parent_number,
                     capsula_error *err)
{
	size_t count, subdirs = 0;
	struct tree_node **children = tree_sorted_children(dir, &count);
	sqfs_inode_generic_t *n = NULL;
	int ret = -1, code;

	if (children == NULL)
		return fail(err, ENOMEM, NULL, "directory table");
	for (size_t k = 0; k < count; k++) {
		struct tree_inode *c = children[k]->inode;

		if (S_ISDIR(c->mode))
			subdirs++;
		if (S_ISDIR(c->mode) ? write_dir(w, children[k], dir->inode->number, err) < 0
		                     : write_leaf(w, c, err) < 0)
			goto out;
	}
	code = sqfs_dir_writer_begin(w->dirs, 0);
	for (size_t k = 0; code == 0 && k < count; k++) {
		const struct tree_inode *c = children[k]->inode;

		code = sqfs_dir_writer_add_entry(w->dirs, children[k]->name, c->number, c->ref,
		                                 (sqfs_u16)c->mode);
	}
	if (code == 0)
		code = sqfs_dir_writer_end(w->dirs);
	if (code != 0) {
		writer_fail(w, code, "directory table", err);
		goto out;
	}
	n = sqfs_dir_writer_create_inode(w->dirs, 2 + subdirs, 0xFFFFFFFF, parent_number);
	if (n == NULL) {
		fail(err, ENOMEM, NULL, "directory table");
		goto out;
	}
	ret = write_inode(w, dir->inode, n, err);
out:
	free(n);
	free(children);
	return ret;
}

/* Numbers in the order the tables are written: children before parents,
 * the root last. */
static void number_inodes(struct squashfs_writer *w, struct tree_node *dir)
{
	for (struct tree_node *c = dir->children; c != NULL; c = c->next) {
		if (S_ISDIR(c->inode->mode))
			number_inodes(w, c);
		else if (c->inode->number == 0)
			c->inode->number = ++w->inode_count;
	}
	dir->inode->number = ++w->inode_count;
}

static int write_tree(struct squashfs_writer *w, struct tree *tree, capsula_error *err)
{
	int ret;

	w->inode_table = sqfs_meta_writer_create(&w->file.base, w->cmp, 0);
	w->dir_table = sqfs_meta_writer_create(&w->file.base, w->cmp,
	                                       SQFS_META_WRITER_KEEP_IN_MEMORY);
	w->dirs = w->dir_table ? sqfs_dir_writer_create(w->dir_table, 0) : NULL;
	if (w->inode_table == NULL || w->dirs == NULL)
		return fail(err, ENOMEM, NULL, "squashfs tables");
	number_inodes(w, tree->root);
	w->super.inode_table_start = w->file.size;
	if (write_dir(w, tree->root, w->inode_count + 1, err) < 0)
		return -1;
	ret = sqfs_meta_writer_flush(w->inode_table);
	if (ret == 0)
		ret = sqfs_meta_writer_flush(w->dir_table);
	w->super.root_inode_ref = tree->root->inode->ref;
	w->super.directory_table_start = w->file.size;
	if (ret == 0)
		ret = sqfs_meta_write_write_to_file(w->dir_table);
	if (ret != 0)
		return writer_fail(w, ret, "directory table", err);
	w->super.inode_count = w->inode_count;
	return 0;
}

static int pad_to_device_block(struct squashfs_writer *w, capsula_error *err)
{
	static const unsigned char zeros[DEVICE_BLOCK_SIZE];
	size_t tail = (size_t)(w->file.size % DEVICE_BLOCK_SIZE);
	int ret;

	if (tail == 0)
		return 0;
	ret = fd_write_at(&w->file.base, w->file.size, zeros, DEVICE_BLOCK_SIZE - tail);
	if (ret != 0)
		return writer_fail(w, ret, "padding", err);
	return 0;
}

/* libsquashfs writes an inode's block list from a copy on the stack: a
 * large file's (4 bytes for every block, 32 MiB for a terabyte in 128 KiB
 * blocks) needs a stack that large, so the tables are written on a thread
 * of their own with room for the largest list. */
struct table_job {
	struct squashfs_writer *w;
	struct tree *tree;
	capsula_error *err;
	int ret;
};

static int largest_block_list(struct tree_inode *inode, void *arg)
{
	size_t *largest = arg;

	if (inode->sqfs != NULL && inode->sqfs->payload_bytes_used > *largest)
		*largest = inode->sqfs->payload_bytes_used;
	return 0;
}

static void *write_tables(void *arg)
{
	struct table_job *job = arg;

	job->ret = write_tree(job->w, job->tree, job->err);
	return NULL;
}

#define TABLE_STACK_BYTES (8u << 20)

static int write_tree_on_thread(struct squashfs_writer *w, struct tree *tree, capsula_error *err)
{
	struct table_job job = {.w = w, .tree = tree, .err = err, .ret = -1};
	size_t largest = 0;
	pthread_attr_t attr;
	pthread_t thread;
	int e;

	tree_for_each_file(tree, largest_block_list, &largest);
	if (largest < TABLE_STACK_BYTES / 4)
		return write_tree(w, tree, err);
	e = pthread_attr_init(&attr);
	if (e == 0)
		e = pthread_attr_setstacksize(&attr, TABLE_STACK_BYTES + 2 * largest);
	if (e == 0)
		e = pthread_create(&thread, &attr, write_tables, &job);
	pthread_attr_destroy(&attr);
	if (e != 0)
		return fail(err, e, "build on a machine with more memory",
		            "a thread for the tables of %s", w->name);
	pthread_join(thread, NULL);
	return job.ret;
}

int squashfs_writer_finish(struct squashfs_writer *w, struct tree *tree, capsula_error *err)
{
	int ret = sqfs_block_processor_finish(w->proc);

	if (ret != 0)
		return writer_fail(w, ret, "file data", err);
	if (write_tree_on_thread(w, tree, err) < 0)
		return -1;
	ret = sqfs_frag_table_write(w->fragments, &w->file.base, &w->super, w->cmp);
	if (ret == 0)
		ret = sqfs_id_table_write(w->ids, &w->file.base, &w->super, w->cmp);
	if (ret == 0)
		ret = sqfs_xattr_writer_flush(w->xattrs, &w->file.base, &w->super, w->cmp);
	if (ret != 0)
		return writer_fail(w, ret, "squashfs tables", err);
	w->super.bytes_used = w->file.size;
	ret = sqfs_super_write(&w->super, &w->file.base);
	if (ret != 0)
		return writer_fail(w, ret, "superblock", err);
	return pad_to_device_block(w, err);
}

unsigned long long squashfs_writer_bytes(const struct squashfs_writer *w)
{
	return w->file.size;
}

unsigned squashfs_writer_skipped_xattrs(const struct squashfs_writer *w, const char **first)
{
	*first = w->first_skipped_xattr;
	return w->skipped_xattrs;
}

void squashfs_writer_free(struct squashfs_writer *w)
{
	if (w == NULL)
		return;
	/* Stopped halfway (an error, a signal): libsquashfs frees the blocks
	 * in flight only once they are through. */
	if (w->proc != NULL) {
		if (w->file_open)
			sqfs_block_processor_end_file(w->proc);
		sqfs_block_processor_sync(w->proc);
	}
	sqfs_destroy(w->dirs);
	sqfs_destroy(w->dir_table);
	sqfs_destroy(w->inode_table);
	sqfs_destroy(w->proc);
	sqfs_destroy(w->xattrs);
	sqfs_destroy(w->ids);
	sqfs_destroy(w->fragments);
	sqfs_destroy(w->blocks);
	sqfs_destroy(w->cmp);
	free(w->sparse.block);
	free(w->sparse.packed);
	free(w);
}
