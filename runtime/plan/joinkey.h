/* Which container a launch belongs to. Ranks of one launcher job step on
 * one node get the same key and so share one holder; launches without a
 * launcher that ask for the same container get the same key too, so one
 * right after another finds the holder still warm; --join never gets a
 * fresh UUID and shares nothing. */
#ifndef CAPSULA_JOINKEY_H
#define CAPSULA_JOINKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/plan.h"

/* The launcher's job identity from its environment ("pmix:NS",
 * "slurm:JOB.STEP"), or NULL when no launcher started us. */
const char *launcher_job_id(char **env, char *buf, size_t size);

/* Is this the launcher's first rank (rank 0 of the job), or is it not
 * known? For what only one rank should say. */
bool launcher_first_rank(char **env);

/* Fill plan->join_key from scope ("pmix:NS", "reuse") and what shapes the
 * container (the caller's groups included); scope NULL means a fresh,
 * private key. Returns 0. */
int join_key_make(struct capsula_plan *plan, const char *scope, const gid_t *groups,
                  size_t group_count);

#endif
