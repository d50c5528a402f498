#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mpi_version.h"
#include "common/timing.h"
#include "starter/container/userns.h"
#include "starter/join/channel.h"
#include "starter/join/holder.h"
#include "starter/join/hold_notify.h"
#include "starter/join/rank.h"
#include "starter/starter.h"

/* Holders can vanish between our connect and their reply (the last rank of
 * a job just left), and a full backlog means a holder busy with many ranks
 * at once; fresh tries settle both, for CHANNEL_PATIENCE_US. Only the
 * user's own processes can make or hold a name in the socket directory. */
struct joining {
	const struct capsula_plan *plan;
	bool started_holder;
	int userns_fd, mntns_fd;
};

/* Start a holder under the name just claimed. */
static int start_holder(struct joining *j, struct channel_listener *listener, capsula_error *err)
{
	const struct capsula_plan *plan = j->plan;
	int ret = holder_spawn(plan, listener->fd, listener->ino, NULL, err);

	/* The holder keeps the name (and removes it when it leaves); if it
	 * failed, nobody listens and the name goes now. */
	if (ret < 0)
		channel_release(plan->socket_dir_fd, plan->join_key, listener);
	else
		close(listener->fd);
	j->started_holder = ret == 0;
	return ret;
}

/* Join the holder of the plan's key, starting it if nobody holds the key. */
static int join_container(struct joining *j, capsula_error *err)
{
	const struct capsula_plan *plan = j->plan;
	uint64_t start = timing_now_us();
	unsigned pause = CHANNEL_RETRY_FIRST_US;

	for (;;) {
		struct channel_listener listener;
		int conn, result;

		if (timing_now_us() - start > CHANNEL_PATIENCE_US)
			return fail(err, 0, "run again; if it persists, use --join never",
			            "could not join or start a container holder");
		conn = channel_connect(plan->socket_dir_fd, plan->join_key, err);
		if (conn >= 0) {
			uint64_t asked = timing_now_us();

			result = rank_receive(conn, plan, &j->userns_fd, &j->mntns_fd, err);
			close(conn);
			if (result == 0)
				timing_report(plan->timing, "  handshake", asked);
			if (result <= 0)
				return result;
			continue;  /* that holder was leaving: start or join anew */
		}
		if (errno == EAGAIN) {
			/* A full backlog: our own holder, busy with many ranks. */
		} else if (errno != ECONNREFUSED && errno != ENOENT) {
			return -1;
		} else if (plan->join_existing) {
			return fail(err, 0, "start it with capsula instance start IMAGE NAME",
			            "the instance is not running");
		} else if ((result = channel_claim(plan->socket_dir_fd, plan->join_key, &listener,
		                                   err)) < 0) {
			return -1;
		} else if (result == 0) {
			if (start_holder(j, &listener, err) < 0)
				return -1;
			continue;
		} else {
			continue;  /* another rank claimed it just now: join it */
		}
		usleep(pause);
		pause = pause * 2 > CHANNEL_RETRY_MAX_US ? CHANNEL_RETRY_MAX_US : pause * 2;
	}
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

int starter_enter(const struct capsula_plan *plan, capsula_error *err)
{
	struct joining j = {.plan = plan, .userns_fd = -1, .mntns_fd = -1};

	if (join_container(&j, err) < 0)
		return -1;
	return rank_enter(j.userns_fd, j.mntns_fd, err);
}

int starter_exec(const struct capsula_plan *plan, capsula_error *err)
{
	return rank_exec(plan, err);
}

int starter_unshare_ids(const struct capsula_plan *plan, capsula_error *err)
{
	return userns_create_for(plan, err);
}

/* --hold: a member of the container that never enters it. The holder
 * counts it among its ranks, so the container stays ready for the job's
 * launches until this process is killed, and goes (after the grace time)
 * once it and they are gone. */
static __attribute__((noreturn)) void hold_container(struct joining *j)
{
	sigset_t none;

	close(j->userns_fd);
	close(j->mntns_fd);
	sigemptyset(&none);
	for (;;)
		sigsuspend(&none);
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
	if (plan->hold) {
		extern char **environ;
		capsula_error unsent = {0};

		/* Silent on failure: the tasks then join as capsula exec does. */
		if (plan->hold_notify_fd >= 0 && hold_notify(plan, environ, &unsent) < 0 &&
		    plan->verbosity > 0)
			error_print(&unsent);
		hold_container(&j);
	}
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
