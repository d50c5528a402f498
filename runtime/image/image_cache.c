#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/leftovers.h"
#include "common/sha256.h"
#include "common/small_file.h"
#include "common/trusted_dir.h"
#include "runtime/image/image_cache.h"

#define HINT_CACHE "set CAPSULA_CACHEDIR to a directory of yours"
#define RECORD_MAX 128
#define SIGNERS_RECORD_MAX 8192

static const char *const subdirectories[] = {"blobs", "blobs/sha256", "images", "refs",
                                             "partial", "locks", "pushed"};

int make_directories(const char *path, int mode, capsula_error *err)
{
	char copy[CACHE_PATH_MAX];

	if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy)
		return fail(err, ENAMETOOLONG, NULL, "%s", path);
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(copy, (mode_t)mode) < 0 && errno != EEXIST)
			return fail(err, errno, HINT_CACHE, "create %s", copy);
		*p = saved;
		if (saved == '\0')
			return 0;
	}
}

/* The user's own cache directory: CAPSULA_CACHEDIR, XDG_CACHE_HOME or the
 * home's; "" with a site directory. */
static int user_directory(const struct capsula_config *config, char *out, size_t size,
                          capsula_error *err)
{
	const char *value = getenv("CAPSULA_CACHEDIR");
	int n;

	if (value != NULL && value[0] != '\0') {
		if (value[0] != '/')
			return fail(err, 0, "give an absolute path", "CAPSULA_CACHEDIR=%s is relative",
			            value);
		n = snprintf(out, size, "%s", value);
	} else if (config != NULL && config->cache_dir[0] != '\0') {
		n = snprintf(out, size, "%s", "");
	} else if ((value = getenv("XDG_CACHE_HOME")) != NULL && value[0] == '/') {
		n = snprintf(out, size, "%s/capsula", value);
	} else if ((value = getenv("HOME")) != NULL && value[0] == '/') {
		n = snprintf(out, size, "%s/.cache/capsula", value);
	} else {
		return fail(err, 0, HINT_CACHE, "no cache directory: HOME is not set");
	}
	if (n < 0 || (size_t)n >= size)
		return fail(err, ENAMETOOLONG, HINT_CACHE, "cache directory");
	return 0;
}

/* Someone else's directory could hand us their images: it must be ours,
 * closed to others' writes. */
static int check_own(int fd, const char *dir, capsula_error *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fail(err, errno, HINT_CACHE, "cache directory %s", dir);
	if (st.st_uid != getuid())
		return fail(err, 0, HINT_CACHE, "cache directory %s belongs to uid %u, not to you",
		            dir, (unsigned)st.st_uid);
	if ((st.st_mode & 022) != 0)
		return fail(err, 0, "chmod go-w it, or " HINT_CACHE,
		            "cache directory %s is writable by others", dir);
	return 0;
}

static const char *user_name(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw != NULL ? pw->pw_name : "USER";
}

/* DIR/UID in the site's directory, which the administrator made: the
 * user's own directory is made here when the site directory lets users
 * (mode 1777), never the site directory itself. */
static int open_site_cache(const struct capsula_config *config, struct image_cache *cache,
                           int create, capsula_error *err)
{
	struct trusted_owners owners = trusted_root_and(getuid());
	char uid[24], hint[5200];
	struct stat st;
	int site, fd;

	snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
	snprintf(cache->dir, sizeof cache->dir, "%s/%s", config->cache_dir, uid);
	snprintf(hint, sizeof hint, "ask the administrator to make it (mkdir -m 1777 %s, or "
	         "root's 0755 with install -d -m 0700 -o %s %s), or " HINT_CACHE,
	         config->cache_dir, user_name(), cache->dir);
	site = trusted_dir_open(config->cache_dir, &owners, false, "the site's cache directory",
	                        NULL, hint, err);
	if (site < 0) {
		if (!create && errno == ENOENT)
			return 0;
		return -1;
	}
	if (create && mkdirat(site, uid, 0700) < 0 && errno != EEXIST) {
		fail(err, errno, hint, "create your cache directory %s", cache->dir);
		close(site);
		return -1;
	}
	fd = openat(site, uid, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int saved = errno;
		bool theirs = fstatat(site, uid, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		              st.st_uid != getuid();

		close(site);
		if (!create && saved == ENOENT)
			return 0;
		if (theirs)
			return fail(err, 0, "ask the administrator to remove it",
			            "your cache directory %s was made by uid %u", cache->dir,
			            (unsigned)st.st_uid);
		return fail(err, saved, hint, "your cache directory %s", cache->dir);
	}
	close(site);
	cache->fd = fd;
	return 0;
}

static int open_user_cache(struct image_cache *cache, int create, capsula_error *err)
{
	struct trusted_owners owners = trusted_root_and(getuid());
	int fd = trusted_dir_open(cache->dir, &owners, create, "cache directory", NULL, HINT_CACHE,
	                          err);

	if (fd < 0)
		return !create && errno == ENOENT ? 0 : -1;
	cache->fd = fd;
	return 0;
}

static int make_layout(const struct image_cache *cache, capsula_error *err)
{
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}\n";
	struct stat st;
	int images;

	for (size_t i = 0; i < sizeof subdirectories / sizeof subdirectories[0]; i++)
		if (mkdirat(cache->fd, subdirectories[i], 0700) < 0 && errno != EEXIST)
			return fail(err, errno, HINT_CACHE, "create %s/%s", cache->dir,
			            subdirectories[i]);
	/* Images a killed conversion left half made. */
	if ((images = openat(cache->fd, "images", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
		leftovers_remove(images, ".", ".partial-");
		close(images);
	}
	/* So that capsula build reads the cache as the OCI layout it is. */
	if (fstatat(cache->fd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    cache_write_at(cache->fd, "oci-layout", layout, sizeof layout - 1, 0600, err) < 0)
		return -1;
	return 0;
}

int cache_locate(const struct capsula_config *config, struct image_cache *cache, int create,
                 capsula_error *err)
{
	int ret;

	cache->fd = -1;
	cache->root[0] = '\0';
	if (user_directory(config, cache->dir, sizeof cache->dir, err) < 0)
		return -1;
	ret = cache->dir[0] == '\0' ? open_site_cache(config, cache, create, err) :
	      open_user_cache(cache, create, err);
	if (ret < 0 || cache->fd < 0)
		return ret;
	snprintf(cache->root, sizeof cache->root, "/proc/self/fd/%d", cache->fd);
	if (check_own(cache->fd, cache->dir, err) < 0 || (create && make_layout(cache, err) < 0)) {
		cache_close(cache);
		return -1;
	}
	return 0;
}

void cache_close(struct image_cache *cache)
{
	if (cache->fd >= 0)
		close(cache->fd);
	cache->fd = -1;
	cache->root[0] = '\0';
}

void cache_blob_name(const char *digest, char *out, size_t size)
{
	snprintf(out, size, "blobs/sha256/%s", digest + strlen("sha256:"));
}

void cache_image_name(const char *digest, char *out, size_t size)
{
	snprintf(out, size, "images/%s.sqfs", digest + strlen("sha256:"));
}

void cache_signers_name(const char *digest, char *out, size_t size)
{
	snprintf(out, size, "images/%s.signers", digest + strlen("sha256:"));
}

static void image_id_name(const char *digest, char *out, size_t size)
{
	snprintf(out, size, "images/%s.id", digest + strlen("sha256:"));
}

static void ref_record_name(const struct image_ref *ref, const struct platform *p, char *out,
                            size_t size)
{
	snprintf(out, size, "refs/%s/%s/%s,%s-%s%s%s", ref->registry, ref->repository,
	         image_ref_reference(ref), p->os, p->architecture, p->variant[0] ? "-" : "",
	         p->variant);
}

int cache_signers_write(int cache_fd, const char *image_digest, const struct signers_record *r,
                        capsula_error *err)
{
	char name[CACHE_NAME_MAX], text[sizeof r->signed_digest + sizeof r->signers + 32];

	cache_signers_name(image_digest, name, sizeof name);
	snprintf(text, sizeof text, "signed %s\nsigners %s\n", r->signed_digest, r->signers);
	return cache_write_at(cache_fd, name, text, strlen(text), 0644, err);
}

bool cache_signers_read(int cache_fd, const char *image_digest, struct signers_record *r)
{
	char name[CACHE_NAME_MAX], *text = NULL, *signers;
	size_t length;
	capsula_error ignored;
	bool found;

	cache_signers_name(image_digest, name, sizeof name);
	if (read_small_at(cache_fd, name, SIGNERS_RECORD_MAX, &text, &length, &ignored) < 0)
		return false;
	signers = strstr(text, "\nsigners ");
	found = strncmp(text, "signed ", 7) == 0 && signers != NULL;
	if (found) {
		snprintf(r->signed_digest, sizeof r->signed_digest, "%.*s",
		         (int)strcspn(text + 7, "\n"), text + 7);
		snprintf(r->signers, sizeof r->signers, "%.*s", (int)strcspn(signers + 9, "\n"),
		         signers + 9);
	}
	free(text);
	return found;
}

int cache_read_record(int dir_fd, const char *name, char digest[72], capsula_error *err)
{
	char *text;
	size_t length;
	bool valid;

	if (read_small_at(dir_fd, name, RECORD_MAX, &text, &length, err) < 0)
		return -1;
	valid = length == 72 && text[71] == '\n';
	text[length > 0 ? length - 1 : 0] = '\0';
	valid = valid && sha256_digest_valid(text);
	if (valid)
		memcpy(digest, text, 72);
	free(text);
	if (!valid)
		return fail(err, 0, "remove it and pull again", "cache record %s is damaged", name);
	return 0;
}

int cache_lookup(const struct image_cache *cache, const struct image_ref *ref,
                 const struct platform *platform, char digest[72], capsula_error *err)
{
	char name[CACHE_NAME_MAX], image[CACHE_NAME_MAX];
	struct stat st;

	if (cache->fd < 0)
		return 0;
	ref_record_name(ref, platform, name, sizeof name);
	if (fstatat(cache->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return fail(err, errno, HINT_CACHE, "%s/%s", cache->dir, name);
	}
	if (cache_read_record(cache->fd, name, digest, err) < 0)
		return -1;
	cache_image_name(digest, image, sizeof image);
	if (fstatat(cache->fd, image, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	return fail(err, errno, HINT_CACHE, "%s/%s", cache->dir, image);
}

/* "INODE SIZE\n": what the cache made. */
static void format_image_id(const struct stat *st, char *out, size_t size)
{
	snprintf(out, size, "%llu %lld\n", (unsigned long long)st->st_ino, (long long)st->st_size);
}

int cache_record_image(const struct image_cache *cache, const char *digest, capsula_error *err)
{
	char image[CACHE_NAME_MAX], id_name[CACHE_NAME_MAX], id[64];
	struct stat st;

	cache_image_name(digest, image, sizeof image);
	image_id_name(digest, id_name, sizeof id_name);
	if (fstatat(cache->fd, image, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(err, errno, NULL, "%s/%s", cache->dir, image);
	format_image_id(&st, id, sizeof id);
	return cache_write_at(cache->fd, id_name, id, strlen(id), 0600, err);
}

int cache_open_image(const struct image_cache *cache, const char *digest, capsula_error *err)
{
	char image[CACHE_NAME_MAX], id_name[CACHE_NAME_MAX], id[64], *recorded = NULL;
	static const char hint[] = "remove it with capsula cache clean and pull again";
	struct stat st;
	size_t length;
	int fd;

	cache_image_name(digest, image, sizeof image);
	fd = openat(cache->fd, image, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fail(err, errno, hint, "cached image %s/%s", cache->dir, image);
	image_id_name(digest, id_name, sizeof id_name);
	if (fstat(fd, &st) < 0) {
		fail(err, errno, hint, "cached image %s/%s", cache->dir, image);
		close(fd);
		return -1;
	}
	if (read_small_at(cache->fd, id_name, sizeof id, &recorded, &length, err) < 0) {
		fail(err, errno, hint, "cached image %s/%s has no record of its making", cache->dir,
		     image);
		close(fd);
		return -1;
	}
	format_image_id(&st, id, sizeof id);
	if (!S_ISREG(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022) != 0 ||
	    strcmp(id, recorded) != 0) {
		free(recorded);
		close(fd);
		return fail(err, 0, hint, "cached image %s/%s is not the file capsula made there",
		            cache->dir, image);
	}
	free(recorded);
	return fd;
}

/* A fresh name beside name, made exclusively: NAME.tmp-RANDOM. */
static int create_temporary(int dir_fd, const char *name, char *temporary, size_t size)
{
	for (int tries = 0; tries < 100; tries++) {
		unsigned long long r;
		int fd;

		if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
			return -1;
		if ((size_t)snprintf(temporary, size, "%s.tmp-%012llx", name, r & 0xffffffffffffULL) >=
		    size) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = openat(dir_fd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

int cache_write_at(int dir_fd, const char *name, const void *data, size_t size, int mode,
                   capsula_error *err)
{
	char temporary[CACHE_NAME_MAX + 32];
	int fd = create_temporary(dir_fd, name, temporary, sizeof temporary);

	if (fd < 0)
		return fail(err, errno, HINT_CACHE, "create %s", name);
	if (fchmod(fd, (mode_t)mode) < 0 || write(fd, data, size) != (ssize_t)size ||
	    fsync(fd) < 0) {
		fail(err, errno, errno == ENOSPC ? "free space there or " HINT_CACHE : NULL, "write %s",
		     temporary);
		close(fd);
		unlinkat(dir_fd, temporary, 0);
		return -1;
	}
	close(fd);
	if (renameat(dir_fd, temporary, dir_fd, name) < 0) {
		fail(err, errno, NULL, "rename %s to %s", temporary, name);
		unlinkat(dir_fd, temporary, 0);
		return -1;
	}
	return 0;
}

int cache_write_file(const char *path, const void *data, size_t size, int mode,
                     capsula_error *err)
{
	char dir[CACHE_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int dir_fd, ret;

	if (slash == NULL || (size_t)(slash - path) >= sizeof dir)
		return fail(err, EINVAL, NULL, "%s", path);
	snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return fail(err, errno, NULL, "%s", dir);
	ret = cache_write_at(dir_fd, slash + 1, data, size, mode, err);
	close(dir_fd);
	return ret;
}

/* mkdir -p of a name below dir_fd, each step from the one before. */
static int make_directories_at(int dir_fd, const char *name, capsula_error *err)
{
	char copy[CACHE_NAME_MAX];

	if (snprintf(copy, sizeof copy, "%s", name) >= (int)sizeof copy)
		return fail(err, ENAMETOOLONG, NULL, "%s", name);
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdirat(dir_fd, copy, 0700) < 0 && errno != EEXIST)
			return fail(err, errno, HINT_CACHE, "create %s", copy);
		*p = saved;
		if (saved == '\0')
			return 0;
	}
}

int cache_record_ref(const struct image_cache *cache, const struct image_ref *ref,
                     const struct platform *platform, const char *digest, capsula_error *err)
{
	char name[CACHE_NAME_MAX], text[RECORD_MAX];
	char *slash;

	ref_record_name(ref, platform, name, sizeof name);
	slash = strrchr(name, '/');
	*slash = '\0';
	if (make_directories_at(cache->fd, name, err) < 0)
		return -1;
	*slash = '/';
	snprintf(text, sizeof text, "%s\n", digest);
	return cache_write_at(cache->fd, name, text, strlen(text), 0600, err);
}

int cache_lock(const struct image_cache *cache, const char *name, capsula_error *err)
{
	char path[CACHE_NAME_MAX];
	int fd;

	snprintf(path, sizeof path, "locks/%s.lock", name);
	fd = openat(cache->fd, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fail(err, errno, HINT_CACHE, "lock %s/%s", cache->dir, path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		fail(err, errno, "a cache on a file system without locks needs CAPSULA_CACHEDIR "
		     "on local disk", "lock %s/%s", cache->dir, path);
		close(fd);
		return -1;
	}
	return fd;
}

void cache_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Safe because whoever takes a lock looks again for what it guards. */
void cache_unlock_remove(const struct image_cache *cache, const char *name, int fd)
{
	char path[CACHE_NAME_MAX];

	snprintf(path, sizeof path, "locks/%s.lock", name);
	unlinkat(cache->fd, path, 0);
	cache_unlock(fd);
}
