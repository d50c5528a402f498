#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "starter/channel.h"
#include "starter/holder.h"
#include "starter/rank.h"
#include "starter/starter.h"
#include "starter/timing.h"

/* Holders can vanish between our connect and their reply (the last rank of
 * a job just left); a few fresh tries settle it. */
#define JOIN_ATTEMPTS 5

static void private_key(const struct capsula_plan *plan, char *key, size_t size)
{
	uuid_t uuid;
	char text[37];

	uuid_generate(uuid);
	uuid_unparse_lower(uuid, text);
	snprintf(key, size, "capsula-%u-%s", (unsigned)plan->uid, text);
}

int starter_run(const struct capsula_plan *plan, capsula_error *err)
{
	char key[sizeof plan->join_key];
	uint64_t t = timing_now_us();
	int userns_fd, mntns_fd;

	snprintf(key, sizeof key, "%s", plan->join_key);
	for (int attempt = 0; ; attempt++) {
		int conn;
		int result;

		if (attempt == JOIN_ATTEMPTS)
			return fail(err, 0, "run again; if it persists, use --join never",
			            "could not join or start a container holder");
		conn = channel_connect(key, err);
		if (conn < 0) {
			if (errno != ECONNREFUSED && errno != ENOENT)
				return -1;
			if (holder_spawn(plan, key, err) < 0)
				return -1;
			continue;
		}
		result = rank_receive(conn, plan->uid, &userns_fd, &mntns_fd, err);
		close(conn);
		if (result == 0)
			break;
		if (result < 0)
			return -1;
		if (result == 2) {
			/* Another user squats this name: never join them. */
			if (plan->verbosity >= 0)
				fprintf(stderr, "capsula: warning: the holder for this job belongs to "
				        "another user; using a private container\n");
			private_key(plan, key, sizeof key);
		}
	}
	timing_report(plan->verbosity, "container ready", t);
	return rank_exec(plan, userns_fd, mntns_fd, err);
}
