#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "runtime/config/site_config.h"
#include "runtime/doctor/checks.h"
#include "runtime/image/image_cache.h"
#include "starter/starter.h"

#define FUSE_MINOR 229

/* A sysctl as a number, or -1 when the file does not exist. */
static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	long value = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &value) != 1)
		value = -1;
	fclose(f);
	return value;
}

/* Is the system call there? A bad call fails with something other than
 * ENOSYS when it is. */
static bool have_syscall(long number)
{
	return syscall(number, -1, NULL, NULL, 0, 0) < 0 && errno != ENOSYS;
}

void check_kernel(struct check_list *list)
{
	struct utsname u;
	bool openat2 = have_syscall(SYS_openat2);
	bool setattr = have_syscall(SYS_mount_setattr);

	uname(&u);
	if (openat2 && setattr)
		check_add(list, "kernel", CHECK_OK, NULL, "Linux %s (openat2, mount_setattr)", u.release);
	else
		check_add(list, "kernel", CHECK_FAIL, "run capsula on Linux 5.12 or later",
		          "Linux %s lacks %s", u.release, openat2 ? "mount_setattr" : "openat2");
}

/* Both the namespace and the FUSE checks read one probe's result. */
static int probe_once(struct fuse_probe *r)
{
	static struct fuse_probe cached;
	static int cached_status = 1;  /* 1: not run yet */

	if (cached_status == 1)
		cached_status = starter_probe_fuse(&cached);
	*r = cached;
	return cached_status;
}

void check_user_namespaces(struct check_list *list)
{
	long max = read_sysctl("/proc/sys/user/max_user_namespaces");
	long clone = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone");
	long apparmor = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
	struct fuse_probe r;

	if (max == 0) {
		check_add(list, "user namespaces", CHECK_FAIL,
		          "sysctl -w user.max_user_namespaces=65536 (and in /etc/sysctl.d)",
		          "user.max_user_namespaces is 0");
		return;
	}
	if (clone == 0) {
		check_add(list, "user namespaces", CHECK_FAIL,
		          "sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d)",
		          "kernel.unprivileged_userns_clone is 0");
		return;
	}
	if (probe_once(&r) < 0 || r.failed_at == FUSE_PROBE_USERNS) {
		check_add(list, "user namespaces", CHECK_FAIL,
		          apparmor == 1 ? "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, "
		                          "or an AppArmor profile allowing userns for capsula"
		                        : "ask the administrator to allow unprivileged user namespaces",
		          "cannot make one: %s%s", strerror(r.errnum),
		          apparmor == 1 ? " (AppArmor restricts them)" : "");
		return;
	}
	check_add(list, "user namespaces", CHECK_OK, NULL, "unprivileged, uid mapped (max %ld)", max);
}

/* The kernel's FUSE as the probe's INIT request describes it. */
static void describe_init(const struct fuse_probe *probe, char *out, size_t size)
{
	static const struct {
		uint32_t flag;
		const char *name;
	} features[] = {
		{FUSE_ASYNC_READ, "async_read"}, {FUSE_SPLICE_WRITE, "splice_write"},
		{FUSE_SPLICE_MOVE, "splice_move"}, {FUSE_DO_READDIRPLUS, "readdirplus"},
		{FUSE_PARALLEL_DIROPS, "parallel_dirops"}, {FUSE_MAX_PAGES, "max_pages"},
		{FUSE_CACHE_SYMLINKS, "cache_symlinks"},
	};
	size_t n = (size_t)snprintf(out, size, "protocol %u.%u, readahead %u KiB;", probe->major,
	                            probe->minor, probe->max_readahead >> 10);

	for (size_t i = 0; i < sizeof features / sizeof features[0] && n < size; i++)
		if (probe->flags & features[i].flag)
			n += (size_t)snprintf(out + n, size - n, " %s", features[i].name);
}

void check_fuse(struct check_list *list)
{
	struct stat st;
	struct fuse_probe r;
	char features[400];

	if (stat("/dev/fuse", &st) < 0 || !S_ISCHR(st.st_mode) || minor(st.st_rdev) != FUSE_MINOR) {
		check_add(list, "/dev/fuse", CHECK_FAIL, "modprobe fuse (and install fuse3)",
		          "missing or not the FUSE device");
		return;
	}
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		check_add(list, "/dev/fuse", CHECK_FAIL,
		          "chmod 0666 /dev/fuse, as the fuse3 package's udev rule does",
		          "not readable and writable by you: %s", strerror(errno));
		return;
	}
	check_add(list, "/dev/fuse", CHECK_OK, NULL, "usable");
	if (probe_once(&r) < 0 || r.failed_at == FUSE_PROBE_USERNS)
		return;  /* reported with the user namespaces */
	if (r.failed_at != FUSE_PROBE_OK) {
		check_add(list, "FUSE in a namespace", CHECK_FAIL,
		          "use Linux 4.18 or later, with FUSE built in or loaded",
		          "%s failed: %s", r.failed_at == FUSE_PROBE_MOUNT ? "mounting FUSE" :
		          r.failed_at == FUSE_PROBE_OPEN ? "opening /dev/fuse" : "FUSE's INIT request",
		          strerror(r.errnum));
		return;
	}
	describe_init(&r, features, sizeof features);
	check_add(list, "FUSE in a namespace", CHECK_OK, NULL, "%s", features);
}

void check_site_config(struct check_list *list)
{
	struct capsula_config config;
	capsula_error err;

	if (config_load(CAPSULA_CONFIG_FILE, &config, &err) < 0) {
		check_add(list, "site configuration", CHECK_FAIL, "the administrator must fix it",
		          "%s", err.message);
		return;
	}
	if (access(CAPSULA_CONFIG_FILE, F_OK) < 0)
		check_add(list, "site configuration", CHECK_INFO, NULL, "%s absent: the defaults",
		          CAPSULA_CONFIG_FILE);
	else
		check_add(list, "site configuration", CHECK_OK, NULL,
		          "%s: %zu image director%s, %zu binds, user binds %s, --dev host %s",
		          CAPSULA_CONFIG_FILE, config.image_dirs.count,
		          config.image_dirs.count == 1 ? "y" : "ies", config.binds.count,
		          config.user_binds ? "allowed" : "not allowed",
		          config.dev_host ? "allowed" : "not allowed");
	check_cache(list, &config);
	config_free(&config);
}

/* The pull cache this user would use, checked as a pull checks it. */
void check_cache(struct check_list *list, const struct capsula_config *config)
{
	struct image_cache cache;
	capsula_error err;
	struct stat st;

	if (cache_locate(config, &cache, 0, &err) < 0) {
		check_add(list, "pull cache", CHECK_WARN, NULL, "%s", err.message);
		return;
	}
	if (config->cache_dir[0] != '\0' && stat(config->cache_dir, &st) == 0)
		check_add(list, "pull cache", cache.fd >= 0 ? CHECK_OK : CHECK_INFO, NULL,
		          "the site's cache directory %s (mode %04o: %s); yours: %s%s",
		          config->cache_dir, (unsigned)(st.st_mode & 07777),
		          st.st_mode & S_ISVTX ? "users make their own directories" :
		          "the administrator makes each user's", cache.dir,
		          cache.fd >= 0 ? "" : ", not made yet");
	else
		check_add(list, "pull cache", CHECK_INFO, NULL, "cache directory %s%s", cache.dir,
		          cache.fd >= 0 ? "" : " (the first pull makes it)");
	cache_close(&cache);
}
