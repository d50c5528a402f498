#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

static int vfail(capsula_error *err, int status, int errnum, const char *hint,
                 const char *fmt, va_list ap)
{
	size_t len;

	err->status = status;
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	len = strlen(err->message);
	if (errnum != 0 && len < sizeof err->message)
		len += (size_t)snprintf(err->message + len, sizeof err->message - len,
		                        ": %s", strerror(errnum));
	if (hint != NULL && len < sizeof err->message)
		snprintf(err->message + len, sizeof err->message - len, "; %s", hint);
	return -1;
}

int fail(capsula_error *err, int errnum, const char *hint, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(err, EXIT_CAPSULA_FAILED, errnum, hint, fmt, ap);
	va_end(ap);
	return ret;
}

int fail_status(capsula_error *err, int status, int errnum, const char *hint,
                const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(err, status, errnum, hint, fmt, ap);
	va_end(ap);
	return ret;
}

void error_print(const capsula_error *err)
{
	fprintf(stderr, "capsula: %s\n", err->message);
}
