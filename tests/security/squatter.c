/* A hostile local user's tool for the isolation tests: takes abstract unix
 * socket names before (or after) capsula does.
 *   squatter bind|listen NAME...      take the names now
 *   squatter watch bind|listen SECONDS
 *       watch /proc/net/unix for capsula's names and take each one as soon
 *       as its owner lets it go, for SECONDS; prints how many it took.
 * bind: bound, never listening (connects are refused); listen: listening
 * with a full backlog and never accepting (connects would wait forever).
 * Prints "ready" once the names given are taken. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAMES 4096

static socklen_t address(const char *name, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1, "%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

/* Take name; returns 0, or -1 when someone holds it. */
static int take(const char *name, bool listening)
{
	struct sockaddr_un addr;
	socklen_t len = address(name, &addr);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!listening)
		return 0;
	if (listen(fd, 0) < 0)
		return -1;
	/* Fill the backlog with connections of our own that are never accepted. */
	for (int i = 0; i < 8; i++) {
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (c < 0 || connect(c, (struct sockaddr *)&addr, len) < 0) {
			if (c >= 0)
				close(c);
			break;
		}
	}
	return 0;
}

/* The capsula names now bound on this machine. */
static size_t bound_names(char names[][108], size_t max)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[512];
	size_t n = 0;

	if (f == NULL)
		return 0;
	while (n < max && fgets(line, sizeof line, f) != NULL) {
		char *at = strstr(line, " @capsula-");

		if (at == NULL)
			continue;
		at += 2;
		at[strcspn(at, " \n")] = '\0';
		snprintf(names[n++], 108, "%s", at);
	}
	fclose(f);
	return n;
}

static int watch(bool listening, double seconds)
{
	static char seen[MAX_NAMES][108], now[MAX_NAMES][108];
	static bool taken[MAX_NAMES];
	size_t seen_count = 0, took = 0;
	struct timespec start, t;

	clock_gettime(CLOCK_MONOTONIC, &start);
	printf("ready\n");
	fflush(stdout);
	do {
		size_t n = bound_names(now, MAX_NAMES);

		for (size_t i = 0; i < n; i++) {
			bool known = false;

			for (size_t j = 0; j < seen_count && !known; j++)
				known = strcmp(seen[j], now[i]) == 0;
			if (!known && seen_count < MAX_NAMES)
				memcpy(seen[seen_count++], now[i], sizeof now[i]);
		}
		for (size_t j = 0; j < seen_count; j++)
			if (!taken[j] && take(seen[j], listening) == 0) {
				taken[j] = true;
				took++;
			}
		usleep(2000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - start.tv_sec) + (double)(t.tv_nsec - start.tv_nsec) / 1e9 <
	         seconds);
	printf("took %zu\n", took);
	return 0;
}

int main(int argc, char **argv)
{
	bool listening;

	if (argc < 3 || (strcmp(argv[1], "watch") != 0 && strcmp(argv[1], "bind") != 0 &&
	                 strcmp(argv[1], "listen") != 0)) {
		fprintf(stderr, "usage: squatter bind|listen NAME... | watch bind|listen SECONDS\n");
		return 2;
	}
	if (strcmp(argv[1], "watch") == 0) {
		if (argc != 4)
			return 2;
		return watch(strcmp(argv[2], "listen") == 0, atof(argv[3]));
	}
	listening = strcmp(argv[1], "listen") == 0;
	for (int i = 2; i < argc; i++)
		if (take(argv[i], listening) < 0)
			fprintf(stderr, "squatter: %s is taken already\n", argv[i]);
	printf("ready\n");
	fflush(stdout);
	pause();
	return 0;
}
