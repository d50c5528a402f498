#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "common/timing.h"
#include "starter/container/container.h"
#include "starter/container/overlay.h"
#include "starter/container/rootfs.h"
#include "starter/container/userns.h"
#include "starter/imageserver/fuse_server.h"
#include "starter/imageserver/image_fs.h"
#include "starter/imageserver/prefetch.h"

static int open_namespaces(struct container *c, capsula_error *err)
{
	c->userns_fd = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	if (c->userns_fd < 0)
		return fail(err, errno, NULL, "open /proc/self/ns/user");
	c->mntns_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (c->mntns_fd < 0)
		return fail(err, errno, NULL, "open /proc/self/ns/mnt");
	return 0;
}

static int make_minimal_dev(struct rootfs *rfs, capsula_error *err)
{
	static const char *const links[][2] = {
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
	};

	if (rootfs_mount_tmpfs(rfs, "/dev", err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		if (rootfs_symlink(rfs, links[i][0], links[i][1], err) < 0)
			return -1;
	return 0;
}

static int apply_binds(struct rootfs *rfs, const struct capsula_plan *plan,
                       capsula_error *err)
{
	for (size_t i = 0; i < plan->bind_count; i++) {
		const struct capsula_bind *b = &plan->binds[i];
		const char *relative = b->source[1] ? b->source + 1 : ".";

		if ((b->flags & BIND_DEVPTS) != 0) {
			if (rootfs_mount_devpts(rfs, b->destination, err) < 0)
				return -1;
			continue;
		}
		if ((b->flags & BIND_TMPFS) != 0) {
			if (rootfs_mount_private_tmpfs(rfs, b->destination, err) < 0)
				return -1;
			continue;
		}
		if (rootfs_bind(rfs, rfs->host_fd, relative, b->destination, b->flags,
		                (b->flags & BIND_DEVICES) != 0, err) == 0)
			continue;
		if (!(b->flags & BIND_OPTIONAL))
			return -1;
		if (plan->verbosity > 0)
			fprintf(stderr, "capsula: skipped optional bind: %s\n", err->message);
	}
	return 0;
}

/* The read-only layers, each served like the image, at /layer0.. (their
 * /dev/fuse descriptors opened before the stage hid /dev). */
static int serve_layers(const struct capsula_plan *plan, int stage_fd, const int *fuse_fds,
                        struct image_fs **served, capsula_error *err)
{
	for (size_t i = 0; i < plan->layer_count; i++) {
		char dir[32];

		snprintf(dir, sizeof dir, "layer%zu", i);
		if (mkdirat(stage_fd, dir, 0700) < 0)
			return fail(err, errno, NULL, "mkdir %s on the stage", dir);
		snprintf(dir, sizeof dir, "/layer%zu", i);
		if (fuse_server_start(plan, &plan->layers[i], fuse_fds[i], dir, &served[i], err) < 0)
			return -1;
	}
	return 0;
}

/* The root: the image itself; or, with layers, an overlay of them, its
 * entries on a tmpfs; with a writable layer, that overlay itself. */
static int build_root(struct rootfs *rfs, const struct capsula_plan *plan, int stage_fd,
                      struct image_fs *served, capsula_error *err)
{
	char lower[512], upper[4200], work[4200];
	int overlay_fd, ret;

	if (plan->overlay == OVERLAY_NONE && plan->layer_count == 0)
		return rootfs_from_served_image(rfs, stage_fd, "image", served, err);
	if (overlay_lower_dirs(plan, lower, sizeof lower, err) < 0)
		return -1;
	if (plan->overlay == OVERLAY_NONE) {
		if (mkdirat(stage_fd, "merged", 0700) < 0)
			return fail(err, errno, NULL, "mkdir merged on the stage");
		if (overlay_mount(lower, NULL, NULL, &overlay_fd, err) < 0)
			return -1;
		ret = move_mount(overlay_fd, "", stage_fd, "merged", MOVE_MOUNT_F_EMPTY_PATH);
		if (ret < 0)
			fail(err, errno, NULL, "mount the image's layers");
		close(overlay_fd);
		return ret < 0 ? -1 : rootfs_from_image(rfs, stage_fd, "merged", "root", err);
	}
	if (plan->overlay == OVERLAY_TMPFS) {
		if (overlay_tmpfs(stage_fd, "rw", plan->tmpfs_bytes, err) < 0)
			return -1;
		snprintf(upper, sizeof upper, "/rw/upper");
		snprintf(work, sizeof work, "/rw/work");
	} else {
		snprintf(upper, sizeof upper, "/oldroot%s/upper", plan->overlay_dir);
		snprintf(work, sizeof work, "/oldroot%s/work", plan->overlay_dir);
	}
	if (overlay_mount(lower, upper, work, &overlay_fd, err) < 0)
		return -1;
	ret = rootfs_from_overlay(rfs, stage_fd, overlay_fd, "root", err);
	close(overlay_fd);
	return ret;
}

int container_build(const struct capsula_plan *plan, const struct identity *id,
                    struct container *c, capsula_error *err)
{
	struct rootfs rfs = {.root_fd = -1, .host_fd = -1, .verbosity = plan->verbosity};
	struct image_fs *layers_served[MAX_IMAGE_LAYERS];
	int layer_fuse_fds[MAX_IMAGE_LAYERS];
	uint64_t t = timing_now_us();
	struct image_fs *served;
	int stage_fd;
	int fuse_fd;

	if (plan->layer_count > MAX_IMAGE_LAYERS)
		return fail(err, E2BIG, NULL, "%zu image layers", plan->layer_count);
	if (userns_create_for(plan, err) < 0)
		return -1;
	/* Peers the holder cannot map read as the overflow uid: its user must
	 * never be that uid, or it would admit anyone. */
	if (uid_is_overflow(plan->uid))
		return fail(err, 0, "run as a regular account",
		            "uid %u is the kernel's overflow uid (kernel.overflowuid): inside a user "
		            "namespace every unmapped user reads as it, so a container could not "
		            "tell its owner from other users", (unsigned)plan->uid);
	if (open_namespaces(c, err) < 0 || fuse_device_open(&fuse_fd, err) < 0)
		return -1;
	for (size_t i = 0; i < plan->layer_count; i++)
		if (fuse_device_open(&layer_fuse_fds[i], err) < 0)
			return -1;
	t = timing_report(plan->timing, "  user+mount namespaces", t);
	if (stage_enter(&stage_fd, &rfs.host_fd, err) < 0)
		return -1;
	t = timing_report(plan->timing, "  stage", t);
	if (fuse_server_start(plan, &plan->image, fuse_fd, "/image", &served, err) < 0)
		return -1;
	c->prefetch = prefetch_start(served, plan, "/image");
	if (serve_layers(plan, stage_fd, layer_fuse_fds, layers_served, err) < 0)
		return -1;
	t = timing_report(plan->timing, "  image mount (FUSE)", t);
	if (build_root(&rfs, plan, stage_fd, served, err) < 0)
		return -1;
	t = timing_report(plan->timing, "  root", t);
	if (plan->dev_mode == DEV_MINIMAL && make_minimal_dev(&rfs, err) < 0)
		return -1;
	if (apply_binds(&rfs, plan, err) < 0)
		return -1;
	t = timing_report(plan->timing, "  binds", t);
	/* With --fakeroot the user is the image's root: its own files are right. */
	if (!plan->fakeroot && identity_install(&rfs, stage_fd, id, plan->home, err) < 0)
		return -1;
	t = timing_report(plan->timing, "  passwd/group", t);
	if (rootfs_seal(&rfs, err) < 0 || rootfs_enter(&rfs, err) < 0)
		return -1;
	image_fs_built(served);
	c->served = served;
	for (size_t i = 0; i < plan->layer_count; i++)
		image_fs_built(layers_served[i]);
	close(stage_fd);
	timing_report(plan->timing, "  pivot_root", t);
	return 0;
}
