#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "starter/container/userns.h"
#include "starter/imageserver/fuse_server.h"
#include "starter/starter.h"

#define INIT_WAIT_MS 2000

/* The same steps, in the same order, as a container's holder takes; the
 * kernel's INIT request then says what its FUSE offers. */
static void probe_child(int report, const char *dir)
{
	struct fuse_probe r = {0};
	char buf[FUSE_MIN_READ_BUFFER];
	struct fuse_init_in init;
	capsula_error err;
	struct pollfd pfd;
	int fuse;
	ssize_t got;

	if (userns_create(getuid(), getgid(), &err) < 0) {
		r.failed_at = FUSE_PROBE_USERNS;
		goto out;
	}
	if (fuse_device_open(&fuse, &err) < 0) {
		r.failed_at = FUSE_PROBE_OPEN;
		goto out;
	}
	if (fuse_mount_at("capsula-doctor", fuse, dir, getuid(), getgid(), false, &err) < 0) {
		r.failed_at = FUSE_PROBE_MOUNT;
		goto out;
	}
	pfd = (struct pollfd){.fd = fuse, .events = POLLIN};
	got = poll(&pfd, 1, INIT_WAIT_MS) == 1 ? read(fuse, buf, sizeof buf) : -1;
	if (got < (ssize_t)(sizeof(struct fuse_in_header) + 16)) {
		r.failed_at = FUSE_PROBE_INIT;
		goto out;
	}
	memset(&init, 0, sizeof init);
	memcpy(&init, buf + sizeof(struct fuse_in_header),
	       (size_t)got - sizeof(struct fuse_in_header) < sizeof init ?
	       (size_t)got - sizeof(struct fuse_in_header) : sizeof init);
	r.major = init.major;
	r.minor = init.minor;
	r.max_readahead = init.max_readahead;
	r.flags = init.flags;
out:
	r.errnum = errno;
	if (write(report, &r, sizeof r) != sizeof r)
		_exit(1);
	_exit(0);
}

int starter_probe_fuse(struct fuse_probe *probe)
{
	char dir[] = "/tmp/capsula-doctor-XXXXXX";
	int pipefd[2];
	pid_t pid;
	ssize_t got;

	memset(probe, 0, sizeof *probe);
	if (mkdtemp(dir) == NULL)
		return -1;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		rmdir(dir);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		probe_child(pipefd[1], dir);
	}
	close(pipefd[1]);
	got = pid > 0 ? read(pipefd[0], probe, sizeof *probe) : -1;
	close(pipefd[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	rmdir(dir);
	return got == (ssize_t)sizeof *probe ? 0 : -1;
}
