#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/plan/rundir.h"

#define SOCKETS_DIR "sockets"

static bool owned_directory(const char *path, bool private_only)
{
	struct stat st;

	return path[0] == '/' && lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
	       st.st_uid == getuid() && (!private_only || (st.st_mode & 0077) == 0);
}

/* A directory of the user's that was opened to others (by hand, or by a
 * program stopped half-way) is closed again rather than given up: giving
 * it up would move the runtime directory, and ranks that still found the
 * old one would start containers of their own. Only the owner could have
 * opened it, and each level below is checked on its own. */
static void close_opened_directory(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_uid == getuid() && (st.st_mode & 0077) != 0 &&
	    fchmod(fd, 0700) == 0)
		fprintf(stderr, "capsula: warning: %s was open to other users (mode %04o); it is "
		        "private again (0700)\n", path, (unsigned)(st.st_mode & 07777));
	close(fd);
}

/* mkdir path 0700 unless it is there; it must then be ours, no symlink, and
 * (private) closed to others. */
static int make_own_directory(const char *path, bool private, capsula_error *err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return fail(err, errno, "set XDG_RUNTIME_DIR to a private directory of yours",
		            "runtime directory %s", path);
	if (owned_directory(path, private))
		return 0;
	if (private && owned_directory(path, false))
		close_opened_directory(path);
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

int rundir_open_sockets(int *fd_out, capsula_error *err)
{
	char dir[PATH_MAX];
	struct stat st;
	int fd;

	if (rundir_path(dir, sizeof dir, err) < 0)
		return -1;
	if (strlen(dir) + sizeof "/" SOCKETS_DIR > sizeof dir)
		return fail(err, ENAMETOOLONG, NULL, "runtime directory %s", dir);
	strcat(dir, "/" SOCKETS_DIR);
	if (make_own_directory(dir, true, err) < 0)
		return -1;
	fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errno, NULL, "runtime directory %s", dir);
	/* The directory that is open, not the one the name led to a moment ago. */
	if (fstat(fd, &st) < 0 || st.st_uid != getuid() || (st.st_mode & 0077) != 0) {
		close(fd);
		return fail(err, errno, "remove it; capsula makes it again",
		            "%s is not a private directory of yours", dir);
	}
	*fd_out = fd;
	return 0;
}
