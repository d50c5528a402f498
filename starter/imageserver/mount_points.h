/* Mount points the image lacks, served as empty directories or files. The
 * image is read-only: without these, the holder would cover the parent with
 * a tmpfs repeating the parent's entries (a directory listing and a bind
 * per entry, each a round trip to the image server). Only the holder adds
 * them, while it builds the container; every worker reads them. */
#ifndef CAPSULA_MOUNT_POINTS_H
#define CAPSULA_MOUNT_POINTS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOUNT_POINTS_MAX 256

/* Their inode numbers: above any image inode's (squashfs ids are 48 bits). */
#define MOUNT_POINT_INO_BASE (1ULL << 62)

struct mount_point {
	uint64_t parent;  /* the inode of the directory it is in */
	uint64_t ino;
	bool dir;
	char name[NAME_MAX + 1];
};

struct mount_points {
	struct mount_point entries[MOUNT_POINTS_MAX];
	size_t count;  /* published last: entries below it are complete */
};

static inline bool mount_point_ino(uint64_t ino)
{
	return ino >= MOUNT_POINT_INO_BASE;
}

/* Add name in parent; returns 0, or -1 when the table is full or the name
 * too long. */
int mount_points_add(struct mount_points *mps, uint64_t parent, const char *name, bool dir,
                     uint64_t *ino);

/* The entry named name in parent, the one with that inode, or NULL. */
const struct mount_point *mount_points_find(const struct mount_points *mps, uint64_t parent,
                                            const char *name);
const struct mount_point *mount_points_get(const struct mount_points *mps, uint64_t ino);

/* The first entry in parent at or after position *from (0 to start), or
 * NULL; *from is then the position after it. */
const struct mount_point *mount_points_next_child(const struct mount_points *mps,
                                                  uint64_t parent, size_t *from);

#endif
