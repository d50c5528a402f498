#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "common/small_file.h"
#include "runtime/image/image_cache.h"

#define HINT_CACHE "set CAPSULA_CACHEDIR to a directory of yours"
#define RECORD_MAX 128

static const char *const subdirectories[] = {"blobs/sha256", "images", "refs", "partial", "locks"};

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

static int base_directory(const struct capsula_config *config, char *out, size_t size,
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
		n = snprintf(out, size, "%s/%u", config->cache_dir, (unsigned)getuid());
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

/* Someone else's directory could hand us their images: it must be ours. */
static int check_owner(const char *dir, capsula_error *err)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return fail(err, errno, HINT_CACHE, "cache directory %s", dir);
	if (!S_ISDIR(st.st_mode))
		return fail(err, 0, HINT_CACHE, "cache directory %s is not a directory", dir);
	if (st.st_uid != getuid())
		return fail(err, 0, HINT_CACHE, "cache directory %s belongs to uid %u, not to you",
		            dir, (unsigned)st.st_uid);
	if ((st.st_mode & 022) != 0)
		return fail(err, 0, "chmod go-w it, or " HINT_CACHE,
		            "cache directory %s is writable by others", dir);
	return 0;
}

int cache_locate(const struct capsula_config *config, struct image_cache *cache, int create,
                 capsula_error *err)
{
	char path[CACHE_PATH_MAX];
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}\n";

	if (base_directory(config, cache->dir, sizeof cache->dir, err) < 0)
		return -1;
	if (!create) {
		if (access(cache->dir, F_OK) < 0 && errno == ENOENT)
			return 0;
		return check_owner(cache->dir, err);
	}
	if (make_directories(cache->dir, 0700, err) < 0 || check_owner(cache->dir, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof subdirectories / sizeof subdirectories[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", cache->dir, subdirectories[i]);
		if (make_directories(path, 0700, err) < 0)
			return -1;
	}
	/* So that capsula build reads the cache as the OCI layout it is. */
	snprintf(path, sizeof path, "%s/oci-layout", cache->dir);
	if (access(path, F_OK) < 0 &&
	    cache_write_file(path, layout, sizeof layout - 1, 0600, err) < 0)
		return -1;
	return 0;
}

void cache_blob_path(const struct image_cache *cache, const char *digest, char *out, size_t size)
{
	snprintf(out, size, "%s/blobs/sha256/%s", cache->dir, digest + strlen("sha256:"));
}

void cache_image_path(const struct image_cache *cache, const char *digest, char *out, size_t size)
{
	snprintf(out, size, "%s/images/%s.sqfs", cache->dir, digest + strlen("sha256:"));
}

static void ref_record_path(const struct image_cache *cache, const struct image_ref *ref,
                            const struct platform *p, char *out, size_t size)
{
	snprintf(out, size, "%s/refs/%s/%s/%s,%s-%s%s%s", cache->dir, ref->registry,
	         ref->repository, image_ref_reference(ref), p->os, p->architecture,
	         p->variant[0] ? "-" : "", p->variant);
}

int cache_read_record(const char *path, char digest[72], capsula_error *err)
{
	char *text;
	size_t length;
	bool valid;

	if (read_small_file(path, RECORD_MAX, &text, &length, err) < 0)
		return -1;
	valid = length == 72 && text[71] == '\n';
	text[length > 0 ? length - 1 : 0] = '\0';
	valid = valid && sha256_digest_valid(text);
	if (valid)
		memcpy(digest, text, 72);
	free(text);
	if (!valid)
		return fail(err, 0, "remove it and pull again", "cache record %s is damaged", path);
	return 0;
}

int cache_lookup(const struct image_cache *cache, const struct image_ref *ref,
                 const struct platform *platform, char *image, size_t size, capsula_error *err)
{
	char path[CACHE_PATH_MAX], digest[72];

	ref_record_path(cache, ref, platform, path, sizeof path);
	if (access(path, F_OK) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return fail(err, errno, HINT_CACHE, "%s", path);
	}
	if (cache_read_record(path, digest, err) < 0)
		return -1;
	cache_image_path(cache, digest, image, size);
	if (access(image, R_OK) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	return fail(err, errno, HINT_CACHE, "%s", image);
}

int cache_write_file(const char *path, const void *data, size_t size, int mode,
                     capsula_error *err)
{
	char temporary[CACHE_PATH_MAX + 16];
	int fd;

	if (snprintf(temporary, sizeof temporary, "%s.tmp-XXXXXX", path) >= (int)sizeof temporary)
		return fail(err, ENAMETOOLONG, NULL, "%s", path);
	fd = mkostemp(temporary, O_CLOEXEC);
	if (fd < 0)
		return fail(err, errno, HINT_CACHE, "create %s", temporary);
	if (fchmod(fd, (mode_t)mode) < 0 || write(fd, data, size) != (ssize_t)size ||
	    fsync(fd) < 0) {
		fail(err, errno, errno == ENOSPC ? "free space there or " HINT_CACHE : NULL, "write %s",
		     temporary);
		close(fd);
		unlink(temporary);
		return -1;
	}
	close(fd);
	if (rename(temporary, path) < 0) {
		fail(err, errno, NULL, "rename %s to %s", temporary, path);
		unlink(temporary);
		return -1;
	}
	return 0;
}

int cache_record_ref(const struct image_cache *cache, const struct image_ref *ref,
                     const struct platform *platform, const char *digest, capsula_error *err)
{
	char path[CACHE_PATH_MAX], text[RECORD_MAX];
	char *slash;

	ref_record_path(cache, ref, platform, path, sizeof path);
	slash = strrchr(path, '/');
	*slash = '\0';
	if (make_directories(path, 0700, err) < 0)
		return -1;
	*slash = '/';
	snprintf(text, sizeof text, "%s\n", digest);
	return cache_write_file(path, text, strlen(text), 0600, err);
}

int cache_lock(const struct image_cache *cache, const char *name, capsula_error *err)
{
	char path[CACHE_PATH_MAX];
	int fd;

	snprintf(path, sizeof path, "%s/locks/%s.lock", cache->dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fail(err, errno, HINT_CACHE, "lock %s", path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		fail(err, errno, "a cache on a file system without locks needs CAPSULA_CACHEDIR "
		     "on local disk", "lock %s", path);
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
	char path[CACHE_PATH_MAX];

	snprintf(path, sizeof path, "%s/locks/%s.lock", cache->dir, name);
	unlink(path);
	cache_unlock(fd);
}
