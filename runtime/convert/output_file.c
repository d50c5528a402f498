#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/leftovers.h"
#include "runtime/convert/output_file.h"

#define HINT_DIRECTORY "write the image to a directory you own"

/* Partial files of this output left by a writer that is gone. */
static void remove_leftovers(const struct output_file *o)
{
	char prefix[OUTPUT_NAME_MAX + 16];

	snprintf(prefix, sizeof prefix, ".%s.partial-", o->name);
	leftovers_remove(o->dir_fd, prefix, NULL);
}

int output_open(struct output_file *o, int dir_fd, const char *path, const char *shown,
                bool force, capsula_error *err)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	struct stat st;

	memset(o, 0, sizeof *o);
	o->fd = -1;
	snprintf(o->shown, sizeof o->shown, "%s", shown != NULL ? shown : path);
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	path = slash != NULL ? slash + 1 : path;
	o->dir_fd = openat(dir_fd >= 0 ? dir_fd : AT_FDCWD, dir,
	                   O_PATH | O_DIRECTORY | O_CLOEXEC | (dir_fd >= 0 ? O_NOFOLLOW : 0));
	if (o->dir_fd < 0)
		return fail(err, errno, HINT_DIRECTORY, "output directory of %s", o->shown);
	if (path[0] == '\0' || strlen(path) >= sizeof o->name)
		return fail(err, EINVAL, "name the image file", "output %s", o->shown);
	snprintf(o->name, sizeof o->name, "%s", path);
	if (fstatat(o->dir_fd, o->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !force)
		return fail(err, 0, "use --force to replace it", "%s exists", o->shown);
	remove_leftovers(o);
	return 0;
}

int output_begin(struct output_file *o, capsula_error *err)
{
	for (int tries = 0; tries < 100; tries++) {
		unsigned long long r;

		if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
			return fail(err, errno, NULL, "random name for %s", o->shown);
		if ((size_t)snprintf(o->partial, sizeof o->partial, ".%s.partial-%012llx", o->name,
		                     r & 0xffffffffffffULL) >= sizeof o->partial)
			return fail(err, ENAMETOOLONG, NULL, "%s", o->shown);
		o->fd = openat(o->dir_fd, o->partial,
		               O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (o->fd >= 0)
			break;
		if (errno != EEXIST) {
			o->partial[0] = '\0';
			return fail(err, errno, errno == EACCES ? HINT_DIRECTORY :
			            "free some space or write elsewhere", "create an image beside %s",
			            o->shown);
		}
	}
	if (o->fd < 0) {
		o->partial[0] = '\0';
		return fail(err, EEXIST, NULL, "create an image beside %s", o->shown);
	}
	/* Held until the end: a later run knows a live writer's file by it. */
	if (flock(o->fd, LOCK_EX | LOCK_NB) < 0)
		return fail(err, errno, NULL, "lock %s", o->partial);
	return 0;
}

int output_commit(struct output_file *o, capsula_error *err)
{
	mode_t mask = umask(0);

	umask(mask);
	/* The image must be on disk before its name is. */
	if (fchmod(o->fd, 0666 & ~mask) < 0 || fsync(o->fd) < 0)
		return fail(err, errno, errno == ENOSPC ? "free some space or write elsewhere" : NULL,
		            "write %s", o->shown);
	if (renameat(o->dir_fd, o->partial, o->dir_fd, o->name) < 0)
		return fail(err, errno, NULL, "rename the image to %s", o->shown);
	o->partial[0] = '\0';
	return 0;
}

void output_close(struct output_file *o)
{
	if (o->partial[0] != '\0' && o->dir_fd >= 0)
		unlinkat(o->dir_fd, o->partial, 0);
	o->partial[0] = '\0';
	if (o->fd >= 0)
		close(o->fd);
	if (o->dir_fd >= 0)
		close(o->dir_fd);
	o->fd = o->dir_fd = -1;
}
