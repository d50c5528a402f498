/* capsula-convert, the program that builds and pulls images: found beside
 * capsula (a build tree, a staged copy), else where it was installed. */
#ifndef CAPSULA_CONVERTER_H
#define CAPSULA_CONVERTER_H

#include "common/error.h"

/* Become capsula-convert COMMAND ARG... (argv[0] is the command). Returns
 * only on failure. */
int converter_exec(int argc, char **argv, capsula_error *err);
/* Run capsula-convert with args (args[0] is the command) and wait: its
 * exit status, or -1 if it could not be run. */
int converter_run(const char *const *args, capsula_error *err);

#endif
