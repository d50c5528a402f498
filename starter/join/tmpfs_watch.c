#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "starter/join/tmpfs_watch.h"

#define WATCH_MS 500

/* Signals a launcher sends to the process it started (mpirun's and srun's
 * SIGTERM, a user's kill): they are meant for the command. */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};

struct watch {
	int root_fd;                /* the container's root: statfs gives the tmpfs's figures */
	unsigned long long bytes;   /* the size given to it, for the message */
	bool told;
};

/* Once each time it fills; running full again after it was freed is told
 * again. */
static void tell_if_full(struct watch *w)
{
	struct statfs fs;

	if (fstatfs(w->root_fd, &fs) < 0 || fs.f_blocks == 0)
		return;
	if (fs.f_bavail > fs.f_blocks / 10) {
		w->told = false;
		return;
	}
	if (fs.f_bavail > 0 || w->told)
		return;
	w->told = true;
	if (dprintf(STDERR_FILENO, "capsula: the container's writable tmpfs is full (%llu MiB): "
	            "writes fail with 'No space left on device'; give it more with --tmpfs-size, "
	            "or write to a host directory\n", w->bytes >> 20) < 0)
		return;  /* stderr is gone: there is nobody to tell */
}

/* End as the command ended, so that the launcher sees its status: its exit
 * code, or death by the same signal (without a second core file). */
static __attribute__((noreturn)) void end_like(int status)
{
	sigset_t one;
	int sig;

	if (!WIFSIGNALED(status))
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	sig = WTERMSIG(status);
	if (setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0}) == 0 && signal(sig, SIG_DFL) != SIG_ERR &&
	    sigemptyset(&one) == 0 && sigaddset(&one, sig) == 0 &&
	    sigprocmask(SIG_UNBLOCK, &one, NULL) == 0)
		raise(sig);
	_exit(128 + sig);
}

/* The command's parent: forward what the launcher sends, look at the tmpfs
 * every WATCH_MS while the command runs and once more when it has ended. */
static __attribute__((noreturn)) void watch_command(struct watch *w, pid_t command,
                                                    int signal_fd)
{
	int status = 0;

	for (;;) {
		struct pollfd p = {.fd = signal_fd, .events = POLLIN};
		struct signalfd_siginfo info;
		pid_t ended;

		if (poll(&p, 1, WATCH_MS) < 0 && errno != EINTR)
			break;
		tell_if_full(w);
		if (p.revents & POLLIN && read(signal_fd, &info, sizeof info) == sizeof info &&
		    info.ssi_signo != SIGCHLD && info.ssi_code != SI_KERNEL) {
			/* The terminal's signals (SI_KERNEL) reach the command's
			 * process group without us. */
			if (kill(command, (int)info.ssi_signo) < 0 && errno != ESRCH)
				break;
		}
		ended = waitpid(command, &status, WNOHANG);
		if (ended == command)
			goto ended;
		if (ended < 0 && errno != EINTR)
			break;
	}
	/* Cannot watch any more: wait as a plain parent. */
	while (waitpid(command, &status, 0) < 0)
		if (errno != EINTR)
			_exit(EXIT_CAPSULA_FAILED);
ended:
	tell_if_full(w);
	end_like(status);
}

int tmpfs_watch_fork(unsigned long long tmpfs_bytes, capsula_error *err)
{
	struct watch w = {.bytes = tmpfs_bytes};
	sigset_t watched, before;
	pid_t parent = getpid();
	pid_t command;
	int signal_fd;

	if (sigemptyset(&watched) < 0 || sigaddset(&watched, SIGCHLD) < 0)
		return fail(err, errno, NULL, "sigset");
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		if (sigaddset(&watched, forwarded[i]) < 0)
			return fail(err, errno, NULL, "sigaddset %d", forwarded[i]);
	w.root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (w.root_fd < 0)
		return fail(err, errno, NULL, "open the container's root");
	if (sigprocmask(SIG_BLOCK, &watched, &before) < 0) {
		fail(err, errno, NULL, "block signals");
		goto close_root;
	}
	signal_fd = signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
	if (signal_fd < 0) {
		fail(err, errno, NULL, "signalfd");
		goto unblock;
	}
	command = fork();
	if (command < 0) {
		fail(err, errno, NULL, "fork the command");
		close(signal_fd);
		goto unblock;
	}
	if (command > 0)
		watch_command(&w, command, signal_fd);
	/* The command: gone with its parent, even one killed by SIGKILL. */
	close(signal_fd);
	close(w.root_fd);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return fail(err, errno, NULL, "prctl PR_SET_PDEATHSIG");
	if (getppid() != parent)
		_exit(EXIT_CAPSULA_FAILED);
	if (sigprocmask(SIG_SETMASK, &before, NULL) < 0)
		return fail(err, errno, NULL, "restore the signal mask");
	return 0;
unblock:
	if (sigprocmask(SIG_SETMASK, &before, NULL) < 0)
		fail(err, errno, NULL, "restore the signal mask");
close_root:
	close(w.root_fd);
	return -1;
}
