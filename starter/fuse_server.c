#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <squashfuse/ll.h>

#include "starter/fuse_server.h"

static const struct fuse_lowlevel_ops squashfs_operations = {
	.lookup = sqfs_ll_op_lookup,
	.forget = sqfs_ll_op_forget,
	.getattr = sqfs_ll_op_getattr,
	.readlink = sqfs_ll_op_readlink,
	.open = sqfs_ll_op_open,
	.read = sqfs_ll_op_read,
	.release = sqfs_ll_op_release,
	.opendir = sqfs_ll_op_opendir,
	.readdir = sqfs_ll_op_readdir,
	.releasedir = sqfs_ll_op_releasedir,
	.statfs = stfs_ll_op_statfs,
	.getxattr = sqfs_ll_op_getxattr,
	.listxattr = sqfs_ll_op_listxattr,
};

static void *serve(void *arg)
{
	struct fuse_session *session = arg;

	fuse_session_loop(session);
	return NULL;
}

static int open_squashfs(const struct capsula_image *image, sqfs_ll **out,
                         capsula_error *err)
{
	sqfs_ll *ll = calloc(1, sizeof *ll);
	sqfs_err status;

	if (ll == NULL)
		return fail(err, errno, NULL, "image %s", image->path);
	status = sqfs_init(&ll->fs, image->fd, (size_t)image->offset);
	if (status != SQFS_OK) {
		free(ll);
		return fail(err, 0, status == SQFS_BADCOMP ?
		            "rebuild the image with gzip, xz, lz4 or zstd compression" :
		            "rebuild it with mksquashfs or capsula build",
		            "libsquashfuse cannot read image %s (error %d)", image->path, status);
	}
	if (sqfs_ll_init(ll) != SQFS_OK) {
		sqfs_destroy(&ll->fs);
		free(ll);
		return fail(err, 0, NULL, "libsquashfuse cannot index image %s", image->path);
	}
	*out = ll;
	return 0;
}

int fuse_device_open(int *fd_out, capsula_error *err)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
			return fail(err, errno, "install fuse3 and load the fuse module (modprobe fuse)",
			            "cannot open /dev/fuse");
		return fail(err, errno, "ask the admin to make /dev/fuse mode 0666 (as fuse3's udev rule does)",
		            "cannot open /dev/fuse");
	}
	*fd_out = fd;
	return 0;
}

int fuse_server_start(const struct capsula_image *image, int fuse_fd,
                      const char *mountpoint, uid_t uid, gid_t gid, capsula_error *err)
{
	char *fake_argv[] = {"capsula", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, fake_argv);
	struct fuse_session *session;
	char source[4096 + 16];
	char options[256];
	char device[32];
	pthread_t thread;
	sqfs_ll *ll = NULL;
	int ret;

	if (open_squashfs(image, &ll, err) < 0)
		return -1;
	snprintf(source, sizeof source, "capsula:%s", image->path);
	snprintf(options, sizeof options,
	         "fd=%d,rootmode=40000,user_id=%u,group_id=%u,default_permissions",
	         fuse_fd, (unsigned)uid, (unsigned)gid);
	if (mount(source, mountpoint, "fuse", MS_RDONLY | MS_NOSUID | MS_NODEV, options) < 0)
		return fail(err, errno,
		            "the kernel must allow FUSE mounts in user namespaces (Linux 4.18+)",
		            "cannot mount the image with FUSE");

	session = fuse_session_new(&args, &squashfs_operations, sizeof squashfs_operations, ll);
	if (session == NULL)
		return fail(err, 0, NULL, "cannot start the FUSE session");
	/* "/dev/fd/N" tells libfuse the device is already open and mounted. */
	snprintf(device, sizeof device, "/dev/fd/%d", fuse_fd);
	if (fuse_session_mount(session, device) != 0)
		return fail(err, 0, NULL, "cannot attach the FUSE session to /dev/fuse");
	ret = pthread_create(&thread, NULL, serve, session);
	if (ret != 0)
		return fail(err, ret, NULL, "cannot start the FUSE server thread");
	pthread_detach(thread);
	return 0;
}
