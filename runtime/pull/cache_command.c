#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/small_file.h"
#include "runtime/image/image_cache.h"
#include "runtime/pull/login.h"

static const char cache_usage[] =
	"Usage: capsula cache list\n"
	"       capsula cache clean [--older-than DAYS]\n"
	"The cache ($CAPSULA_CACHEDIR, the site's cache directory, or\n"
	"~/.cache/capsula): list its images, blobs and build layers, or remove\n"
	"them (all, or those not used for DAYS days). Do not clean while a pull\n"
	"or a build runs.\n";

#define USAGE_HINT "see 'capsula cache --help'"
#define MIB (1024.0 * 1024.0)

static struct image_cache cache;
static time_t cutoff;                /* clean: older than this; 0 = everything */
static unsigned long removed_files;
static unsigned long long removed_bytes;
static capsula_error walk_err;

/* The walks go through the open cache directory ("/proc/self/fd/N/...");
 * messages name it as the user knows it. */
static const char *shown(const char *path)
{
	static char text[CACHE_PATH_MAX + 64];
	size_t root = strlen(cache.root);

	if (strncmp(path, cache.root, root) != 0)
		return path;
	snprintf(text, sizeof text, "%s%s", cache.dir, path + root);
	return text;
}

static bool image_of(const char *digest, struct stat *st)
{
	char name[CACHE_NAME_MAX];

	cache_image_name(digest, name, sizeof name);
	return fstatat(cache.fd, name, st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int list_ref(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char digest[72], when[32], name[CACHE_PATH_MAX];
	const char *relative = path + strlen(cache.root) + strlen("/refs/");
	struct stat image_st;
	capsula_error ignored;
	char *comma;

	(void)ftw;
	if (type != FTW_F || strstr(path, ".tmp-") != NULL)
		return 0;
	if (cache_read_record(AT_FDCWD, path, digest, &ignored) < 0)
		snprintf(digest, sizeof digest, "-");
	snprintf(name, sizeof name, "%s", relative);
	comma = strrchr(name, ',');
	if (comma != NULL)
		*comma++ = '\0';
	/* The last '/' before a tag is written as ':' (a digest as '@'). */
	char *last = strrchr(name, '/');

	if (last != NULL)
		*last = strncmp(last + 1, "sha256:", 7) == 0 ? '@' : ':';
	strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&st->st_mtime));
	if (digest[0] == 's' && image_of(digest, &image_st))
		printf("%-50s %-14s %.19s %9.1f MiB  %s\n", name, comma ? comma : "-", digest,
		       (double)image_st.st_size / MIB, when);
	else
		printf("%-50s %-14s %.19s %13s  %s\n", name, comma ? comma : "-", digest, "(no image)",
		       when);
	return 0;
}

static void directory_usage(const char *sub, unsigned long *count, unsigned long long *bytes)
{
	char path[CACHE_PATH_MAX];
	DIR *dir;
	struct dirent *e;
	struct stat st;

	*count = 0;
	*bytes = 0;
	if (cache.fd < 0)
		return;
	snprintf(path, sizeof path, "%s/%s", cache.root, sub);
	dir = opendir(path);
	if (dir == NULL)
		return;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.' && fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			(*count)++, *bytes += (unsigned long long)st.st_blocks * 512;
	closedir(dir);
}

static int cache_list(void)
{
	char refs[CACHE_PATH_MAX];
	unsigned long images, blobs, partials, layers;
	unsigned long long image_bytes, blob_bytes, partial_bytes, layer_bytes;

	printf("%-50s %-14s %-19s %13s  %s\n", "REFERENCE", "PLATFORM", "MANIFEST", "SIZE",
	       "PULLED");
	snprintf(refs, sizeof refs, "%s/refs", cache.root);
	if (cache.fd >= 0 && access(refs, F_OK) == 0)
		nftw(refs, list_ref, 16, FTW_PHYS);
	directory_usage("images", &images, &image_bytes);
	directory_usage("blobs/sha256", &blobs, &blob_bytes);
	directory_usage("partial", &partials, &partial_bytes);
	directory_usage("build/layers", &layers, &layer_bytes);
	printf("%s: %lu images (%.1f MiB), %lu blobs (%.1f MiB), %lu partial downloads "
	       "(%.1f MiB), %lu build layers (%.1f MiB)\n", cache.dir, images,
	       (double)image_bytes / MIB, blobs, (double)blob_bytes / MIB, partials,
	       (double)partial_bytes / MIB, layers, (double)layer_bytes / MIB);
	return 0;
}

static int remove_file(const char *path, const struct stat *st)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return fail(&walk_err, errno, "check the cache's permissions", "remove %s",
		            shown(path));
	removed_files++;
	removed_bytes += (unsigned long long)st->st_blocks * 512;
	return 0;
}

static bool expired(const struct stat *st)
{
	time_t used = st->st_atime > st->st_mtime ? st->st_atime : st->st_mtime;

	return cutoff == 0 || used < cutoff;
}

static int clean_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !expired(st))
		return 0;
	return remove_file(path, st) < 0 ? -1 : 0;
}

/* A tag whose image is gone is pulled again next time. */
static int clean_ref(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char digest[72];
	struct stat image_st;
	capsula_error ignored;

	(void)ftw;
	if (type != FTW_F)
		return 0;
	if (cache_read_record(AT_FDCWD, path, digest, &ignored) == 0 && image_of(digest, &image_st))
		return 0;
	return remove_file(path, st) < 0 ? -1 : 0;
}

static int cache_clean(void)
{
	/* build/mounts: what RUN --mount=type=cache kept (apt's downloads). */
	static const char *const parts[] = {"images", "blobs/sha256", "partial", "build/layers",
	                                    "build/mounts"};
	char path[CACHE_PATH_MAX];

	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", cache.root, parts[i]);
		if (access(path, F_OK) == 0 && nftw(path, clean_file, 16, FTW_PHYS) != 0)
			return -1;
	}
	snprintf(path, sizeof path, "%s/refs", cache.root);
	if (access(path, F_OK) == 0 && nftw(path, clean_ref, 16, FTW_PHYS) != 0)
		return -1;
	printf("capsula: removed %lu files (%.1f MiB) from %s\n", removed_files,
	       (double)removed_bytes / MIB, cache.dir);
	return 0;
}

static int parse_days(const char *text, capsula_error *err)
{
	char *end;
	double days;

	errno = 0;
	days = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(days >= 0) || days > 100000)
		return fail(err, 0, USAGE_HINT, "--older-than %s: give a number of days", text);
	cutoff = time(NULL) - (time_t)(days * 86400);
	return 0;
}

int cache_main(int argc, char **argv)
{
	struct capsula_config config;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	int ret = -1;

	config_defaults(&config);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(cache_usage, stdout);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "clean") != 0) ||
	    (strcmp(argv[1], "list") == 0 && argc != 2) ||
	    (strcmp(argv[1], "clean") == 0 && argc != 2 &&
	     !(argc == 4 && strcmp(argv[2], "--older-than") == 0))) {
		fail(&err, 0, USAGE_HINT, "give list, or clean [--older-than DAYS]");
		goto out;
	}
	if ((argc == 4 && parse_days(argv[3], &err) < 0) ||
	    config_load(CAPSULA_CONFIG_FILE, &config, &err) < 0 ||
	    cache_locate(&config, &cache, 0, &err) < 0)
		goto out;
	if (strcmp(argv[1], "list") == 0)
		ret = cache_list();
	else if (cache.fd < 0)
		ret = 0;  /* nothing to clean */
	else if ((ret = cache_clean()) < 0)
		err = walk_err;
out:
	cache_close(&cache);
	config_free(&config);
	if (ret < 0)
		error_print(&err);
	return ret < 0 ? err.status : 0;
}
