/* A task that joins its step's held container itself, as capsula exec's
 * ranks do (starter/join's handshake, setns, directory, privileges, exec),
 * with no capsula process of its own. What to join comes from the held
 * capsula's notice (common/join_notice.h). No Slurm calls here. */
#ifndef CAPSULA_TASK_JOIN_H
#define CAPSULA_TASK_JOIN_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

struct join_notice {
	char *text;            /* the notice's fields, each ended by a NUL */
	size_t length;
	int dir_fd;            /* the user's holder socket directory */
	const char *key, *cwd, *fallback_cwd;
	const char *changes;   /* the first "+NAME=VALUE" or "-NAME" field, or NULL */
};

/* Wait for the notice on fd and read it, leaving it there for the step's
 * other tasks. 0, or -1 when there is none (the held capsula failed or
 * sent none: join with capsula exec). */
int notice_read(int fd, struct join_notice *notice);
void notice_free(struct join_notice *notice);

/* The next environment change after *at ("+NAME=VALUE" or "-NAME"), or
 * NULL after the last; start with *at = NULL. */
const char *notice_next_change(const struct join_notice *notice, const char **at);

/* Register with the container's holder as uid and enter its namespaces.
 * 0 when in; 1 when not and nothing changed (join with capsula exec);
 * -1 with err set when half in (the task must end). */
int task_join(const struct join_notice *notice, uid_t uid, capsula_error *err);

/* In the container: start in its directory, give up every privilege and
 * exec command, looked up on env's PATH. Returns only on failure, with
 * err (its status capsula's for the same failure). */
int task_exec(const struct join_notice *notice, char **command, char **env,
              capsula_error *err);

#endif
