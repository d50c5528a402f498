/* The squashfs image as the FUSE workers and the prefetcher see it:
 * libsquashfuse's readers, one per thread (its own caches take no locks),
 * and one shared cache of decompressed data blocks. */
#ifndef CAPSULA_IMAGE_FS_H
#define CAPSULA_IMAGE_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <squashfuse/squashfuse.h>

#include "common/error.h"
#include "common/plan.h"
#include "starter/imageserver/block_cache.h"
#include "starter/imageserver/block_memory.h"
#include "starter/imageserver/damage_report.h"
#include "starter/imageserver/mount_points.h"

struct fuse_session;

struct image_fs {
	struct fuse_session *session;  /* serving it, for notifications */
	int fd;
	size_t offset;
	size_t block_size;
	int compression;  /* the superblock's id */
	sqfs_inode_id root;
	struct block_memory block_memory;  /* what the cache's blocks live in */
	struct block_cache cache;
	pthread_key_t reader_key;
	/* Fragment table entries, read once each: every small file needs one. */
	pthread_mutex_t fragments_lock;
	struct squashfs_fragment_entry *fragments;  /* size 0: not read yet */
	size_t fragment_count;
	/* While the holder builds the root it must read image directories that
	 * the user may not (a 0700 root): until then, those directories are
	 * answered open to all and never cached, so the kernel asks again, and
	 * gets the image's real modes, once the container is built. */
	bool building;
	/* Without an xattr table, every xattr request is answered ENOSYS, which
	 * the kernel remembers: overlayfs asks for its own attributes on every
	 * lookup, and each answer would otherwise be a round trip. */
	bool has_xattrs;
	/* Mount points the holder added where the image has nothing. */
	struct mount_points mount_points;
	/* Requests answered and the time spent on them, for --timing. */
	uint64_t requests_served;
	uint64_t serving_us;
	/* Under a writable overlay the kernel copies a file up with its owner,
	 * which must have an id in the container: owners without one are
	 * answered as the user (inner_uid/gid). Ids 1..mapped_ids are mapped
	 * too with --fakeroot's subordinate ids. */
	bool squash_owners;
	uid_t inner_uid;
	gid_t inner_gid;
	unsigned long mapped_ids;
	/* A part of the image that does not decode is told to the ranks. */
	struct damage_report damage;
};

/* The owner the kernel is told about for an image owner id. */
static inline unsigned image_fs_owner(const struct image_fs *ifs, unsigned id, unsigned inner)
{
	if (!ifs->squash_owners || id == inner || (id >= 1 && id <= ifs->mapped_ids))
		return id;
	return inner;
}

/* The container is built: from now on answer the image's modes as they are. */
void image_fs_built(struct image_fs *ifs);

/* A piece of a file's content: inside a cached block, zeros for a hole, or
 * (data NULL) stored uncompressed at image_position in the image file, which
 * the kernel can then copy itself. */
struct block_span {
	struct cached_block *block;  /* NULL unless data is in the cache */
	const char *data;
	uint64_t image_position;
	size_t length;
};

/* Check that libsquashfuse can read the image and set up the cache. */
int image_fs_open(struct image_fs *ifs, const struct capsula_image *image,
                  size_t cache_bytes, capsula_error *err);

/* This thread's reader, made on first use; NULL when out of memory. */
sqfs *image_fs_reader(struct image_fs *ifs);

/* Spans covering [offset, offset + length) of a regular file, clipped at
 * its end. Returns how many were filled (0 at or past the end), or -1 when
 * the image cannot be read there. Release the spans when done. */
long image_fs_spans(struct image_fs *ifs, sqfs *fs, sqfs_inode *inode, uint64_t offset,
                    size_t length, struct block_span *spans, size_t max_spans);
void image_fs_release(struct image_fs *ifs, struct block_span *spans, size_t count);

/* The same for spans now in the kernel's page cache: blocks they cover
 * whole leave the cache (block_cache_forget). */
void image_fs_release_pushed(struct image_fs *ifs, struct block_span *spans, size_t count);

/* Copy up to length bytes from offset into buffer; returns the count or -1. */
long image_fs_pread(struct image_fs *ifs, sqfs *fs, sqfs_inode *inode, uint64_t offset,
                    void *buffer, size_t length);

/* Find an absolute path inside the image, following its symlinks as the
 * kernel would (within the image). Returns 0, or -1 with errno set. */
int image_fs_resolve(struct image_fs *ifs, sqfs *fs, const char *path, sqfs_inode *out);

/* Whether the directory with FUSE inode number dir_ino has an entry name,
 * in the image or among the mount points added to it: 1 or 0; -1 when it
 * is not one of the image's directories or cannot be read. */
int image_fs_has_entry(struct image_fs *ifs, uint64_t dir_ino, const char *name);
/* The whole regular file with FUSE inode number ino, NUL-terminated, when
 * it has at most max bytes: 1 with *text (to free) and *length; 0 when it
 * is not such a file; -1 when it cannot be read here. */
int image_fs_read_whole(struct image_fs *ifs, uint64_t ino, size_t max, char **text,
                        size_t *length);
/* The FUSE inode number of a squashfs inode, and back. */
uint64_t image_fs_ino(const struct image_fs *ifs, sqfs_inode_id id);
sqfs_inode_id image_fs_inode_id(const struct image_fs *ifs, uint64_t ino);

#endif
