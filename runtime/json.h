/* A small JSON reader for image manifests and configs, and the writer the
 * --json outputs share. Input is untrusted: nesting and sizes are bounded. */
#ifndef CAPSULA_JSON_H
#define CAPSULA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	bool boolean;
	double number;
	char *string;          /* JSON_STRING, NUL-free UTF-8 */
	struct json *items;    /* JSON_ARRAY elements, JSON_OBJECT values */
	char **keys;           /* JSON_OBJECT keys, parallel to items */
	size_t count;
};

/* Parse one JSON text of length bytes. Returns 0, or -1 with a reason
 * ("line 3: expected ':'") in why. */
int json_parse(const char *text, size_t length, struct json *out, char *why, size_t why_size);
void json_free(struct json *value);

/* Member key of an object, NULL when absent or value is not an object. */
const struct json *json_get(const struct json *object, const char *key);
/* The string of a JSON_STRING value, else NULL. */
const char *json_string(const struct json *value);

/* Write s as a JSON string literal, quotes included. */
void json_write_string(FILE *out, const char *s);

#endif
