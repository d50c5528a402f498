/* Building the container's root: the image itself, or with layers a tmpfs
 * scaffold holding the top-level entries of their read-only overlay, or a
 * writable overlay; binds resolved inside it, then pivot_root. The image is
 * read-only: a missing mount point in one of its directories is served by
 * the image server itself; elsewhere (layers) it is made by covering its
 * parent with a tmpfs that repeats the parent's entries ("underlay"). */
#ifndef CAPSULA_ROOTFS_H
#define CAPSULA_ROOTFS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

#define ROOTFS_MAX_SCAFFOLDS 64

struct image_fs;

struct rootfs {
	int root_fd;   /* the new root */
	dev_t root_dev;  /* and its identity */
	ino_t root_ino;
	int host_fd;   /* the host's root, while it is still reachable */
	int scaffold_fds[ROOTFS_MAX_SCAFFOLDS];  /* tmpfs mounts to seal read-only */
	size_t scaffold_count;
	/* The file systems capsula made the root of (image, scaffolding): only
	 * their symlinks are followed on the way to a mount point. */
	dev_t own_devs[ROOTFS_MAX_SCAFFOLDS + 1];
	size_t own_dev_count;
	/* The image as served in-process, when it is the root itself (no
	 * layers, no overlay): root_dev is then the image's file system. */
	struct image_fs *image;
	int verbosity;
};

/* Move this process onto a private tmpfs stage: afterwards "/" is the stage,
 * the host is under /oldroot, and stage_fd is open on the stage. */
int stage_enter(int *stage_fd, int *host_fd, capsula_error *err);

/* Make the image mounted at stage path image_dir, served in-process as
 * served, the root itself: its server makes the mount points it lacks. */
int rootfs_from_served_image(struct rootfs *rfs, int stage_fd, const char *image_dir,
                             struct image_fs *served, capsula_error *err);

/* Make rootfs->root_fd a tmpfs at stage path root_dir holding the entries of
 * the image mounted at image_dir. */
int rootfs_from_image(struct rootfs *rfs, int stage_fd, const char *image_dir,
                      const char *root_dir, capsula_error *err);

/* Make rootfs->root_fd the writable overlay overlay_fd (detached), mounted
 * at stage path root_dir: mount points are made in it directly. */
int rootfs_from_overlay(struct rootfs *rfs, int stage_fd, int overlay_fd, const char *root_dir,
                        capsula_error *err);

/* A detached tmpfs (nosuid, nodev) of that mode; size NULL: the kernel's
 * default (half of the memory). */
int rootfs_new_tmpfs(mode_t mode, const char *size, int *mnt_fd, capsula_error *err);

/* rootfs_new_tmpfs, mounted at stage path dir; *mnt_fd stays open on it. */
int rootfs_stage_tmpfs(int stage_fd, const char *dir, mode_t mode, const char *size,
                       int *mnt_fd, capsula_error *err);

/* Mount an empty tmpfs at path inside the root (for a minimal /dev). */
int rootfs_mount_tmpfs(struct rootfs *rfs, const char *path, capsula_error *err);
/* A new devpts instance at path (pseudo-terminals of the container's own,
 * as a build step's package manager opens), and /dev/ptmx to its ptmx. */
int rootfs_mount_devpts(struct rootfs *rfs, const char *path, capsula_error *err);
/* An empty, writable tmpfs of the container's own (--contain). */
int rootfs_mount_private_tmpfs(struct rootfs *rfs, const char *path, capsula_error *err);

/* Bind from_fd/from_path (relative to from_fd) onto destination inside the
 * root, with BIND_* flags; always nosuid, nodev unless allow_devices. */
int rootfs_bind(struct rootfs *rfs, int from_fd, const char *from_path,
                const char *destination, unsigned flags, bool allow_devices,
                capsula_error *err);

/* Open path inside the root for reading; symlinks stay inside. */
int rootfs_open(struct rootfs *rfs, const char *path, int flags);
/* The image's own file at path, when the root is the served image and the
 * kernel finds that file there without a symlink or a mount on the way:
 * read in-process (no open, read and release through the mount), at most
 * max bytes, into *text (to free). Returns 1 when it was, 0 when the file
 * must be read through the root. */
int rootfs_read_image_file(struct rootfs *rfs, const char *path, size_t max, char **text,
                           size_t *length);

int rootfs_symlink(struct rootfs *rfs, const char *target, const char *path,
                   capsula_error *err);

/* Make the scaffolding tmpfs mounts read-only. */
int rootfs_seal(struct rootfs *rfs, capsula_error *err);

/* pivot_root into the new root and drop the stage and the host from view. */
int rootfs_enter(struct rootfs *rfs, capsula_error *err);

#endif
