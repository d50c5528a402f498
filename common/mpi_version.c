#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mpi_version.h"

#define LAUNCHER_DEPTH 6

int mpi_version_find(const char *buf, size_t len, char *out, size_t size)
{
	for (size_t i = 1; i + 6 < len; i++) {
		size_t j = i + 1;
		int dots = 0;

		if (buf[i - 1] != '\0' || buf[i] != 'v' || !isdigit((unsigned char)buf[j]))
			continue;
		while (j < len && (isdigit((unsigned char)buf[j]) || buf[j] == '.'))
			dots += buf[j++] == '.';
		if (j < len && buf[j] == '\0' && dots == 2 && j - i - 1 < size) {
			memcpy(out, buf + i + 1, j - i - 1);
			out[j - i - 1] = '\0';
			return 0;
		}
	}
	return -1;
}

int mpi_version_of_library(const char *path, char *out, size_t size)
{
	enum { CHUNK = 1 << 16, OVERLAP = 64 };
	char *buf = malloc(CHUNK + OVERLAP);
	size_t kept = 0;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = -1;

	if (fd < 0 || buf == NULL) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return -1;
	}
	while (ret < 0 && (got = read(fd, buf + kept, CHUNK)) > 0) {
		size_t len = kept + (size_t)got;

		ret = mpi_version_find(buf, len, out, size);
		/* Keep the tail: a version string may straddle two reads. */
		kept = len < OVERLAP ? len : OVERLAP;
		memmove(buf, buf + len - kept, kept);
	}
	close(fd);
	free(buf);
	return ret;
}

const char *const openmpi_library_patterns[] = {
	"/usr/lib/*/libopen-pal.so.*", "/usr/lib64/libopen-pal.so.*",
	"/usr/lib64/openmpi/lib/libopen-pal.so.*", "/usr/lib/libopen-pal.so.*",
	"/usr/local/lib/libopen-pal.so.*", "/opt/*/lib/libopen-pal.so.*", NULL,
};

int mpi_version_of_image(char *out, size_t size)
{
	for (size_t p = 0; openmpi_library_patterns[p] != NULL; p++) {
		glob_t found;
		int ret = -1;

		if (glob(openmpi_library_patterns[p], 0, NULL, &found) != 0)
			continue;
		for (size_t i = 0; i < found.gl_pathc && ret < 0; i++)
			ret = mpi_version_of_library(found.gl_pathv[i], out, size);
		globfree(&found);
		if (ret == 0)
			return 0;
	}
	return -1;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	const char *close_paren;
	FILE *f;
	int ppid;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof buf, f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	/* The command name may hold spaces and parentheses; skip past the last ')'. */
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL || sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

static int library_mapped_by(pid_t pid, char *path, size_t size)
{
	char maps[64], line[4096];
	FILE *f;
	int ret = -1;

	snprintf(maps, sizeof maps, "/proc/%d/maps", (int)pid);
	f = fopen(maps, "re");
	if (f == NULL)
		return -1;
	while (ret < 0 && fgets(line, sizeof line, f) != NULL) {
		char *file = strchr(line, '/');

		if (file == NULL || strstr(file, "/libopen-pal.so") == NULL)
			continue;
		file[strcspn(file, "\n")] = '\0';
		if (strlen(file) < size) {
			strcpy(path, file);
			ret = 0;
		}
	}
	fclose(f);
	return ret;
}

int mpi_version_of_launcher(pid_t pid, char *out, size_t size)
{
	char library[4096];

	for (int depth = 0; depth < LAUNCHER_DEPTH && pid > 1; depth++) {
		pid = parent_of(pid);
		if (pid > 1 && library_mapped_by(pid, library, sizeof library) == 0)
			return mpi_version_of_library(library, out, size);
	}
	return -1;
}

int mpi_versions_clash(const char *a, const char *b)
{
	return atoi(a) != atoi(b);
}
