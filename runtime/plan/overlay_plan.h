/* --writable-tmpfs and --overlay DIR|IMG: which layers go over the image. */
#ifndef CAPSULA_OVERLAY_PLAN_H
#define CAPSULA_OVERLAY_PLAN_H

#include "common/error.h"
#include "common/plan.h"
#include "runtime/plan/options.h"
#include "runtime/plan/plan.h"

/* Open the read-only layers (checked as images are), check and prepare an
 * upper directory, and size the tmpfs. */
int plan_overlays(const struct exec_options *opts, const struct host_facts *facts,
                  struct capsula_plan *plan, capsula_error *err);

#endif
