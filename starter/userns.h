#ifndef CAPSULA_USERNS_H
#define CAPSULA_USERNS_H

#include <sys/types.h>

#include "common/error.h"

/* New user and mount namespaces, the caller's uid and gid mapped to
 * themselves, and host mount events still flowing in (recursive slave). */
int userns_create(uid_t uid, gid_t gid, capsula_error *err);

#endif
