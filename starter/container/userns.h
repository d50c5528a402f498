#ifndef CAPSULA_USERNS_H
#define CAPSULA_USERNS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/plan.h"

/* New user and mount namespaces, the caller's uid and gid mapped to
 * themselves, and host mount events still flowing in (recursive slave). */
int userns_create(uid_t uid, gid_t gid, capsula_error *err);

/* The same for a container: with --fakeroot the user is 0 inside, and with
 * subordinate ids (through newuidmap and newgidmap) 1.. are theirs. */
int userns_create_for(const struct capsula_plan *plan, capsula_error *err);

/* Is uid the kernel's overflow uid, the one every unmapped id reads as
 * inside a user namespace? */
bool uid_is_overflow(uid_t uid);

#endif
