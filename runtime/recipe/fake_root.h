/* Root for a build step where the user has no subordinate ids: inside,
 * only the user's own id is mapped (as 0), so chown to another id, the
 * set*id calls and mknod of devices would fail. A seccomp filter hands
 * those system calls to a supervisor (SECCOMP_RET_USER_NOTIF), which
 * answers success and records what was asked on the file itself:
 *   chown, fchown, lchown, fchownat: the owner asked for, as the extended
 *     attribute user.capsula.owner ("UID:GID"), which moves with the file
 *     and makes the kernel copy it up from a lower layer;
 *   mknod, mknodat of a character or block device: an empty file with
 *     user.capsula.device ("c MAJOR MINOR");
 *   setuid and the rest of the set*id family, setgroups: success, with no
 *     effect (the process stays root).
 * The step's layer is written with those owners and devices. The
 * supervisor runs inside the container, so paths resolve as the step's
 * own processes see them. */
#ifndef CAPSULA_FAKE_ROOT_H
#define CAPSULA_FAKE_ROOT_H

#include <sys/types.h>

#include "common/error.h"

/* The attributes the supervisor writes and a capture reads. */
#define FAKE_OWNER_XATTR "user.capsula.owner"
#define FAKE_DEVICE_XATTR "user.capsula.device"

/* In the process about to exec the step's command: install the filter
 * (with no_new_privs); *listener is the supervisor's descriptor. */
int fake_root_install(int *listener, capsula_error *err);

/* Answer the filter's requests until the process child has ended; its
 * wait status in *status. */
int fake_root_serve(int listener, pid_t child, int *status, capsula_error *err);

#endif
