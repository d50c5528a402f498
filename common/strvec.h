/* A growable NULL-terminated vector of strings (argv/envp shaped). */
#ifndef CAPSULA_STRVEC_H
#define CAPSULA_STRVEC_H

#include <stddef.h>

struct strvec {
	char **items;  /* always NULL-terminated once anything was added */
	size_t count;
	size_t capacity;
};

/* Append a copy of s; returns -1 with errno ENOMEM on failure. */
int strvec_push(struct strvec *v, const char *s);
/* Append s itself, taking ownership. */
int strvec_push_owned(struct strvec *v, char *s);
void strvec_free(struct strvec *v);
/* Sort the strings in byte order. */
void strvec_sort(struct strvec *v);

#endif
