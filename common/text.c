#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

char *trim_space(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int parse_byte_size(const char *text, unsigned long long *out)
{
	static const char suffixes[] = "KMGT";
	unsigned long long value;
	const char *unit;
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		unit = strchr(suffixes, toupper((unsigned char)*end));
		if (unit == NULL || end[1] != '\0')
			return -1;
		for (const char *u = suffixes; u <= unit; u++) {
			if (value > (~0ULL >> 10))
				return -1;
			value <<= 10;
		}
	}
	*out = value;
	return 0;
}

/* Length of the UTF-8 sequence at p if it is valid and no control, else 0. */
static size_t printable_sequence(const unsigned char *p)
{
	size_t n;
	unsigned cp;

	if (p[0] >= 0x20 && p[0] < 0x7f)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* C1 controls, overlong forms, surrogates and beyond U+10FFFF. */
	if (cp < 0xa0 || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

void text_escape_controls(const char *in, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t at = 0;

	while (*p != '\0') {
		size_t n = printable_sequence(p);

		if (n > 0) {
			if (at + n >= size)
				break;
			memcpy(out + at, p, n);
			at += n;
			p += n;
		} else {
			if (at + 4 >= size)
				break;
			snprintf(out + at, size - at, "\\x%02x", *p);
			at += 4;
			p++;
		}
	}
	out[at] = '\0';
}
