/* --nv and --rocm in the launch plan: binds and the environment. */
#ifndef CAPSULA_GPU_PLAN_H
#define CAPSULA_GPU_PLAN_H

#include "common/error.h"
#include "common/strvec.h"
#include "runtime/config/bindspec.h"
#include "runtime/plan/options.h"
#include "runtime/plan/plan.h"

/* The GPUs' device nodes (into a minimal /dev), the driver's libraries
 * under GPU_LIB_DIR and its programs under GPU_BIN_DIR, read-only. */
int plan_gpu_binds(const struct exec_options *opts, const struct host_facts *facts,
                   struct bind_list *binds, capsula_error *err);

/* GPU_LIB_DIR and GPU_BIN_DIR first in LD_LIBRARY_PATH and PATH. */
int plan_gpu_environment(struct strvec *env, capsula_error *err);

#endif
