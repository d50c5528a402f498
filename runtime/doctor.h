/* capsula doctor: can this node run capsula, MPI and verbs? Each check
 * says what it found and, when something is wrong, the one-line fix. */
#ifndef CAPSULA_DOCTOR_H
#define CAPSULA_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/mpi_stack.h"

enum check_status { CHECK_OK, CHECK_INFO, CHECK_WARN, CHECK_FAIL };

struct check {
	const char *name;
	enum check_status status;
	char detail[512];
	char fix[256];
};

struct check_list {
	struct check *items;
	size_t count;
};

/* Add a check; fix may be NULL. */
void check_add(struct check_list *list, const char *name, enum check_status status,
               const char *fix, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* What containers need (doctor_node.c). */
void check_kernel(struct check_list *list);
void check_user_namespaces(struct check_list *list);
void check_fuse(struct check_list *list);
void check_site_config(struct check_list *list);

/* What MPI over RDMA needs (doctor_rdma.c). */
void check_memlock(struct check_list *list);
void check_rdma_devices(struct check_list *list, struct strvec *drivers);
void check_image_stack(struct check_list *list, const char *image,
                       const struct strvec *host_drivers);

/* What --nv and --rocm would bind (doctor_gpu.c). */
void check_gpus(struct check_list *list);

int doctor_main(int argc, char **argv);

#endif
