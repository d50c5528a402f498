#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/leftovers.h"

void leftovers_remove(int dir_fd, const char *prefix, const char *infix)
{
	int list_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t prefix_len = strlen(prefix);
	struct dirent *e;
	DIR *dir;

	if (list_fd < 0)
		return;
	dir = fdopendir(list_fd);
	if (dir == NULL) {
		close(list_fd);
		return;
	}
	while ((e = readdir(dir)) != NULL) {
		struct stat st;
		int fd;

		if (strncmp(e->d_name, prefix, prefix_len) != 0 ||
		    (infix != NULL && strstr(e->d_name + prefix_len, infix) == NULL))
			continue;
		fd = openat(dir_fd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == getuid() &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0)
			unlinkat(dir_fd, e->d_name, 0);
		close(fd);
	}
	closedir(dir);
}
