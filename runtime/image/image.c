#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/image/image.h"
#include "runtime/image/sif.h"

/* A SIF file carries the squashfs at an offset its descriptors give. */
static int find_sif_partition(int fd, const char *path, uint64_t file_size,
                              const unsigned char *head, size_t head_length,
                              struct sif_partition *part, capsula_error *err)
{
	char why[160];
	size_t table_size = sif_table_size(head, head_length, why, sizeof why);
	unsigned char *table;
	ssize_t got;
	int ret;

	if (table_size == 0)
		return fail(err, 0, "the SIF file is damaged; pull or build it again",
		            "image %s: %s", path, why);
	table = malloc(table_size);
	if (table == NULL)
		return fail(err, errno, NULL, "image %s", path);
	got = pread(fd, table, table_size, 0);
	if (got < 0) {
		free(table);
		return fail(err, errno, NULL, "cannot read image %s", path);
	}
	ret = sif_find_squashfs(table, (size_t)got, file_size, part, why, sizeof why);
	free(table);
	if (ret < 0)
		return fail(err, 0, "the SIF file is damaged or not a runnable image",
		            "image %s: %s", path, why);
	return 0;
}

static int check_regular(int fd, const char *path, struct stat *st, capsula_error *err)
{
	if (fstat(fd, st) < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "cannot stat image %s", path);
	}
	if (S_ISDIR(st->st_mode)) {
		close(fd);
		return fail(err, 0, "give a .sqfs file; make one with capsula build IMAGE.sqfs DIR",
		            "image %s is a directory", path);
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return fail(err, 0, NULL, "image %s is not a regular file", path);
	}
	return 0;
}

int image_open(const char *path, struct capsula_image *image,
               struct squashfs_info *info, capsula_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return fail(err, errno, errno == ENOENT ? "check the image path" : NULL,
		            "cannot open image %s", path);
	return image_open_fd(fd, path, image, info, err);
}

int image_open_fd(int fd, const char *path, struct capsula_image *image,
                  struct squashfs_info *info, capsula_error *err)
{
	unsigned char head[SIF_HEADER_SIZE];
	unsigned char superblock[SQUASHFS_SUPERBLOCK_SIZE];
	struct sif_partition part = {0};
	char why[160];
	struct stat st;
	ssize_t got;

	if (check_regular(fd, path, &st, err) < 0)
		return -1;
	part.size = (uint64_t)st.st_size;
	got = pread(fd, head, sizeof head, 0);
	if (got >= 0 && sif_is_sif(head, (size_t)got) &&
	    find_sif_partition(fd, path, (uint64_t)st.st_size, head, (size_t)got, &part, err) < 0) {
		close(fd);
		return -1;
	}
	if (got >= 0)
		got = pread(fd, superblock, sizeof superblock, (off_t)part.offset);
	if (got < 0) {
		int saved = errno;
		close(fd);
		return fail(err, saved, NULL, "cannot read image %s", path);
	}
	if (squashfs_check(superblock, (size_t)got, part.size, info, why, sizeof why) < 0) {
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
	image->offset = part.offset;
	image->dev = st.st_dev;
	image->ino = st.st_ino;
	image->size = st.st_size;
	image->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}
