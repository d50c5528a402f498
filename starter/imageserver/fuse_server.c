#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

/* libsquashfuse's headers choose the FUSE API version: they come first. */
#include "starter/imageserver/image_fs.h"
#include "starter/imageserver/image_ops.h"

#include <fuse3/fuse_lowlevel.h>

#include "common/timing.h"
#include "starter/imageserver/fuse_server.h"

/* Workers start one at a time: a new one only when requests queue up with
 * every worker busy. A start-up, one page fault after another, is served
 * best by one (measured: a second one costs it time on two cores); parallel
 * readers and readahead get as many as they keep busy. */
struct worker_pool {
	struct fuse_session *session;
	struct image_fs *ifs;
	pthread_mutex_t lock;
	unsigned started, idle, max;
};

static void *serve(void *arg);

static bool requests_waiting(struct worker_pool *pool)
{
	struct pollfd device = {.fd = fuse_session_fd(pool->session), .events = POLLIN};

	return poll(&device, 1, 0) == 1 && (device.revents & POLLIN);
}

/* Called with the pool locked (or before any worker runs). */
static int start_worker(struct worker_pool *pool)
{
	pthread_t thread;
	int ret = pthread_create(&thread, NULL, serve, pool);

	if (ret == 0) {
		pthread_detach(thread);
		pool->started++;
		pool->idle++;
	}
	return ret;
}

static void *serve(void *arg)
{
	struct worker_pool *pool = arg;
	struct fuse_buf request = {0};
	uint64_t began;

	prctl(PR_SET_NAME, "capsula-fuse", 0, 0, 0);
	while (!fuse_session_exited(pool->session)) {
		int received = fuse_session_receive_buf(pool->session, &request);

		if (received == -EINTR)
			continue;
		if (received <= 0)
			break;  /* -ENODEV: unmounted */
		pthread_mutex_lock(&pool->lock);
		pool->idle--;
		if (pool->idle == 0 && pool->started < pool->max && requests_waiting(pool))
			(void)start_worker(pool);  /* without it, the others still serve */
		pthread_mutex_unlock(&pool->lock);
		began = timing_now_us();
		fuse_session_process_buf(pool->session, &request);
		__atomic_add_fetch(&pool->ifs->serving_us, timing_now_us() - began, __ATOMIC_RELAXED);
		__atomic_add_fetch(&pool->ifs->requests_served, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&pool->lock);
		pool->idle++;
		pthread_mutex_unlock(&pool->lock);
	}
	free(request.mem);
	return NULL;
}

int fuse_device_open(int *fd_out, capsula_error *err)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
			return fail(err, errno, "install fuse3 and load the fuse module (modprobe fuse)",
			            "cannot open /dev/fuse");
		return fail(err, errno, "ask the admin to make /dev/fuse mode 0666 (as fuse3's udev rule does)",
		            "cannot open /dev/fuse");
	}
	*fd_out = fd;
	return 0;
}

int fuse_mount_at(const char *source, int fuse_fd, const char *mountpoint, uid_t uid,
                  gid_t gid, bool allow_other, capsula_error *err)
{
	char options[256];

	snprintf(options, sizeof options,
	         "fd=%d,rootmode=40000,user_id=%u,group_id=%u,default_permissions%s",
	         fuse_fd, (unsigned)uid, (unsigned)gid, allow_other ? ",allow_other" : "");
	if (mount(source, mountpoint, "fuse", MS_RDONLY | MS_NOSUID | MS_NODEV, options) < 0)
		return fail(err, errno,
		            "the kernel must allow FUSE mounts in user namespaces (Linux 4.18+)",
		            "cannot mount the image with FUSE");
	return 0;
}

/* The other ids of a full --fakeroot map (the package manager's users)
 * must reach the image too; only the container's processes can. */
static bool others_mapped(const struct capsula_plan *plan)
{
	return plan->fakeroot && plan->newuidmap != NULL;
}

static int mount_image(const struct capsula_plan *plan, const struct capsula_image *image,
                       int fuse_fd, const char *mountpoint, capsula_error *err)
{
	char source[4096 + 16];

	snprintf(source, sizeof source, "capsula:%s", image->path);
	return fuse_mount_at(source, fuse_fd, mountpoint, plan_inner_uid(plan), plan_inner_gid(plan),
	                     others_mapped(plan), err);
}

static void set_owners(struct image_fs *ifs, const struct capsula_plan *plan)
{
	ifs->squash_owners = plan->overlay != OVERLAY_NONE;
	ifs->inner_uid = plan_inner_uid(plan);
	ifs->inner_gid = plan_inner_gid(plan);
	if (others_mapped(plan))
		ifs->mapped_ids = plan->subuids.count < plan->subgids.count ?
		                  plan->subuids.count : plan->subgids.count;
}

/* The kernel's first request, INIT, is answered here and now: a worker
 * started for it would first have to be scheduled (on a busy machine it
 * took 240 us, median), and the holder's first look into the image waits
 * for that answer. */
static int answer_init(struct fuse_session *session, capsula_error *err)
{
	struct fuse_buf request = {0};
	int received;

	do
		received = fuse_session_receive_buf(session, &request);
	while (received == -EINTR);
	if (received > 0)
		fuse_session_process_buf(session, &request);
	free(request.mem);
	if (received <= 0)
		return fail(err, received < 0 ? -received : EIO, NULL,
		            "cannot start the FUSE session");
	return 0;
}

int fuse_server_start(const struct capsula_plan *plan, const struct capsula_image *image,
                      int fuse_fd, const char *mountpoint, struct image_fs **served,
                      capsula_error *err)
{
	char *fake_argv[] = {"capsula", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, fake_argv);
	struct fuse_session *session;
	struct worker_pool *pool;
	struct image_fs *ifs;
	char device[32];
	int ret;

	ifs = calloc(1, sizeof *ifs);
	if (ifs == NULL)
		return fail(err, errno, NULL, "image server");
	set_owners(ifs, plan);
	if (image_fs_open(ifs, image, plan->fuse_cache_bytes, err) < 0)
		return -1;
	/* Every owner the kernel is told of is then mapped, so the holder may
	 * read all the image's directories already: no need to answer them
	 * open and uncached while it builds (each lookup a round trip). */
	if (ifs->squash_owners)
		image_fs_built(ifs);
	if (mount_image(plan, image, fuse_fd, mountpoint, err) < 0)
		return -1;
	session = fuse_session_new(&args, &image_operations, sizeof image_operations, ifs);
	if (session == NULL)
		return fail(err, 0, NULL, "cannot start the FUSE session");
	/* "/dev/fd/N" tells libfuse the device is already open and mounted. */
	snprintf(device, sizeof device, "/dev/fd/%d", fuse_fd);
	if (fuse_session_mount(session, device) != 0)
		return fail(err, 0, NULL, "cannot attach the FUSE session to /dev/fuse");
	ifs->session = session;
	if (answer_init(session, err) < 0)
		return -1;
	pool = calloc(1, sizeof *pool);
	if (pool == NULL)
		return fail(err, errno, NULL, "FUSE worker pool");
	*pool = (struct worker_pool){.session = session, .ifs = ifs, .max = plan->fuse_threads};
	pthread_mutex_init(&pool->lock, NULL);
	ret = start_worker(pool);
	if (ret != 0)
		return fail(err, ret, NULL, "cannot start the FUSE server thread");
	*served = ifs;
	return 0;
}

int fuse_server_add_mount_point(struct image_fs *served, uint64_t parent, const char *name,
                                bool dir)
{
	uint64_t ino;

	if (mount_points_add(&served->mount_points, parent, name, dir, &ino) < 0)
		return -1;
	/* The kernel has just been told the name is missing, for good: make
	 * it ask again (ENOENT: it had nothing cached, as good). The parent's
	 * listing needs no such care: nothing lists the image's directories
	 * while the container is being built. */
	(void)fuse_lowlevel_notify_inval_entry(served->session, parent, name, strlen(name));
	return 0;
}

int fuse_server_has_entry(struct image_fs *served, uint64_t parent, const char *name)
{
	return image_fs_has_entry(served, parent, name);
}

int fuse_server_read_file(struct image_fs *served, uint64_t ino, size_t max, char **text,
                          size_t *length)
{
	return image_fs_read_whole(served, ino, max, text, length);
}
