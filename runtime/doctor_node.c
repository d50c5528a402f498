#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/doctor.h"
#include "runtime/site_config.h"
#include "starter/fuse_server.h"
#include "starter/userns.h"

#define FUSE_MINOR 229
#define INIT_WAIT_MS 2000

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

struct probe_result {
	int stage;     /* 0 all went well; else where it failed */
	int errnum;
	struct fuse_init_in init;
};

enum { STAGE_USERNS = 1, STAGE_OPEN_FUSE, STAGE_MOUNT, STAGE_INIT };

/* Mount FUSE as capsula does, in namespaces of a child, and read the
 * kernel's INIT request: its protocol version and the features it offers. */
static void probe_child(int report, const char *dir)
{
	struct probe_result r = {0};
	char buf[FUSE_MIN_READ_BUFFER];
	capsula_error err;
	struct pollfd pfd;
	int fuse;
	ssize_t got;

	/* The same steps, in the same order, as a container's holder takes. */
	if (userns_create(getuid(), getgid(), &err) < 0) {
		r.stage = STAGE_USERNS;
		goto out;
	}
	if (fuse_device_open(&fuse, &err) < 0) {
		r.stage = STAGE_OPEN_FUSE;
		goto out;
	}
	if (fuse_mount("capsula-doctor", fuse, dir, getuid(), getgid(), false, &err) < 0) {
		r.stage = STAGE_MOUNT;
		goto out;
	}
	pfd = (struct pollfd){.fd = fuse, .events = POLLIN};
	got = poll(&pfd, 1, INIT_WAIT_MS) == 1 ? read(fuse, buf, sizeof buf) : -1;
	if (got < (ssize_t)(sizeof(struct fuse_in_header) + 16)) {
		r.stage = STAGE_INIT;
		goto out;
	}
	memcpy(&r.init, buf + sizeof(struct fuse_in_header),
	       (size_t)got - sizeof(struct fuse_in_header) < sizeof r.init ?
	       (size_t)got - sizeof(struct fuse_in_header) : sizeof r.init);
out:
	r.errnum = errno;
	if (write(report, &r, sizeof r) != sizeof r)
		_exit(1);
	_exit(0);  /* the namespaces, and the mount in them, go with us */
}

/* Both the namespace and the FUSE checks read one probe's result. */
static int run_probe(struct probe_result *r)
{
	static struct probe_result cached;
	static int cached_status = 1;  /* 1: not run yet */
	char dir[] = "/tmp/capsula-doctor-XXXXXX";
	int pipefd[2];
	pid_t pid;
	ssize_t got;

	if (cached_status != 1) {
		*r = cached;
		return cached_status;
	}
	memset(r, 0, sizeof *r);
	if (mkdtemp(dir) == NULL || pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		probe_child(pipefd[1], dir);
	}
	close(pipefd[1]);
	got = pid > 0 ? read(pipefd[0], r, sizeof *r) : -1;
	close(pipefd[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	rmdir(dir);
	cached = *r;
	cached_status = got == (ssize_t)sizeof *r ? 0 : -1;
	return cached_status;
}

void check_user_namespaces(struct check_list *list)
{
	long max = read_sysctl("/proc/sys/user/max_user_namespaces");
	long clone = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone");
	long apparmor = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
	struct probe_result r;

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
	if (run_probe(&r) < 0 || r.stage == STAGE_USERNS) {
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

static void describe_init(const struct fuse_init_in *init, char *out, size_t size)
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
	size_t n = (size_t)snprintf(out, size, "protocol %u.%u, readahead %u KiB;", init->major,
	                            init->minor, init->max_readahead >> 10);

	for (size_t i = 0; i < sizeof features / sizeof features[0] && n < size; i++)
		if (init->flags & features[i].flag)
			n += (size_t)snprintf(out + n, size - n, " %s", features[i].name);
}

void check_fuse(struct check_list *list)
{
	struct stat st;
	struct probe_result r;
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
	if (run_probe(&r) < 0 || r.stage == STAGE_USERNS)
		return;  /* reported with the user namespaces */
	if (r.stage != 0) {
		check_add(list, "FUSE in a namespace", CHECK_FAIL,
		          "use Linux 4.18 or later, with FUSE built in or loaded",
		          "%s failed: %s", r.stage == STAGE_MOUNT ? "mounting FUSE" :
		          r.stage == STAGE_OPEN_FUSE ? "opening /dev/fuse" : "FUSE's INIT request",
		          strerror(r.errnum));
		return;
	}
	describe_init(&r.init, features, sizeof features);
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
	config_free(&config);
}
