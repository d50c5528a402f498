/* Small text helpers shared by the line-oriented parsers. */
#ifndef CAPSULA_TEXT_H
#define CAPSULA_TEXT_H

#include <stddef.h>

/* s without leading and trailing white space (trailing removed in place). */
char *trim_space(char *s);

/* "4096", "64K", "512M", "2G", "1T" (powers of 1024) into bytes; -1 when
 * it is not such a number or overflows. */
int parse_byte_size(const char *text, unsigned long long *out);

/* in, with every byte a terminal could act on written as \xHH: control
 * characters (C0, DEL and UTF-8's C1) and bytes that are not UTF-8, so that
 * text from a registry, an archive or a name prints as one inert line.
 * Cut to fit size (at least 1). */
void text_escape_controls(const char *in, char *out, size_t size);

#endif
