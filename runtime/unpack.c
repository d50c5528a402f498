#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/open_in_root.h"
#include "runtime/stream.h"
#include "runtime/tar.h"
#include "runtime/unpack.h"

#define WHITEOUT ".wh."
#define OPAQUE ".wh..wh..opq"

/* The builder must be able to enter and write what it unpacks, and
 * mksquashfs to read it. */
#define DIR_NEEDS 0700
#define FILE_NEEDS 0600

struct kept_mode {
	char *path;
	mode_t mode;
};

static int compare_kept(const void *a, const void *b)
{
	return strcmp(((const struct kept_mode *)a)->path, ((const struct kept_mode *)b)->path);
}

static int compare_paths(const void *a, const void *b)
{
	return strcmp(a, b);
}

int unpack_clean_path(const char *name, char *out, size_t size)
{
	size_t length = 0;
	const char *part = name;

	while (*part != '\0') {
		size_t n;

		while (*part == '/')
			part++;
		n = strcspn(part, "/");
		if (n == 0)
			break;
		if (n == 2 && part[0] == '.' && part[1] == '.')
			return -1;
		if (!(n == 1 && part[0] == '.')) {
			if (length + n + 2 > size)
				return -1;
			if (length > 0)
				out[length++] = '/';
			memcpy(out + length, part, n);
			length += n;
		}
		part += n;
	}
	out[length] = '\0';
	return 0;
}

int unpack_init(struct unpack *u, const char *root, bool whiteouts, capsula_error *err)
{
	memset(u, 0, sizeof *u);
	u->whiteouts = whiteouts;
	u->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (u->root_fd < 0)
		return fail(err, errno, NULL, "staging directory %s", root);
	return 0;
}

/* A dangling symlink at partial (its parent opened as parent, its name
 * name): the path to make instead, its target inside the tree followed by
 * what is left of the path to open. */
static int follow_dangling(int parent, const char *name, const char *partial, const char *rest,
                           char *out, size_t size)
{
	char target[4096], joined[8192];
	ssize_t n = readlinkat(parent, name, target, sizeof target - 1);
	size_t dir_length = (size_t)(name - partial);

	if (n < 0) {
		if (errno == EINVAL)
			errno = ENOTDIR;  /* a file where a directory must go */
		return -1;
	}
	target[n] = '\0';
	/* Relative targets start from the symlink's directory. */
	if (target[0] == '/')
		snprintf(joined, sizeof joined, "%s%s%s", target, rest ? "/" : "", rest ? rest : "");
	else
		snprintf(joined, sizeof joined, "%.*s%s%s%s", (int)dir_length, partial, target,
		         rest ? "/" : "", rest ? rest : "");
	if (unpack_clean_path(joined, out, size) < 0) {
		errno = ELOOP;  /* a ".." in a dangling link: not followed */
		return -1;
	}
	return 0;
}

/* Open a directory of the staging tree, symlinks resolved as if the tree
 * were the root (a layer may put files under /lib -> usr/lib), making
 * missing parents on the way, as docker does. Each one is made in its
 * parent opened that way, never through a path the kernel would resolve
 * from outside the tree (a symlink to /home/user must not lead a layer
 * into the user's home); a dangling symlink is followed inside the tree. */
static int open_dir_depth(struct unpack *u, const char *path, bool create, int depth)
{
	char partial[4096], redirected[4096];
	int fd = open_in_root(u->root_fd, path, O_PATH | O_DIRECTORY);

	if (fd >= 0 || errno != ENOENT || !create)
		return fd;
	if (depth > 40) {
		errno = ELOOP;
		return -1;
	}
	snprintf(partial, sizeof partial, "%s", path);
	for (char *slash = partial;; slash++) {
		char *name;
		int parent;

		slash = strchr(slash, '/');
		if (slash != NULL)
			*slash = '\0';
		fd = open_in_root(u->root_fd, partial, O_PATH | O_DIRECTORY);
		if (fd < 0 && errno == ENOENT) {
			name = strrchr(partial, '/');
			if (name != NULL)
				*name = '\0';
			parent = open_in_root(u->root_fd, name ? partial : "", O_PATH | O_DIRECTORY);
			if (name != NULL)
				*name = '/';
			if (parent < 0)
				return -1;
			name = name ? name + 1 : partial;
			if (mkdirat(parent, name, 0755) < 0) {
				int saved = errno;

				if (saved == EEXIST &&
				    follow_dangling(parent, name, partial, slash ? slash + 1 : NULL,
				                    redirected, sizeof redirected) == 0) {
					close(parent);
					return open_dir_depth(u, redirected, create, depth + 1);
				}
				close(parent);
				errno = saved == EEXIST ? errno : saved;
				return -1;
			}
			close(parent);
			fd = open_in_root(u->root_fd, partial, O_PATH | O_DIRECTORY);
		}
		if (fd < 0)
			return -1;
		if (slash == NULL)
			return fd;
		close(fd);
		*slash = '/';
	}
}

static int open_dir(struct unpack *u, const char *path, bool create)
{
	return open_dir_depth(u, path, create, 0);
}

int remove_tree(int parent, const char *name)
{
	struct stat st;
	DIR *dir;
	struct dirent *d;
	int fd;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES && fchmodat(parent, name, 0700, 0) == 0)
		fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if ((st.st_mode & 0700) != 0700)
		fchmod(fd, 0700);  /* best effort: the unlinks below tell */
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return -1;
	}
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (remove_tree(dirfd(dir), d->d_name) < 0) {
			closedir(dir);
			return -1;
		}
	}
	closedir(dir);
	return unlinkat(parent, name, AT_REMOVEDIR);
}

static int remember_layer_path(struct unpack *u, const char *path)
{
	char *copy = strdup(path);
	char **slot;

	if (copy == NULL)
		return -1;
	slot = tsearch(copy, &u->layer_paths, compare_paths);
	if (slot == NULL) {
		free(copy);
		return -1;
	}
	if (*slot != copy)
		free(copy);
	return 0;
}

static int keep_mode(struct unpack *u, const char *path, mode_t mode)
{
	struct kept_mode *k = malloc(sizeof *k);
	struct kept_mode **slot;

	if (k == NULL || (k->path = strdup(path)) == NULL) {
		free(k);
		return -1;
	}
	k->mode = mode;
	slot = tsearch(k, &u->modes, compare_kept);
	if (slot == NULL) {
		free(k->path);
		free(k);
		return -1;
	}
	if (*slot != k) {
		(*slot)->mode = mode;
		free(k->path);
		free(k);
	}
	return 0;
}

/* An opaque directory hides everything lower layers put in it. */
static int apply_opaque(struct unpack *u, const char *dir_path, capsula_error *err)
{
	int fd = open_dir(u, dir_path, true);
	int list_fd;
	DIR *dir;
	struct dirent *d;
	char child[4096 + sizeof d->d_name + 1];

	if (fd < 0)
		return fail(err, errno, NULL, "opaque directory %s", dir_path);
	list_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = list_fd >= 0 ? fdopendir(list_fd) : NULL;
	if (dir == NULL) {
		int saved = errno;

		if (list_fd >= 0)
			close(list_fd);
		close(fd);
		return fail(err, saved, NULL, "opaque directory %s", dir_path);
	}
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof child, "%s%s%s", dir_path, dir_path[0] ? "/" : "", d->d_name);
		if (tfind(child, &u->layer_paths, compare_paths) != NULL)
			continue;
		if (remove_tree(dirfd(dir), d->d_name) < 0) {
			int saved = errno;

			closedir(dir);
			close(fd);
			return fail(err, saved, NULL, "whiteout of %s", child);
		}
	}
	closedir(dir);
	close(fd);
	return 0;
}

static int apply_whiteout(struct unpack *u, const char *parent, const char *name,
                          capsula_error *err)
{
	int fd;
	int ret;

	if (strcmp(name, OPAQUE) == 0)
		return apply_opaque(u, parent, err);
	fd = open_dir(u, parent, false);
	if (fd < 0)
		return 0;  /* hiding something no lower layer had */
	ret = remove_tree(fd, name + strlen(WHITEOUT));
	close(fd);
	if (ret < 0)
		return fail(err, errno, NULL, "whiteout of %s/%s", parent, name + strlen(WHITEOUT));
	return 0;
}

static int write_content(struct tar_reader *r, int fd, capsula_error *err)
{
	char buf[65536];
	ssize_t got;

	while ((got = tar_read(r, buf, sizeof buf, err)) > 0) {
		for (ssize_t done = 0; done < got;) {
			ssize_t n = write(fd, buf + done, (size_t)(got - done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return fail(err, errno, "free some space where the image is built",
				            "write");
			done += n;
		}
	}
	return got < 0 ? -1 : 0;
}

static void set_time(int dirfd, const char *name, int64_t mtime)
{
	struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = mtime}};

	/* Best effort: only the image's timestamps suffer. */
	(void)utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW);
}

static int make_entry(struct unpack *u, struct tar_reader *r, const struct tar_entry *e,
                      int parent, const char *name, const char *path, capsula_error *err)
{
	struct stat st;
	bool exists = fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	mode_t needs = e->type == '5' ? DIR_NEEDS : FILE_NEEDS;
	int fd;

	if (exists && !(e->type == '5' && S_ISDIR(st.st_mode)) && remove_tree(parent, name) < 0)
		return fail(err, errno, NULL, "replace %s", path);
	if ((e->mode & needs) != needs && e->type != '2' &&
	    keep_mode(u, path, e->mode) < 0)
		return fail(err, errno, NULL, "%s", path);
	switch (e->type) {
	case '0':
		fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail(err, errno, NULL, "create %s", path);
		if (write_content(r, fd, err) < 0 ||
		    (fchmod(fd, e->mode | needs) < 0 && fail(err, errno, NULL, "chmod %s", path))) {
			close(fd);
			return -1;
		}
		close(fd);
		break;
	case '5':
		if (!exists && mkdirat(parent, name, 0700) < 0)
			return fail(err, errno, NULL, "mkdir %s", path);
		if (fchmodat(parent, name, e->mode | needs, 0) < 0)
			return fail(err, errno, NULL, "chmod %s", path);
		break;
	case '2':
		if (symlinkat(e->link, parent, name) < 0)
			return fail(err, errno, NULL, "symlink %s", path);
		break;
	case '6':
		if (mkfifoat(parent, name, e->mode | needs) < 0)
			return fail(err, errno, NULL, "fifo %s", path);
		break;
	default:
		return fail(err, 0, "rebuild the archive without it",
		            "%s: entry type '%c' is not supported", path, e->type);
	}
	set_time(parent, name, e->mtime);
	return 0;
}

static int make_hard_link(struct unpack *u, const struct tar_entry *e, int parent,
                          const char *name, const char *path, capsula_error *err)
{
	char target[4096];
	char *slash;
	int target_dir;
	int ret;

	if (unpack_clean_path(e->link, target, sizeof target) < 0 || target[0] == '\0')
		return fail(err, 0, NULL, "%s: hard link to '%s' leaves the image", path, e->link);
	if (remove_tree(parent, name) < 0)
		return fail(err, errno, NULL, "replace %s", path);
	slash = strrchr(target, '/');
	if (slash != NULL)
		*slash = '\0';
	target_dir = open_dir(u, slash ? target : "", false);
	if (target_dir < 0)
		return fail(err, errno, NULL, "hard link %s to %s", path, e->link);
	ret = linkat(target_dir, slash ? slash + 1 : target, parent, name, 0);
	if (ret < 0)
		fail(err, errno, "the archive lists the link before its target",
		     "hard link %s to %s", path, e->link);
	close(target_dir);
	return ret;
}

static int apply_entry(struct unpack *u, struct tar_reader *r, const struct tar_entry *e,
                       capsula_error *err)
{
	char path[4096];
	char *slash;
	const char *name;
	const char *parent_path;
	int parent;
	int ret;

	if (unpack_clean_path(e->path, path, sizeof path) < 0)
		return fail(err, 0, "the archive is hostile or damaged",
		            "%s: member '%s' leaves the image", r->name, e->path);
	if (path[0] == '\0')
		return 0;  /* the root itself keeps the builder's mode */
	slash = strrchr(path, '/');
	name = slash ? slash + 1 : path;
	if (slash)
		*slash = '\0';
	parent_path = slash ? path : "";
	if (e->type == '3' || e->type == '4') {
		/* Only for the warning: a cut name is fine. */
		if (u->devices_skipped++ == 0 &&
		    snprintf(u->first_device, sizeof u->first_device, "/%s%s%s", parent_path,
		             slash ? "/" : "", name) >= (int)sizeof u->first_device)
			u->first_device[sizeof u->first_device - 2] = '~';
		return 0;
	}
	if (u->whiteouts && strncmp(name, WHITEOUT, strlen(WHITEOUT)) == 0)
		return apply_whiteout(u, parent_path, name, err);
	parent = open_dir(u, parent_path, true);
	if (parent < 0)
		return fail(err, errno, NULL, "directory /%s in the image", parent_path);
	if (slash)
		*slash = '/';
	if (e->type == '1')
		ret = make_hard_link(u, e, parent, name, path, err);
	else
		ret = make_entry(u, r, e, parent, name, path, err);
	close(parent);
	if (ret == 0 && remember_layer_path(u, path) < 0)
		ret = fail(err, errno, NULL, "%s", path);
	u->entries++;
	return ret;
}

int unpack_archive(struct unpack *u, const char *archive, capsula_error *err)
{
	struct stream s;
	struct tar_reader r;
	struct tar_entry *e;
	capsula_error close_err;
	int ret;

	if (stream_open(archive, &s, err) < 0)
		return -1;
	tar_open(&r, s.fd, archive);
	while ((ret = tar_next(&r, &e, err)) > 0)
		if (apply_entry(u, &r, e, err) < 0) {
			ret = -1;
			break;
		}
	tar_close(&r);
	/* A missing or failing decompressor explains a short archive best. */
	if (stream_close(&s, &close_err) < 0) {
		*err = close_err;
		ret = -1;
	}
	tdestroy(u->layer_paths, free);
	u->layer_paths = NULL;
	return ret < 0 ? -1 : 0;
}

static FILE *modes_out;
static int modes_root;

static void write_mode(const void *node, VISIT which, int depth)
{
	const struct kept_mode *k = *(const struct kept_mode *const *)node;
	struct stat st;

	(void)depth;
	if (which != postorder && which != leaf)
		return;
	if (fstatat(modes_root, k->path, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISLNK(st.st_mode))
		return;
	/* Names with spaces or quotes are quoted for mksquashfs. */
	putc('"', modes_out);
	for (const char *c = k->path; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			putc('\\', modes_out);
		putc(*c, modes_out);
	}
	fprintf(modes_out, "\" m %o 0 0\n", (unsigned)(k->mode & 07777));
}

int unpack_write_modes(struct unpack *u, FILE *out, capsula_error *err)
{
	modes_out = out;
	modes_root = u->root_fd;
	twalk(u->modes, write_mode);
	if (ferror(out))
		return fail(err, errno, NULL, "pseudo file for mksquashfs");
	return 0;
}

static void free_kept(void *node)
{
	struct kept_mode *k = node;

	free(k->path);
	free(k);
}

void unpack_free(struct unpack *u)
{
	if (u->root_fd >= 0)
		close(u->root_fd);
	tdestroy(u->modes, free_kept);
	tdestroy(u->layer_paths, free);
	memset(u, 0, sizeof *u);
	u->root_fd = -1;
}
