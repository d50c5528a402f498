/* Small text helpers shared by the line-oriented parsers. */
#ifndef CAPSULA_TEXT_H
#define CAPSULA_TEXT_H

/* s without leading and trailing white space (trailing removed in place). */
char *trim_space(char *s);

#endif
