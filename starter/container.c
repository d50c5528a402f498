#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "starter/container.h"
#include "starter/fuse_server.h"
#include "starter/image_fs.h"
#include "starter/prefetch.h"
#include "starter/rootfs.h"
#include "common/timing.h"
#include "starter/userns.h"

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

int container_build(const struct capsula_plan *plan, const struct identity *id,
                    struct container *c, capsula_error *err)
{
	struct rootfs rfs = {.root_fd = -1, .host_fd = -1, .verbosity = plan->verbosity};
	uint64_t t = timing_now_us();
	struct image_fs *served;
	int stage_fd;
	int fuse_fd;

	if (userns_create(plan->uid, plan->gid, err) < 0)
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
	t = timing_report(plan->timing, "user+mount namespaces", t);
	if (stage_enter(&stage_fd, &rfs.host_fd, err) < 0)
		return -1;
	t = timing_report(plan->timing, "stage", t);
	if (fuse_server_start(plan, fuse_fd, "/image", &served, err) < 0)
		return -1;
	prefetch_start(served, plan);
	t = timing_report(plan->timing, "image mount (FUSE)", t);
	if (rootfs_from_image(&rfs, stage_fd, "image", "root", err) < 0)
		return -1;
	t = timing_report(plan->timing, "root scaffold", t);
	if (plan->dev_mode == DEV_MINIMAL && make_minimal_dev(&rfs, err) < 0)
		return -1;
	if (apply_binds(&rfs, plan, err) < 0)
		return -1;
	t = timing_report(plan->timing, "binds", t);
	if (identity_install(&rfs, stage_fd, id, plan->home, err) < 0)
		return -1;
	t = timing_report(plan->timing, "passwd/group", t);
	if (rootfs_seal(&rfs, err) < 0 || rootfs_enter(&rfs, err) < 0)
		return -1;
	image_fs_built(served);
	close(stage_fd);
	timing_report(plan->timing, "pivot_root", t);
	return 0;
}
