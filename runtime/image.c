#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/image.h"

int image_open(const char *path, struct capsula_image *image,
               struct squashfs_info *info, capsula_error *err)
{
	unsigned char superblock[SQUASHFS_SUPERBLOCK_SIZE];
	char why[160];
	struct stat st;
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(err, errno, errno == ENOENT ? "check the image path" : NULL,
		            "cannot open image %s", path);
	if (fstat(fd, &st) < 0) {
		int saved = errno;
		close(fd);
		return fail(err, saved, NULL, "cannot stat image %s", path);
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return fail(err, 0, "give a .sqfs file; make one with mksquashfs DIR IMAGE.sqfs",
		            "image %s is a directory", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, 0, NULL, "image %s is not a regular file", path);
	}
	got = pread(fd, superblock, sizeof superblock, 0);
	if (got < 0) {
		int saved = errno;
		close(fd);
		return fail(err, saved, NULL, "cannot read image %s", path);
	}
	if (squashfs_check(superblock, (size_t)got, (uint64_t)st.st_size, info,
	                   why, sizeof why) < 0) {
		close(fd);
		return fail(err, 0, "rebuild it with mksquashfs or capsula build",
		            "image %s: %s", path, why);
	}
	image->path = strdup(path);
	if (image->path == NULL) {
		close(fd);
		return fail(err, errno, NULL, "image %s", path);
	}
	image->fd = fd;
	image->offset = 0;
	image->dev = st.st_dev;
	image->ino = st.st_ino;
	image->size = st.st_size;
	image->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}
