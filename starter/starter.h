/* starter/: carries out a launch plan. */
#ifndef CAPSULA_STARTER_H
#define CAPSULA_STARTER_H

#include "common/error.h"
#include "common/plan.h"

/* Join (or start) the holder for plan->join_key, enter its namespaces and
 * exec the command. Returns only on failure, with err set. */
int starter_run(const struct capsula_plan *plan, capsula_error *err);

#endif
