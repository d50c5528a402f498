#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common/option_hint.h"

#define MAX_NAME 64

/* Edits (insert, delete, replace, swap of neighbours) from a to b. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t rows[3][MAX_NAME + 1];
	size_t *before = rows[0], *prev = rows[1], *cur = rows[2];

	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t *spare = before;

		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = prev[j - 1] + cost;

			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    before[j - 2] + 1 < best)
				best = before[j - 2] + 1;
			cur[j] = best;
		}
		before = prev;
		prev = cur;
		cur = spare;
	}
	return prev[lb];
}

const char *option_nearest(const struct option *known, const char *given)
{
	const char *best = NULL;
	size_t best_distance, length;

	if (strncmp(given, "--", 2) != 0)
		return NULL;
	given += 2;
	length = strcspn(given, "=");
	if (length == 0 || length > MAX_NAME)
		return NULL;
	/* A typo is a few edits, and fewer than half the name. */
	best_distance = length < 6 ? 2 : 3;
	for (; known->name != NULL; known++) {
		size_t name_length = strlen(known->name), d;

		if (name_length > MAX_NAME)
			continue;
		d = edit_distance(given, length, known->name, name_length);
		if (d < best_distance && 2 * d < name_length) {
			best = known->name;
			best_distance = d;
		}
	}
	return best;
}

int fail_unknown_option(capsula_error *err, const struct option *known, const char *given,
                        const char *usage_hint)
{
	const char *nearest = option_nearest(known, given);
	char hint[256];

	if (nearest == NULL)
		return fail(err, 0, usage_hint, "unknown option '%s'", given);
	snprintf(hint, sizeof hint, "did you mean '--%s'? %s", nearest, usage_hint);
	return fail(err, 0, hint, "unknown option '%s'", given);
}
