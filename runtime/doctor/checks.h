/* The checks capsula doctor runs, one file per area; each adds its
 * findings to a check_list. */
#ifndef CAPSULA_CHECKS_H
#define CAPSULA_CHECKS_H

#include "common/strvec.h"
#include "runtime/config/site_config.h"
#include "runtime/doctor/check_list.h"

/* What containers need (node_checks.c). */
void check_kernel(struct check_list *list);
void check_user_namespaces(struct check_list *list);
void check_fuse(struct check_list *list);
void check_site_config(struct check_list *list);
void check_cache(struct check_list *list, const struct capsula_config *config);

/* What MPI over RDMA needs (rdma_checks.c). */
void check_memlock(struct check_list *list);
void check_rdma_devices(struct check_list *list, struct strvec *drivers);
void check_image_stack(struct check_list *list, const char *image,
                       const struct strvec *host_drivers);

/* What --nv and --rocm would bind (gpu_checks.c). */
void check_gpus(struct check_list *list);

#endif
