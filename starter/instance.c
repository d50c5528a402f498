#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "starter/channel.h"
#include "starter/holder.h"
#include "starter/starter.h"

/* How long a stopped holder gets to go before it is killed. */
#define STOP_WAIT_MS 5000
#define STOP_POLL_MS 20

bool starter_instance_running(const char *key)
{
	capsula_error ignored;
	int conn = channel_connect(key, &ignored);

	/* The holder drops a connection that never says hello. */
	if (conn < 0)
		return false;
	close(conn);
	return true;
}

int starter_start_instance(const struct capsula_plan *plan, pid_t *holder, capsula_error *err)
{
	int listen_fd;
	int ret;

	if (channel_listen(plan->join_key, &listen_fd, err) < 0)
		return -1;
	ret = holder_spawn(plan, listen_fd, holder, err);
	close(listen_fd);
	return ret;
}

/* Is pid still a live holder (not a zombie, nor a process that reused
 * its number)? */
static bool is_holder(pid_t pid)
{
	char path[64], line[256];
	const char *state;
	FILE *f;
	bool alive = false;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	if (fgets(line, sizeof line, f) != NULL && strstr(line, " (capsula-holder) ") != NULL) {
		state = strstr(line, ") ") + 2;
		alive = *state != 'Z' && *state != 'X';
	}
	fclose(f);
	return alive;
}

int starter_stop_instance(const char *key, pid_t holder, capsula_error *err)
{
	int waited = 0;

	if (!starter_instance_running(key) || !is_holder(holder))
		return 0;  /* already gone */
	if (kill(holder, SIGTERM) < 0)
		return fail(err, errno, NULL, "stop the instance's holder (pid %d)", (int)holder);
	while (starter_instance_running(key) || is_holder(holder)) {
		if (waited >= STOP_WAIT_MS) {
			kill(holder, SIGKILL);
			waited = 0;
		}
		usleep(STOP_POLL_MS * 1000);
		waited += STOP_POLL_MS;
	}
	return 0;
}
