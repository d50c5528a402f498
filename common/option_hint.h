/* An unknown option is named with the known one it most likely meant
 * (--writeable-tmpfs: did you mean --writable-tmpfs?), so a typo costs one
 * look at the error, not a trip through --help. */
#ifndef CAPSULA_OPTION_HINT_H
#define CAPSULA_OPTION_HINT_H

#include <getopt.h>
#include <stddef.h>

#include "common/error.h"

/* The long option of known (ended by a NULL name) nearest to given
 * ("--name" or "--name=value"), or NULL when none is near enough to be
 * a typo of it. */
const char *option_nearest(const struct option *known, const char *given);

/* Record "unknown option 'GIVEN'" with the nearest option, if any, before
 * usage_hint; returns -1. */
int fail_unknown_option(capsula_error *err, const struct option *known, const char *given,
                        const char *usage_hint);

#endif
