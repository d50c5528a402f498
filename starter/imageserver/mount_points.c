#include "config.h"

#include <string.h>

#include "starter/imageserver/mount_points.h"

static size_t published(const struct mount_points *mps)
{
	return __atomic_load_n(&mps->count, __ATOMIC_ACQUIRE);
}

int mount_points_add(struct mount_points *mps, uint64_t parent, const char *name, bool dir,
                     uint64_t *ino)
{
	size_t index = mps->count;  /* one writer: the holder */
	struct mount_point *mp = &mps->entries[index];

	if (index == MOUNT_POINTS_MAX || strlen(name) >= sizeof mp->name)
		return -1;
	mp->parent = parent;
	mp->ino = MOUNT_POINT_INO_BASE + index;
	mp->dir = dir;
	strcpy(mp->name, name);
	__atomic_store_n(&mps->count, index + 1, __ATOMIC_RELEASE);
	*ino = mp->ino;
	return 0;
}

const struct mount_point *mount_points_find(const struct mount_points *mps, uint64_t parent,
                                            const char *name)
{
	size_t count = published(mps);

	for (size_t i = 0; i < count; i++)
		if (mps->entries[i].parent == parent && strcmp(mps->entries[i].name, name) == 0)
			return &mps->entries[i];
	return NULL;
}

const struct mount_point *mount_points_get(const struct mount_points *mps, uint64_t ino)
{
	if (!mount_point_ino(ino) || ino - MOUNT_POINT_INO_BASE >= published(mps))
		return NULL;
	return &mps->entries[ino - MOUNT_POINT_INO_BASE];
}

const struct mount_point *mount_points_next_child(const struct mount_points *mps,
                                                  uint64_t parent, size_t *from)
{
	size_t count = published(mps);

	for (size_t i = *from; i < count; i++)
		if (mps->entries[i].parent == parent) {
			*from = i + 1;
			return &mps->entries[i];
		}
	*from = count;
	return NULL;
}
