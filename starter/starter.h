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

/* The two halves of starter_run, for a builder that works inside the
 * container itself before (or instead of) running a command: join or
 * start the holder and enter its namespaces; then start in plan->cwd,
 * give up what plan says and exec plan->argv. */
int starter_enter(const struct capsula_plan *plan, capsula_error *err);
int starter_exec(const struct capsula_plan *plan, capsula_error *err);

/* Enter a user namespace of plan's identity (its --fakeroot maps, the
 * subordinate ids too), with a mount namespace of its own, and nothing
 * else: to read and remove files owned by the user's subordinate ids. */
int starter_unshare_ids(const struct capsula_plan *plan, capsula_error *err);

/* An instance's holder, as its record names it: the key its socket has,
 * and its pid with the time the process started (so that a reused pid is
 * never taken for it; 0 when the record has none). */
struct instance_holder {
	const char *key;
	pid_t pid;
	unsigned long long started;   /* /proc/PID/stat's starttime */
};

/* Start an instance's holder (plan->join_key names it, plan->grace_ms is
 * GRACE_FOREVER) and leave it running; *holder is filled in. */
int starter_start_instance(const struct capsula_plan *plan, struct instance_holder *holder,
                           capsula_error *err);

enum instance_state {
	INSTANCE_GONE,     /* neither its socket nor its process is there */
	INSTANCE_RUNNING,
	INSTANCE_BUSY,     /* its socket is there but answers nobody in time */
};

/* Is the holder there? A full backlog (another process flooding it) is
 * busy, never gone: gone only when no process of the holder's is. */
enum instance_state starter_instance_state(int socket_dir_fd, const struct instance_holder *h);

/* End the instance's holder (SIGTERM, SIGKILL after 5 s) and wait, at most
 * 5 s more, until it is gone: 0 only once it is. */
int starter_stop_instance(int socket_dir_fd, const struct instance_holder *h,
                          capsula_error *err);

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
