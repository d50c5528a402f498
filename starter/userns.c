#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "starter/userns.h"

#define USERNS_HINT \
	"user namespaces look disabled: ask the admin to set " \
	"user.max_user_namespaces > 0 (and kernel.unprivileged_userns_clone=1 " \
	"or kernel.apparmor_restrict_unprivileged_userns=0 where those exist)"

static int write_file(const char *path, const char *text, capsula_error *err)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t written;

	if (fd < 0)
		return fail(err, errno, NULL, "open %s", path);
	written = write(fd, text, len);
	if (written < 0 || (size_t)written != len) {
		int saved = written < 0 ? errno : EIO;

		close(fd);
		return fail(err, saved, NULL, "write '%.*s' to %s", (int)(len - 1), text, path);
	}
	if (close(fd) < 0)
		return fail(err, errno, NULL, "close %s", path);
	return 0;
}

bool uid_is_overflow(uid_t uid)
{
	unsigned overflow = 65534;
	FILE *f = fopen("/proc/sys/kernel/overflowuid", "re");

	if (f != NULL) {
		if (fscanf(f, "%u", &overflow) != 1)
			overflow = 65534;
		fclose(f);
	}
	return uid == (uid_t)overflow;
}

int userns_create(uid_t uid, gid_t gid, capsula_error *err)
{
	char map[64];

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		if (errno == ENOSPC)
			return fail(err, errno, "end some of your containers (capsula instance list), or "
			            "ask the admin to raise user.max_user_namespaces",
			            "cannot create a user namespace: your user namespaces are "
			            "exhausted");
		if (errno == EUSERS)
			return fail(err, errno, "run capsula from a less deeply nested container",
			            "cannot create a user namespace: 32 levels are nested already");
		if (errno == EPERM || errno == EINVAL)
			return fail(err, errno, USERNS_HINT, "cannot create a user namespace");
		return fail(err, errno, NULL, "cannot create a user namespace");
	}
	/* setgroups must be denied before an unprivileged gid_map is accepted. */
	if (write_file("/proc/self/setgroups", "deny\n", err) < 0)
		return -1;
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (write_file("/proc/self/uid_map", map, err) < 0)
		return -1;
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	if (write_file("/proc/self/gid_map", map, err) < 0)
		return -1;
	/* Slave, not private: a file system the admin mounts later on the host
	 * (an automounted project directory) still shows up inside. */
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return fail(err, errno, NULL, "make / a recursive slave mount");
	return 0;
}
