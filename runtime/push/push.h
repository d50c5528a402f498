/* capsula push: an image (squashfs or SIF) published to an OCI registry
 * as one layer and an image config made from what /.capsula/config.json
 * says, so that every OCI tool can pull and run it. */
#ifndef CAPSULA_PUSH_H
#define CAPSULA_PUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "runtime/pull/registry_options.h"
#include "runtime/push/layer_tar.h"

struct push_options {
	const char *image;
	const char *ref;
	struct registry_access access;
	bool quiet;
	bool help;
	bool no_upload;             /* only the digest the push would give */
	uint64_t chunk_size;        /* 0: each blob in one request */
	struct layer_tar_options layer;
};

extern const char push_usage[];

int push_options_parse(int argc, char **argv, struct push_options *opts, capsula_error *err);
/* Push; digest receives the manifest's. */
int push_image(const struct push_options *opts, char digest[72], capsula_error *err);

#endif
