/* Which container a rank belongs to. Ranks of one launcher job step on one
 * node get the same key and so share one holder; anything else gets a fresh
 * UUID and shares nothing. */
#ifndef CAPSULA_JOINKEY_H
#define CAPSULA_JOINKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/plan.h"

/* The launcher's job identity from its environment ("pmix:NS",
 * "slurm:JOB.STEP"), or NULL when no launcher started us. */
const char *launcher_job_id(char **env, char *buf, size_t size);

/* Fill plan->join_key and plan->join_shared. job_id NULL means private.
 * Returns -1 only if no UUID could be made. */
int join_key_make(struct capsula_plan *plan, const char *job_id);

#endif
