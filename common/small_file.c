#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/small_file.h"

int read_small_file(const char *path, size_t max, char **data, size_t *length,
                    capsula_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return fail(err, errno, NULL, "cannot open %s", path);
	return read_small_fd(fd, path, max, data, length, err);
}

int read_small_at(int dir_fd, const char *name, size_t max, char **data, size_t *length,
                  capsula_error *err)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return fail(err, errno, NULL, "cannot open %s", name);
	return read_small_fd(fd, name, max, data, length, err);
}

int read_small_fd(int fd, const char *path, size_t max, char **data, size_t *length,
                  capsula_error *err)
{
	struct stat st;
	char *buf;
	size_t done = 0;

	if (fstat(fd, &st) < 0) {
		int saved = errno;

		close(fd);
		return fail(err, saved, NULL, "%s", path);
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		close(fd);
		if (!S_ISREG(st.st_mode))
			return fail(err, EINVAL, NULL, "%s", path);
		return fail(err, 0, NULL, "%s is larger than %zu bytes", path, max);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return fail(err, errno, NULL, "%s", path);
	}
	while (done < (size_t)st.st_size) {
		ssize_t got = read(fd, buf + done, (size_t)st.st_size - done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int saved = errno;

			close(fd);
			free(buf);
			return fail(err, saved, NULL, "read %s", path);
		}
		if (got == 0)
			break;  /* it shrank meanwhile: what is there is all */
		done += (size_t)got;
	}
	close(fd);
	buf[done] = '\0';
	*data = buf;
	*length = done;
	return 0;
}
