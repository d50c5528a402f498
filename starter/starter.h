/* starter/: carries out a launch plan. */
#ifndef CAPSULA_STARTER_H
#define CAPSULA_STARTER_H

#include "common/error.h"
#include "common/plan.h"

#include <stdbool.h>
#include <stdint.h>
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

/* Where a FUSE mount in a new user namespace, made as a holder makes it,
 * failed on this node; for capsula doctor. */
enum fuse_probe_step {
	FUSE_PROBE_OK, FUSE_PROBE_USERNS, FUSE_PROBE_OPEN, FUSE_PROBE_MOUNT, FUSE_PROBE_INIT,
};

struct fuse_probe {
	enum fuse_probe_step failed_at;  /* FUSE_PROBE_OK when every step worked */
	int errnum;                      /* errno of the failed step */
	/* The kernel's INIT request: its protocol and the features it offers. */
	unsigned major, minor, max_readahead;
	uint32_t flags;
};

/* Run the probe in a child (the namespaces and the mount go with it).
 * Returns 0 with *probe filled, or -1 when no child could run it. */
int starter_probe_fuse(struct fuse_probe *probe);

#endif
