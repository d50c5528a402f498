#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "starter/channel.h"
#include "starter/holder.h"
#include "starter/mpi_version.h"
#include "starter/rank.h"
#include "starter/starter.h"
#include "common/timing.h"

/* Holders can vanish between our connect and their reply (the last rank of
 * a job just left), and a rank that lost the race to claim the key may find
 * the winner's socket bound but not yet listening; fresh tries settle both.
 * On a loaded node (dozens of ranks starting on two processors) the winner
 * may wait long between bind and listen, so tries go on for seconds, with
 * pauses growing from half a millisecond to ten. */
#define JOIN_PATIENCE_US (10 * 1000000ULL)
#define JOIN_RETRY_FIRST_US 500
#define JOIN_RETRY_MAX_US 10000

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
	char key[sizeof plan->join_key];
	uint64_t t = timing_now_us();
	bool started_holder = false;
	bool check_mpi;
	char host_mpi[32];
	int userns_fd, mntns_fd;

	snprintf(key, sizeof key, "%s", plan->join_key);
	for (unsigned pause = JOIN_RETRY_FIRST_US; ;) {
		int conn;
		int result;

		if (timing_now_us() - t > JOIN_PATIENCE_US)
			return fail(err, 0, "run again; if it persists, use --join never",
			            "could not join or start a container holder");
		conn = channel_connect(key, err);
		if (conn < 0) {
			int listen_fd;

			if (errno != ECONNREFUSED && errno != ENOENT)
				return -1;
			if (plan->join_existing)
				return fail(err, 0, "start it with capsula instance start IMAGE NAME",
				            "the instance is not running");
			if (channel_listen(key, &listen_fd, err) < 0) {
				if (errno != EADDRINUSE)
					return -1;
				usleep(pause);  /* another rank claimed it just now */
				pause = pause * 2 > JOIN_RETRY_MAX_US ? JOIN_RETRY_MAX_US : pause * 2;
				continue;
			}
			result = holder_spawn(plan, listen_fd, NULL, err);
			close(listen_fd);
			if (result < 0)
				return -1;
			started_holder = true;
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
			join_key_private(plan->uid, key, sizeof key);
		}
	}
	t = timing_report(plan->timing, "container ready", t);
	/* The launcher's library is a host path: look before entering. */
	check_mpi = started_holder && plan->join_shared && plan->verbosity >= 0;
	if (check_mpi && mpi_version_of_launcher(getpid(), host_mpi, sizeof host_mpi) < 0)
		host_mpi[0] = '\0';
	if (rank_enter(userns_fd, mntns_fd, err) < 0)
		return -1;
	timing_report(plan->timing, "setns", t);
	if (check_mpi)
		warn_if_mpi_mismatch(plan, host_mpi);
	timing_report(plan->timing, "start to exec", plan->start_us);
	return rank_exec(plan, err);
}
