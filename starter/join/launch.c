#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mpi_version.h"
#include "common/timing.h"
#include "starter/join/channel.h"
#include "starter/join/holder.h"
#include "starter/join/rank.h"
#include "starter/starter.h"

/* Holders can vanish between our connect and their reply (the last rank of
 * a job just left), and a rank that lost the race to claim a name may find
 * the winner's socket bound but not yet listening; fresh tries settle both.
 * On a loaded node (dozens of ranks starting on two processors) the winner
 * may wait long between bind and listen, so tries go on for seconds, with
 * pauses growing from half a millisecond to ten. That wait is only ever for
 * a socket of our own user: the kernel names each socket's owner. */
#define JOIN_PATIENCE_US (10 * 1000000ULL)
#define JOIN_RETRY_FIRST_US 500
#define JOIN_RETRY_MAX_US 10000

enum slot_result { SLOT_JOINED, SLOT_FOREIGN };

struct joining {
	const struct capsula_plan *plan;
	bool started_holder;
	int userns_fd, mntns_fd;
};

static bool owned_by_other(const char *name, uid_t uid)
{
	uid_t owner;

	return channel_owner(name, &owner) == 0 && owner != uid;
}

/* Join the holder under name, starting it if nobody holds the name. */
static int join_slot(struct joining *j, const char *name, capsula_error *err)
{
	const struct capsula_plan *plan = j->plan;
	uint64_t start = timing_now_us();
	unsigned pause = JOIN_RETRY_FIRST_US;

	for (;;) {
		int conn, listen_fd, result;

		if (timing_now_us() - start > JOIN_PATIENCE_US)
			return fail(err, 0, "run again; if it persists, use --join never",
			            "could not join or start a container holder");
		conn = channel_connect(name, err);
		if (conn >= 0) {
			uint64_t asked = timing_now_us();

			result = rank_receive(conn, plan, &j->userns_fd, &j->mntns_fd, err);
			close(conn);
			if (result == 0)
				timing_report(plan->timing, "  handshake", asked);
			if (result == 0)
				return SLOT_JOINED;
			if (result < 0)
				return -1;
			if (result == 2)
				return SLOT_FOREIGN;
			continue;  /* that holder was leaving: start or join anew */
		}
		if (errno == EAGAIN) {
			/* A full backlog: our own busy holder, or a squatter. */
			if (owned_by_other(name, plan->uid))
				return SLOT_FOREIGN;
		} else if (errno != ECONNREFUSED && errno != ENOENT) {
			return -1;
		} else if (plan->join_existing) {
			return fail(err, 0, "start it with capsula instance start IMAGE NAME",
			            "the instance is not running");
		} else if (channel_listen(name, &listen_fd, err) == 0) {
			result = holder_spawn(plan, listen_fd, NULL, err);
			close(listen_fd);
			if (result < 0)
				return -1;
			j->started_holder = true;
			continue;
		} else if (errno != EADDRINUSE) {
			return -1;
		} else if (owned_by_other(name, plan->uid)) {
			return SLOT_FOREIGN;  /* bound, never listening */
		}
		usleep(pause);  /* another rank claimed it just now */
		pause = pause * 2 > JOIN_RETRY_MAX_US ? JOIN_RETRY_MAX_US : pause * 2;
	}
}

/* Walk the slots of the plan's key until one is joined. */
static int join_container(struct joining *j, capsula_error *err)
{
	const struct capsula_plan *plan = j->plan;
	char name[JOIN_KEY_SIZE];

	for (unsigned slot = 0; slot < CHANNEL_SLOTS; slot++) {
		uint64_t t = timing_now_us();
		int result;

		if (channel_name(plan->join_secret, plan->join_key, slot, name, sizeof name, err) < 0)
			return -1;
		timing_report(plan->timing, "  socket name (HMAC)", t);
		result = join_slot(j, name, err);
		if (result != SLOT_FOREIGN)
			return result < 0 ? -1 : 0;
		if (plan->verbosity > 0)
			fprintf(stderr, "capsula: socket @%s is taken by another user; "
			        "trying the next name\n", name);
	}
	return fail(err, 0, "ask the administrator to find who takes them; --join never avoids them",
	            "all %d socket names for this container are taken by other users", CHANNEL_SLOTS);
}

/* The hybrid model needs the launcher's and the image's Open MPI to agree
 * on the major version; say so once per node, from the rank that started
 * the holder, already inside the container. Reading the image's library
 * also warms the page cache every rank's MPI_Init will use. */
static void warn_if_mpi_mismatch(const struct capsula_plan *plan, const char *host_mpi)
{
	char image_mpi[32];

	if (plan->verbosity < 0 || host_mpi[0] == '\0' ||
	    mpi_version_of_image(image_mpi, sizeof image_mpi) < 0)
		return;
	if (mpi_versions_clash(host_mpi, image_mpi))
		fprintf(stderr, "capsula: warning: the host's launcher is Open MPI %s but the image "
		        "has Open MPI %s; use an image with Open MPI %d.x or the matching launcher\n",
		        host_mpi, image_mpi, atoi(host_mpi));
	else if (plan->verbosity > 0)
		fprintf(stderr, "capsula: Open MPI %s on the host, %s in the image\n",
		        host_mpi, image_mpi);
}

int starter_run(const struct capsula_plan *plan, capsula_error *err)
{
	struct joining j = {.plan = plan, .userns_fd = -1, .mntns_fd = -1};
	uint64_t t = timing_now_us();
	bool check_mpi;
	char host_mpi[32];

	if (join_container(&j, err) < 0)
		return -1;
	t = timing_report(plan->timing, "container ready", t);
	/* The launcher's library is a host path: look before entering. */
	check_mpi = j.started_holder && plan->join_shared && plan->verbosity >= 0;
	if (check_mpi && mpi_version_of_launcher(getpid(), host_mpi, sizeof host_mpi) < 0)
		host_mpi[0] = '\0';
	if (rank_enter(j.userns_fd, j.mntns_fd, err) < 0)
		return -1;
	timing_report(plan->timing, "setns", t);
	if (check_mpi)
		warn_if_mpi_mismatch(plan, host_mpi);
	timing_report(plan->timing, "start to exec", plan->start_us);
	return rank_exec(plan, err);
}
