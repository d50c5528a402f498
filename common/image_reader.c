#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "common/decompressor.h"
#include "common/image_reader.h"

int image_reader_open(sqfs *fs, const struct capsula_image *image, capsula_error *err)
{
	sqfs_err status = sqfs_init(fs, image->fd, (size_t)image->offset);

	if (status == SQFS_OK) {
		decompressor_install(fs);
		return 0;
	}
	return fail(err, 0, status == SQFS_BADCOMP ?
	            "rebuild the image with gzip, xz, lz4 or zstd compression" :
	            "rebuild it with mksquashfs or capsula build",
	            "libsquashfuse cannot read image %s (error %d)", image->path, status);
}

static int lookup_child(sqfs *fs, sqfs_inode *dir, const char *name, size_t length,
                        sqfs_inode *out)
{
	sqfs_name name_buffer;
	sqfs_dir_entry entry;
	bool found;

	if (!S_ISDIR(dir->base.mode)) {
		errno = ENOTDIR;
		return -1;
	}
	sqfs_dentry_init(&entry, name_buffer);
	if (sqfs_dir_lookup(fs, dir, name, length, &entry, &found) != SQFS_OK) {
		errno = EIO;
		return -1;
	}
	if (!found) {
		errno = ENOENT;
		return -1;
	}
	if (sqfs_inode_get(fs, out, sqfs_dentry_inode(&entry)) != SQFS_OK) {
		errno = EIO;
		return -1;
	}
	return 0;
}

int image_path_resolve(sqfs *fs, sqfs_inode_id root, const char *path, sqfs_inode *out)
{
	enum { MAX_DEPTH = 64, MAX_LINKS = 40 };
	sqfs_inode stack[MAX_DEPTH];  /* directories walked, for ".." */
	char remaining[PATH_MAX];
	size_t depth = 0;
	int links = 0;
	char *cursor = remaining;

	if (snprintf(remaining, sizeof remaining, "%s", path) >= (int)sizeof remaining) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (sqfs_inode_get(fs, &stack[0], root) != SQFS_OK) {
		errno = EIO;
		return -1;
	}
	for (;;) {
		sqfs_inode child;
		size_t length;

		while (*cursor == '/')
			cursor++;
		if (*cursor == '\0')
			break;
		length = strcspn(cursor, "/");
		if (length == 1 && cursor[0] == '.') {
			cursor += length;
			continue;
		}
		if (length == 2 && cursor[0] == '.' && cursor[1] == '.') {
			if (depth > 0)
				depth--;
			cursor += length;
			continue;
		}
		if (lookup_child(fs, &stack[depth], cursor, length, &child) < 0)
			return -1;
		cursor += length;
		if (S_ISLNK(child.base.mode)) {
			char target[PATH_MAX];
			size_t target_size = sizeof target;

			if (++links > MAX_LINKS) {
				errno = ELOOP;
				return -1;
			}
			if (sqfs_readlink(fs, &child, target, &target_size) != SQFS_OK) {
				errno = EIO;
				return -1;
			}
			if (strlen(target) + strlen(cursor) + 2 > sizeof remaining) {
				errno = ENAMETOOLONG;
				return -1;
			}
			/* Splice the target in front of what is left to walk. */
			memmove(remaining + strlen(target) + 1, cursor, strlen(cursor) + 1);
			memcpy(remaining, target, strlen(target));
			remaining[strlen(target)] = '/';
			cursor = remaining;
			if (target[0] == '/')
				depth = 0;
			continue;
		}
		if (depth + 1 >= MAX_DEPTH) {
			errno = ENAMETOOLONG;
			return -1;
		}
		stack[++depth] = child;
	}
	*out = stack[depth];
	return 0;
}
