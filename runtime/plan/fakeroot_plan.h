/* --fakeroot: the id maps of a container whose user is root inside. */
#ifndef CAPSULA_FAKEROOT_PLAN_H
#define CAPSULA_FAKEROOT_PLAN_H

#include "common/error.h"
#include "common/plan.h"
#include "runtime/plan/plan.h"

/* The user's subordinate ids and the system's newuidmap and newgidmap,
 * when all four are there; a single-id map otherwise. */
void plan_fakeroot(const struct host_facts *facts, struct capsula_plan *plan);

/* The range of user (uid, named name) in a subuid/subgid file's text:
 * "name-or-uid:start:count" lines, the first that matches. */
int subid_range_parse(const char *text, const char *name, unsigned long id,
                      struct id_range *out);

#endif
