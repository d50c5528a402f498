#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/image_reader.h"
#include "runtime/image/image_files.h"

int image_files_open(struct image_files *files, const struct capsula_image *image,
                     capsula_error *err)
{
	files->ready = image_reader_open(&files->fs, image, err) == 0;
	return files->ready ? 0 : -1;
}

void image_files_close(struct image_files *files)
{
	if (files->ready)
		sqfs_destroy(&files->fs);
	files->ready = false;
}

static int resolve(struct image_files *files, const char *path, sqfs_inode *inode)
{
	return image_path_resolve(&files->fs, sqfs_inode_root(&files->fs), path, inode);
}

int image_files_read(struct image_files *files, const char *path, size_t max,
                     char **data, size_t *length)
{
	sqfs_inode inode;
	sqfs_off_t size;
	char *buf;

	if (resolve(files, path, &inode) < 0)
		return -1;
	if (!S_ISREG(inode.base.mode)) {
		errno = S_ISDIR(inode.base.mode) ? EISDIR : EINVAL;
		return -1;
	}
	if (inode.xtra.reg.file_size > max) {
		errno = EFBIG;
		return -1;
	}
	size = (sqfs_off_t)inode.xtra.reg.file_size;
	buf = malloc((size_t)size + 1);
	if (buf == NULL)
		return -1;
	if (sqfs_read_range(&files->fs, &inode, 0, &size, buf) != SQFS_OK) {
		free(buf);
		errno = EIO;
		return -1;
	}
	buf[size] = '\0';
	*data = buf;
	*length = (size_t)size;
	return 0;
}

int image_files_list(struct image_files *files, const char *dir, struct strvec *names)
{
	sqfs_inode inode;
	sqfs_dir cursor;
	sqfs_dir_entry entry;
	sqfs_name name_buffer;
	sqfs_err status = SQFS_OK;

	if (resolve(files, dir, &inode) < 0)
		return -1;
	if (!S_ISDIR(inode.base.mode)) {
		errno = ENOTDIR;
		return -1;
	}
	if (sqfs_dir_open(&files->fs, &inode, &cursor, 0) != SQFS_OK) {
		errno = EIO;
		return -1;
	}
	sqfs_dentry_init(&entry, name_buffer);
	while (sqfs_dir_next(&files->fs, &cursor, &entry, &status))
		if (strvec_push(names, sqfs_dentry_name(&entry)) < 0)
			return -1;
	if (status != SQFS_OK) {
		errno = EIO;
		return -1;
	}
	strvec_sort(names);
	return 0;
}

bool image_files_exists(struct image_files *files, const char *path, mode_t *mode)
{
	sqfs_inode inode;

	if (resolve(files, path, &inode) < 0)
		return false;
	if (mode != NULL)
		*mode = inode.base.mode;
	return true;
}

unsigned long image_files_inode_count(const struct image_files *files)
{
	return files->fs.sb.inodes;
}

static int read_for_access(void *context, const char *path, size_t max, char **data,
                           size_t *length)
{
	return image_files_read(context, path, max, data, length);
}

static int list_for_access(void *context, const char *dir, struct strvec *names)
{
	return image_files_list(context, dir, names);
}

struct file_access image_files_access(struct image_files *files)
{
	return (struct file_access){read_for_access, list_for_access, files};
}
