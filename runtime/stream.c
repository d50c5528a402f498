#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/stream.h"

const char *stream_compression(const unsigned char *head, size_t size)
{
	static const struct {
		const char *tool;
		const char *magic;
		size_t length;
	} formats[] = {
		{"gzip", "\x1f\x8b", 2},
		{"zstd", "\x28\xb5\x2f\xfd", 4},
		{"xz", "\xfd" "7zXZ\0", 6},
		{"bzip2", "BZh", 3},
	};

	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
		if (size >= formats[i].length && memcmp(head, formats[i].magic, formats[i].length) == 0)
			return formats[i].tool;
	return NULL;
}

/* The decompressor reads the file on its stdin and writes the pipe. */
static int spawn_decompressor(struct stream *s, int file_fd, capsula_error *err)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fail(err, errno, NULL, "pipe for %s", s->tool);
	pid = fork();
	if (pid < 0) {
		int saved = errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return fail(err, saved, NULL, "fork %s", s->tool);
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (dup2(file_fd, STDIN_FILENO) < 0 || dup2(pipefd[1], STDOUT_FILENO) < 0)
			_exit(126);
		execlp(s->tool, s->tool, "-dc", (char *)NULL);
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(pipefd[1]);
	s->fd = pipefd[0];
	s->decompressor = pid;
	return 0;
}

int stream_open(const char *path, struct stream *s, capsula_error *err)
{
	unsigned char head[8];
	ssize_t got;
	int fd;

	memset(s, 0, sizeof *s);
	s->fd = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(err, errno, NULL, "cannot open %s", path);
	got = pread(fd, head, sizeof head, 0);
	if (got < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "cannot read %s", path);
	}
	s->path = strdup(path);
	if (s->path == NULL) {
		close(fd);
		return fail(err, errno, NULL, "%s", path);
	}
	s->tool = stream_compression(head, (size_t)got);
	if (s->tool == NULL) {
		s->fd = fd;
		return 0;
	}
	if (spawn_decompressor(s, fd, err) < 0) {
		close(fd);
		free(s->path);
		return -1;
	}
	close(fd);
	return 0;
}

int stream_close(struct stream *s, capsula_error *err)
{
	char buf[16384];
	int status;
	int ret = 0;

	if (s->decompressor > 0) {
		/* A tar archive may end before its compressed stream does. */
		while (read(s->fd, buf, sizeof buf) > 0)
			;
		close(s->fd);
		while (waitpid(s->decompressor, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			ret = fail(err, 0, "install it (apt-get install zstd xz-utils bzip2)",
			           "%s needs %s, which is not installed", s->path, s->tool);
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ret = fail(err, 0, "the file is damaged; fetch it again",
			           "%s -dc %s failed", s->tool, s->path);
	} else if (s->fd >= 0) {
		close(s->fd);
	}
	free(s->path);
	memset(s, 0, sizeof *s);
	s->fd = -1;
	return ret;
}
