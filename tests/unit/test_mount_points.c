/* The image server's table of mount points the image lacks: found by
 * parent and name or by inode number, listed per directory in the order
 * added, never confused with the image's own inodes, and refusing what it
 * cannot hold instead of truncating it. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "starter/imageserver/mount_points.h"
#include "tests/unit/tap.h"

static struct mount_points table;

int main(void)
{
	const struct mount_point *mp;
	char long_name[NAME_MAX + 2];
	uint64_t hosts, home, user, ino;
	size_t from = 0;
	int added = 0;

	ok(mount_points_add(&table, 5, "hosts", false, &hosts) == 0, "a file is added");
	ok(mount_points_add(&table, 1, "home", true, &home) == 0, "a directory is added");
	ok(mount_points_add(&table, home, "user", true, &user) == 0,
	   "an entry in an added directory is added");
	ok(mount_point_ino(hosts) && mount_point_ino(user), "their numbers are mount points'");
	ok(!mount_point_ino(2) && !mount_point_ino((1ULL << 48) + 2),
	   "no image inode number is (squashfs ids have 48 bits)");
	ok(hosts != home && home != user && user != hosts, "each has its own number");

	mp = mount_points_find(&table, 5, "hosts");
	ok(mp != NULL && mp->ino == hosts && !mp->dir, "found by parent and name, as a file");
	ok(mount_points_find(&table, 6, "hosts") == NULL, "not in another directory");
	ok(mount_points_find(&table, 5, "host") == NULL, "nor by a prefix of its name");
	mp = mount_points_get(&table, user);
	ok(mp != NULL && mp->parent == home && strcmp(mp->name, "user") == 0 && mp->dir,
	   "found by number");
	ok(mount_points_get(&table, user + 1) == NULL, "a number not handed out finds nothing");
	ok(mount_points_get(&table, 7) == NULL, "nor does an image inode's");

	mp = mount_points_next_child(&table, 1, &from);
	ok(mp != NULL && mp->ino == home, "listing / gives home");
	ok(mount_points_next_child(&table, 1, &from) == NULL, "and nothing after it");
	from = 0;
	ok(mount_points_next_child(&table, 42, &from) == NULL, "an empty directory lists nothing");

	memset(long_name, 'x', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	ok(mount_points_add(&table, 1, long_name, true, &ino) != 0,
	   "a name longer than NAME_MAX is refused");
	for (int i = 0; i < MOUNT_POINTS_MAX; i++) {
		char name[16];

		snprintf(name, sizeof name, "dir%d", i);
		if (mount_points_add(&table, 9, name, true, &ino) == 0)
			added++;
	}
	ok(added == MOUNT_POINTS_MAX - 3, "the table takes %d entries in all (took %d more)",
	   MOUNT_POINTS_MAX, added);
	ok(mount_points_find(&table, 5, "hosts") != NULL, "a full table still finds the first");
	return tap_done();
}
