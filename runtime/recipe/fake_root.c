#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "runtime/recipe/fake_root.h"

#define HINT_SECCOMP "ask the administrator for subordinate ids (/etc/subuid) for builds " \
	"that need root's chown"

static const int faked_ids[] = {
	SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(setreuid), SCMP_SYS(setregid),
	SCMP_SYS(setresuid), SCMP_SYS(setresgid), SCMP_SYS(setfsuid), SCMP_SYS(setfsgid),
	SCMP_SYS(setgroups),
};
static const int recorded_chowns[] = {
	SCMP_SYS(chown), SCMP_SYS(fchown), SCMP_SYS(lchown), SCMP_SYS(fchownat),
};

int fake_root_install(int *listener, capsula_error *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int ret = 0;

	if (ctx == NULL)
		return fail(err, ENOMEM, NULL, "seccomp filter");
	for (size_t i = 0; ret == 0 && i < sizeof faked_ids / sizeof faked_ids[0]; i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, faked_ids[i], 0);
	for (size_t i = 0; ret == 0 && i < sizeof recorded_chowns / sizeof recorded_chowns[0]; i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, recorded_chowns[i], 0);
	/* Devices only: FIFOs, sockets and plain files are made for real. */
	if (ret == 0)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(mknod), 1,
		                       SCMP_A1(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR));
	if (ret == 0)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(mknod), 1,
		                       SCMP_A1(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK));
	if (ret == 0)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(mknodat), 1,
		                       SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR));
	if (ret == 0)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(mknodat), 1,
		                       SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK));
	if (ret == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		ret = -errno;
	if (ret == 0)
		ret = seccomp_load(ctx);
	if (ret == 0 && (*listener = seccomp_notify_fd(ctx)) < 0)
		ret = *listener;
	seccomp_release(ctx);
	if (ret < 0)
		return fail(err, -ret, HINT_SECCOMP, "load the seccomp filter that emulates root");
	return 0;
}

/* ---------------------------------------------------------------- the supervisor */

/* A path argument from the requesting process's memory. */
static int read_path(pid_t pid, unsigned long long address, char *out, size_t size)
{
	char mem[64];
	ssize_t got;
	int fd;

	snprintf(mem, sizeof mem, "/proc/%d/mem", (int)pid);
	fd = open(mem, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = pread(fd, out, size - 1, (off_t)address);
	close(fd);
	if (got < 0)
		return -errno;
	out[got] = '\0';
	return strnlen(out, size) < size - 1 || (size_t)got < size - 1 ? 0 : -ENAMETOOLONG;
}

/* Where the requester's path leads, as it would resolve it: absolute paths
 * from the root (ours is the container's), relative ones from its cwd or
 * from the directory descriptor it gave. */
static int target_path(pid_t pid, int dirfd, const char *path, bool empty_is_fd, char *out,
                       size_t size)
{
	int n;

	if (path[0] == '/')
		n = snprintf(out, size, "%s", path);
	else if (path[0] == '\0' && empty_is_fd)
		n = snprintf(out, size, "/proc/%d/fd/%d", (int)pid, dirfd);
	else if (dirfd == AT_FDCWD)
		n = snprintf(out, size, "/proc/%d/cwd/%s", (int)pid, path);
	else
		n = snprintf(out, size, "/proc/%d/fd/%d/%s", (int)pid, dirfd, path);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Record the owner asked for; -1 keeps what was recorded (or the file's). */
static int record_owner(const char *path, bool follow, long long uid, long long gid)
{
	char value[64] = "";
	unsigned long long old_uid, old_gid;
	struct stat st;
	ssize_t n;

	if ((follow ? stat(path, &st) : lstat(path, &st)) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return 0;  /* no user.* attributes on links: their owner stays root's */
	old_uid = st.st_uid;
	old_gid = st.st_gid;
	n = getxattr(path, FAKE_OWNER_XATTR, value, sizeof value - 1);
	if (n > 0) {
		value[n] = '\0';
		if (sscanf(value, "%llu:%llu", &old_uid, &old_gid) != 2)
			old_uid = old_gid = 0;
	}
	snprintf(value, sizeof value, "%llu:%llu",
	         uid == -1 || uid == (long long)(uid_t)-1 ? old_uid : (unsigned long long)uid,
	         gid == -1 || gid == (long long)(gid_t)-1 ? old_gid : (unsigned long long)gid);
	/* A file where user attributes cannot go (/proc, /dev) keeps root. */
	if (setxattr(path, FAKE_OWNER_XATTR, value, strlen(value), 0) < 0 && errno != ENOTSUP &&
	    errno != EPERM)
		return -errno;
	return 0;
}

static int fake_chown(const struct seccomp_notif *req, int nr)
{
	const unsigned long long *a = req->data.args;
	char path[PATH_MAX] = "", target[PATH_MAX + 64];
	int dirfd = AT_FDCWD, ret;
	bool follow = nr != SCMP_SYS(lchown), empty_is_fd = false;
	long long uid, gid;

	if (nr == SCMP_SYS(fchown)) {
		snprintf(target, sizeof target, "/proc/%d/fd/%d", (int)req->pid, (int)a[0]);
		return record_owner(target, true, (int)a[1], (int)a[2]);
	}
	if (nr == SCMP_SYS(fchownat)) {
		dirfd = (int)a[0];
		follow = !(a[4] & AT_SYMLINK_NOFOLLOW);
		empty_is_fd = a[4] & AT_EMPTY_PATH;
	}
	ret = read_path((pid_t)req->pid, nr == SCMP_SYS(fchownat) ? a[1] : a[0], path, sizeof path);
	if (ret == 0)
		ret = target_path((pid_t)req->pid, dirfd, path, empty_is_fd, target, sizeof target);
	if (ret < 0)
		return ret;
	uid = (int)(nr == SCMP_SYS(fchownat) ? a[2] : a[1]);
	gid = (int)(nr == SCMP_SYS(fchownat) ? a[3] : a[2]);
	return record_owner(target, follow, uid, gid);
}

static int fake_mknod(const struct seccomp_notif *req, int nr)
{
	const unsigned long long *a = req->data.args;
	bool at = nr == SCMP_SYS(mknodat);
	mode_t mode = (mode_t)(at ? a[2] : a[1]);
	dev_t dev = (dev_t)(at ? a[3] : a[2]);
	char path[PATH_MAX] = "", target[PATH_MAX + 64], value[64];
	int ret, fd;

	ret = read_path((pid_t)req->pid, at ? a[1] : a[0], path, sizeof path);
	if (ret == 0)
		ret = target_path((pid_t)req->pid, at ? (int)a[0] : AT_FDCWD, path, false, target,
		                  sizeof target);
	if (ret < 0)
		return ret;
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
	if (fd < 0)
		return -errno;
	snprintf(value, sizeof value, "%c %u %u", S_ISCHR(mode) ? 'c' : 'b', major(dev), minor(dev));
	ret = fsetxattr(fd, FAKE_DEVICE_XATTR, value, strlen(value), 0) < 0 ? -errno : 0;
	close(fd);
	if (ret < 0)
		unlink(target);
	return ret;
}

static void answer(int listener, struct seccomp_notif *req, struct seccomp_notif_resp *resp)
{
	int nr = req->data.nr, result = 0;

	if (nr == SCMP_SYS(chown) || nr == SCMP_SYS(fchown) || nr == SCMP_SYS(lchown) ||
	    nr == SCMP_SYS(fchownat))
		result = fake_chown(req, nr);
	else if (nr == SCMP_SYS(mknod) || nr == SCMP_SYS(mknodat))
		result = fake_mknod(req, nr);
	memset(resp, 0, sizeof *resp);
	resp->id = req->id;
	resp->error = result < 0 ? result : 0;
	resp->val = 0;
	/* A request whose process is gone (killed meanwhile) needs no answer. */
	if (seccomp_notify_id_valid(listener, req->id) == 0)
		seccomp_notify_respond(listener, resp);
}

int fake_root_serve(int listener, pid_t child, int *status, capsula_error *err)
{
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	int ret = 0;

	/* Once the step's command has ended, requests of what it left behind
	 * fail (ENOSYS) with the listener closed. */
	if (pidfd < 0)
		return fail(err, errno, NULL, "pidfd of the build step");
	if (seccomp_notify_alloc(&req, &resp) < 0) {
		close(pidfd);
		return fail(err, ENOMEM, NULL, "seccomp notification");
	}
	struct pollfd fds[2] = {{.fd = listener, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = fail(err, errno, NULL, "wait for the build step");
			break;
		}
		if (fds[0].revents & POLLIN) {
			memset(req, 0, sizeof *req);
			if (seccomp_notify_receive(listener, req) == 0)
				answer(listener, req, resp);
			continue;
		}
		if (fds[1].revents & POLLIN)
			break;
		if (fds[0].revents & (POLLHUP | POLLERR))
			fds[0].fd = -1;
	}
	seccomp_notify_free(req, resp);
	close(pidfd);
	while (waitpid(child, status, 0) < 0)
		if (errno != EINTR)
			return fail(err, errno, NULL, "wait for the build step");
	return ret;
}
