/* The containers a recipe's steps run in: capsula's own, root inside (the
 * user's subordinate ids as its other ids when there are some, else one id
 * and fake_root.h's emulation), the image so far as read-only lower layers,
 * a writable upper on local disk, the host network, /proc, /sys read-only,
 * a minimal /dev with a private /dev/shm, /etc/resolv.conf and /etc/hosts,
 * and nothing of the user's: no home, no current directory, no /tmp, no
 * binds but those a step asks for (a RUN --mount cache). */
#ifndef CAPSULA_STEP_CONTAINER_H
#define CAPSULA_STEP_CONTAINER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/plan.h"
#include "common/strvec.h"

/* Who builds, the same for every step of a build. */
struct step_identity {
	uid_t uid;
	gid_t gid;
	bool full_map;               /* subordinate ids and new[ug]idmap: real chown */
	bool subids_from_root;       /* mapped_tree.h's map, not the user as root */
	struct id_range subuids, subgids;
	const char *newuidmap, *newgidmap;
	int socket_dir_fd;
	int verbosity;
};

/* The calling user's identity: their ids, and their full map when
 * /etc/subuid and /etc/subgid give them ranges and the shadow helpers are
 * there (full_map); no sockets yet (-1). Release frees the helpers' paths. */
void step_identity_init(struct step_identity *id);
void step_identity_release(struct step_identity *id);

/* What one step's container shows. */
struct step_view {
	const char *base;            /* the stage's base image */
	const struct strvec *layers; /* the steps' layers so far, bottom first */
	const char *work;            /* the step's work directory: upper/ and work/ in it */
	const char *cwd;
	char **argv;                 /* what a RUN execs, or NULL */
	char **envp;
	const struct strvec *binds;  /* "HOST:DEST" of RUN --mount */
};

/* Runs inside the container, in a child of the builder: returns -1 with err
 * (told to the builder), or ends the child itself (an exec). */
typedef int (*step_body)(const struct capsula_plan *plan, void *arg, capsula_error *err);

/* Build the step's container and run body in it; *status is the child's
 * exit status (128+N for signal N). -1 only when no container was made. */
int step_container_run(const struct step_identity *id, const struct step_view *v,
                       step_body body, void *arg, int *status, capsula_error *err);

/* The paths a step container makes as mount points (in the upper, when the
 * image lacks them), to leave out of its layer; cache mount targets too. */
void step_mount_points(const struct strvec *binds, struct strvec *out);

/* Run fn in a child inside a user namespace of id's maps (as root there),
 * so that files of the user's subordinate ids can be read and removed. */
int step_in_user_namespace(const struct step_identity *id,
                           int (*fn)(void *arg, capsula_error *err), void *arg,
                           capsula_error *err);

/* Remove a directory tree (inside the user namespace when it holds files
 * of subordinate ids). */
int step_remove_tree(const char *path, capsula_error *err);

#endif
