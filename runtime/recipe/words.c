#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/recipe/words.h"

#define MAX_EXPANSION (1u << 20)
#define MAX_DEPTH 16

int words_split(const char *text, char escape, struct strvec *out)
{
	const char *p = text;

	for (;;) {
		const char *start;
		char quote = 0;
		char *word;

		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return 0;
		start = p;
		while (*p != '\0' && (quote != 0 || !isspace((unsigned char)*p))) {
			if (*p == escape && quote != '\'' && p[1] != '\0') {
				p += 2;
				continue;
			}
			if (quote != 0)
				quote = *p == quote ? 0 : quote;
			else if (*p == '\'' || *p == '"')
				quote = *p;
			p++;
		}
		if (quote != 0)
			return -1;
		word = strndup(start, (size_t)(p - start));
		if (word == NULL || strvec_push_owned(out, word) < 0)
			return -1;
	}
}

long words_unquoted_index(const char *word, char c, char escape)
{
	char quote = 0;

	for (const char *p = word; *p != '\0'; p++) {
		if (*p == escape && quote != '\'' && p[1] != '\0') {
			p++;
			continue;
		}
		if (quote != 0)
			quote = *p == quote ? 0 : quote;
		else if (*p == '\'' || *p == '"')
			quote = *p;
		else if (*p == c)
			return p - word;
	}
	return -1;
}

bool words_is_name(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (s++; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

const char *words_lookup(const struct strvec *vars, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = vars->count; i > 0; i--) {
		const char *v = vars->items[i - 1];

		if (strncmp(v, name, n) == 0 && v[n] == '=')
			return v + n + 1;
	}
	return NULL;
}

struct expansion {
	char *buf;
	size_t used, size;
	char escape;
	const struct strvec *vars;
	const char *what;
	capsula_error *err;
	unsigned depth;
};

static int put(struct expansion *x, const char *s, size_t n)
{
	if (x->used + n + 1 > MAX_EXPANSION)
		return fail(x->err, 0, "shorten it", "%s expands to more than %u bytes", x->what,
		            MAX_EXPANSION);
	if (x->used + n + 1 > x->size) {
		size_t size = x->size ? x->size : 64;
		char *grown;

		while (size < x->used + n + 1)
			size *= 2;
		grown = realloc(x->buf, size);
		if (grown == NULL)
			return fail(x->err, ENOMEM, NULL, "%s", x->what);
		x->buf = grown;
		x->size = size;
	}
	memcpy(x->buf + x->used, s, n);
	x->used += n;
	x->buf[x->used] = '\0';
	return 0;
}

static int expand_into(struct expansion *x, const char *p, const char *end, bool in_braces);

/* $NAME or ${...} at p (just after the '$'); *next is what follows. */
static int expand_variable(struct expansion *x, const char *p, const char *end, const char **next)
{
	char name[256];
	size_t n = 0;
	const char *value;

	if (p < end && *p == '{') {
		const char *close, *word;
		int depth = 1;
		char op = 0;
		bool colon = false;

		p++;
		while (p < end && (isalnum((unsigned char)*p) || *p == '_') && n < sizeof name - 1)
			name[n++] = *p++;
		name[n] = '\0';
		if (n == 0 || !words_is_name(name))
			return fail(x->err, 0, "write ${NAME}", "%s: a bad ${...} substitution", x->what);
		if (p < end && *p == ':') {
			colon = true;
			p++;
		}
		if (p < end && (*p == '-' || *p == '+'))
			op = *p++;
		else if (colon || (p < end && *p != '}'))
			return fail(x->err, 0, "use ${NAME}, ${NAME:-WORD} or ${NAME:+WORD}",
			            "%s: an unsupported ${%s...} substitution", x->what, name);
		word = p;
		for (close = p; close < end && depth > 0; close++) {
			if (*close == x->escape && close + 1 < end) {
				close++;
				continue;
			}
			depth += *close == '{' ? 1 : *close == '}' ? -1 : 0;
		}
		if (depth != 0)
			return fail(x->err, 0, "close it with }", "%s: ${%s is not closed", x->what, name);
		close--;  /* at the '}' */
		value = words_lookup(x->vars, name);
		*next = close + 1;
		if (op == 0)
			return value ? put(x, value, strlen(value)) : 0;
		if ((op == '-') == (value == NULL || (colon && value[0] == '\0')))
			return expand_into(x, word, close, true);
		if (op == '-')
			return put(x, value, strlen(value));
		return 0;
	}
	while (p < end && (isalnum((unsigned char)*p) || *p == '_') && n < sizeof name - 1)
		name[n++] = *p++;
	name[n] = '\0';
	*next = p;
	if (n == 0 || isdigit((unsigned char)name[0]))
		return put(x, "$", 1) < 0 ? -1 : put(x, name, n);  /* a lone $, or $1: as written */
	value = words_lookup(x->vars, name);
	return value ? put(x, value, strlen(value)) : 0;
}

static int expand_into(struct expansion *x, const char *p, const char *end, bool in_braces)
{
	char quote = 0;

	if (++x->depth > MAX_DEPTH)
		return fail(x->err, 0, "simplify it", "%s: substitutions nested too deep", x->what);
	while (p < end) {
		if (*p == x->escape && p + 1 < end && quote != '\'') {
			/* In double quotes only $, " and the escape itself are escaped. */
			if (quote == '"' && p[1] != '$' && p[1] != '"' && p[1] != x->escape) {
				if (put(x, p, 2) < 0)
					return -1;
			} else if (put(x, p + 1, 1) < 0) {
				return -1;
			}
			p += 2;
			continue;
		}
		if (quote == 0 && !in_braces && (*p == '\'' || *p == '"')) {
			quote = *p++;
			continue;
		}
		if (quote != 0 && *p == quote) {
			quote = 0;
			p++;
			continue;
		}
		if (*p == '$' && quote != '\'') {
			if (expand_variable(x, p + 1, end, &p) < 0)
				return -1;
			continue;
		}
		if (put(x, p, 1) < 0)
			return -1;
		p++;
	}
	x->depth--;
	if (quote != 0)
		return fail(x->err, 0, "close the quote", "%s: a quote is not closed", x->what);
	return 0;
}

int words_expand(const char *word, char escape, const struct strvec *vars, char **out,
                 const char *what, capsula_error *err)
{
	struct expansion x = {.escape = escape, .vars = vars, .what = what, .err = err};

	if (put(&x, "", 0) < 0 || expand_into(&x, word, word + strlen(word), false) < 0) {
		free(x.buf);
		return -1;
	}
	*out = x.buf;
	return 0;
}
