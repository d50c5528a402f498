/* capsula pull: an image from an OCI registry into the user's cache,
 * blobs fetched once and verified as they stream, converted once into
 * squashfs straight from them. Concurrent pulls of one image (the ranks of
 * a job, nodes on a shared cache) wait for the one that does the work. */
#ifndef CAPSULA_PULL_H
#define CAPSULA_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "runtime/convert/build.h"
#include "runtime/pull/registry_options.h"

#define PULL_VERIFY_KEYS_MAX 16

struct pull_options {
	struct build_options build;  /* compression, force, quiet; output: OUT.sqfs or NULL */
	const char *ref;
	const char *platform;        /* NULL: this machine's */
	struct registry_access access;
	bool if_missing;             /* a tag already pulled is used as it is (exec docker://) */
	unsigned parallel;           /* blobs fetched at once */
	uint64_t max_rate;           /* bytes/s for the whole pull; 0: no limit */
	const char *verify_keys[PULL_VERIFY_KEYS_MAX];  /* a signature by one of these */
	size_t verify_key_count;
};

extern const char pull_usage[];

void pull_options_default(struct pull_options *opts);
int pull_options_parse(int argc, char **argv, struct pull_options *opts, capsula_error *err);
/* Pull; image receives the cached image's path. */
int pull_image(const struct pull_options *opts, char *image, size_t size, capsula_error *err);

#endif
