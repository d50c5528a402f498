#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/open_in_root.h"
#include "common/plan.h"
#include "starter/container/rootfs.h"
#include "starter/imageserver/fuse_server.h"
#include "starter/imageserver/mount_points.h"

int rootfs_open(struct rootfs *rfs, const char *path, int flags)
{
	return open_in_root(rfs->root_fd, path, flags);
}

static int pivot_root(const char *new_root, const char *put_old)
{
	return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int stage_enter(int *stage_fd, int *host_fd, capsula_error *err)
{
	static const char *const dirs[] = {"/tmp/oldroot", "/tmp/image", "/tmp/root", NULL};

	/* /tmp only as a place to stand: this mount lives in our namespace and
	 * the host's /tmp is reachable again under /oldroot once we pivot. */
	if (mount("capsula-stage", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0)
		return fail(err, errno, NULL, "mount the staging tmpfs");
	for (size_t i = 0; dirs[i] != NULL; i++)
		if (mkdir(dirs[i], 0700) < 0)
			return fail(err, errno, NULL, "mkdir %s on the stage", dirs[i]);
	if (pivot_root("/tmp", "/tmp/oldroot") < 0)
		return fail(err, errno, NULL, "pivot_root onto the stage");
	if (chdir("/") < 0)
		return fail(err, errno, NULL, "chdir to the stage");
	*stage_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*stage_fd < 0)
		return fail(err, errno, NULL, "open the stage");
	*host_fd = open("/oldroot", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*host_fd < 0)
		return fail(err, errno, NULL, "open the host root");
	return 0;
}

#define SCAFFOLD_SIZE "4m"

int rootfs_new_tmpfs(mode_t mode, const char *size, int *mnt_fd, capsula_error *err)
{
	char mode_text[16];
	int fs_fd = fsopen("tmpfs", FSOPEN_CLOEXEC);

	if (fs_fd < 0)
		return fail(err, errno, "capsula needs Linux 5.12 or newer", "fsopen tmpfs");
	snprintf(mode_text, sizeof mode_text, "%04o", (unsigned)(mode & 07777));
	if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "mode", mode_text, 0) < 0 ||
	    (size != NULL && fsconfig(fs_fd, FSCONFIG_SET_STRING, "size", size, 0) < 0) ||
	    fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int saved = errno;

		close(fs_fd);
		return fail(err, saved, NULL, "configure a scaffolding tmpfs");
	}
	*mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	close(fs_fd);
	if (*mnt_fd < 0)
		return fail(err, errno, NULL, "fsmount a scaffolding tmpfs");
	return 0;
}

static int remember_own_fs(struct rootfs *rfs, int fd, capsula_error *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fail(err, errno, NULL, "stat the container's scaffolding");
	if (rfs->own_dev_count < sizeof rfs->own_devs / sizeof rfs->own_devs[0])
		rfs->own_devs[rfs->own_dev_count++] = st.st_dev;
	return 0;
}

static bool is_own_fs(const struct rootfs *rfs, dev_t dev)
{
	for (size_t i = 0; i < rfs->own_dev_count; i++)
		if (rfs->own_devs[i] == dev)
			return true;
	return false;
}

static int remember_scaffold(struct rootfs *rfs, int mnt_fd, capsula_error *err)
{
	if (rfs->scaffold_count == ROOTFS_MAX_SCAFFOLDS) {
		close(mnt_fd);
		return fail(err, 0, "use fewer binds into the image's directories",
		            "more than %d directories needed new mount points",
		            ROOTFS_MAX_SCAFFOLDS);
	}
	rfs->scaffold_fds[rfs->scaffold_count++] = mnt_fd;
	return remember_own_fs(rfs, mnt_fd, err);
}

static int clone_onto(int from_fd, const char *from_path, int to_fd, const char *to_path,
                      capsula_error *err)
{
	int tree = open_tree(from_fd, from_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
	                     AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);

	if (tree < 0)
		return fail(err, errno, NULL, "clone mount %s", from_path);
	if (move_mount(tree, "", to_fd, to_path, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		int saved = errno;

		close(tree);
		return fail(err, saved, NULL, "attach mount at %s", to_path);
	}
	close(tree);
	return 0;
}

static int replicate_entry(struct rootfs *rfs, int from_fd, int to_fd, const char *name,
                           unsigned char type, capsula_error *err)
{
	char target[PATH_MAX];
	ssize_t len;
	int fd;

	switch (type) {
	case DT_LNK:
		len = readlinkat(from_fd, name, target, sizeof target - 1);
		if (len < 0)
			return fail(err, errno, NULL, "readlink image entry %s", name);
		target[len] = '\0';
		if (symlinkat(target, to_fd, name) < 0)
			return fail(err, errno, NULL, "copy symlink %s", name);
		return 0;
	case DT_DIR:
		if (mkdirat(to_fd, name, 0755) < 0)
			return fail(err, errno, NULL, "mkdir %s", name);
		return clone_onto(from_fd, name, to_fd, name, err);
	case DT_REG:
		fd = openat(to_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail(err, errno, NULL, "create %s", name);
		close(fd);
		return clone_onto(from_fd, name, to_fd, name, err);
	default:
		/* Device nodes, fifos and sockets of the image are left out. */
		if (rfs->verbosity > 1)
			fprintf(stderr, "capsula: skipping special file %s in the image\n", name);
		return 0;
	}
}

/* Repeat every entry of from_fd in the empty directory to_fd: directories
 * and files as bind mounts, symlinks as copies. */
static int replicate_entries(struct rootfs *rfs, int from_fd, int to_fd, const char *path,
                             capsula_error *err)
{
	int dir_fd = openat(from_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *entry;
	DIR *dir;
	int ret = 0;

	if (dir_fd < 0)
		return fail(err, errno, NULL, "read the image directory %s", path);
	dir = fdopendir(dir_fd);
	if (dir == NULL) {
		close(dir_fd);
		return fail(err, errno, NULL, "read the image directory %s", path);
	}
	while (ret == 0 && (errno = 0, entry = readdir(dir)) != NULL) {
		const char *name = entry->d_name;
		unsigned char type = entry->d_type;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		/* Every stat here is a round trip to the FUSE server: readdir's
		 * d_type usually makes it unnecessary. */
		if (type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(from_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				ret = fail(err, errno, NULL, "stat image entry %s", name);
				break;
			}
			type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISDIR(st.st_mode) ? DT_DIR :
			       S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		}
		ret = replicate_entry(rfs, from_fd, to_fd, name, type, err);
	}
	if (ret == 0 && errno != 0)
		ret = fail(err, errno, NULL, "read the image directory %s", path);
	closedir(dir);
	return ret;
}

int rootfs_stage_tmpfs(int stage_fd, const char *dir, mode_t mode, const char *size,
                       int *mnt_fd, capsula_error *err)
{
	if (rootfs_new_tmpfs(mode, size, mnt_fd, err) < 0)
		return -1;
	if (move_mount(*mnt_fd, "", stage_fd, dir, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		int saved = errno;

		close(*mnt_fd);
		return fail(err, saved, NULL, "mount a tmpfs at %s on the stage", dir);
	}
	return 0;
}

/* rfs->root_fd and its identity, from the mount at stage path root_dir. */
static int open_root(struct rootfs *rfs, int stage_fd, const char *root_dir, capsula_error *err)
{
	struct stat root_st;

	rfs->root_fd = openat(stage_fd, root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfs->root_fd < 0 || fstat(rfs->root_fd, &root_st) < 0)
		return fail(err, errno, NULL, "open the new root");
	rfs->root_dev = root_st.st_dev;
	rfs->root_ino = root_st.st_ino;
	return 0;
}

int rootfs_from_overlay(struct rootfs *rfs, int stage_fd, int overlay_fd, const char *root_dir,
                        capsula_error *err)
{
	if (move_mount(overlay_fd, "", stage_fd, root_dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return fail(err, errno, NULL, "mount the overlay as the root");
	if (open_root(rfs, stage_fd, root_dir, err) < 0)
		return -1;
	return remember_own_fs(rfs, rfs->root_fd, err);
}

int rootfs_from_image(struct rootfs *rfs, int stage_fd, const char *image_dir,
                      const char *root_dir, capsula_error *err)
{
	int image_fd;
	int mnt_fd;
	int ret;

	if (rootfs_stage_tmpfs(stage_fd, root_dir, 0755, SCAFFOLD_SIZE, &mnt_fd, err) < 0 ||
	    remember_scaffold(rfs, mnt_fd, err) < 0 || open_root(rfs, stage_fd, root_dir, err) < 0)
		return -1;
	image_fd = openat(stage_fd, image_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (image_fd < 0)
		return fail(err, errno, NULL, "open the mounted image");
	ret = remember_own_fs(rfs, image_fd, err);
	if (ret == 0)
		ret = replicate_entries(rfs, image_fd, rfs->root_fd, "/", err);
	close(image_fd);
	return ret;
}

int rootfs_from_served_image(struct rootfs *rfs, int stage_fd, const char *image_dir,
                             struct image_fs *served, capsula_error *err)
{
	if (open_root(rfs, stage_fd, image_dir, err) < 0)
		return -1;
	rfs->image = served;
	return remember_own_fs(rfs, rfs->root_fd, err);
}

int rootfs_read_image_file(struct rootfs *rfs, const char *path, size_t max, char **text,
                           size_t *length)
{
	struct stat st;
	int fd, ret;

	if (rfs->image == NULL)
		return 0;
	fd = open_in_root_no_symlinks(rfs->root_fd, path, O_PATH);
	if (fd < 0)
		return 0;
	ret = fstat(fd, &st);
	close(fd);
	if (ret < 0 || st.st_dev != rfs->root_dev || !S_ISREG(st.st_mode))
		return 0;
	return fuse_server_read_file(rfs->image, (uint64_t)st.st_ino, max, text, length) == 1;
}

/* Cover the read-only directory at path with a tmpfs repeating its
 * entries, so that new mount points can be made in it. */
static int underlay(struct rootfs *rfs, const char *path, capsula_error *err)
{
	int orig_fd = open_in_root(rfs->root_fd, path, O_PATH | O_DIRECTORY);
	struct stat st;
	int mnt_fd;

	if (orig_fd < 0)
		return fail(err, errno, NULL, "open %s in the image", path);
	if (fstat(orig_fd, &st) < 0) {
		int saved = errno;

		close(orig_fd);
		return fail(err, saved, NULL, "stat %s in the image", path);
	}
	if (rootfs_new_tmpfs(st.st_mode, SCAFFOLD_SIZE, &mnt_fd, err) < 0) {
		close(orig_fd);
		return -1;
	}
	if (move_mount(mnt_fd, "", orig_fd, "",
	               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
		int saved = errno;

		close(orig_fd);
		close(mnt_fd);
		return fail(err, saved, NULL, "cover %s with a tmpfs", path);
	}
	if (remember_scaffold(rfs, mnt_fd, err) < 0 ||
	    replicate_entries(rfs, orig_fd, mnt_fd, path, err) < 0) {
		close(orig_fd);
		return -1;
	}
	close(orig_fd);
	return 0;
}

/* Copy the directory part of an absolute path into parent; return the
 * last component. */
static const char *split_parent(const char *path, char *parent, size_t size)
{
	const char *name = strrchr(path, '/') + 1;

	snprintf(parent, size, "%.*s", (int)(name - path), path);
	return name;
}

/* The image server's inode number for parent_fd when it is one of the
 * image's own directories (the image being the root): 1 with *ino; 0 when
 * it is not; -1 with errno when it cannot be told. */
static int image_directory(struct rootfs *rfs, int parent_fd, uint64_t *ino)
{
	struct stat st;

	if (rfs->image == NULL)
		return 0;
	if (fstat(parent_fd, &st) < 0)
		return -1;
	if (st.st_dev != rfs->root_dev)  /* the image is the root */
		return 0;
	*ino = (uint64_t)st.st_ino;
	return 1;
}

static int add_mount_point_to_image(struct rootfs *rfs, uint64_t parent, const char *name,
                                    bool want_dir, capsula_error *err)
{
	if (fuse_server_add_mount_point(rfs->image, parent, name, want_dir) < 0)
		return fail(err, 0, "use fewer binds to places the image lacks",
		            "more than %d mount points the image lacks", MOUNT_POINTS_MAX);
	return 0;
}

/* In a directory of the image itself, the image server makes the entry:
 * no tmpfs, no listing of the directory. Returns 0 when it did, 1 when the
 * directory is not the image's, -1 with err when it cannot. */
static int add_to_image(struct rootfs *rfs, int parent_fd, const char *name, bool want_dir,
                        capsula_error *err)
{
	uint64_t parent;
	int found = image_directory(rfs, parent_fd, &parent);

	if (found < 0)
		return fail(err, errno, NULL, "stat the parent of mount point %s", name);
	if (found == 0)
		return 1;
	/* No falling back to a tmpfs over the directory: over the image's
	 * root, it would hide the root itself. */
	return add_mount_point_to_image(rfs, parent, name, want_dir, err);
}

/* Create the last component of path in its (existing) parent, as a
 * directory or an empty file, covering a read-only parent if need be. */
static int create_in_parent(struct rootfs *rfs, const char *path, bool want_dir,
                            capsula_error *err)
{
	char parent[PATH_MAX];
	const char *name = split_parent(path, parent, sizeof parent);
	int parent_fd;
	int ret;

	for (int attempt = 0; attempt < 2; attempt++) {
		parent_fd = open_in_root(rfs->root_fd, parent, O_PATH | O_DIRECTORY);
		if (parent_fd < 0)
			return fail(err, errno, NULL, "open %s in the container", parent);
		if (attempt == 0) {
			ret = add_to_image(rfs, parent_fd, name, want_dir, err);
			if (ret <= 0) {
				close(parent_fd);
				return ret;
			}
		}
		if (want_dir) {
			ret = mkdirat(parent_fd, name, 0755);
		} else {
			ret = openat(parent_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (ret >= 0)
				ret = close(ret);
		}
		close(parent_fd);
		if (ret == 0 || errno == EEXIST)
			return 0;
		if (errno != EROFS || attempt > 0)
			break;
		if (rfs->verbosity > 1)
			fprintf(stderr, "capsula: %s: making room for a mount point\n", parent);
		if (underlay(rfs, parent, err) < 0)
			return -1;
	}
	return fail(err, errno, "choose a destination that exists in the image",
	            "cannot create mount point %s", path);
}

/* Is the symlink at dir/name one capsula may follow to a mount point? Only
 * when it lies in the image or the scaffolding: one in a host directory
 * bound into the container (the host's /tmp, a home) may be another user's,
 * aimed at wherever they want the user to create or cover things. */
static int check_symlink_origin(struct rootfs *rfs, const char *dir, const char *mount_path,
                                capsula_error *err)
{
	struct stat st;
	int dir_fd = open_in_root(rfs->root_fd, dir[0] ? dir : "/", O_PATH | O_DIRECTORY);

	if (dir_fd < 0)
		return fail(err, errno, NULL, "open %s in the container", dir[0] ? dir : "/");
	if (fstat(dir_fd, &st) < 0) {
		int saved = errno;

		close(dir_fd);
		return fail(err, saved, NULL, "stat %s in the container", dir[0] ? dir : "/");
	}
	close(dir_fd);
	if (is_own_fs(rfs, st.st_dev))
		return 0;
	return fail(err, 0, "fix the image, or choose a destination without symlinks in host "
	            "directories", "mount point %s: its path goes through a symlink in the host "
	            "directory %s, which capsula does not follow", mount_path, dir[0] ? dir : "/");
}

/* Resolve path inside the root component by component, as the kernel
 * would, into canonical (no symlinks left; missing components kept as
 * written), following only the symlinks check_symlink_origin allows. */
static int resolve_mount_point(struct rootfs *rfs, const char *path, char *canonical,
                               size_t size, capsula_error *err)
{
	enum { MAX_LINKS = 40 };
	char pending[PATH_MAX], target[PATH_MAX];
	char *cursor = pending;
	size_t length = 0;  /* of canonical, "" being the root */
	int links = 0;

	if (snprintf(pending, sizeof pending, "%s", path) >= (int)sizeof pending)
		return fail(err, ENAMETOOLONG, NULL, "mount point %.64s", path);
	canonical[0] = '\0';
	for (;;) {
		size_t part;
		struct stat st;
		ssize_t got;
		int fd, saved;

		while (*cursor == '/')
			cursor++;
		if (*cursor == '\0')
			break;
		part = strcspn(cursor, "/");
		if (part == 1 && cursor[0] == '.') {
			cursor += part;
			continue;
		}
		if (part == 2 && cursor[0] == '.' && cursor[1] == '.') {
			while (length > 0 && canonical[length - 1] != '/')
				length--;
			if (length > 0)
				length--;
			canonical[length] = '\0';
			cursor += part;
			continue;
		}
		if (length + 1 + part >= size)
			return fail(err, ENAMETOOLONG, NULL, "mount point %.64s", path);
		canonical[length] = '/';
		memcpy(canonical + length + 1, cursor, part);
		canonical[length + 1 + part] = '\0';
		cursor += part;
		fd = open_in_root(rfs->root_fd, canonical, O_PATH | O_NOFOLLOW);
		if (fd < 0 && errno != ENOENT)
			return fail(err, errno, NULL, "open %s in the container", canonical);
		if (fd >= 0 && fstat(fd, &st) < 0) {
			saved = errno;
			close(fd);
			return fail(err, saved, NULL, "stat %s in the container", canonical);
		}
		if (fd < 0 || !S_ISLNK(st.st_mode)) {
			if (fd >= 0)
				close(fd);
			length += 1 + part;  /* missing (to be made) or a real entry */
			continue;
		}
		got = readlinkat(fd, "", target, sizeof target - 1);
		saved = errno;
		close(fd);
		if (got < 0)
			return fail(err, saved, NULL, "readlink %s in the container", canonical);
		target[got] = '\0';
		canonical[length] = '\0';
		if (check_symlink_origin(rfs, canonical, path, err) < 0)
			return -1;
		if (++links > MAX_LINKS)
			return fail(err, ELOOP, "fix the image", "mount point %s", path);
		if ((size_t)got + 1 + strlen(cursor) >= sizeof pending)
			return fail(err, ENAMETOOLONG, NULL, "mount point %.64s", path);
		/* Splice the target in front of what is left to walk. */
		memmove(pending + got + 1, cursor, strlen(cursor) + 1);
		memcpy(pending, target, (size_t)got);
		pending[got] = '/';
		cursor = pending;
		if (target[0] == '/')
			length = 0;
		canonical[length] = '\0';
	}
	if (length == 0)
		snprintf(canonical, size, "/");
	return 0;
}

/* Open the mount point at path through its symlinks, creating it and any
 * missing parents first; st gets what it is. */
static int open_resolved_mount_point(struct rootfs *rfs, const char *wanted, bool want_dir,
                                     struct stat *st, capsula_error *err)
{
	char prefix[PATH_MAX], path[PATH_MAX];
	int fd;

	if (resolve_mount_point(rfs, wanted, path, sizeof path, err) < 0)
		return -1;
	fd = open_in_root(rfs->root_fd, path, O_PATH);
	if (fd < 0 && errno == ENOENT) {
		/* Walk down, creating each missing component. */
		for (const char *slash = path + 1; ; slash++) {
			slash = strchr(slash, '/');
			snprintf(prefix, sizeof prefix, "%.*s",
			         (int)(slash ? slash - path : (long)strlen(path)), path);
			if (strlen(prefix) > 1 && prefix[strlen(prefix) - 1] != '/') {
				fd = open_in_root(rfs->root_fd, prefix, O_PATH);
				if (fd >= 0)
					close(fd);
				else if (errno != ENOENT)
					return fail(err, errno, NULL, "open %s in the container", prefix);
				else if (create_in_parent(rfs, prefix, slash != NULL || want_dir, err) < 0)
					return -1;
			}
			if (slash == NULL)
				break;
		}
		fd = open_in_root(rfs->root_fd, path, O_PATH);
	}
	if (fd < 0)
		return fail(err, errno, errno == ELOOP ? "the image has a symlink there that leads out "
		            "of it (through /proc) or in a loop; fix the image" : NULL,
		            "mount point %s in the container", wanted);
	if (fstat(fd, st) < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "stat mount point %s", wanted);
	}
	return fd;
}

/* Most destinations exist and have no symlink on the way (/proc, /tmp, the
 * home): one open then, not one per component. -1 for every other. */
static int open_plain_mount_point(struct rootfs *rfs, const char *wanted, struct stat *st)
{
	int fd = open_in_root_no_symlinks(rfs->root_fd, wanted, O_PATH | O_NOFOLLOW);

	if (fd >= 0 && (fstat(fd, st) < 0 || S_ISLNK(st->st_mode))) {
		close(fd);
		fd = -1;
		errno = ELOOP;
	}
	return fd;
}

/* The parent of a plain destination (no "." or "..", which are the careful
 * walk's to resolve), opened without following symlinks, and in *name its
 * last component; -1 for any other. */
static int open_plain_parent(struct rootfs *rfs, const char *wanted, const char **name)
{
	char parent[PATH_MAX];

	if (strstr(wanted, "/.") != NULL || strstr(wanted, "//") != NULL)
		return -1;
	*name = split_parent(wanted, parent, sizeof parent);
	return open_in_root_no_symlinks(rfs->root_fd, parent, O_PATH | O_DIRECTORY);
}

/* A destination the image lacks, in one of its own directories reached
 * without symlinks (the host's /etc/hosts, the home in /home): added to the
 * image server before the kernel looks for it, so that its one lookup finds
 * it. Asking through the mount would cost three round trips: the miss, then
 * the parent's attributes and the name again once the miss is forgotten.
 * Anything else is left to the paths below. Returns 0, or -1 with err. */
static int add_missing_to_image(struct rootfs *rfs, int parent_fd, const char *name,
                                bool want_dir, capsula_error *err)
{
	uint64_t parent;

	if (name[0] == '\0' || image_directory(rfs, parent_fd, &parent) != 1 ||
	    fuse_server_has_entry(rfs->image, parent, name) != 0)
		return 0;
	return add_mount_point_to_image(rfs, parent, name, want_dir, err);
}

/* Open the mount point at path (inside the root), creating it and any
 * missing parents first. */
static int mount_point(struct rootfs *rfs, const char *wanted, bool want_dir,
                       int *fd_out, capsula_error *err)
{
	const char *name = NULL;
	struct stat st;
	int parent_fd, fd, made = 0;

	if (strlen(wanted) >= PATH_MAX || wanted[0] != '/')
		return fail(err, ENAMETOOLONG, NULL, "mount point %.64s", wanted);
	parent_fd = strcmp(wanted, "/") != 0 ? open_plain_parent(rfs, wanted, &name) : -1;
	if (parent_fd >= 0 && add_missing_to_image(rfs, parent_fd, name, want_dir, err) < 0) {
		close(parent_fd);
		return -1;
	}
	fd = open_plain_mount_point(rfs, wanted, &st);
	/* Only the last component missing, in a directory reached without
	 * symlinks (a device node in the new /dev): made there and opened,
	 * without walking the path again. */
	if (fd < 0 && errno == ENOENT && parent_fd >= 0) {
		made = create_in_parent(rfs, wanted, want_dir, err);
		if (made == 0)
			fd = open_plain_mount_point(rfs, wanted, &st);
	}
	if (parent_fd >= 0)
		close(parent_fd);
	if (made < 0)
		return -1;
	if (fd < 0 && (fd = open_resolved_mount_point(rfs, wanted, want_dir, &st, err)) < 0)
		return -1;
	/* A symlink such as sys -> ../.. lands on the root: a mount there
	 * would hide the whole image. */
	if (strcmp(wanted, "/") != 0 && st.st_dev == rfs->root_dev && st.st_ino == rfs->root_ino) {
		close(fd);
		return fail(err, 0, "the image's symlink there points at its root; fix the image",
		            "mount point %s in the container is the container's root", wanted);
	}
	if (S_ISDIR(st.st_mode) != want_dir) {
		close(fd);
		return fail(err, 0, "bind a directory onto a directory, a file onto a file",
		            "cannot bind a %s onto %s, which is a %s in the image",
		            want_dir ? "directory" : "file", wanted,
		            S_ISDIR(st.st_mode) ? "directory" : "file");
	}
	*fd_out = fd;
	return 0;
}

/* Put the detached mount mnt_fd on path inside the root (made if missing).
 * The caller keeps mnt_fd. */
static int attach(struct rootfs *rfs, int mnt_fd, const char *path, bool want_dir,
                  const char *what, capsula_error *err)
{
	int target_fd;

	if (mount_point(rfs, path, want_dir, &target_fd, err) < 0)
		return -1;
	if (move_mount(mnt_fd, "", target_fd, "",
	               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
		int saved = errno;

		close(target_fd);
		return fail(err, saved, NULL, "%s %s", what, path);
	}
	close(target_fd);
	return 0;
}

int rootfs_mount_tmpfs(struct rootfs *rfs, const char *path, capsula_error *err)
{
	int mnt_fd;

	if (rootfs_new_tmpfs(0755, SCAFFOLD_SIZE, &mnt_fd, err) < 0)
		return -1;
	if (attach(rfs, mnt_fd, path, true, "mount a tmpfs on", err) < 0) {
		close(mnt_fd);
		return -1;
	}
	return remember_scaffold(rfs, mnt_fd, err);
}

int rootfs_mount_private_tmpfs(struct rootfs *rfs, const char *path, capsula_error *err)
{
	int mnt_fd, ret;

	if (rootfs_new_tmpfs(0755, NULL, &mnt_fd, err) < 0)
		return -1;
	/* Writable, unlike the scaffolding: it is never sealed. */
	ret = attach(rfs, mnt_fd, path, true, "mount a private tmpfs on", err) < 0 ||
	      remember_own_fs(rfs, mnt_fd, err) < 0 ? -1 : 0;
	close(mnt_fd);
	return ret;
}

int rootfs_mount_devpts(struct rootfs *rfs, const char *path, capsula_error *err)
{
	int fs_fd = fsopen("devpts", FSOPEN_CLOEXEC), mnt_fd, ret;
	char ptmx[PATH_MAX];

	if (fs_fd < 0)
		return fail(err, errno, NULL, "fsopen devpts");
	/* No gid=: the tty group is not mapped in a user's namespace. */
	if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "mode", "0620", 0) < 0 ||
	    fsconfig(fs_fd, FSCONFIG_SET_STRING, "ptmxmode", "0666", 0) < 0 ||
	    fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int saved = errno;

		close(fs_fd);
		return fail(err, saved, NULL, "configure a devpts for %s", path);
	}
	mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
	close(fs_fd);
	if (mnt_fd < 0)
		return fail(err, errno, NULL, "fsmount a devpts for %s", path);
	ret = attach(rfs, mnt_fd, path, true, "mount a devpts on", err) < 0 ||
	      remember_own_fs(rfs, mnt_fd, err) < 0 ? -1 : 0;
	close(mnt_fd);
	snprintf(ptmx, sizeof ptmx, "%s/ptmx", path);
	if (ret == 0 && rootfs_symlink(rfs, ptmx, "/dev/ptmx", err) < 0)
		ret = -1;
	return ret;
}

int rootfs_bind(struct rootfs *rfs, int from_fd, const char *from_path,
                const char *destination, unsigned flags, bool allow_devices,
                capsula_error *err)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID};
	struct stat st;
	int tree;
	int result;

	tree = open_tree(from_fd, from_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0)
		return fail(err, errno, "check that the bind source exists and is readable",
		            "bind source %s", from_path);
	if (!allow_devices)
		attr.attr_set |= MOUNT_ATTR_NODEV;
	if (flags & BIND_READONLY)
		attr.attr_set |= MOUNT_ATTR_RDONLY;
	if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0 ||
	    fstat(tree, &st) < 0) {
		int saved = errno;

		close(tree);
		return fail(err, saved, saved == ENOSYS ? "capsula needs Linux 5.12 or newer" : NULL,
		            "set mount flags for %s", destination);
	}
	result = attach(rfs, tree, destination, S_ISDIR(st.st_mode), "bind onto", err);
	close(tree);
	return result;
}

int rootfs_symlink(struct rootfs *rfs, const char *target, const char *path,
                   capsula_error *err)
{
	char parent[PATH_MAX];
	const char *name = split_parent(path, parent, sizeof parent);
	int parent_fd;
	int ret;

	parent_fd = open_in_root(rfs->root_fd, parent, O_PATH | O_DIRECTORY);
	if (parent_fd < 0)
		return fail(err, errno, NULL, "open %s in the container", parent);
	ret = symlinkat(target, parent_fd, name);
	close(parent_fd);
	if (ret < 0 && errno != EEXIST)
		return fail(err, errno, NULL, "symlink %s", path);
	return 0;
}

int rootfs_seal(struct rootfs *rfs, capsula_error *err)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};

	for (size_t i = 0; i < rfs->scaffold_count; i++) {
		if (mount_setattr(rfs->scaffold_fds[i], "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
			return fail(err, errno, NULL, "make the container's scaffolding read-only");
		close(rfs->scaffold_fds[i]);
	}
	rfs->scaffold_count = 0;
	return 0;
}

int rootfs_enter(struct rootfs *rfs, capsula_error *err)
{
	/* pivot_root(".", ".") stacks the old root on the new one; detaching
	 * the top of "." then leaves only the container. */
	if (fchdir(rfs->root_fd) < 0)
		return fail(err, errno, NULL, "chdir to the new root");
	if (pivot_root(".", ".") < 0)
		return fail(err, errno, NULL, "pivot_root into the container");
	if (umount2(".", MNT_DETACH) < 0)
		return fail(err, errno, NULL, "detach the host root");
	if (chdir("/") < 0)
		return fail(err, errno, NULL, "chdir /");
	close(rfs->root_fd);
	close(rfs->host_fd);
	rfs->root_fd = rfs->host_fd = -1;
	return 0;
}
