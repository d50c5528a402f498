/* A hostile local user's tool for the isolation tests.
 *   squatter bind|listen NAME...   take abstract unix socket names now
 *   squatter watch DIR SECONDS
 *       watch /proc/net/unix for capsula's holder sockets and, for each one
 *       seen, try for SECONDS to take its name: bound as an abstract name,
 *       bound or made as a file in DIR (the victim's socket directory), and
 *       connected to there; prints what it saw and what it got.
 *   squatter flood PATH SECONDS
 *       connect to the socket file PATH as fast as it can, holding every
 *       connection open without a word, for SECONDS; prints how many it got.
 *   squatter exchange A B SECONDS
 *       swap the names A and B (renameat2 RENAME_EXCHANGE) in a loop for
 *       SECONDS; prints how many swaps the kernel allowed.
 * bind: bound, never listening (connects are refused); listen: listening
 * with a full backlog and never accepting (connects would wait forever).
 * Prints "ready" once it has started; watch and flood stop early, saying
 * what they got, on SIGUSR1 or SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAMES 4096
#define MAX_HELD 4096

/* SIGUSR1 or SIGTERM: stop watching or flooding and say what happened. */
static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

/* As much of text as fits in size bytes, NUL-terminated; its length. */
static size_t copy_text(char *out, size_t size, const char *text)
{
	size_t n = strnlen(text, size - 1);

	memcpy(out, text, n);
	out[n] = '\0';
	return n;
}

static socklen_t abstract_address(const char *name, struct sockaddr_un *addr)
{
	size_t n;

	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	n = copy_text(addr->sun_path + 1, sizeof addr->sun_path - 1, name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static socklen_t path_address(const char *path, struct sockaddr_un *addr)
{
	size_t n;

	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	n = copy_text(addr->sun_path, sizeof addr->sun_path, path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

/* Bind addr; with listening, also fill its backlog with connections of our
 * own that are never accepted. 0, or -1 when someone holds it. */
static int take(const struct sockaddr_un *addr, socklen_t len, bool listening)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (const struct sockaddr *)addr, len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!listening)
		return 0;
	if (listen(fd, 0) < 0)
		return -1;
	for (int i = 0; i < 8; i++) {
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (c < 0 || connect(c, (const struct sockaddr *)addr, len) < 0) {
			if (c >= 0)
				close(c);
			break;
		}
	}
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un addr;
	socklen_t len = path_address(path, &addr);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - start->tv_sec) + (double)(t.tv_nsec - start->tv_nsec) / 1e9;
}

/* The keys of the capsula holder sockets now on this machine: the last part
 * of a socket file's path, or an abstract name, that begins "capsula-". */
static size_t bound_keys(char keys[][108], size_t max)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[512];
	size_t n = 0;

	if (f == NULL)
		return 0;
	while (n < max && fgets(line, sizeof line, f) != NULL) {
		char *at = strstr(line, "/capsula-");

		if (at == NULL)
			at = strstr(line, " @capsula-");
		if (at == NULL)
			continue;
		at += at[0] == '/' ? 1 : 2;
		at[strcspn(at, " \n")] = '\0';
		copy_text(keys[n++], 108, at);
	}
	fclose(f);
	return n;
}

/* The test waits for "ready" before it starts what is attacked; the
 * attack's time counts from then. */
static void start_clock_ready(struct timespec *start)
{
	clock_gettime(CLOCK_MONOTONIC, start);
	printf("ready\n");
	fflush(stdout);
}

static int watch(const char *dir, double seconds)
{
	static char seen[MAX_NAMES][108], now[MAX_NAMES][108];
	size_t seen_count = 0, tries = 0, took = 0, connected = 0;
	struct timespec start;

	start_clock_ready(&start);
	do {
		size_t n = bound_keys(now, MAX_NAMES);

		for (size_t i = 0; i < n; i++) {
			bool known = false;

			for (size_t j = 0; j < seen_count && !known; j++)
				known = strcmp(seen[j], now[i]) == 0;
			if (!known && seen_count < MAX_NAMES)
				memcpy(seen[seen_count++], now[i], sizeof now[i]);
		}
		for (size_t j = 0; j < seen_count; j++) {
			struct sockaddr_un addr;
			char path[4200];
			int fd;

			if ((size_t)snprintf(path, sizeof path, "%s/", dir) >= sizeof path - 108)
				return 2;
			strcat(path, seen[j]);
			tries++;
			/* The old scheme's name, which nothing uses now: taking it is no harm. */
			take(&addr, abstract_address(seen[j], &addr), true);
			if (take(&addr, path_address(path, &addr), true) == 0)
				took++;
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666);
			if (fd >= 0) {
				took++;
				close(fd);
			}
			fd = connect_to(path);
			if (fd >= 0) {
				connected++;
				close(fd);
			}
		}
		usleep(2000);
	} while (!stop && seconds_since(&start) < seconds);
	printf("seen %zu tries %zu took %zu connected %zu\n", seen_count, tries, took, connected);
	/* Now: a sanitizer's exit would not flush it. */
	fflush(stdout);
	return 0;
}

static int flood(const char *path, double seconds)
{
	static int held[MAX_HELD];
	size_t count = 0, refused = 0;
	int last_errno = 0;
	struct timespec start;

	start_clock_ready(&start);
	do {
		int fd = count < MAX_HELD ? connect_to(path) : -1;

		if (fd >= 0) {
			held[count++] = fd;
		} else {
			refused++;
			last_errno = errno;
			usleep(1000);
		}
	} while (!stop && seconds_since(&start) < seconds);
	printf("connected %zu refused %zu (%s)\n", count, refused,
	       refused ? strerror(last_errno) : "none");
	fflush(stdout);
	for (size_t i = 0; i < count; i++)
		close(held[i]);
	return 0;
}

static int exchange(const char *a, const char *b, double seconds)
{
	size_t swapped = 0, refused = 0;
	int last_errno = 0;
	struct timespec start;

	start_clock_ready(&start);
	do {
		if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0) {
			swapped++;
		} else {
			refused++;
			last_errno = errno;
		}
	} while (!stop && seconds_since(&start) < seconds);
	printf("swapped %zu refused %zu (%s)\n", swapped, refused,
	       refused ? strerror(last_errno) : "none");
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_stop};
	bool listening;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (argc == 4 && strcmp(argv[1], "watch") == 0)
		return watch(argv[2], atof(argv[3]));
	if (argc == 4 && strcmp(argv[1], "flood") == 0)
		return flood(argv[2], atof(argv[3]));
	if (argc == 5 && strcmp(argv[1], "exchange") == 0)
		return exchange(argv[2], argv[3], atof(argv[4]));
	if (argc < 3 || (strcmp(argv[1], "bind") != 0 && strcmp(argv[1], "listen") != 0)) {
		fprintf(stderr, "usage: squatter bind|listen NAME... | watch DIR SECONDS | "
		        "flood PATH SECONDS | exchange A B SECONDS\n");
		return 2;
	}
	listening = strcmp(argv[1], "listen") == 0;
	for (int i = 2; i < argc; i++) {
		struct sockaddr_un addr;

		if (take(&addr, abstract_address(argv[i], &addr), listening) < 0)
			fprintf(stderr, "squatter: %s is taken already\n", argv[i]);
	}
	printf("ready\n");
	fflush(stdout);
	pause();
	return 0;
}
