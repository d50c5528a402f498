/* /etc/passwd and /etc/group inside: the image's own entries plus the
 * caller's user and groups. Looked up once, by the holder, before any
 * namespace exists (NSS may need the host's sssd or LDAP). */
#ifndef CAPSULA_IDENTITY_H
#define CAPSULA_IDENTITY_H

#include <sys/types.h>

#include "common/error.h"
#include "starter/container/rootfs.h"

struct identity {
	uid_t uid;
	gid_t gid;
	char *user;
	char *gecos;
	char *shell;
	size_t group_count;
	gid_t *gids;
	char **group_names;
};

int identity_lookup(uid_t uid, gid_t gid, struct identity *id, capsula_error *err);
void identity_free(struct identity *id);

/* Write the merged files onto the stage and bind them read-only over the
 * image's /etc/passwd and /etc/group. home may be NULL. */
int identity_install(struct rootfs *rfs, int stage_fd, const struct identity *id,
                     const char *home, capsula_error *err);

#endif
