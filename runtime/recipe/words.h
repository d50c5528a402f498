/* The Dockerfile's shell-like words: split raw (quotes kept), then, at the
 * step that uses them, quotes removed and variables expanded in one pass,
 * as Docker's own word processing does: $NAME, ${NAME}, ${NAME:-WORD},
 * ${NAME-WORD}, ${NAME:+WORD}, ${NAME+WORD}; nothing in single quotes; the
 * escape character makes the next character plain. */
#ifndef CAPSULA_WORDS_H
#define CAPSULA_WORDS_H

#include <stdbool.h>

#include "common/error.h"
#include "common/strvec.h"

/* Split text at white space outside quotes; -1 for an unclosed quote. */
int words_split(const char *text, char escape, struct strvec *out);

/* Where c first occurs outside quotes and escapes, or -1. */
long words_unquoted_index(const char *word, char c, char escape);

/* [A-Za-z_][A-Za-z0-9_]* */
bool words_is_name(const char *s);

/* The value of name in vars ("NAME=VALUE" entries, the last one wins), or
 * NULL. */
const char *words_lookup(const struct strvec *vars, const char *name);

/* One word with its quotes removed and variables of vars expanded (a
 * fresh string in *out). what names it in messages. */
int words_expand(const char *word, char escape, const struct strvec *vars, char **out,
                 const char *what, capsula_error *err);

#endif
