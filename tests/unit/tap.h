/* Just enough TAP for C unit tests: each check prints "ok N" or "not ok N"
 * and main() returns tap_done(), which prints the plan. */
#ifndef CAPSULA_TAP_H
#define CAPSULA_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static __attribute__((format(printf, 4, 5), unused))
int tap_ok(int passed, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	printf("%sok %d - ", passed ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!passed) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	return passed;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
static __attribute__((unused)) int tap_same(const char *got, const char *want)
{
	return got != NULL && strcmp(got, want) == 0;
}

static __attribute__((unused)) int tap_show(const char *got, const char *want)
{
	printf("#   got '%s', want '%s'\n", got ? got : "(null)", want);
	return 0;
}

#define is_str(got, want, ...) \
	((void)(ok(tap_same((got), (want)), __VA_ARGS__) || tap_show((got), (want))))

static __attribute__((unused)) int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
