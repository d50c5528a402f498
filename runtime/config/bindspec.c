#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/bindspec.h"

#define BIND_HINT "write -B SRC[:DST[:ro|rw]], e.g. -B /scratch:/data:ro"

int bind_list_add(struct bind_list *list, const char *source,
                  const char *destination, unsigned flags)
{
	struct capsula_bind *items;
	struct capsula_bind *bind;

	items = realloc(list->items, (list->count + 1) * sizeof *items);
	if (items == NULL)
		return -1;
	list->items = items;
	bind = &items[list->count];
	bind->source = strdup(source);
	bind->destination = strdup(destination);
	bind->flags = flags;
	if (bind->source == NULL || bind->destination == NULL) {
		free(bind->source);
		free(bind->destination);
		return -1;
	}
	list->count++;
	return 0;
}

void bind_list_free(struct bind_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].source);
		free(list->items[i].destination);
	}
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static int parse_one(char *item, struct bind_list *out, capsula_error *err)
{
	char *fields[4] = {NULL};
	size_t nfields = 0;
	unsigned flags = 0;
	const char *destination;

	for (char *p = item, *colon; nfields < 4; p = colon + 1) {
		fields[nfields++] = p;
		colon = strchr(p, ':');
		if (colon == NULL)
			break;
		*colon = '\0';
	}
	if (nfields > 3)
		return fail(err, 0, BIND_HINT, "bind '%s': too many ':' fields", item);
	if (fields[0][0] == '\0')
		return fail(err, 0, BIND_HINT, "bind '%s': empty source", item);
	destination = fields[0];
	if (nfields >= 2) {
		if (fields[1][0] == '\0')
			return fail(err, 0, BIND_HINT, "bind '%s': empty destination", fields[0]);
		destination = fields[1];
	}
	if (nfields == 3) {
		if (strcmp(fields[2], "ro") == 0)
			flags |= BIND_READONLY;
		else if (strcmp(fields[2], "rw") != 0)
			return fail(err, 0, BIND_HINT, "bind '%s': unknown option '%s'",
			            fields[0], fields[2]);
	}
	if (destination[0] != '/')
		return fail(err, 0, BIND_HINT,
		            "bind '%s': destination '%s' is not an absolute path",
		            fields[0], destination);
	if (bind_list_add(out, fields[0], destination, flags) < 0)
		return fail(err, errno, NULL, "bind '%s'", fields[0]);
	return 0;
}

int bindspec_parse(const char *spec, struct bind_list *out, capsula_error *err)
{
	char *copy = strdup(spec);
	char *item;
	char *save = NULL;
	int ret = 0;

	if (copy == NULL)
		return fail(err, errno, NULL, "bind '%s'", spec);
	if (spec[0] == '\0') {
		free(copy);
		return fail(err, 0, BIND_HINT, "empty bind specification");
	}
	/* Empty items between commas are errors, not silently dropped: a stray
	 * comma is almost always a typo in a path. */
	for (size_t i = 0; spec[i] != '\0'; i++) {
		if (spec[i] == ',' && (i == 0 || spec[i + 1] == '\0' || spec[i + 1] == ',')) {
			free(copy);
			return fail(err, 0, BIND_HINT, "bind '%s': empty item in comma list", spec);
		}
	}
	for (item = strtok_r(copy, ",", &save); item != NULL && ret == 0;
	     item = strtok_r(NULL, ",", &save))
		ret = parse_one(item, out, err);
	free(copy);
	return ret;
}
