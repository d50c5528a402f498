#include "config.h"

#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/small_file.h"
#include "runtime/plan/fakeroot_plan.h"

#define SUBID_FILE_MAX (4u << 20)

static bool number_is(const char *text, size_t len, unsigned long id)
{
	char digits[24];

	snprintf(digits, sizeof digits, "%lu", id);
	return len == strlen(digits) && strncmp(text, digits, len) == 0;
}

/* "start:count" up to the end of the line. */
static bool parse_start_count(const char *text, unsigned long *start, unsigned long *count)
{
	char *end;

	if (*text < '0' || *text > '9')
		return false;
	*start = strtoul(text, &end, 10);
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	*count = strtoul(end + 1, &end, 10);
	if (*end != '\0' && *end != '\n')
		return false;
	/* uid 4294967295 is (uid_t)-1, which no map may reach. */
	return *start > 0 && *count > 0 && *start <= 0xfffffffeUL &&
	       *count <= 0xfffffffeUL - *start + 1;
}

int subid_range_parse(const char *text, const char *name, unsigned long id,
                      struct id_range *out)
{
	*out = (struct id_range){0};
	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t owner = strcspn(line, ":\n");
		unsigned long start, count;

		if (line[owner] == ':' && line[0] != '#' &&
		    ((name != NULL && owner == strlen(name) && strncmp(line, name, owner) == 0) ||
		     number_is(line, owner, id)) &&
		    parse_start_count(line + owner + 1, &start, &count)) {
			out->start = start;
			out->count = count;
			return 0;
		}
		line = end ? end + 1 : NULL;
	}
	return -1;
}

static void read_range(const char *path, const char *name, unsigned long id,
                       struct id_range *out)
{
	char *text = NULL;
	size_t length;
	capsula_error ignored;

	*out = (struct id_range){0};
	if (read_small_file(path, SUBID_FILE_MAX, &text, &length, &ignored) < 0)
		return;
	subid_range_parse(text, name, id, out);
	free(text);
}

static char *find_helper(const char *name)
{
	static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin", NULL};
	char path[64];

	for (size_t i = 0; dirs[i] != NULL; i++) {
		snprintf(path, sizeof path, "%s/%s", dirs[i], name);
		if (access(path, X_OK) == 0)
			return strdup(path);
	}
	return NULL;
}

void plan_fakeroot(const struct host_facts *facts, struct capsula_plan *plan)
{
	struct passwd *pw = getpwuid(facts->uid);
	const char *name = pw != NULL ? pw->pw_name : NULL;

	plan->fakeroot = true;
	read_range("/etc/subuid", name, facts->uid, &plan->subuids);
	read_range("/etc/subgid", name, facts->uid, &plan->subgids);
	if (plan->subuids.count == 0 || plan->subgids.count == 0)
		return;
	plan->newuidmap = find_helper("newuidmap");
	plan->newgidmap = find_helper("newgidmap");
	if (plan->newuidmap != NULL && plan->newgidmap != NULL)
		return;
	/* Without the helpers the ranges cannot be used: a single-id map. */
	free(plan->newuidmap);
	free(plan->newgidmap);
	plan->newuidmap = plan->newgidmap = NULL;
	plan->subuids = plan->subgids = (struct id_range){0};
	if (plan->verbosity >= 0)
		fprintf(stderr, "capsula: warning: --fakeroot: you have subordinate ids but this "
		        "host lacks newuidmap/newgidmap (package uidmap): only uid 0 is mapped\n");
}
