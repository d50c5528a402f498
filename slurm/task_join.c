#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/join_notice.h"
#include "slurm/task_join.h"
#include "starter/join/channel.h"
#include "starter/join/rank.h"

void notice_free(struct join_notice *notice)
{
	free(notice->text);
	notice->text = NULL;
	if (notice->dir_fd >= 0)
		close(notice->dir_fd);
	notice->dir_fd = -1;
}

/* The field after field, or NULL past the end. */
static const char *next_field(const struct join_notice *notice, const char *field)
{
	const char *next = field + strlen(field) + 1;

	return next < notice->text + notice->length ? next : NULL;
}

int notice_read(int fd, struct join_notice *notice)
{
	size_t got_fds = 1;
	ssize_t got;

	memset(notice, 0, sizeof *notice);
	notice->dir_fd = -1;
	notice->text = malloc(JOIN_NOTICE_MAX);
	if (notice->text == NULL)
		return -1;
	got = channel_peek(fd, notice->text, JOIN_NOTICE_MAX, &notice->dir_fd, &got_fds);
	notice->length = got > 0 ? (size_t)got : 0;
	if (got <= 0 || got_fds != 1 || notice->text[got - 1] != '\0' ||
	    strcmp(notice->text, JOIN_NOTICE_VERSION) != 0 ||
	    (notice->key = next_field(notice, notice->text)) == NULL ||
	    strlen(notice->key) >= JOIN_KEY_SIZE ||
	    (notice->cwd = next_field(notice, notice->key)) == NULL ||
	    (notice->fallback_cwd = next_field(notice, notice->cwd)) == NULL) {
		notice_free(notice);
		return -1;
	}
	notice->changes = next_field(notice, notice->fallback_cwd);
	return 0;
}

const char *notice_next_change(const struct join_notice *notice, const char **at)
{
	*at = *at == NULL ? notice->changes : next_field(notice, *at);
	return *at;
}

int task_join(const struct join_notice *notice, uid_t uid, capsula_error *err)
{
	struct capsula_plan plan = {.uid = uid, .socket_dir_fd = notice->dir_fd, .image.fd = -1};
	unsigned pause = CHANNEL_RETRY_FIRST_US;
	int userns_fd, mntns_fd, conn, received;

	snprintf(plan.join_key, sizeof plan.join_key, "%s", notice->key);
	/* As capsula's ranks, a holder's full backlog (the node's tasks all at
	 * once) is waited out. */
	for (unsigned long long waited = 0;; waited += pause) {
		conn = channel_connect(notice->dir_fd, notice->key, err);
		if (conn >= 0 || errno != EAGAIN || waited >= CHANNEL_PATIENCE_US)
			break;
		usleep(pause);
		pause = pause * 2 > CHANNEL_RETRY_MAX_US ? CHANNEL_RETRY_MAX_US : pause * 2;
	}
	if (conn < 0)
		return 1;
	received = rank_receive(conn, &plan, &userns_fd, &mntns_fd, err);
	close(conn);
	if (received != 0)
		return 1;
	return rank_enter(userns_fd, mntns_fd, err) < 0 ? -1 : 0;
}

int task_exec(const struct join_notice *notice, char **command, char **env,
              capsula_error *err)
{
	struct capsula_plan plan = {
		.image.fd = -1, .socket_dir_fd = -1, .overlay = OVERLAY_NONE,
		.cwd = (char *)notice->cwd, .home = (char *)notice->fallback_cwd,
		.argv = command, .envp = env,
	};

	return rank_exec(&plan, err);
}
