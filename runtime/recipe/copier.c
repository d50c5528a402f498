#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "runtime/recipe/copier.h"
#include "runtime/recipe/fake_root.h"

#define COPY_CHUNK (1u << 20)

static int open_in_root(int root_fd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

int copier_open_root(capsula_error *err)
{
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail(err, errno, NULL, "open the container's root");
	return fd;
}

bool copier_is_dir(int root_fd, const char *path)
{
	int fd = open_in_root(root_fd, path, O_PATH | O_DIRECTORY, 0);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int copier_make_dirs(int root_fd, const char *path, capsula_error *err)
{
	char partial[PATH_MAX];
	size_t at = 0;

	if (strlen(path) >= sizeof partial)
		return fail(err, ENAMETOOLONG, NULL, "%s", path);
	while (path[at] != '\0') {
		size_t next = at + strspn(path + at, "/");
		int fd;

		next += strcspn(path + next, "/");
		memcpy(partial, path, next);
		partial[next] = '\0';
		at = next;
		fd = open_in_root(root_fd, partial, O_PATH | O_DIRECTORY, 0);
		if (fd >= 0) {
			close(fd);
			continue;
		}
		if (errno != ENOENT)
			return fail(err, errno, "the image has something else there", "make %s", partial);
		{
			char *slash = strrchr(partial, '/');
			int parent;

			*slash = '\0';
			parent = open_in_root(root_fd, partial[0] ? partial : "/", O_PATH | O_DIRECTORY, 0);
			if (parent < 0 || (mkdirat(parent, slash + 1, 0755) < 0 && errno != EEXIST)) {
				int saved = errno;

				if (parent >= 0)
					close(parent);
				*slash = '/';
				return fail(err, saved, NULL, "make %s", partial);
			}
			close(parent);
		}
	}
	return 0;
}

/* The owner asked for, as the user namespace allows: for real, or (ids it
 * does not map) recorded for the layer. */
static int give_owner(int fd, const struct stat *made, uid_t uid, gid_t gid, const char *path,
                      capsula_error *err)
{
	char value[64];

	if (fchown(fd, uid, gid) == 0)
		return 0;
	if (errno != EINVAL && errno != EPERM)
		return fail(err, errno, NULL, "chown %s", path);
	if (S_ISLNK(made->st_mode))
		return 0;  /* no user attributes on links: root's */
	snprintf(value, sizeof value, "%u:%u", (unsigned)uid, (unsigned)gid);
	if (fsetxattr(fd, FAKE_OWNER_XATTR, value, strlen(value), 0) < 0)
		return fail(err, errno, NULL, "record the owner of %s", path);
	return 0;
}

/* The parent directory of dest (made if missing) and dest's last name. */
static int open_parent(int root_fd, const char *dest, const char **name, capsula_error *err)
{
	char parent[PATH_MAX];
	const char *slash = strrchr(dest, '/');
	int fd;

	if (slash == NULL || slash[1] == '\0' || strlen(dest) >= sizeof parent)
		return fail(err, EINVAL, NULL, "copy to %s", dest);
	snprintf(parent, sizeof parent, "%.*s", slash == dest ? 1 : (int)(slash - dest), dest);
	if (copier_make_dirs(root_fd, parent, err) < 0)
		return -1;
	fd = open_in_root(root_fd, parent, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fail(err, errno, NULL, "copy to %s", dest);
	*name = slash + 1;
	return fd;
}

/* What is at name in dir, unless it is a directory and one is wanted. */
static int clear_name(int dir_fd, const char *name, bool want_dir, const char *dest,
                      capsula_error *err)
{
	struct stat st;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : fail(err, errno, NULL, "%s", dest);
	if (S_ISDIR(st.st_mode) && want_dir)
		return 0;
	if (unlinkat(dir_fd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
		return fail(err, errno, "remove what is there first", "replace %s", dest);
	return 0;
}

static int copy_bytes(int from, int to, const char *dest, capsula_error *err)
{
	static unsigned char buffer[COPY_CHUNK];
	ssize_t n;

	while ((n = copy_file_range(from, NULL, to, NULL, COPY_CHUNK, 0)) > 0)
		;
	if (n == 0)
		return 0;
	if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
		return fail(err, errno, errno == ENOSPC ? "free space where the build's work goes "
		            "(TMPDIR)" : NULL, "write %s", dest);
	while ((n = read(from, buffer, sizeof buffer)) > 0)
		if (write(to, buffer, (size_t)n) != n)
			return fail(err, errno, errno == ENOSPC ? "free space where the build's work goes "
			            "(TMPDIR)" : NULL, "write %s", dest);
	return n < 0 ? fail(err, errno, NULL, "read for %s", dest) : 0;
}

/* ---------------------------------------------------------------- one entry */

struct made {
	mode_t type;              /* S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
	const char *link;         /* symbolic links */
	int data_fd;              /* regular files: where the bytes come from, or -1 */
	const char *content;      /* or these */
	size_t content_length;
};

static int make_entry(int root_fd, const char *dest, const struct made *m, capsula_error *err)
{
	const char *name;
	int dir_fd = open_parent(root_fd, dest, &name, err), fd = -1, ret = 0;
	struct stat st;

	if (dir_fd < 0)
		return -1;
	if (clear_name(dir_fd, name, m->type == S_IFDIR, dest, err) < 0) {
		close(dir_fd);
		return -1;
	}
	if (m->type == S_IFDIR)
		ret = mkdirat(dir_fd, name, 0700) < 0 && errno != EEXIST ? -1 : 0;
	else if (m->type == S_IFLNK)
		ret = symlinkat(m->link, dir_fd, name);
	else if (m->type == S_IFIFO)
		ret = mkfifoat(dir_fd, name, 0600);
	else if ((fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	                      0600)) < 0)
		ret = -1;
	if (ret < 0) {
		ret = fail(err, errno, NULL, "make %s", dest);
		close(dir_fd);
		return ret;
	}
	if (fd < 0)
		fd = openat(dir_fd, name, (m->type == S_IFLNK ? O_PATH : O_RDONLY) | O_NOFOLLOW |
		            O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = fail(err, errno, NULL, "%s", dest);
	} else if (m->type == S_IFREG) {
		ret = m->data_fd >= 0 ? copy_bytes(m->data_fd, fd, dest, err) :
		      write(fd, m->content, m->content_length) == (ssize_t)m->content_length ? 0 :
		      fail(err, errno, NULL, "write %s", dest);
	}
	if (ret == 0 && m->type != S_IFLNK && fchmod(fd, m->mode & 07777) < 0)
		ret = fail(err, errno, NULL, "chmod %s", dest);
	if (ret == 0 && m->type == S_IFLNK &&
	    fchownat(dir_fd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EINVAL)
		ret = fail(err, errno, NULL, "chown %s", dest);
	else if (ret == 0 && m->type != S_IFLNK)
		ret = give_owner(fd, &st, m->uid, m->gid, dest, err);
	if (ret == 0 && m->type == S_IFREG && m->mtime.tv_sec != 0) {
		const struct timespec times[2] = {m->mtime, m->mtime};

		futimens(fd, times);
	}
	if (fd >= 0)
		close(fd);
	close(dir_fd);
	return ret;
}

/* ---------------------------------------------------------------- COPY */

struct copy_job {
	int root_fd;
	const char *dest;
	bool into_dir;
	const struct copy_owner *owner;
	const char *top_name;     /* a file source's own name */
};

static int copy_one(const struct source_file *f, bool last, void *arg, capsula_error *err)
{
	struct copy_job *j = arg;
	struct made m = {
		.type = f->st.st_mode & S_IFMT, .uid = j->owner->uid, .gid = j->owner->gid,
		.mode = j->owner->has_chmod ? j->owner->chmod : f->st.st_mode, .data_fd = -1,
		.mtime = f->st.st_mtim,
	};
	char dest[PATH_MAX], target[PATH_MAX];
	int ret;

	if (S_ISDIR(f->st.st_mode) && f->dest_rel[0] == '\0' && !last)
		return copier_make_dirs(j->root_fd, j->dest, err);
	if (last)
		return 0;
	if (f->dest_rel[0] == '\0')
		ret = snprintf(dest, sizeof dest, "%s%s%s", j->dest, j->into_dir ? "/" : "",
		               j->into_dir ? j->top_name : "");
	else
		ret = snprintf(dest, sizeof dest, "%s/%s", j->dest, f->dest_rel);
	if (ret < 0 || (size_t)ret >= sizeof dest)
		return fail(err, ENAMETOOLONG, NULL, "COPY %s", f->path);
	if (S_ISSOCK(f->st.st_mode) || S_ISCHR(f->st.st_mode) || S_ISBLK(f->st.st_mode)) {
		fprintf(stderr, "capsula: warning: COPY %s: a %s is not copied\n", f->path,
		        S_ISSOCK(f->st.st_mode) ? "socket" : "device");
		return 0;
	}
	if (S_ISLNK(f->st.st_mode)) {
		ssize_t n = readlinkat(f->parent_fd, f->name, target, sizeof target - 1);

		if (n < 0)
			return fail(err, errno, NULL, "COPY %s", f->path);
		target[n] = '\0';
		m.link = target;
	} else if (S_ISREG(f->st.st_mode)) {
		m.data_fd = openat(f->parent_fd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (m.data_fd < 0)
			return fail(err, errno, "make it readable, or leave it out with .dockerignore",
			            "COPY %s", f->path);
	}
	ret = make_entry(j->root_fd, dest, &m, err);
	if (m.data_fd >= 0)
		close(m.data_fd);
	return ret;
}

int copier_copy(int root_fd, int src_fd, const char *source, const char *dest, bool into_dir,
                const struct copy_owner *owner, const struct ignore_rules *rules,
                capsula_error *err)
{
	const char *slash = strrchr(source, '/');
	struct copy_job j = {.root_fd = root_fd, .dest = dest, .into_dir = into_dir, .owner = owner,
	                     .top_name = slash ? slash + 1 : source};

	return sources_walk(src_fd, source, rules, copy_one, &j, err);
}

int copier_write(int root_fd, const char *path, const char *content, size_t length, mode_t mode,
                 capsula_error *err)
{
	return copier_write_owned(root_fd, path, content, length, mode, 0, 0, err);
}

int copier_write_owned(int root_fd, const char *path, const char *content, size_t length,
                       mode_t mode, uid_t uid, gid_t gid, capsula_error *err)
{
	struct made m = {.type = S_IFREG, .mode = mode, .data_fd = -1, .content = content,
	                 .content_length = length, .uid = uid, .gid = gid};

	return make_entry(root_fd, path, &m, err);
}

/* ---------------------------------------------------------------- ADD of an archive */

int copier_extract(int root_fd, int archive_fd, const char *dest, const struct copy_owner *owner,
                   const char *shown, capsula_error *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int r, ret = 0;

	if (a == NULL)
		return fail(err, ENOMEM, NULL, "ADD %s", shown);
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, archive_fd, 1 << 16) != ARCHIVE_OK) {
		ret = fail(err, 0, NULL, "ADD %s: %s", shown, archive_error_string(a));
		archive_read_free(a);
		return ret;
	}
	if (copier_make_dirs(root_fd, dest, err) < 0) {
		archive_read_free(a);
		return -1;
	}
	while (ret == 0 && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *member = archive_entry_pathname(e);
		char path[PATH_MAX];
		struct made m = {
			.type = archive_entry_filetype(e), .mode = archive_entry_perm(e),
			.uid = owner->uid, .gid = owner->gid, .data_fd = -1,
			.mtime = {.tv_sec = archive_entry_mtime(e)},
			.link = archive_entry_symlink(e),
		};

		if (member == NULL || strstr(member, "..") != NULL ||
		    (size_t)snprintf(path, sizeof path, "%s/%s", dest, member) >= sizeof path) {
			ret = fail(err, 0, "the archive is damaged or hostile", "ADD %s: member %s leaves "
			           "the destination", shown, member ? member : "(no name)");
			break;
		}
		if (!owner->has_chown) {
			/* Without --chown, ADD keeps an archive's owners. */
			m.uid = (uid_t)archive_entry_uid(e);
			m.gid = (gid_t)archive_entry_gid(e);
		}
		for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--)
			path[n - 1] = '\0';
		if (archive_entry_hardlink(e) != NULL || (m.type != S_IFREG && m.type != S_IFDIR &&
		                                          m.type != S_IFLNK && m.type != S_IFIFO))
			continue;  /* links to members and devices: not through ADD */
		if (m.type == S_IFDIR) {
			ret = make_entry(root_fd, path, &m, err);
			continue;
		}
		if (m.type == S_IFREG) {
			/* The member's bytes (holes too) in memory, not in the image's /tmp. */
			const void *block;
			size_t size;
			la_int64_t offset;
			int fd = memfd_create("capsula-add", MFD_CLOEXEC);

			if (fd < 0) {
				ret = fail(err, errno, NULL, "ADD %s", shown);
				break;
			}
			while (ret == 0 && archive_read_data_block(a, &block, &size, &offset) == ARCHIVE_OK)
				if (pwrite(fd, block, size, offset) != (ssize_t)size)
					ret = fail(err, errno, NULL, "ADD %s", shown);
			if (ret == 0 && (ftruncate(fd, archive_entry_size(e)) < 0 ||
			                 lseek(fd, 0, SEEK_SET) < 0))
				ret = fail(err, errno, NULL, "ADD %s", shown);
			m.data_fd = fd;
			if (ret == 0)
				ret = make_entry(root_fd, path, &m, err);
			close(fd);
			continue;
		}
		ret = make_entry(root_fd, path, &m, err);
	}
	if (ret == 0 && r != ARCHIVE_EOF)
		ret = fail(err, 0, "the archive is damaged", "ADD %s: %s", shown, archive_error_string(a));
	archive_read_free(a);
	return ret;
}

/* ---------------------------------------------------------------- owners */

static int lookup_id(const char *file, const char *name, bool user, unsigned long *id)
{
	FILE *f = fopen(file, "re");
	int found = -1;

	if (f == NULL)
		return -1;
	for (;;) {
		if (user) {
			struct passwd *pw = fgetpwent(f);

			if (pw == NULL)
				break;
			if (strcmp(pw->pw_name, name) == 0) {
				*id = pw->pw_uid;
				found = 0;
				break;
			}
		} else {
			struct group *gr = fgetgrent(f);

			if (gr == NULL)
				break;
			if (strcmp(gr->gr_name, name) == 0) {
				*id = gr->gr_gid;
				found = 0;
				break;
			}
		}
	}
	fclose(f);
	return found;
}

static int resolve_id(const char *text, bool user, unsigned long *id, capsula_error *err)
{
	char *end;

	errno = 0;
	*id = strtoul(text, &end, 10);
	if (errno == 0 && end != text && *end == '\0' && *id < 0xffffffffUL)
		return 0;
	if (lookup_id(user ? "/etc/passwd" : "/etc/group", text, user, id) == 0)
		return 0;
	return fail(err, 0, user ? "create the user first (RUN useradd ...) or give a uid" :
	            "create the group first or give a gid", "%s %s is not in the image's %s",
	            user ? "user" : "group", text, user ? "/etc/passwd" : "/etc/group");
}

int copier_resolve_owner(const char *spec, uid_t *uid, gid_t *gid, capsula_error *err)
{
	char user[256];
	const char *colon = strchr(spec, ':');
	unsigned long u, g;

	snprintf(user, sizeof user, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
	if (resolve_id(user, true, &u, err) < 0)
		return -1;
	if (colon != NULL) {
		if (resolve_id(colon + 1, false, &g, err) < 0)
			return -1;
	} else {
		/* USER alone: its own group, as Docker takes it. */
		struct passwd *pw;
		FILE *f = fopen("/etc/passwd", "re");

		g = u;
		while (f != NULL && (pw = fgetpwent(f)) != NULL)
			if (pw->pw_uid == u) {
				g = pw->pw_gid;
				break;
			}
		if (f != NULL)
			fclose(f);
	}
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}
