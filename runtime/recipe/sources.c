#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/small_file.h"
#include "runtime/recipe/sources.h"

#define HINT_CONTEXT "a COPY source is a path inside the build context"
#define MAX_IGNORE_BYTES (1u << 20)
#define MAX_DEPTH 256

/* ---------------------------------------------------------------- paths */

/* path cleaned: no leading '/' or "./", no "." or empty parts; -1 for a
 * ".." that would leave the directory. */
static int clean_relative(const char *path, char *out, size_t size)
{
	size_t at = 0;

	out[0] = '\0';
	while (*path != '\0') {
		const char *end = strchrnul(path, '/');
		size_t len = (size_t)(end - path);

		if (len == 2 && path[0] == '.' && path[1] == '.') {
			char *slash;

			if (at == 0)
				return -1;
			slash = strrchr(out, '/');
			at = slash ? (size_t)(slash - out) : 0;
			out[at] = '\0';
		} else if (len > 0 && !(len == 1 && path[0] == '.')) {
			if (at + len + 2 > size)
				return -1;
			if (at > 0)
				out[at++] = '/';
			memcpy(out + at, path, len);
			at += len;
			out[at] = '\0';
		}
		path = *end ? end + 1 : end;
	}
	return 0;
}

/* An open O_PATH descriptor of path below dir_fd: symbolic links inside
 * followed but never out of it, the last one not followed. */
static int open_beneath(int dir_fd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, dir_fd, path[0] ? path : ".", &how, sizeof how);
}

/* ---------------------------------------------------------------- .dockerignore */

int ignore_rules_read(int context_fd, struct ignore_rules *rules, capsula_error *err)
{
	int fd = open_beneath(context_fd, ".dockerignore", O_RDONLY | O_NONBLOCK);
	char *text, *line, *next;
	size_t length, count = 0;

	memset(rules, 0, sizeof *rules);
	if (fd < 0)
		return errno == ENOENT ? 0 : fail(err, errno, NULL, ".dockerignore");
	if (read_small_fd(fd, ".dockerignore", MAX_IGNORE_BYTES, &text, &length, err) < 0)
		return -1;
	for (line = text; line != NULL; line = next) {
		char cleaned[PATH_MAX];
		bool negated;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		for (size_t n = strlen(line); n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' ||
		                                         line[n - 1] == '\r'); n--)
			line[n - 1] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		negated = line[0] == '!';
		if (clean_relative(line + negated, cleaned, sizeof cleaned) < 0 || cleaned[0] == '\0')
			continue;
		{
			bool *grown = realloc(rules->negated, (count + 1) * sizeof *grown);

			if (grown == NULL || strvec_push(&rules->patterns, cleaned) < 0) {
				free(grown ? grown : rules->negated);
				rules->negated = NULL;
				free(text);
				return fail(err, ENOMEM, NULL, ".dockerignore");
			}
			rules->negated = grown;
			rules->negated[count++] = negated;
		}
	}
	free(text);
	return 0;
}

void ignore_rules_free(struct ignore_rules *rules)
{
	strvec_free(&rules->patterns);
	free(rules->negated);
	memset(rules, 0, sizeof *rules);
}

/* pattern against path, part by part: '**' stands for any number of parts;
 * a pattern that matches a directory matches what is below it too. */
static bool match_parts(const char *pattern, const char *path)
{
	const char *pe = strchrnul(pattern, '/'), *se = strchrnul(path, '/');
	char part[NAME_MAX + 1], name[NAME_MAX + 1];

	if (*pattern == '\0')
		return true;  /* the pattern matched a parent of path */
	if (pe - pattern == 2 && pattern[0] == '*' && pattern[1] == '*') {
		const char *rest = *pe ? pe + 1 : pe;

		for (const char *p = path;; p = strchrnul(p, '/') + 1) {
			if (match_parts(rest, p))
				return true;
			if (*strchrnul(p, '/') == '\0')
				return *rest == '\0';
		}
	}
	if (*path == '\0' || (size_t)(pe - pattern) > NAME_MAX || (size_t)(se - path) > NAME_MAX)
		return false;
	snprintf(part, sizeof part, "%.*s", (int)(pe - pattern), pattern);
	snprintf(name, sizeof name, "%.*s", (int)(se - path), path);
	if (fnmatch(part, name, 0) != 0)
		return false;
	return match_parts(*pe ? pe + 1 : pe, *se ? se + 1 : se);
}

bool ignore_rules_match(const struct ignore_rules *rules, const char *path)
{
	bool ignored = false;

	for (size_t i = 0; i < rules->patterns.count; i++)
		if (match_parts(rules->patterns.items[i], path))
			ignored = !rules->negated[i];
	return ignored;
}

/* ---------------------------------------------------------------- wildcards */

static bool has_wildcard(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Expand the parts of pattern from part on, below prefix (relative). */
static int expand_parts(int dir_fd, const char *prefix, const char *rest,
                        const struct ignore_rules *rules, struct strvec *out, capsula_error *err)
{
	const char *end = strchrnul(rest, '/');
	char part[NAME_MAX + 1], path[PATH_MAX];
	struct dirent *e;
	DIR *dir;
	int fd;

	if (*rest == '\0')
		return strvec_push(out, prefix) < 0 ? fail(err, ENOMEM, NULL, "COPY") : 0;
	if ((size_t)(end - rest) > NAME_MAX)
		return fail(err, ENAMETOOLONG, NULL, "COPY %s", rest);
	snprintf(part, sizeof part, "%.*s", (int)(end - rest), rest);
	if (!has_wildcard(part)) {
		snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "/" : "", part);
		fd = open_beneath(dir_fd, path, O_PATH);
		if (fd < 0)
			return 0;
		close(fd);
		return expand_parts(dir_fd, path, *end ? end + 1 : end, rules, out, err);
	}
	fd = open_beneath(dir_fd, prefix, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    fnmatch(part, e->d_name, 0) != 0)
			continue;
		snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "/" : "", e->d_name);
		if (ignore_rules_match(rules, path))
			continue;
		if (expand_parts(dir_fd, path, *end ? end + 1 : end, rules, out, err) < 0) {
			closedir(dir);
			return -1;
		}
	}
	closedir(dir);
	return 0;
}

int sources_expand(int dir_fd, const char *source, const struct ignore_rules *rules,
                   struct strvec *paths, capsula_error *err)
{
	char cleaned[PATH_MAX];
	size_t before = paths->count;

	if (clean_relative(source, cleaned, sizeof cleaned) < 0)
		return fail(err, 0, HINT_CONTEXT, "COPY %s: outside the build context", source);
	if (expand_parts(dir_fd, "", cleaned, rules, paths, err) < 0)
		return -1;
	if (paths->count == before)
		return fail(err, ENOENT, HINT_CONTEXT, "COPY %s: not in the build context", source);
	if (paths->count - before > 1) {
		/* Sorted, as a shell's glob would give them. */
		struct strvec sorted = {0};

		for (size_t i = before; i < paths->count; i++)
			if (strvec_push(&sorted, paths->items[i]) < 0) {
				strvec_free(&sorted);
				return fail(err, ENOMEM, NULL, "COPY");
			}
		strvec_sort(&sorted);
		for (size_t i = 0; i < sorted.count; i++) {
			free(paths->items[before + i]);
			paths->items[before + i] = sorted.items[i];
		}
		free(sorted.items);
	}
	return 0;
}

/* ---------------------------------------------------------------- walking */

struct walk {
	int dir_fd;
	const struct ignore_rules *rules;
	source_visit visit;
	void *arg;
	capsula_error *err;
	size_t base_len;    /* of the top path: dest_rel starts after it */
};

static int walk_entry(struct walk *w, int parent_fd, const char *name, const char *path,
                      unsigned depth)
{
	struct source_file f = {.path = path, .parent_fd = parent_fd, .name = name};
	int ret;

	f.dest_rel = path[w->base_len] == '/' ? path + w->base_len + 1 : path + w->base_len;
	if (fstatat(parent_fd, name, &f.st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(w->err, errno, NULL, "COPY %s", path);
	ret = w->visit(&f, false, w->arg, w->err);
	if (ret != 0 || !S_ISDIR(f.st.st_mode))
		return ret < 0 ? -1 : 0;
	if (depth > MAX_DEPTH)
		return fail(w->err, ELOOP, NULL, "COPY %s: directories nested too deep", path);
	{
		int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct strvec names = {0};
		struct dirent *e;
		DIR *dir;

		if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
			if (fd >= 0)
				close(fd);
			return fail(w->err, errno, "make it readable, or leave it out with .dockerignore",
			            "COPY %s", path);
		}
		while ((e = readdir(dir)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
			    strvec_push(&names, e->d_name) < 0)
				ret = fail(w->err, ENOMEM, NULL, "COPY %s", path);
		/* In name order: the same tree hashes and copies the same way. */
		strvec_sort(&names);
		for (size_t i = 0; ret == 0 && i < names.count; i++) {
			char child[PATH_MAX];

			if ((size_t)snprintf(child, sizeof child, "%s%s%s", path, path[0] ? "/" : "",
			                     names.items[i]) >= sizeof child)
				ret = fail(w->err, ENAMETOOLONG, NULL, "COPY %s", path);
			else if (!ignore_rules_match(w->rules, child))
				ret = walk_entry(w, dirfd(dir), names.items[i], child, depth + 1);
		}
		strvec_free(&names);
		if (ret == 0)
			ret = w->visit(&f, true, w->arg, w->err) < 0 ? -1 : 0;
		closedir(dir);
	}
	return ret;
}

int sources_walk(int dir_fd, const char *path, const struct ignore_rules *rules,
                 source_visit visit, void *arg, capsula_error *err)
{
	struct walk w = {.dir_fd = dir_fd, .rules = rules, .visit = visit, .arg = arg, .err = err,
	                 .base_len = strlen(path)};
	char parent[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	int parent_fd, ret;

	if (path[0] == '\0')
		return walk_entry(&w, dir_fd, ".", "", 0);
	snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - path) : 0, path);
	parent_fd = open_beneath(dir_fd, parent, O_RDONLY | O_DIRECTORY);
	if (parent_fd < 0)
		return fail(err, errno, errno == EXDEV || errno == ELOOP ? HINT_CONTEXT : NULL,
		            "COPY %s", path);
	ret = walk_entry(&w, parent_fd, name, path, 0);
	close(parent_fd);
	return ret;
}
