#ifndef CAPSULA_USERNS_H
#define CAPSULA_USERNS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* New user and mount namespaces, the caller's uid and gid mapped to
 * themselves, and host mount events still flowing in (recursive slave). */
int userns_create(uid_t uid, gid_t gid, capsula_error *err);

/* Is uid the kernel's overflow uid, the one every unmapped id reads as
 * inside a user namespace? */
bool uid_is_overflow(uid_t uid);

#endif
