#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/text.h"

static void vfail(capsula_error *err, int status, int errnum, const char *hint,
                  const char *fmt, va_list ap)
{
	char tail[512] = "";
	size_t room, len;

	err->status = status;
	if (errnum != 0)
		snprintf(tail, sizeof tail, ": %s", strerror(errnum));
	if (hint != NULL)
		snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "; %s", hint);
	/* Whatever the message says (a path may be very long), the cause and
	 * the hint at its end must survive: cut the middle instead. */
	room = sizeof err->message - strlen(tail);
	vsnprintf(err->message, room, fmt, ap);
	len = strlen(err->message);
	if (len == room - 1)
		memcpy(err->message + len - 3, "...", 3);
	memcpy(err->message + len, tail, strlen(tail) + 1);
}

void error_set(capsula_error *err, int status, int errnum, const char *hint,
               const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vfail(err, status, errnum, hint, fmt, ap);
	va_end(ap);
	errno = saved;  /* callers may still look at it */
}

int error_prefix(capsula_error *err, const char *fmt, ...)
{
	char where[256], message[sizeof err->message];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(where, sizeof where, fmt, ap);
	va_end(ap);
	memcpy(message, err->message, sizeof message);
	/* A message too long for both loses its end, never its beginning. */
	if (snprintf(err->message, sizeof err->message, "%s: %.*s", where,
	             (int)(sizeof err->message - sizeof where), message) < 0)
		err->message[0] = '\0';
	return -1;
}

void error_print(const capsula_error *err)
{
	char line[4 * sizeof err->message + 1];

	/* Empty: a child already said what failed. */
	if (err->message[0] == '\0')
		return;
	/* One line, whatever a registry, an archive or a file name put in it. */
	text_escape_controls(err->message, line, sizeof line);
	fprintf(stderr, "capsula: %s\n", line);
}
