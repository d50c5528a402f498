#include "config.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/open_in_root.h"

static int open_resolving(int root_fd, const char *path, int flags, unsigned long long resolve)
{
	struct open_how how = {.flags = (unsigned long long)(flags | O_CLOEXEC), .resolve = resolve};

	while (*path == '/')
		path++;
	if (*path == '\0')
		path = ".";
	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

int open_in_root(int root_fd, const char *path, int flags)
{
	/* RESOLVE_IN_ROOT: nothing in the tree can point a path outside it. */
	return open_resolving(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

int open_in_root_no_symlinks(int root_fd, const char *path, int flags)
{
	return open_resolving(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
}
