#include "config.h"

#include <ctype.h>
#include <errno.h>
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
