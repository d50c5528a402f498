/* What a run with --overlay DIR changed, made into images, and DIR made
 * empty again: inside the user's full map when there is one, since a
 * --fakeroot run gives files to the user's subordinate ids, which the user
 * can neither read nor remove. */
#ifndef CAPSULA_OVERLAY_BUILD_H
#define CAPSULA_OVERLAY_BUILD_H

#include "common/error.h"
#include "runtime/convert/build.h"

/* capsula build --overlay DIR OUT IMAGE: IMAGE with DIR/upper applied as
 * overlayfs applied it, into one new image. */
int overlay_build(const struct build_options *opts, capsula_error *err);

/* capsula overlay export|clean: see overlay_usage. */
int overlay_main(int argc, char **argv);

#endif
