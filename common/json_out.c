#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_out.h"

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_sequence(const unsigned char *s)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

json_t *json_text(const char *s)
{
	const unsigned char *in = (const unsigned char *)(s ? s : "");
	json_t *value = json_string((const char *)in);
	char *clean;
	size_t at = 0;

	if (value != NULL)
		return value;
	clean = malloc(strlen((const char *)in) * 3 + 1);
	if (clean == NULL)
		return NULL;
	while (*in != '\0') {
		size_t len = utf8_sequence(in);

		if (len == 0) {
			memcpy(clean + at, "\xef\xbf\xbd", 3);
			at += 3;
			in++;
		} else {
			memcpy(clean + at, in, len);
			at += len;
			in += len;
		}
	}
	clean[at] = '\0';
	value = json_string(clean);
	free(clean);
	return value;
}

json_t *json_text_list(char *const *items, size_t count)
{
	json_t *list = json_array();

	for (size_t i = 0; list != NULL && i < count; i++)
		if (json_array_append_new(list, json_text(items[i])) < 0) {
			json_decref(list);
			list = NULL;
		}
	return list;
}

int json_print(json_t *value, FILE *out)
{
	int ret;

	if (value == NULL) {
		errno = ENOMEM;
		return -1;
	}
	ret = json_dumpf(value, out, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(value);
	if (ret < 0 || putc('\n', out) == EOF)
		return -1;
	return 0;
}
