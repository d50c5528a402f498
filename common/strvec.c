#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/strvec.h"

int strvec_push_owned(struct strvec *v, char *s)
{
	if (s == NULL)
		return -1;
	if (v->count + 2 > v->capacity) {
		size_t capacity = v->capacity ? v->capacity * 2 : 8;
		char **items = realloc(v->items, capacity * sizeof *items);

		if (items == NULL)
			return -1;
		v->items = items;
		v->capacity = capacity;
	}
	v->items[v->count++] = s;
	v->items[v->count] = NULL;
	return 0;
}

int strvec_push(struct strvec *v, const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL)
		return -1;
	if (strvec_push_owned(v, copy) < 0) {
		free(copy);
		return -1;
	}
	return 0;
}

void strvec_free(struct strvec *v)
{
	for (size_t i = 0; i < v->count; i++)
		free(v->items[i]);
	free(v->items);
	v->items = NULL;
	v->count = v->capacity = 0;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strvec_sort(struct strvec *v)
{
	if (v->count > 1)
		qsort(v->items, v->count, sizeof v->items[0], compare_strings);
}
