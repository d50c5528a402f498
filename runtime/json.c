#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/json.h"

#define MAX_DEPTH 64

struct parser {
	const char *text;
	size_t length;
	size_t at;
	char *why;
	size_t why_size;
};

static int parse_value(struct parser *p, struct json *out, int depth);

static unsigned line_of(const struct parser *p)
{
	unsigned line = 1;

	for (size_t i = 0; i < p->at && i < p->length; i++)
		line += p->text[i] == '\n';
	return line;
}

static int syntax_error(struct parser *p, const char *what)
{
	snprintf(p->why, p->why_size, "line %u: %s", line_of(p), what);
	return -1;
}

static void skip_space(struct parser *p)
{
	while (p->at < p->length && strchr(" \t\r\n", p->text[p->at]) != NULL &&
	       p->text[p->at] != '\0')
		p->at++;
}

static bool take(struct parser *p, char c)
{
	skip_space(p);
	if (p->at < p->length && p->text[p->at] == c) {
		p->at++;
		return true;
	}
	return false;
}

static bool take_word(struct parser *p, const char *word)
{
	size_t n = strlen(word);

	if (p->length - p->at >= n && memcmp(p->text + p->at, word, n) == 0) {
		p->at += n;
		return true;
	}
	return false;
}

static int hex4(struct parser *p, unsigned *out)
{
	*out = 0;
	if (p->length - p->at < 4)
		return syntax_error(p, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = p->text[p->at++];
		unsigned digit;

		if (c >= '0' && c <= '9')
			digit = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			digit = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			digit = (unsigned)(c - 'A' + 10);
		else
			return syntax_error(p, "bad \\u escape");
		*out = *out << 4 | digit;
	}
	return 0;
}

static size_t put_utf8(char *to, unsigned cp)
{
	if (cp < 0x80) {
		to[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		to[0] = (char)(0xc0 | cp >> 6);
		to[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		to[0] = (char)(0xe0 | cp >> 12);
		to[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		to[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	to[0] = (char)(0xf0 | cp >> 18);
	to[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	to[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	to[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int parse_escape(struct parser *p, char *to, size_t *written)
{
	static const char plain[] = "\"\\/bfnrt";
	static const char meant[] = "\"\\/\b\f\n\r\t";
	unsigned cp, low;
	const char *found;

	if (p->at >= p->length)
		return syntax_error(p, "unterminated string");
	found = strchr(plain, p->text[p->at]);
	if (found != NULL && *found != '\0') {
		p->at++;
		*to = meant[found - plain];
		*written = 1;
		return 0;
	}
	if (p->text[p->at++] != 'u')
		return syntax_error(p, "bad escape in string");
	if (hex4(p, &cp) < 0)
		return -1;
	if (cp >= 0xd800 && cp < 0xdc00) {
		if (!take_word(p, "\\u") || hex4(p, &low) < 0 || low < 0xdc00 || low >= 0xe000)
			return syntax_error(p, "unpaired surrogate in string");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
	} else if (cp >= 0xdc00 && cp < 0xe000) {
		return syntax_error(p, "unpaired surrogate in string");
	}
	if (cp == 0)
		return syntax_error(p, "NUL in string");
	*written = put_utf8(to, cp);
	return 0;
}

/* At the opening quote. Escapes never expand, so the raw length bounds the
 * decoded one (a \u escape of 6 bytes gives at most 4). */
static int parse_string(struct parser *p, char **out)
{
	size_t start = ++p->at;
	size_t end = start;
	size_t length = 0;
	char *s;

	while (end < p->length && p->text[end] != '"')
		end += p->text[end] == '\\' ? 2 : 1;
	if (end >= p->length)
		return syntax_error(p, "unterminated string");
	s = malloc(end - start + 1);
	if (s == NULL)
		return syntax_error(p, strerror(ENOMEM));
	while (p->at < end) {
		unsigned char c = (unsigned char)p->text[p->at];
		size_t written;

		if (c < 0x20) {
			free(s);
			return syntax_error(p, "control character in string");
		}
		if (c != '\\') {
			s[length++] = (char)c;
			p->at++;
			continue;
		}
		p->at++;
		if (parse_escape(p, s + length, &written) < 0) {
			free(s);
			return -1;
		}
		length += written;
	}
	p->at = end + 1;
	s[length] = '\0';
	*out = s;
	return 0;
}

static int parse_number(struct parser *p, struct json *out)
{
	char buf[64];
	size_t n = 0;
	char *end;

	while (p->at + n < p->length && n < sizeof buf - 1 &&
	       strchr("+-0123456789.eE", p->text[p->at + n]) != NULL && p->text[p->at + n] != '\0')
		n++;
	memcpy(buf, p->text + p->at, n);
	buf[n] = '\0';
	if (n == 0)
		return syntax_error(p, "expected a value");
	out->number = strtod(buf, &end);
	if (*end != '\0')
		return syntax_error(p, "bad number");
	out->type = JSON_NUMBER;
	p->at += n;
	return 0;
}

static int grow(struct json *out, bool with_keys)
{
	/* The capacity is not stored: it is 4, then doubles, so it is full
	 * exactly when count is 0 or a power of two from 4 on. */
	size_t count = out->count;
	size_t capacity = count ? count * 2 : 4;
	struct json *items;

	if (count != 0 && (count < 4 || (count & (count - 1)) != 0))
		return 0;
	items = realloc(out->items, capacity * sizeof *items);
	if (items == NULL)
		return -1;
	out->items = items;
	if (with_keys) {
		char **keys = realloc(out->keys, capacity * sizeof *keys);

		if (keys == NULL)
			return -1;
		out->keys = keys;
	}
	return 0;
}

static int parse_container(struct parser *p, struct json *out, int depth, bool object)
{
	char close = object ? '}' : ']';

	out->type = object ? JSON_OBJECT : JSON_ARRAY;
	p->at++;
	if (take(p, close))
		return 0;
	for (;;) {
		char *key = NULL;

		if (object) {
			skip_space(p);
			if (p->at >= p->length || p->text[p->at] != '"')
				return syntax_error(p, "expected a string key");
			if (parse_string(p, &key) < 0)
				return -1;
			if (!take(p, ':')) {
				free(key);
				return syntax_error(p, "expected ':'");
			}
		}
		if (grow(out, object) < 0) {
			free(key);
			return syntax_error(p, strerror(ENOMEM));
		}
		memset(&out->items[out->count], 0, sizeof out->items[0]);
		if (object)
			out->keys[out->count] = key;
		out->count++;
		if (parse_value(p, &out->items[out->count - 1], depth + 1) < 0)
			return -1;
		if (take(p, close))
			return 0;
		if (!take(p, ','))
			return syntax_error(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int parse_value(struct parser *p, struct json *out, int depth)
{
	if (depth > MAX_DEPTH)
		return syntax_error(p, "nested too deeply");
	skip_space(p);
	if (p->at >= p->length)
		return syntax_error(p, "unexpected end");
	switch (p->text[p->at]) {
	case '{':
		return parse_container(p, out, depth, true);
	case '[':
		return parse_container(p, out, depth, false);
	case '"':
		out->type = JSON_STRING;
		return parse_string(p, &out->string);
	case 't':
	case 'f':
		out->type = JSON_BOOL;
		out->boolean = p->text[p->at] == 't';
		if (!take_word(p, out->boolean ? "true" : "false"))
			return syntax_error(p, "expected a value");
		return 0;
	case 'n':
		out->type = JSON_NULL;
		if (!take_word(p, "null"))
			return syntax_error(p, "expected a value");
		return 0;
	default:
		return parse_number(p, out);
	}
}

int json_parse(const char *text, size_t length, struct json *out, char *why, size_t why_size)
{
	struct parser p = {.text = text, .length = length, .why = why, .why_size = why_size};

	memset(out, 0, sizeof *out);
	if (parse_value(&p, out, 0) < 0) {
		json_free(out);
		return -1;
	}
	skip_space(&p);
	if (p.at != p.length) {
		json_free(out);
		return syntax_error(&p, "text after the value");
	}
	return 0;
}

void json_free(struct json *value)
{
	for (size_t i = 0; i < value->count; i++) {
		json_free(&value->items[i]);
		if (value->keys != NULL)
			free(value->keys[i]);
	}
	free(value->items);
	free(value->keys);
	free(value->string);
	memset(value, 0, sizeof *value);
}

const struct json *json_get(const struct json *object, const char *key)
{
	if (object == NULL || object->type != JSON_OBJECT)
		return NULL;
	/* The last duplicate wins, as most readers do. */
	for (size_t i = object->count; i-- > 0;)
		if (strcmp(object->keys[i], key) == 0)
			return &object->items[i];
	return NULL;
}

const char *json_string(const struct json *value)
{
	return value != NULL && value->type == JSON_STRING ? value->string : NULL;
}

/* Length of the valid UTF-8 sequence at s, 0 when it is not one. */
static size_t utf8_length(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] < 0xe0)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] < 0xf0)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] < 0xf5)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

void json_write_string(FILE *out, const char *s)
{
	const unsigned char *c = (const unsigned char *)s;

	putc('"', out);
	while (*c != '\0') {
		size_t n = utf8_length(c);

		if (n == 0) {
			/* Bytes that are not UTF-8 (a file name, say) would make
			 * the whole document unreadable. */
			fputs("\\ufffd", out);
			c++;
			continue;
		}
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c == '\n')
			fputs("\\n", out);
		else if (*c == '\t')
			fputs("\\t", out);
		else if (*c < 0x20 || *c == 0x7f)
			fprintf(out, "\\u%04x", *c);
		else
			fwrite(c, 1, n, out);
		c += n;
	}
	putc('"', out);
}
