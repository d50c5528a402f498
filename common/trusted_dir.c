#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/trusted_dir.h"

#define MAX_LINK_HOPS 40

struct trusted_owners trusted_root_and(uid_t uid)
{
	struct trusted_owners o = {.uid = {0, uid}, .count = uid == 0 ? 1 : 2};

	return o;
}

static bool owned_by(const struct stat *st, const struct trusted_owners *owners)
{
	if (st->st_uid == 0)
		return true;
	for (size_t i = 0; i < owners->count; i++)
		if (st->st_uid == owners->uid[i])
			return true;
	return false;
}

const char *trusted_dir_problem(const struct stat *st, const struct trusted_owners *owners,
                                char *why, size_t size)
{
	if (!owned_by(st, owners)) {
		snprintf(why, size, "belongs to uid %u", (unsigned)st->st_uid);
		return why;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(st->st_mode & S_ISVTX)) {
		snprintf(why, size, "is writable by %s (mode %04o) and not sticky",
		         st->st_mode & S_IWOTH ? "others" : "its group",
		         (unsigned)(st->st_mode & 07777));
		return why;
	}
	return NULL;
}

/* The part of path walked so far, for messages. */
static void append_shown(char *shown, size_t size, const char *name, size_t len)
{
	size_t at = strlen(shown);

	if (at + len + 2 >= size)
		return;
	if (at == 0 || shown[at - 1] != '/')
		shown[at++] = '/';
	memcpy(shown + at, name, len);
	shown[at + len] = '\0';
}

/* Put the link's target in front of what is left to walk. */
static int splice_link(int dir_fd, const char *name, char *rest, size_t size, bool *absolute)
{
	char target[PATH_MAX], joined[PATH_MAX];
	ssize_t n = readlinkat(dir_fd, name, target, sizeof target - 1);

	if (n <= 0)
		return -1;
	target[n] = '\0';
	if ((size_t)snprintf(joined, sizeof joined, "%s/%s", target, rest) >= sizeof joined ||
	    strlen(joined) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(rest, joined, strlen(joined) + 1);
	*absolute = target[0] == '/';
	return 0;
}

static int open_root(const struct trusted_owners *owners, const char *what, const char *path,
                     const char *hint, capsula_error *err)
{
	char why[96];
	struct stat st;
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		int saved = errno;

		if (fd >= 0)
			close(fd);
		return fail(err, saved, NULL, "%s %s: open /", what, path);
	}
	if (trusted_dir_problem(&st, owners, why, sizeof why) != NULL) {
		close(fd);
		return fail(err, 0, hint, "%s %s: / %s", what, path, why);
	}
	return fd;
}

int trusted_dir_open(const char *path, const struct trusted_owners *owners, bool create,
                     const char *what, const char *shown_as, const char *hint,
                     capsula_error *err)
{
	char rest[PATH_MAX], shown[PATH_MAX] = "", why[96];
	const char *named = shown_as != NULL ? shown_as : path;
	int hops = 0, dir_fd;
	bool absolute = false;

	if (path[0] != '/')
		return fail(err, 0, "give an absolute path", "%s %s is relative", what, named);
	if ((size_t)snprintf(rest, sizeof rest, "%s", path) >= sizeof rest)
		return fail(err, ENAMETOOLONG, NULL, "%s %s", what, named);
	dir_fd = open_root(owners, what, named, hint, err);
	while (dir_fd >= 0) {
		char *name = rest + strspn(rest, "/");
		size_t len = strcspn(name, "/");
		char component[NAME_MAX + 1];
		struct stat st;
		int next;

		if (len == 0)
			return dir_fd;
		if (len > NAME_MAX) {
			close(dir_fd);
			return fail(err, ENAMETOOLONG, NULL, "%s %s", what, named);
		}
		memcpy(component, name, len);
		component[len] = '\0';
		memmove(rest, name + len, strlen(name + len) + 1);
		append_shown(shown, sizeof shown, component, len);
		if (fstatat(dir_fd, component, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
		    create && mkdirat(dir_fd, component, 0700) < 0 && errno != EEXIST) {
			fail(err, errno, hint, "%s %s: create %s", what, named, shown);
			close(dir_fd);
			return -1;
		}
		if (fstatat(dir_fd, component, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			fail(err, errno, hint, "%s %s: %s", what, named, shown);
			close(dir_fd);
			return -1;
		}
		if (S_ISLNK(st.st_mode)) {
			if (++hops > MAX_LINK_HOPS)
				errno = ELOOP;
			if (hops > MAX_LINK_HOPS ||
			    splice_link(dir_fd, component, rest, sizeof rest, &absolute) < 0) {
				fail(err, errno, hint, "%s %s: %s", what, named, shown);
				close(dir_fd);
				return -1;
			}
			if (absolute) {
				close(dir_fd);
				shown[0] = '\0';
				dir_fd = open_root(owners, what, named, hint, err);
			} else {
				char *slash = strrchr(shown, '/');

				if (slash != NULL)
					*slash = '\0';
			}
			continue;
		}
		next = openat(dir_fd, component, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dir_fd);
		if (next < 0)
			return fail(err, errno, hint, "%s %s: %s", what, named, shown);
		/* What is open now, not what the name showed a moment ago. */
		if (fstat(next, &st) < 0) {
			close(next);
			return fail(err, errno, NULL, "%s %s: %s", what, named, shown);
		}
		if (trusted_dir_problem(&st, owners, why, sizeof why) != NULL) {
			close(next);
			return fail(err, 0, hint, "%s %s: %s %s: another user could replace what "
			            "is below it", what, named, shown, why);
		}
		dir_fd = next;
	}
	return -1;
}
