/* The host's GPUs for --nv and --rocm: their device nodes, and the driver's
 * user-space libraries and tools, which must match the host's kernel module
 * and so come from the host, never from the image. */
#ifndef CAPSULA_GPU_H
#define CAPSULA_GPU_H

#include <stdbool.h>

#include "common/error.h"
#include "common/strvec.h"

/* --nv, --rocm */
enum {
	GPU_NVIDIA = 1u << 0,
	GPU_AMD = 1u << 1,
};

/* Where they appear inside; prepended to LD_LIBRARY_PATH and PATH. */
#define GPU_LIB_DIR "/.capsula/gpu/lib"
#define GPU_BIN_DIR "/.capsula/gpu/bin"

struct gpu_files {
	struct strvec devices;        /* host paths under /dev */
	struct strvec libraries;      /* host paths, symlinks resolved */
	struct strvec library_names;  /* the name each is bound as (its soname) */
	struct strvec programs;       /* host paths of nvidia-smi and the like */
	struct strvec program_names;  /* and the names they are bound as */
};

/* Add to out (zeroed before the first call) the GPUs of kinds (GPU_NVIDIA,
 * GPU_AMD): device nodes under /dev, libraries through the ld.so cache
 * (ld_cache, or the system's when NULL, as `ldconfig -p` lists it),
 * programs in search_path. Finding none is not an error. */
int gpu_find(unsigned kinds, const char *ld_cache, const char *search_path,
             struct gpu_files *out, capsula_error *err);
void gpu_files_free(struct gpu_files *files);

/* "NVIDIA" or "AMD" for one kind, and its option ("--nv", "--rocm"). */
const char *gpu_vendor(unsigned kind);
const char *gpu_option(unsigned kind);

/* Where to look: where users may bind what they like (user_binds), they
 * may also point capsula at another ld.so cache (CAPSULA_LD_CACHE) and
 * PATH; elsewhere only the system's are used. */
void gpu_search_places(bool user_binds, char **environ, const char **ld_cache,
                       const char **search_path);

#endif
