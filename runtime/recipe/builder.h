/* capsula build from a recipe: each stage's steps run in order, in
 * capsula's own containers (step_container.h), each step's change kept as
 * a squashfs layer in the cache under a key of what made it (the layer
 * below, the instruction with its variables expanded, the build arguments
 * in scope, and for COPY and ADD the names, modes and contents of what
 * they copy), so an unchanged step is found, not run; then one image made
 * from the base and the layers, with the recipe's run configuration. */
#ifndef CAPSULA_BUILDER_H
#define CAPSULA_BUILDER_H

#include <stdbool.h>

#include "common/error.h"
#include "runtime/convert/build.h"

/* Is the build's source a recipe (a Dockerfile, Containerfile, *.def, or
 * anything named by -f)? */
bool recipe_wanted(const struct build_options *opts);

int recipe_build(const struct build_options *opts, capsula_error *err);

#endif
