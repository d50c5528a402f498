/* Small text helpers shared by the line-oriented parsers. */
#ifndef CAPSULA_TEXT_H
#define CAPSULA_TEXT_H

/* s without leading and trailing white space (trailing removed in place). */
char *trim_space(char *s);

/* "4096", "64K", "512M", "2G", "1T" (powers of 1024) into bytes; -1 when
 * it is not such a number or overflows. */
int parse_byte_size(const char *text, unsigned long long *out);

#endif
