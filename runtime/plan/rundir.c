#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/plan/rundir.h"

#define SECRET_FILE "join.key"

static bool owned_directory(const char *path, bool private_only)
{
	struct stat st;

	return path[0] == '/' && lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
	       st.st_uid == getuid() && (!private_only || (st.st_mode & 0077) == 0);
}

/* mkdir path 0700 unless it is there; it must then be ours, no symlink, and
 * (private) closed to others. */
static int make_own_directory(const char *path, bool private, capsula_error *err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return fail(err, errno, "set XDG_RUNTIME_DIR to a private directory of yours",
		            "runtime directory %s", path);
	if (!owned_directory(path, private))
		return fail(err, 0, "remove it, or set XDG_RUNTIME_DIR to a private directory of yours",
		            "runtime directory %s is not a%s directory of yours", path,
		            private ? " private" : "");
	return 0;
}

static const char *home_directory(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home != NULL && owned_directory(home, false))
		return home;
	pw = getpwuid(getuid());
	return pw != NULL && owned_directory(pw->pw_dir, false) ? pw->pw_dir : NULL;
}

static int in_home(const char *home, char *out, size_t size, capsula_error *err)
{
	char host[HOST_NAME_MAX + 1] = "";

	if (gethostname(host, sizeof host) < 0 || host[0] == '\0' || strchr(host, '/') != NULL)
		snprintf(host, sizeof host, "localhost");
	if ((size_t)snprintf(out, size, "%s/.capsula", home) >= size)
		return fail(err, ENAMETOOLONG, NULL, "runtime directory in %s", home);
	if (make_own_directory(out, true, err) < 0)
		return -1;
	snprintf(out, size, "%s/.capsula/run", home);
	if (make_own_directory(out, true, err) < 0)
		return -1;
	if ((size_t)snprintf(out, size, "%s/.capsula/run/%s", home, host) >= size)
		return fail(err, ENAMETOOLONG, NULL, "runtime directory in %s", home);
	return make_own_directory(out, true, err);
}

int rundir_path(char *out, size_t size, capsula_error *err)
{
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	const char *home;

	if (runtime != NULL && owned_directory(runtime, true)) {
		if ((size_t)snprintf(out, size, "%s/capsula", runtime) >= size)
			return fail(err, ENAMETOOLONG, NULL, "XDG_RUNTIME_DIR");
		return make_own_directory(out, true, err);
	}
	home = home_directory();
	if (home != NULL && in_home(home, out, size, err) == 0)
		return 0;
	snprintf(out, size, "/tmp/capsula-%u", (unsigned)getuid());
	return make_own_directory(out, true, err);
}

static int read_secret(int dir_fd, unsigned char *secret, capsula_error *err)
{
	int fd = openat(dir_fd, SECRET_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	ssize_t got;

	if (fd < 0)
		return errno == ENOENT ? 1 : fail(err, errno, NULL, "read your join secret");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 0077) != 0 || st.st_size != JOIN_SECRET_SIZE) {
		close(fd);
		return fail(err, 0, "remove it; capsula makes a new one",
		            "your join secret (%s in your runtime directory) is not a private "
		            "file of %d bytes", SECRET_FILE, JOIN_SECRET_SIZE);
	}
	got = read(fd, secret, JOIN_SECRET_SIZE);
	close(fd);
	if (got != JOIN_SECRET_SIZE)
		return fail(err, got < 0 ? errno : EIO, NULL, "read your join secret");
	return 0;
}

static int create_secret(int dir_fd, capsula_error *err)
{
	unsigned char secret[JOIN_SECRET_SIZE];
	char aside[64];
	int fd;
	int ret = 0;

	if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret)
		return fail(err, errno, NULL, "random bytes for your join secret");
	snprintf(aside, sizeof aside, "%s.%d", SECRET_FILE, (int)getpid());
	fd = openat(dir_fd, aside, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(err, errno, NULL, "write your join secret");
	if (write(fd, secret, sizeof secret) != (ssize_t)sizeof secret || close(fd) < 0)
		ret = fail(err, errno, NULL, "write your join secret");
	/* link, not rename: of processes racing here, the first one wins and
	 * every other one reads what it wrote. */
	else if (linkat(dir_fd, aside, dir_fd, SECRET_FILE, 0) < 0 && errno != EEXIST)
		ret = fail(err, errno, NULL, "put your join secret in place");
	unlinkat(dir_fd, aside, 0);
	return ret;
}

int rundir_join_secret(unsigned char secret[JOIN_SECRET_SIZE], capsula_error *err)
{
	char dir[PATH_MAX];
	int dir_fd;
	int ret;

	if (rundir_path(dir, sizeof dir, err) < 0)
		return -1;
	dir_fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir_fd < 0)
		return fail(err, errno, NULL, "runtime directory %s", dir);
	ret = read_secret(dir_fd, secret, err);
	if (ret == 1)
		ret = create_secret(dir_fd, err) < 0 ? -1 : read_secret(dir_fd, secret, err);
	close(dir_fd);
	return ret;
}
