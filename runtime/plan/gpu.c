#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/environ.h"
#include "runtime/plan/gpu.h"

/* The driver's own libraries (by base name, without ".so"): what a CUDA,
 * OpenCL, OptiX, video or GL program loads from the driver. The CUDA
 * toolkit's libraries (cudart, cublas) are the image's business. */
static const char *const nvidia_libraries[] = {
	"libcuda", "libcudadebugger", "libnvidia-ml", "libnvidia-ptxjitcompiler",
	"libnvidia-nvvm", "libnvidia-opencl", "libnvidia-cfg", "libnvidia-allocator",
	"libnvidia-gpucomp", "libnvidia-pkcs11", "libnvidia-pkcs11-openssl3",
	"libnvidia-opticalflow", "libnvcuvid", "libnvidia-encode", "libnvoptix",
	"libnvidia-rtcore", "libnvidia-tls", "libnvidia-glcore", "libnvidia-eglcore",
	"libnvidia-glsi", "libnvidia-glvkspirv", "libnvidia-fbc", "libnvidia-ngx",
	"libnvidia-fatbinaryloader", "libnvidia-compiler", "libGLX_nvidia", "libEGL_nvidia",
	"libGLESv2_nvidia", "libGLESv1_CM_nvidia", NULL,
};
static const char *const nvidia_programs[] = {
	"nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control",
	"nvidia-cuda-mps-server", NULL,
};
static const char *const nvidia_devices[] = {
	"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset",
	"/dev/nvidia-caps", NULL,
};

static const char *const amd_libraries[] = {
	"libamdhip64", "libhsa-runtime64", "libhsakmt", "libamd_comgr", "librocm_smi64",
	"librocm-core", "libhiprtc", "libdrm_amdgpu", NULL,
};
static const char *const amd_programs[] = {"rocm-smi", "rocminfo", "amd-smi", NULL};
static const char *const amd_devices[] = {"/dev/kfd", "/dev/dri", NULL};

/* ldconfig -p's tag for libraries this machine can load. */
#if defined(__x86_64__)
#define NATIVE_ABI ",x86-64"
#elif defined(__aarch64__)
#define NATIVE_ABI ",AArch64"
#elif defined(__powerpc64__)
#define NATIVE_ABI ",64bit"
#else
#define NATIVE_ABI ""
#endif

#define SYSTEM_SEARCH_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const char *gpu_vendor(unsigned kind)
{
	return kind == GPU_NVIDIA ? "NVIDIA" : "AMD";
}

const char *gpu_option(unsigned kind)
{
	return kind == GPU_NVIDIA ? "--nv" : "--rocm";
}

void gpu_search_places(bool user_binds, char **environ, const char **ld_cache,
                       const char **search_path)
{
	*ld_cache = user_binds ? env_get(environ, "CAPSULA_LD_CACHE") : NULL;
	*search_path = user_binds ? env_get(environ, "PATH") : NULL;
	if (*ld_cache != NULL && (*ld_cache)[0] == '\0')
		*ld_cache = NULL;
	if (*search_path == NULL)
		*search_path = SYSTEM_SEARCH_PATH;
}

static bool contains(const struct strvec *v, const char *s)
{
	for (size_t i = 0; i < v->count; i++)
		if (strcmp(v->items[i], s) == 0)
			return true;
	return false;
}

static int add_device(struct gpu_files *out, const char *path, capsula_error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISDIR(st.st_mode)) ||
	    contains(&out->devices, path))
		return 0;
	if (strvec_push(&out->devices, path) < 0)
		return fail(err, errno, NULL, "GPU device %s", path);
	return 0;
}

/* /dev/nvidia0, /dev/nvidia1, ...: one per GPU. */
static int add_numbered_nvidia_devices(struct gpu_files *out, capsula_error *err)
{
	struct strvec found = {0};
	DIR *dev = opendir("/dev");
	struct dirent *entry;
	int ret = 0;

	if (dev == NULL)
		return fail(err, errno, NULL, "read /dev");
	while ((entry = readdir(dev)) != NULL) {
		const char *digits = entry->d_name + strlen("nvidia");

		if (strncmp(entry->d_name, "nvidia", 6) == 0 && *digits != '\0' &&
		    strspn(digits, "0123456789") == strlen(digits)) {
			char path[300];

			snprintf(path, sizeof path, "/dev/%s", entry->d_name);
			if (strvec_push(&found, path) < 0) {
				ret = fail(err, errno, NULL, "GPU devices");
				break;
			}
		}
	}
	closedir(dev);
	strvec_sort(&found);
	for (size_t i = 0; ret == 0 && i < found.count; i++)
		ret = add_device(out, found.items[i], err);
	strvec_free(&found);
	return ret;
}

/* Does the soname belong to one of the base names (libcuda.so, libcuda.so.1)? */
static bool wanted_library(const char *soname, const char *const *bases)
{
	for (size_t i = 0; bases[i] != NULL; i++) {
		size_t len = strlen(bases[i]);

		if (strncmp(soname, bases[i], len) == 0 && strncmp(soname + len, ".so", 3) == 0 &&
		    (soname[len + 3] == '\0' || soname[len + 3] == '.'))
			return true;
	}
	return false;
}

/* One line of `ldconfig -p`: "\tNAME (TAGS) => PATH". */
static int take_cache_line(char *line, const char *const *bases, struct gpu_files *out,
                           capsula_error *err)
{
	char *name = line + strspn(line, " \t");
	char *tags = strstr(name, " (");
	char *arrow = strstr(name, ") => ");
	char *path, *real;
	int ret = 0;

	if (tags == NULL || arrow == NULL || arrow < tags)
		return 0;
	*tags = '\0';
	*arrow = '\0';
	path = arrow + strlen(") => ");
	path[strcspn(path, "\n")] = '\0';
	if (strstr(tags + 2, NATIVE_ABI) == NULL || path[0] != '/' ||
	    !wanted_library(name, bases) || contains(&out->library_names, name))
		return 0;
	/* Bound as a file: the link's target, under the link's name. */
	real = realpath(path, NULL);
	if (real == NULL)
		return 0;
	if (strvec_push(&out->library_names, name) < 0 || strvec_push(&out->libraries, real) < 0)
		ret = fail(err, errno, NULL, "GPU libraries");
	free(real);
	return ret;
}

static int find_ldconfig(char *out, size_t size)
{
	static const char *const candidates[] = {"/sbin/ldconfig", "/usr/sbin/ldconfig", NULL};

	for (size_t i = 0; candidates[i] != NULL; i++)
		if (access(candidates[i], X_OK) == 0) {
			snprintf(out, size, "%s", candidates[i]);
			return 0;
		}
	return -1;
}

static int add_libraries(const char *ld_cache, const char *const *bases,
                         struct gpu_files *out, capsula_error *err)
{
	char ldconfig[64];
	char *argv[] = {ldconfig, "-p", "-C", (char *)ld_cache, NULL};
	posix_spawn_file_actions_t actions;
	char *line = NULL;
	size_t cap = 0;
	int pipefd[2];
	int status, ret = 0, spawned;
	pid_t pid;
	FILE *in;

	if (find_ldconfig(ldconfig, sizeof ldconfig) < 0)
		return fail(err, ENOENT, "install libc-bin", "ldconfig, to find the GPU libraries");
	if (ld_cache == NULL)
		argv[2] = NULL;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fail(err, errno, NULL, "pipe for ldconfig");
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	spawned = posix_spawn(&pid, ldconfig, &actions, NULL, argv, (char *[]){NULL});
	posix_spawn_file_actions_destroy(&actions);
	close(pipefd[1]);
	if (spawned != 0) {
		close(pipefd[0]);
		return fail(err, spawned, NULL, "run %s -p", ldconfig);
	}
	in = fdopen(pipefd[0], "r");
	if (in == NULL) {
		ret = fail(err, errno, NULL, "read ldconfig -p");
		close(pipefd[0]);
	}
	while (ret == 0 && in != NULL && getline(&line, &cap, in) >= 0)
		ret = take_cache_line(line, bases, out, err);
	free(line);
	if (in != NULL)
		fclose(in);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (ret == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		ret = fail(err, 0, ld_cache ? "check CAPSULA_LD_CACHE" : "run 'ldconfig' as root",
		           "%s -p could not read the ld.so cache %s", ldconfig,
		           ld_cache ? ld_cache : "/etc/ld.so.cache");
	return ret;
}

/* The first executable file called name in search_path, resolved; NULL
 * when there is none. */
static char *find_program(const char *search_path, const char *name)
{
	for (const char *dir = search_path; dir != NULL && *dir != '\0';) {
		size_t len = strcspn(dir, ":");
		char candidate[4096];
		struct stat st;

		if (len > 0 && dir[0] == '/' &&
		    snprintf(candidate, sizeof candidate, "%.*s/%s", (int)len, dir, name) <
		    (int)sizeof candidate &&
		    stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
			return realpath(candidate, NULL);
		dir += len;
		if (*dir == ':')
			dir++;
	}
	return NULL;
}

static int add_programs(const char *search_path, const char *const *names,
                        struct gpu_files *out, capsula_error *err)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		char *found = find_program(search_path, names[i]);

		if (found == NULL)
			continue;
		if (strvec_push_owned(&out->programs, found) < 0) {
			free(found);
			return fail(err, errno, NULL, "GPU programs");
		}
		if (strvec_push(&out->program_names, names[i]) < 0)
			return fail(err, errno, NULL, "GPU programs");
	}
	return 0;
}

/* What one vendor's driver puts on a node. */
struct gpu_driver {
	unsigned kind;
	const char *const *devices;
	const char *const *libraries;
	const char *const *programs;
	bool numbered_nvidia_devices;
};

static const struct gpu_driver drivers[] = {
	{GPU_NVIDIA, nvidia_devices, nvidia_libraries, nvidia_programs, true},
	{GPU_AMD, amd_devices, amd_libraries, amd_programs, false},
};

int gpu_find(unsigned kinds, const char *ld_cache, const char *search_path,
             struct gpu_files *out, capsula_error *err)
{
	for (size_t d = 0; d < sizeof drivers / sizeof drivers[0]; d++) {
		const struct gpu_driver *driver = &drivers[d];

		if (!(kinds & driver->kind))
			continue;
		if (driver->numbered_nvidia_devices && add_numbered_nvidia_devices(out, err) < 0)
			return -1;
		for (size_t i = 0; driver->devices[i] != NULL; i++)
			if (add_device(out, driver->devices[i], err) < 0)
				return -1;
		if (add_libraries(ld_cache, driver->libraries, out, err) < 0 ||
		    add_programs(search_path, driver->programs, out, err) < 0)
			return -1;
	}
	return 0;
}

void gpu_files_free(struct gpu_files *files)
{
	strvec_free(&files->devices);
	strvec_free(&files->libraries);
	strvec_free(&files->library_names);
	strvec_free(&files->programs);
	strvec_free(&files->program_names);
}
