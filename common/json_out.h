/* Writing JSON for --json outputs and records, through jansson. */
#ifndef CAPSULA_JSON_OUT_H
#define CAPSULA_JSON_OUT_H

#include <jansson.h>
#include <stdio.h>

/* A JSON string of s: host strings (paths, messages) may hold bytes that
 * are not UTF-8; each such byte becomes U+FFFD. "" for NULL. */
json_t *json_text(const char *s);
/* A JSON array of strings, each as json_text makes it. */
json_t *json_text_list(char *const *items, size_t count);
/* Write value and a newline, then drop the reference. -1 with errno when
 * value is NULL (a failed allocation while building it) or writing fails. */
int json_print(json_t *value, FILE *out);

#endif
