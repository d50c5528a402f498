#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/environ.h"
#include "common/join_notice.h"
#include "starter/join/hold_notify.h"

struct notice {
	char *text;
	size_t length;
	bool too_long;
};

/* Append prefix, then length bytes of field, then a NUL. */
static void add(struct notice *n, const char *prefix, const char *field, size_t length)
{
	size_t prefix_length = strlen(prefix);

	if (n->too_long || n->length + prefix_length + length + 1 > JOIN_NOTICE_MAX) {
		n->too_long = true;
		return;
	}
	memcpy(n->text + n->length, prefix, prefix_length);
	memcpy(n->text + n->length + prefix_length, field, length);
	n->length += prefix_length + length;
	n->text[n->length++] = '\0';
}

/* What the command's environment sets, changes and drops: the tasks apply
 * it to their own, which has what --hold's lacked (each task's rank). */
static void add_environment(struct notice *n, char **command_env, char **host_env)
{
	for (char **e = command_env; e != NULL && *e != NULL; e++) {
		const char *ours = env_get_name(host_env, *e, strcspn(*e, "="));
		const char *equals = strchr(*e, '=');

		if (equals != NULL && (ours == NULL || strcmp(ours, equals + 1) != 0))
			add(n, "+", *e, strlen(*e));
	}
	for (char **e = host_env; e != NULL && *e != NULL; e++)
		if (strchr(*e, '=') != NULL &&
		    env_get_name(command_env, *e, strcspn(*e, "=")) == NULL)
			add(n, "-", *e, strcspn(*e, "="));
}

static int send_notice(int fd, const struct notice *n, int dir_fd)
{
	union {
		struct cmsghdr header;
		char space[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = n->text, .iov_len = n->length};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
	                     .msg_controllen = sizeof control.space};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	memset(&control, 0, sizeof control);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &dir_fd, sizeof(int));
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)n->length ? 0 : -1;
}

int hold_notify(const struct capsula_plan *plan, char **host_env, capsula_error *err)
{
	struct notice n = {.text = malloc(JOIN_NOTICE_MAX)};
	const char *fallback = plan->home != NULL ? plan->home : "/";
	int ret = 0;

	if (n.text == NULL) {
		close(plan->hold_notify_fd);
		return fail(err, errno, NULL, "the notice for --hold-notify");
	}
	add(&n, "", JOIN_NOTICE_VERSION, strlen(JOIN_NOTICE_VERSION));
	add(&n, "", plan->join_key, strlen(plan->join_key));
	add(&n, "", plan->cwd, strlen(plan->cwd));
	add(&n, "", fallback, strlen(fallback));
	add_environment(&n, plan->envp, host_env);
	if (n.too_long)
		ret = fail(err, E2BIG, "the job's tasks join it with capsula exec",
		           "--hold-notify: the container's environment is over %d bytes",
		           JOIN_NOTICE_MAX);
	else if (send_notice(plan->hold_notify_fd, &n, plan->socket_dir_fd) < 0)
		ret = fail(err, errno, "the job's tasks join it with capsula exec",
		           "--hold-notify: send on descriptor %d", plan->hold_notify_fd);
	free(n.text);
	close(plan->hold_notify_fd);
	return ret;
}
