#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/decompressor.h"
#include "common/image_reader.h"
#include "starter/imageserver/block_decoder.h"
#include "starter/imageserver/image_fs.h"

/* What the kernel calls the root directory (FUSE_ROOT_ID). */
#define ROOT_INO 1

/* Holes read as zeros; no squashfs block is larger than 1 MiB (the
 * superblock check in runtime/image/squashfs.c refuses such images). */
static const char zeros[1 << 20];

/* A thread's own view of the image: libsquashfuse's reader, first, so that
 * the sqfs pointer handed around is the whole, and its block decoder. */
struct reader {
	sqfs fs;
	struct block_decoder *decoder;
};

static void dispose_reader(void *arg)
{
	struct reader *reader = arg;

	sqfs_destroy(&reader->fs);
	block_decoder_free(reader->decoder);
	free(reader);
}

static void release_block(void *memory, void *owner)
{
	block_memory_put(memory, owner);
}

static int load_block(void *context, uint64_t key, uint32_t header,
                      void **data, size_t *size, void **owner)
{
	struct reader *reader = context;

	if (block_decoder_read(reader->decoder, key, header, data, size) < 0)
		return -1;
	*owner = *data;
	return 0;
}

int image_fs_open(struct image_fs *ifs, const struct capsula_image *image,
                  size_t cache_bytes, capsula_error *err)
{
	sqfs probe;

	ifs->fd = image->fd;
	ifs->offset = (size_t)image->offset;
	ifs->building = true;
	damage_report_init(&ifs->damage, image->path);
	if (image_reader_open(&probe, image, err) < 0)
		return -1;
	ifs->block_size = probe.sb.block_size;
	ifs->compression = probe.sb.compression;
	ifs->root = sqfs_inode_root(&probe);
	ifs->fragment_count = probe.sb.fragments;
	ifs->has_xattrs = probe.sb.xattr_id_table_start != (uint64_t)SQUASHFS_INVALID_BLK;
	sqfs_destroy(&probe);
	ifs->fragments = calloc(ifs->fragment_count + 1, sizeof *ifs->fragments);
	if (ifs->fragments == NULL)
		return fail(err, errno, NULL, "image fragment table");
	pthread_mutex_init(&ifs->fragments_lock, NULL);
	if (block_memory_init(&ifs->block_memory, ifs->block_size) < 0 ||
	    block_cache_init(&ifs->cache, cache_bytes, release_block, &ifs->block_memory) < 0)
		return fail(err, errno, NULL, "image block cache");
	errno = pthread_key_create(&ifs->reader_key, dispose_reader);
	if (errno != 0)
		return fail(err, errno, NULL, "image reader key");
	return 0;
}

sqfs *image_fs_reader(struct image_fs *ifs)
{
	struct reader *reader = pthread_getspecific(ifs->reader_key);

	if (reader)
		return &reader->fs;
	reader = calloc(1, sizeof *reader);
	if (reader == NULL)
		return NULL;
	if (sqfs_init(&reader->fs, ifs->fd, ifs->offset) != SQFS_OK) {
		free(reader);
		return NULL;
	}
	decompressor_install(&reader->fs);
	reader->decoder = block_decoder_new(ifs->fd, ifs->offset, ifs->block_size,
	                                    ifs->compression, &ifs->block_memory);
	if (reader->decoder == NULL) {
		sqfs_destroy(&reader->fs);
		free(reader);
		return NULL;
	}
	pthread_setspecific(ifs->reader_key, reader);
	return &reader->fs;
}

uint64_t image_fs_ino(const struct image_fs *ifs, sqfs_inode_id id)
{
	/* Inode ids are 48-bit positions in the inode table, so the mapping
	 * needs no table: any worker decodes any number, forget is free. */
	return id == ifs->root ? ROOT_INO : id + 2;
}

sqfs_inode_id image_fs_inode_id(const struct image_fs *ifs, uint64_t ino)
{
	return ino == ROOT_INO ? ifs->root : ino - 2;
}

static int span_of_block(struct image_fs *ifs, sqfs *fs, uint64_t key, uint32_t header,
                         size_t inside, size_t want, struct block_span *span)
{
	struct cached_block *block;
	uint32_t stored_size;
	bool compressed;

	sqfs_data_header(header, &compressed, &stored_size);
	if (!compressed) {
		if (inside >= stored_size)
			return -1;
		*span = (struct block_span){
			.image_position = ifs->offset + key + inside,
			.length = want < stored_size - inside ? want : stored_size - inside,
		};
		return 0;
	}
	/* fs is the first member of this thread's reader. */
	block = block_cache_get(&ifs->cache, key, header, load_block, fs);

	if (block == NULL)
		return -1;
	if (inside >= block->size) {
		block_cache_put(&ifs->cache, block);
		return -1;
	}
	span->block = block;
	span->data = (const char *)block->data + inside;
	span->length = want < block->size - inside ? want : block->size - inside;
	return 0;
}

static int span_of_fragment(struct image_fs *ifs, sqfs *fs, sqfs_inode *inode,
                            uint64_t position, size_t want, struct block_span *span)
{
	struct squashfs_fragment_entry fragment;
	uint64_t tail_start = inode->xtra.reg.file_size / ifs->block_size * ifs->block_size;
	uint32_t index = inode->xtra.reg.frag_idx;

	if (index == SQUASHFS_INVALID_FRAG || index >= ifs->fragment_count)
		return -1;
	pthread_mutex_lock(&ifs->fragments_lock);
	/* A fragment block is never empty: size 0 means not read yet. */
	fragment = ifs->fragments[index];
	if (fragment.size == 0) {
		if (sqfs_frag_entry(fs, &fragment, index) != SQFS_OK) {
			pthread_mutex_unlock(&ifs->fragments_lock);
			return -1;
		}
		ifs->fragments[index] = fragment;
	}
	pthread_mutex_unlock(&ifs->fragments_lock);
	return span_of_block(ifs, fs, fragment.start_block, fragment.size,
	                     inode->xtra.reg.frag_off + (size_t)(position - tail_start),
	                     want, span);
}

long image_fs_spans(struct image_fs *ifs, sqfs *fs, sqfs_inode *inode, uint64_t offset,
                    size_t length, struct block_span *spans, size_t max_spans)
{
	uint64_t file_size = inode->xtra.reg.file_size;
	uint64_t position = offset;
	uint64_t end;
	sqfs_blocklist blocks;
	size_t count = 0;

	if (!S_ISREG(inode->base.mode))
		return -1;
	if (offset >= file_size)
		return 0;
	end = length < file_size - offset ? offset + length : file_size;
	if (sqfs_blockidx_blocklist(fs, inode, &blocks, (sqfs_off_t)offset) != SQFS_OK)
		return -1;
	while (position < end && count < max_spans) {
		struct block_span *span = &spans[count];
		size_t want = (size_t)(end - position);

		if (blocks.remain == 0) {
			if (span_of_fragment(ifs, fs, inode, position, want, span) < 0)
				goto failed;
		} else {
			size_t inside, in_block;

			if (sqfs_blocklist_next(&blocks) != SQFS_OK)
				goto failed;
			if (blocks.pos + ifs->block_size <= position)
				continue;
			inside = (size_t)(position - blocks.pos);
			in_block = file_size - blocks.pos < ifs->block_size ?
			           (size_t)(file_size - blocks.pos) : ifs->block_size;
			if (want > in_block - inside)
				want = in_block - inside;
			if (blocks.input_size == 0) {
				*span = (struct block_span){.data = zeros, .length = want};
			} else if (span_of_block(ifs, fs, blocks.block, blocks.header, inside,
			                         want, span) < 0) {
				goto failed;
			}
		}
		position += span->length;
		count++;
	}
	return (long)count;
failed:
	image_fs_release(ifs, spans, count);
	return -1;
}

void image_fs_release(struct image_fs *ifs, struct block_span *spans, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (spans[i].block)
			block_cache_put(&ifs->cache, spans[i].block);
}

void image_fs_release_pushed(struct image_fs *ifs, struct block_span *spans, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct cached_block *block = spans[i].block;

		if (block == NULL)
			continue;
		/* A fragment block holds other files' tails too: it stays. */
		if (spans[i].data == block->data && spans[i].length == block->size)
			block_cache_forget(&ifs->cache, block);
		else
			block_cache_put(&ifs->cache, block);
	}
}

long image_fs_pread(struct image_fs *ifs, sqfs *fs, sqfs_inode *inode, uint64_t offset,
                    void *buffer, size_t length)
{
	struct block_span spans[8];
	size_t copied = 0;

	while (copied < length) {
		long n = image_fs_spans(ifs, fs, inode, offset + copied, length - copied,
		                        spans, sizeof spans / sizeof spans[0]);

		if (n <= 0)
			return n < 0 ? -1 : (long)copied;
		for (long i = 0; i < n; i++) {
			char *to = (char *)buffer + copied;

			if (spans[i].data) {
				memcpy(to, spans[i].data, spans[i].length);
			/* image_fs_spans filled spans[0..n). */
			/* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage) */
			} else if (pread(ifs->fd, to, spans[i].length,
			                 (off_t)spans[i].image_position) != (ssize_t)spans[i].length) {
				image_fs_release(ifs, spans, (size_t)n);
				return -1;
			}
			copied += spans[i].length;
		}
		image_fs_release(ifs, spans, (size_t)n);
	}
	return (long)copied;
}

int image_fs_resolve(struct image_fs *ifs, sqfs *fs, const char *path, sqfs_inode *out)
{
	return image_path_resolve(fs, ifs->root, path, out);
}

int image_fs_has_entry(struct image_fs *ifs, uint64_t dir_ino, const char *name)
{
	sqfs *fs = image_fs_reader(ifs);
	sqfs_name name_buffer;
	sqfs_dir_entry dentry;
	sqfs_inode dir;
	bool found;

	if (fs == NULL || mount_point_ino(dir_ino) ||
	    sqfs_inode_get(fs, &dir, image_fs_inode_id(ifs, dir_ino)) != SQFS_OK ||
	    !S_ISDIR(dir.base.mode))
		return -1;
	sqfs_dentry_init(&dentry, name_buffer);
	if (sqfs_dir_lookup(fs, &dir, name, strlen(name), &dentry, &found) != SQFS_OK)
		return -1;
	return found || mount_points_find(&ifs->mount_points, dir_ino, name) != NULL;
}

int image_fs_read_whole(struct image_fs *ifs, uint64_t ino, size_t max, char **text,
                        size_t *length)
{
	sqfs *fs = image_fs_reader(ifs);
	sqfs_inode inode;
	uint64_t size;
	long got;

	if (fs == NULL || mount_point_ino(ino) ||
	    sqfs_inode_get(fs, &inode, image_fs_inode_id(ifs, ino)) != SQFS_OK)
		return -1;
	if (!S_ISREG(inode.base.mode))
		return 0;
	size = inode.xtra.reg.file_size;
	if (size > max || size >= SIZE_MAX)
		return 0;
	*text = malloc((size_t)size + 1);
	if (*text == NULL)
		return -1;
	got = image_fs_pread(ifs, fs, &inode, 0, *text, (size_t)size);
	if (got != (long)size) {
		free(*text);
		*text = NULL;
		return -1;
	}
	(*text)[size] = '\0';
	*length = (size_t)size;
	return 1;
}

void image_fs_built(struct image_fs *ifs)
{
	__atomic_store_n(&ifs->building, false, __ATOMIC_RELEASE);
}
