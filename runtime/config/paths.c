#include "config.h"

#include <string.h>

#include "runtime/config/paths.h"

bool path_is_under(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

bool path_is_system(const char *path)
{
	static const char *const trees[] = {
		"/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib",
		"/lib32", "/lib64", "/libx32", "/boot", "/run", NULL,
	};
	static const char *const exact[] = {
		"/", "/var", "/opt", "/srv", "/mnt", "/media", "/home", "/tmp", NULL,
	};

	for (size_t i = 0; exact[i] != NULL; i++)
		if (strcmp(path, exact[i]) == 0)
			return true;
	for (size_t i = 0; trees[i] != NULL; i++)
		if (path_is_under(path, trees[i]))
			return true;
	return false;
}
