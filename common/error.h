/* One error style for all of capsula: a failing step fills a capsula_error
 * with what failed, the errno text and a hint the user can act on, and
 * returns -1; only main() prints it, as one line prefixed "capsula:". */
#ifndef CAPSULA_ERROR_H
#define CAPSULA_ERROR_H

#include <stddef.h>

/* Exit statuses, documented in capsula(1). */
enum {
	EXIT_CAPSULA_FAILED = 125,  /* capsula itself failed */
	EXIT_CANNOT_EXECUTE = 126,  /* the command exists but cannot be run */
	EXIT_NOT_FOUND = 127,       /* the command was not found */
};

typedef struct capsula_error {
	int status;          /* exit status to use: 125 unless set otherwise */
	char message[1024];  /* "what: why; hint", without the prefix */
} capsula_error;

/* Record a failure with an exit status; errno is left as it was. */
void error_set(capsula_error *err, int status, int errnum, const char *hint,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Record a failure and return -1. errnum 0 means there is no errno text;
 * hint may be NULL. (Macros, so that callers and analyzers see the -1.) */
#define fail(err, errnum, hint, ...) \
	__extension__({ error_set((err), EXIT_CAPSULA_FAILED, (errnum), (hint), __VA_ARGS__); -1; })

/* The same, with an exit status other than 125. */
#define fail_status(err, status, errnum, hint, ...) \
	__extension__({ error_set((err), (status), (errnum), (hint), __VA_ARGS__); -1; })

/* Put "WHERE: " before the recorded message (the step or file it came
 * from), keeping its hint; returns -1. */
int error_prefix(capsula_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print the recorded failure on stderr as "capsula: MESSAGE". */
void error_print(const capsula_error *err);

#endif
