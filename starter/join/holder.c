#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/timing.h"
#include "starter/container/container.h"
#include "starter/container/identity.h"
#include "starter/container/userns.h"
#include "starter/join/channel.h"
#include "starter/join/holder.h"

/* How long a new holder waits for its first rank before giving up. */
#define FIRST_RANK_TIMEOUT_MS 30000
/* A rank that connects must say hello within this time. */
#define HANDSHAKE_TIMEOUT_S 5

enum { HOLDER_READY = 0 };

static void report(int fd, int status, const char *message)
{
	struct holder_reply reply = {.status = status, .holder = getpid()};
	ssize_t ignored;

	snprintf(reply.message, sizeof reply.message, "%s", message ? message : "");
	ignored = write(fd, &reply, sizeof reply);
	(void)ignored;  /* the spawning rank may be gone; nothing to tell then */
}

/* Keep only the descriptors the holder needs (and stdio until setup is
 * done), so it holds none of the launcher's pipes or sockets open. */
static void close_other_fds(const int *keep, size_t count)
{
	unsigned next = 3;

	for (;;) {
		unsigned lowest = ~0U;

		for (size_t i = 0; i < count; i++)
			if (keep[i] >= (int)next && (unsigned)keep[i] < lowest)
				lowest = (unsigned)keep[i];
		if (lowest > next)
			close_range(next, lowest == ~0U ? ~0U : lowest - 1, 0);
		if (lowest == ~0U)
			break;
		next = lowest + 1;
	}
}

static void ignore_terminal_signals(void)
{
	static const int signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE};

	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		signal(signals[i], SIG_IGN);
}

/* What the holder keeps of a rank while it runs. */
struct rank_info {
	int stderr_fd;               /* its stderr, or -1 when nothing will be said */
	struct join_request request;
	uint64_t joined_us;          /* when it got the namespaces */
	uint64_t requests_served;    /* the image server's counters then */
	uint64_t serving_us;
};

/* Answer one connection: a rank gets the container (and we get its pidfd,
 * returned, and what it told us in *rank), an instance tool gets our own
 * pidfd, so that it can wait for us and signal us without ever naming a
 * pid that might be reused. Returns -1 for anything else, and for a peer
 * that is not the container's user: peers outside our user namespace's map
 * read as the overflow uid, which is never the user's (the launch refuses
 * to run as it). */
static int answer_peer(int conn, const struct capsula_plan *plan, const struct container *c,
                       struct rank_info *rank)
{
	struct timeval timeout = {.tv_sec = HANDSHAKE_TIMEOUT_S};
	struct holder_reply reply = {.status = HOLDER_READY, .holder = getpid()};
	int fds[2] = {c->userns_fd, c->mntns_fd};
	int received[2] = {-1, -1};
	capsula_error err;
	size_t nfds = 2, none = 0;
	char request;

	*rank = (struct rank_info){.stderr_fd = -1};
	if (uid_is_overflow(plan->uid) ||
	    channel_peer_is(conn, plan_inner_uid(plan), NULL, &err) != 1)
		return -1;
	if (setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0 ||
	    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) < 0)
		return -1;
	if (channel_recv(conn, &request, 1, received, &nfds) != 1)
		return -1;
	if (request == CHANNEL_STATUS && nfds == 0) {
		int self = (int)syscall(SYS_pidfd_open, getpid(), 0);

		if (self >= 0) {
			channel_send(conn, &reply, sizeof reply, &self, 1);
			close(self);
		}
		return -1;
	}
	if (request != CHANNEL_JOIN || nfds < 1 ||
	    channel_recv(conn, &rank->request, sizeof rank->request, NULL, &none) !=
	    (ssize_t)sizeof rank->request ||
	    channel_send(conn, &reply, sizeof reply, fds, 2) < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(received[i]);
		return -1;
	}
	rank->joined_us = timing_now_us();
	if (c->served != NULL) {
		rank->requests_served = __atomic_load_n(&c->served->requests_served, __ATOMIC_RELAXED);
		rank->serving_us = __atomic_load_n(&c->served->serving_us, __ATOMIC_RELAXED);
	}
	rank->stderr_fd = nfds == 2 ? received[1] : -1;
	return received[0];
}

static void refuse_waiting_ranks(int listen_fd, const capsula_error *err)
{
	struct holder_reply reply = {.status = err->status};
	int conn;

	snprintf(reply.message, sizeof reply.message, "%s", err->message);
	if (fcntl(listen_fd, F_SETFL, O_NONBLOCK) < 0)
		return;
	while ((conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		channel_send(conn, &reply, sizeof reply, NULL, 0);
		close(conn);
	}
}

/* The ranks being served: fds[0] is the listening socket, fds[1..count]
 * the ranks' pidfds, ranks[1..count] what we keep of each. */
struct rank_set {
	struct pollfd *fds;
	struct rank_info *ranks;
	size_t count;
};

static int rank_add(struct rank_set *set, int pidfd, const struct rank_info *rank)
{
	struct pollfd *fds = realloc(set->fds, (set->count + 2) * sizeof *fds);
	struct rank_info *ranks;

	if (fds == NULL)
		return -1;
	set->fds = fds;
	ranks = realloc(set->ranks, (set->count + 2) * sizeof *ranks);
	if (ranks == NULL)
		return -1;
	set->ranks = ranks;
	set->count++;
	fds[set->count] = (struct pollfd){.fd = pidfd, .events = POLLIN};
	ranks[set->count] = *rank;
	return 0;
}

/* --timing's last lines, said for the command once it has exited: what
 * capsula cannot see itself after the exec. */
static void report_command(const struct container *c, const struct rank_info *rank)
{
	uint64_t now = timing_now_us();
	uint64_t requests = 0, serving = 0;
	char text[400];
	int length;

	if (c->served != NULL) {
		requests = __atomic_load_n(&c->served->requests_served, __ATOMIC_RELAXED) -
		           rank->requests_served;
		serving = __atomic_load_n(&c->served->serving_us, __ATOMIC_RELAXED) - rank->serving_us;
	}
	length = snprintf(text, sizeof text,
	                  "capsula: %-24s %8llu us\n"
	                  "capsula: %-24s %8llu us (%llu requests)\n"
	                  "capsula: %-24s %8llu us\n",
	                  "command (setns to exit)", (unsigned long long)(now - rank->joined_us),
	                  "  image server, meanwhile", (unsigned long long)serving,
	                  (unsigned long long)requests,
	                  "total (start to exit)", (unsigned long long)(now - rank->request.start_us));
	if (length > 0 && write(rank->stderr_fd, text, (size_t)length) < 0)
		return;  /* its stderr is gone: nobody to tell */
}

static void rank_remove(struct rank_set *set, size_t i, const struct container *c)
{
	struct rank_info *rank = &set->ranks[i];

	if (rank->stderr_fd >= 0 && rank->request.timing)
		report_command(c, rank);
	close(set->fds[i].fd);
	if (rank->stderr_fd >= 0 && c->served != NULL)
		damage_report_unlisten(&c->served->damage, rank->stderr_fd);
	if (rank->stderr_fd >= 0)
		close(rank->stderr_fd);
	set->fds[i] = set->fds[set->count];
	set->ranks[i] = set->ranks[set->count];
	set->count--;
}

/* Serve ranks until none is left and the grace period has passed. */
static void serve_ranks(int listen_fd, const struct capsula_plan *plan,
                        const struct container *c)
{
	struct rank_set set = {0};
	uint64_t idle_deadline = timing_now_us() + FIRST_RANK_TIMEOUT_MS * 1000ULL;
	bool forever = plan->grace_ms == GRACE_FOREVER;

	set.fds = malloc(sizeof *set.fds);
	set.ranks = malloc(sizeof *set.ranks);
	if (set.fds == NULL || set.ranks == NULL)
		goto out;
	for (;;) {
		int timeout_ms = -1;
		int ready;

		set.fds[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		if (set.count == 0 && !forever) {
			uint64_t now = timing_now_us();

			if (now >= idle_deadline)
				break;
			timeout_ms = (int)((idle_deadline - now + 999) / 1000);
		}
		ready = poll(set.fds, set.count + 1, timeout_ms);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0)
			continue;
		/* Ranks that ended; pidfds are readable once the process is gone. */
		for (size_t i = 1; i <= set.count;) {
			if (set.fds[i].revents) {
				rank_remove(&set, i, c);
				if (set.count == 0)
					idle_deadline = timing_now_us() + plan->grace_ms * 1000ULL;
			} else {
				i++;
			}
		}
		if (set.fds[0].revents & POLLIN) {
			int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			struct rank_info rank = {.stderr_fd = -1};
			int pidfd = conn >= 0 ? answer_peer(conn, plan, c, &rank) : -1;

			if (conn >= 0)
				close(conn);
			/* Holding a rank's stderr past its end would keep its
			 * launcher waiting: only while it lives (a damaged image
			 * and --timing are told there). */
			if (pidfd >= 0 && rank_add(&set, pidfd, &rank) < 0) {
				close(pidfd);
				if (rank.stderr_fd >= 0)
					close(rank.stderr_fd);
			} else if (pidfd >= 0 && rank.stderr_fd >= 0 && c->served != NULL) {
				/* Out of memory, that rank alone is not told. */
				(void)damage_report_listen(&c->served->damage, rank.stderr_fd);
			}
		}
	}
out:
	free(set.fds);
	free(set.ranks);
}

static void detach_stdio(int devnull)
{
	/* Keeping the rank's stdout or stderr open would make the launcher wait
	 * for the holder before it considers the rank finished. */
	dup2(devnull, STDIN_FILENO);
	dup2(devnull, STDOUT_FILENO);
	dup2(devnull, STDERR_FILENO);
	close(devnull);
}

/* When holder_spawn began, for --timing: the holder inherits it. */
static uint64_t spawned_us;

static __attribute__((noreturn)) void holder_main(const struct capsula_plan *plan,
                                                  struct channel_listener listener,
                                                  int report_fd)
{
	int listen_fd = listener.fd;
	int keep[4 + MAX_IMAGE_LAYERS] = {plan->image.fd, listen_fd, report_fd,
	                                  plan->socket_dir_fd};
	size_t kept = 4;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	struct container c = {-1, -1, NULL, NULL};
	uint64_t started = timing_report(plan->timing, "  holder fork", spawned_us);
	struct identity id;
	int devnull;

	for (size_t i = 0; i < plan->layer_count && i < MAX_IMAGE_LAYERS; i++)
		keep[kept++] = plan->layers[i].fd;
	close_other_fds(keep, kept);
	ignore_terminal_signals();
	prctl(PR_SET_NAME, "capsula-holder", 0, 0, 0);
	if (chdir("/") < 0 || (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		fail(&err, errno, NULL, "holder setup");
		report(report_fd, err.status, err.message);
		_exit(EXIT_CAPSULA_FAILED);
	}
	started = timing_report(plan->timing, "  holder setup", started);
	if (identity_lookup(plan->uid, plan->gid, &id, &err) < 0)
		goto failed;
	timing_report(plan->timing, "  identity (NSS)", started);
	if (container_build(plan, &id, &c, &err) < 0)
		goto failed;
	identity_free(&id);
	report(report_fd, HOLDER_READY, NULL);
	close(report_fd);
	detach_stdio(devnull);
	serve_ranks(listen_fd, plan, &c);
	/* The FUSE mount and everything else go with the last reference to the
	 * namespaces, which is ours; the socket file goes now. */
	channel_release(plan->socket_dir_fd, plan->join_key, &listener);
	prefetch_stop(c.prefetch);
	_exit(0);
failed:
	report(report_fd, err.status, err.message);
	refuse_waiting_ranks(listen_fd, &err);
	channel_release(plan->socket_dir_fd, plan->join_key, &listener);
	prefetch_stop(c.prefetch);
	_exit(EXIT_CAPSULA_FAILED);
}

/* What the middle process of holder_spawn hands to the holder. */
struct holder_start {
	const struct capsula_plan *plan;
	struct channel_listener listener;
	int report_fd;
	sigset_t mask;  /* the caller's, the holder's once it runs */
};

/* The middle process: in a process group of its own it forks the holder
 * and leaves at once, so that the holder is nobody's child, outside the
 * launcher's group, and ignores the terminal's signals. Not a session of
 * its own: a new session is a new scheduling group (autogroup), in which
 * the prefetch's idle priority means nothing to the ranks, and a rank
 * about to run its command waited up to a millisecond behind the prefetch.
 * It runs in the caller's memory, on a stack of its own, while the caller
 * waits (clone's CLONE_VM | CLONE_VFORK): only the holder gets an address
 * space of its own, and on a virtual machine whose page tables the
 * hypervisor shadows a new one costs most of a millisecond before its first
 * instruction. The holder keeps running on its copy of that stack. */
static int start_holder(void *arg)
{
	const struct holder_start *start = arg;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	pid_t pid;

	if (setpgid(0, 0) < 0)
		_exit(EXIT_CAPSULA_FAILED);
	pid = fork();
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &start->mask, NULL);
		holder_main(start->plan, start->listener, start->report_fd);
	}
	if (pid < 0) {
		fail(&err, errno, NULL, "fork the holder");
		report(start->report_fd, err.status, err.message);
		_exit(EXIT_CAPSULA_FAILED);
	}
	_exit(0);
}

/* The holder's whole stack, as a main thread's would be; untouched pages
 * cost nothing. */
#define HOLDER_STACK_BYTES (8u << 20)

/* Fork the holder through a middle process that shares our memory; its pid,
 * or -1 with errno set. */
static pid_t spawn_detached(struct holder_start *start)
{
#ifdef __SANITIZE_ADDRESS__
	/* AddressSanitizer follows a process only on stacks it made: there the
	 * middle process is an ordinary fork. */
	pid_t pid;

	sigprocmask(SIG_SETMASK, NULL, &start->mask);
	pid = fork();
	if (pid == 0)
		start_holder(start);
	return pid;
#else
	char *stack = mmap(NULL, HOLDER_STACK_BYTES, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	sigset_t all;
	pid_t pid;
	int saved;

	if (stack == MAP_FAILED)
		return -1;
	/* No handler of ours may run in the middle process, on our memory. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &start->mask);
	pid = clone(start_holder, stack + HOLDER_STACK_BYTES, CLONE_VM | CLONE_VFORK | SIGCHLD,
	            start);
	saved = errno;
	sigprocmask(SIG_SETMASK, &start->mask, NULL);
	munmap(stack, HOLDER_STACK_BYTES);
	errno = saved;
	return pid;
#endif
}

int holder_spawn(const struct capsula_plan *plan, int listen_fd, ino_t socket_ino,
                 pid_t *holder, capsula_error *err)
{
	struct holder_start start = {.plan = plan, .listener = {listen_fd, socket_ino}};
	struct holder_reply reply;
	int pipefd[2];
	ssize_t got;
	pid_t pid;
	int status;

	spawned_us = timing_now_us();
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fail(err, errno, NULL, "pipe for the holder");
	start.report_fd = pipefd[1];
	pid = spawn_detached(&start);
	if (pid < 0) {
		int saved = errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return fail(err, saved, NULL, "fork the holder");
	}
	close(pipefd[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	do
		got = read(pipefd[0], &reply, sizeof reply);
	while (got < 0 && errno == EINTR);
	close(pipefd[0]);
	if (got != (ssize_t)sizeof reply)
		return fail(err, got < 0 ? errno : 0, "run again with -vv and report it",
		            "the container holder exited during setup");
	if (reply.status == HOLDER_READY) {
		if (holder != NULL)
			*holder = reply.holder;
		return 0;
	}
	reply.message[sizeof reply.message - 1] = '\0';
	return fail_status(err, reply.status, 0, NULL, "%s", reply.message);
}
