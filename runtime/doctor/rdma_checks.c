#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/error.h"
#include "runtime/doctor/checks.h"
#include "runtime/image/image.h"
#include "runtime/image/image_files.h"
#include "runtime/image/mpi_stack.h"

/* libibverbs is loaded only here: linking it would slow every start. */
struct verbs {
	void *library;
	struct ibv_device **(*get_device_list)(int *count);
	void (*free_device_list)(struct ibv_device **list);
	const char *(*get_device_name)(struct ibv_device *device);
	struct ibv_context *(*open_device)(struct ibv_device *device);
	int (*close_device)(struct ibv_context *context);
	int (*query_device)(struct ibv_context *context, struct ibv_device_attr *attr);
	int (*query_port)(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr);
	const char *(*port_state_str)(enum ibv_port_state state);
};

static int load_verbs(struct verbs *v)
{
	memset(v, 0, sizeof *v);
	v->library = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
	if (v->library == NULL)
		return -1;
	*(void **)&v->get_device_list = dlsym(v->library, "ibv_get_device_list");
	*(void **)&v->free_device_list = dlsym(v->library, "ibv_free_device_list");
	*(void **)&v->get_device_name = dlsym(v->library, "ibv_get_device_name");
	*(void **)&v->open_device = dlsym(v->library, "ibv_open_device");
	*(void **)&v->close_device = dlsym(v->library, "ibv_close_device");
	*(void **)&v->query_device = dlsym(v->library, "ibv_query_device");
	*(void **)&v->query_port = dlsym(v->library, "ibv_query_port");
	*(void **)&v->port_state_str = dlsym(v->library, "ibv_port_state_str");
	if (!v->get_device_list || !v->free_device_list || !v->get_device_name ||
	    !v->open_device || !v->close_device || !v->query_device || !v->query_port ||
	    !v->port_state_str) {
		dlclose(v->library);
		return -1;
	}
	return 0;
}

void check_memlock(struct check_list *list)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_MEMLOCK, &limit) < 0) {
		check_add(list, "locked memory", CHECK_WARN, NULL, "getrlimit: %s", strerror(errno));
		return;
	}
	if (limit.rlim_cur == RLIM_INFINITY)
		check_add(list, "locked memory", CHECK_OK, NULL, "unlimited, as RDMA needs");
	else
		check_add(list, "locked memory", CHECK_WARN,
		          "set 'memlock unlimited' in /etc/security/limits.d (and Slurm's "
		          "PropagateResourceLimits)",
		          "limited to %llu KiB: RDMA registration of MPI buffers will fail",
		          (unsigned long long)limit.rlim_cur >> 10);
}

static void list_dev_infiniband(struct check_list *list)
{
	DIR *dir = opendir("/dev/infiniband");
	struct dirent *d;
	char names[400] = "";
	size_t n = 0;
	unsigned unusable = 0;

	if (dir == NULL) {
		check_add(list, "/dev/infiniband", CHECK_INFO, NULL,
		          "absent: no RDMA devices here; MPI uses shared memory and TCP");
		return;
	}
	while ((d = readdir(dir)) != NULL) {
		char path[300];

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/dev/infiniband/%s", d->d_name);
		if (strncmp(d->d_name, "uverbs", 6) == 0 && access(path, R_OK | W_OK) < 0)
			unusable++;
		if (n < sizeof names)
			n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? " " : "", d->d_name);
	}
	closedir(dir);
	if (unusable > 0)
		check_add(list, "/dev/infiniband", CHECK_WARN,
		          "make uverbs* mode 0666, as rdma-core's udev rules do",
		          "%s; %u uverbs device%s not usable by you", names, unusable,
		          unusable == 1 ? "" : "s");
	else
		check_add(list, "/dev/infiniband", CHECK_OK, NULL, "%s", n ? names : "(empty)");
}

/* The kernel driver behind an HCA ("mlx5_core"), whose user-space half is
 * the verbs provider an image needs ("mlx5"). */
static void driver_of(const char *device, struct strvec *drivers)
{
	char link[300], target[300];
	ssize_t n;
	char *base, *underscore;

	snprintf(link, sizeof link, "/sys/class/infiniband/%s/device/driver", device);
	n = readlink(link, target, sizeof target - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	underscore = strstr(base, "_core");
	if (underscore != NULL)
		*underscore = '\0';
	strvec_push(drivers, base);
}

static void check_ports(struct check_list *list, const struct verbs *v,
                        struct ibv_device *device)
{
	const char *name = v->get_device_name(device);
	struct ibv_context *context = v->open_device(device);
	struct ibv_device_attr attr;
	char detail[400];
	size_t n;
	unsigned active = 0;

	if (context == NULL) {
		check_add(list, "HCA", CHECK_WARN, "check /dev/infiniband permissions and the driver",
		          "%s: cannot open: %s", name, strerror(errno));
		return;
	}
	if (v->query_device(context, &attr) != 0) {
		check_add(list, "HCA", CHECK_WARN, NULL, "%s: cannot query it", name);
		v->close_device(context);
		return;
	}
	n = (size_t)snprintf(detail, sizeof detail, "%s (firmware %s):", name, attr.fw_ver);
	for (uint8_t port = 1; port <= attr.phys_port_cnt && n < sizeof detail; port++) {
		struct ibv_port_attr pa;

		memset(&pa, 0, sizeof pa);
		if (v->query_port(context, port, &pa) != 0)
			continue;
		active += pa.state == IBV_PORT_ACTIVE;
		n += (size_t)snprintf(detail + n, sizeof detail - n, " port %u %s %s", port,
		                      v->port_state_str(pa.state),
		                      pa.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet (RoCE)" :
		                      "InfiniBand");
	}
	v->close_device(context);
	check_add(list, "HCA", active ? CHECK_OK : CHECK_WARN,
	          active ? NULL : "check the cable, the switch and the subnet manager (opensm)",
	          "%s", detail);
}

void check_rdma_devices(struct check_list *list, struct strvec *drivers)
{
	struct verbs v;
	struct ibv_device **devices;
	int count = 0;

	list_dev_infiniband(list);
	if (load_verbs(&v) < 0) {
		check_add(list, "libibverbs", CHECK_WARN, "apt-get install libibverbs1 ibverbs-providers",
		          "not found on the host");
		return;
	}
	devices = v.get_device_list(&count);
	if (devices == NULL || count == 0) {
		check_add(list, "libibverbs", CHECK_INFO, NULL, "loaded; it sees no HCA on this node");
	} else {
		check_add(list, "libibverbs", CHECK_OK, NULL, "%d HCA%s", count, count == 1 ? "" : "s");
		for (int i = 0; i < count; i++) {
			check_ports(list, &v, devices[i]);
			driver_of(v.get_device_name(devices[i]), drivers);
		}
	}
	if (devices != NULL)
		v.free_device_list(devices);
	dlclose(v.library);
}

static bool same_major(const char *a, const char *b)
{
	return atoi(a) == atoi(b);
}

static void compare(struct check_list *list, const char *name, const char *host,
                    const char *image, const char *fix)
{
	if (image[0] == '\0') {
		check_add(list, name, CHECK_INFO, NULL, "not in the image%s%s",
		          host[0] ? "; host has " : "", host);
		return;
	}
	if (host[0] == '\0') {
		check_add(list, name, CHECK_INFO, NULL, "image has %s; not on the host", image);
		return;
	}
	if (same_major(host, image))
		check_add(list, name, CHECK_OK, NULL, "host %s, image %s", host, image);
	else
		check_add(list, name, CHECK_WARN, fix, "host %s but image %s: major versions differ",
		          host, image);
}

static bool has_provider(const struct mpi_stack *stack, const char *driver)
{
	for (size_t i = 0; i < stack->verbs_providers.count; i++)
		if (strcmp(stack->verbs_providers.items[i], driver) == 0)
			return true;
	return false;
}

void check_image_stack(struct check_list *list, const char *path,
                       const struct strvec *host_drivers)
{
	struct capsula_image image = {.fd = -1};
	struct squashfs_info info;
	struct image_files files;
	struct file_access access;
	struct mpi_stack host, inside;
	capsula_error err;

	if (image_open(path, &image, &info, &err) < 0 || image_files_open(&files, &image, &err) < 0) {
		check_add(list, "image", CHECK_FAIL, NULL, "%s", err.message);
		if (image.fd >= 0)
			close(image.fd);
		free(image.path);
		return;
	}
	check_add(list, "image", CHECK_OK, NULL, "%s (%s)", path,
	          squashfs_compression_name(info.compression));
	access = image_files_access(&files);
	mpi_stack_detect(&access, &inside);
	mpi_stack_detect(&host_files, &host);
	compare(list, "Open MPI", host.openmpi, inside.openmpi,
	        "use an image whose Open MPI has the host launcher's major version");
	compare(list, "PMIx", host.pmix, inside.pmix,
	        "use an image whose PMIx major version matches the host's");
	for (size_t i = 0; i < host_drivers->count; i++) {
		const char *driver = host_drivers->items[i];

		if (has_provider(&inside, driver))
			check_add(list, "verbs provider", CHECK_OK, NULL, "%s is in the image", driver);
		else
			check_add(list, "verbs provider", CHECK_WARN,
			          "install rdma-core's ibverbs-providers in the image",
			          "the HCA needs %s, which the image lacks: MPI falls back to TCP", driver);
	}
	if (host_drivers->count == 0) {
		char names[400] = "none";
		size_t n = 0;

		for (size_t i = 0; i < inside.verbs_providers.count && n < sizeof names; i++)
			n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? " " : "",
			                      inside.verbs_providers.items[i]);
		check_add(list, "verbs providers", CHECK_INFO, NULL, "image has %s; no HCA here", names);
	}
	mpi_stack_free(&host);
	mpi_stack_free(&inside);
	image_files_close(&files);
	close(image.fd);
	free(image.path);
}
