#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/doctor/check_list.h"

void check_add(struct check_list *list, const char *name, enum check_status status,
               const char *fix, const char *fmt, ...)
{
	struct check *grown = realloc(list->items, (list->count + 1) * sizeof *grown);
	struct check *c;
	va_list ap;

	if (grown == NULL)
		return;
	list->items = grown;
	c = &list->items[list->count++];
	c->name = name;
	c->status = status;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof c->detail, fmt, ap);
	va_end(ap);
	snprintf(c->fix, sizeof c->fix, "%s", fix ? fix : "");
}
