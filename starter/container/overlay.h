/* The layers over the image: read-only squashfs layers (--overlay IMG) and
 * one writable upper layer (--writable-tmpfs, --overlay DIR), joined by the
 * kernel's overlayfs, which a user namespace may mount since Linux 5.11. */
#ifndef CAPSULA_OVERLAY_H
#define CAPSULA_OVERLAY_H

#include "common/error.h"
#include "common/plan.h"

/* Stage paths of the image and its layers, top first, as overlayfs wants
 * them: "/layer1:/layer0:/image". */
int overlay_lower_dirs(const struct capsula_plan *plan, char *out, size_t size,
                       capsula_error *err);

/* The writable tmpfs for --writable-tmpfs at stage path dir, holding upper/
 * and work/. */
int overlay_tmpfs(int stage_fd, const char *dir, unsigned long long bytes, capsula_error *err);

/* A detached overlay mount: read-only when upper is NULL. */
int overlay_mount(const char *lower, const char *upper, const char *work, int *mnt_fd,
                  capsula_error *err);

#endif
