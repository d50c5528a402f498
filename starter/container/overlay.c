#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "starter/container/overlay.h"
#include "starter/container/rootfs.h"

int overlay_lower_dirs(const struct capsula_plan *plan, char *out, size_t size,
                       capsula_error *err)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = plan->layer_count; i > 0; i--) {
		int n = snprintf(out + used, size - used, "/layer%zu:", i - 1);

		if (n < 0 || (size_t)n >= size - used)
			return fail(err, ENAMETOOLONG, NULL, "overlay layers");
		used += (size_t)n;
	}
	if ((size_t)snprintf(out + used, size - used, "/image") >= size - used)
		return fail(err, ENAMETOOLONG, NULL, "overlay layers");
	return 0;
}

int overlay_tmpfs(int stage_fd, const char *dir, unsigned long long bytes, capsula_error *err)
{
	char size[32];
	int mnt_fd, dir_fd;

	snprintf(size, sizeof size, "%llu", bytes);
	if (mkdirat(stage_fd, dir, 0700) < 0)
		return fail(err, errno, NULL, "mkdir %s on the stage", dir);
	if (rootfs_stage_tmpfs(stage_fd, dir, 0755, size, &mnt_fd, err) < 0)
		return -1;
	close(mnt_fd);
	dir_fd = openat(stage_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return fail(err, errno, NULL, "open the writable tmpfs");
	if (mkdirat(dir_fd, "upper", 0755) < 0 || mkdirat(dir_fd, "work", 0700) < 0) {
		int saved = errno;

		close(dir_fd);
		return fail(err, saved, NULL, "make the writable tmpfs's directories");
	}
	close(dir_fd);
	return 0;
}

static int set_string(int fs_fd, const char *key, const char *value, capsula_error *err)
{
	if (fsconfig(fs_fd, FSCONFIG_SET_STRING, key, value, 0) < 0)
		return fail(err, errno, NULL, "overlay %s=%s", key, value);
	return 0;
}

int overlay_mount(const char *lower, const char *upper, const char *work, int *mnt_fd,
                  capsula_error *err)
{
	int fs_fd = fsopen("overlay", FSOPEN_CLOEXEC);
	int ret = -1;

	if (fs_fd < 0)
		return fail(err, errno, "load the overlay module (modprobe overlay)",
		            "the kernel has no overlayfs");
	if (set_string(fs_fd, "lowerdir", lower, err) < 0 ||
	    (upper != NULL && (set_string(fs_fd, "upperdir", upper, err) < 0 ||
	                       set_string(fs_fd, "workdir", work, err) < 0)))
		goto out;
	/* Its own records (whiteouts, opaque directories) go in user.overlay.*
	 * attributes, the only ones a user namespace may write. */
	if (fsconfig(fs_fd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0) {
		fail(err, errno, "capsula's overlays need Linux 5.11 or newer", "overlay userxattr");
		goto out;
	}
	if (fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		fail(err, errno, upper != NULL && errno == EINVAL ?
		     "the upper directory must be on a file system with user extended attributes "
		     "(not NFS); try another --overlay DIR" : "capsula's overlays need Linux 5.11 "
		     "or newer", "cannot mount the overlay%s%s", upper ? " with upper " : "",
		     upper ? upper : "");
		goto out;
	}
	*mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
	                  (upper ? 0 : MOUNT_ATTR_RDONLY));
	if (*mnt_fd < 0)
		fail(err, errno, NULL, "fsmount the overlay");
	else
		ret = 0;
out:
	close(fs_fd);
	return ret;
}
