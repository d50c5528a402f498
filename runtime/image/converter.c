#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/image/converter.h"

#define CONVERTER_ARGS_MAX 64

static int converter_path(char *path, size_t size, capsula_error *err)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, size, "%s/capsula-convert", self);
			if (access(path, X_OK) == 0)
				return 0;
		}
	}
	snprintf(path, size, "%s/capsula-convert", CAPSULA_LIBEXECDIR);
	if (access(path, X_OK) == 0)
		return 0;
	return fail(err, errno, "reinstall capsula", "%s", path);
}

int converter_exec(int argc, char **argv, capsula_error *err)
{
	char converter[4200];
	char **args;

	if (converter_path(converter, sizeof converter, err) < 0)
		return -1;
	args = calloc((size_t)argc + 2, sizeof *args);
	if (args == NULL)
		return fail(err, errno, NULL, "%s", argv[0]);
	args[0] = converter;
	for (int i = 0; i < argc; i++)
		args[i + 1] = argv[i];
	execv(converter, args);
	fail(err, errno, "reinstall capsula", "run %s", converter);
	free(args);
	return -1;
}

int converter_run(const char *const *args, capsula_error *err)
{
	char converter[4200];
	const char *argv[CONVERTER_ARGS_MAX + 2];
	size_t n = 0;
	pid_t child;
	int status;

	if (converter_path(converter, sizeof converter, err) < 0)
		return -1;
	argv[0] = converter;
	while (n < CONVERTER_ARGS_MAX && args[n] != NULL) {
		argv[n + 1] = args[n];
		n++;
	}
	argv[n + 1] = NULL;
	child = fork();
	if (child < 0)
		return fail(err, errno, NULL, "start %s", converter);
	if (child == 0) {
		/* Its output is not the command's: keep stdout clean. */
		if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
			_exit(EXIT_CAPSULA_FAILED);
		execv(converter, (char *const *)argv);
		_exit(EXIT_CANNOT_EXECUTE);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return fail(err, errno, NULL, "wait for %s", converter);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
