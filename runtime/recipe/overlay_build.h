/* capsula build --overlay DIR OUT IMAGE: the image with the changes a run
 * with --overlay DIR made (DIR/upper, written under --fakeroot or not)
 * applied as overlayfs applied them, into one new image. */
#ifndef CAPSULA_OVERLAY_BUILD_H
#define CAPSULA_OVERLAY_BUILD_H

#include "common/error.h"
#include "runtime/convert/build.h"

int overlay_build(const struct build_options *opts, capsula_error *err);

#endif
