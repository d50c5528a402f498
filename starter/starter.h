/* starter/: carries out a launch plan. */
#ifndef CAPSULA_STARTER_H
#define CAPSULA_STARTER_H

#include "common/error.h"
#include "common/plan.h"

#include <stdbool.h>
#include <sys/types.h>

/* Join (or start) the holder for plan->join_key, enter its namespaces and
 * exec the command. Returns only on failure, with err set. */
int starter_run(const struct capsula_plan *plan, capsula_error *err);

/* Start an instance's holder (plan->join_key names it, plan->grace_ms is
 * GRACE_FOREVER) and leave it running; *holder is its pid. */
int starter_start_instance(const struct capsula_plan *plan, pid_t *holder, capsula_error *err);

/* Does a holder of ours answer under key? */
bool starter_instance_running(const unsigned char *secret, const char *key);

/* End the instance's holder (SIGTERM, SIGKILL after 5 s) and wait, at most
 * 5 s more, until it is gone. */
int starter_stop_instance(const unsigned char *secret, const char *key, capsula_error *err);

#endif
