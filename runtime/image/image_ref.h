/* Image references as Docker writes them: [REGISTRY/]REPOSITORY[:TAG][@DIGEST],
 * optionally after "docker://". "ubuntu" is docker.io/library/ubuntu:latest,
 * served by registry-1.docker.io. Shared by the launch path (to find a
 * pulled image in the cache) and by capsula-convert (to pull it). */
#ifndef CAPSULA_IMAGE_REF_H
#define CAPSULA_IMAGE_REF_H

#include <stdbool.h>

#include "common/error.h"

#define DOCKER_PREFIX "docker://"

struct image_ref {
	char registry[256];     /* as named: docker.io, ghcr.io, host:5000 */
	char host[256];         /* where its API is: registry-1.docker.io */
	char repository[256];   /* library/ubuntu */
	char tag[129];          /* "" when only a digest was given */
	char digest[72];        /* "sha256:HEX" or "" */
};

/* A platform as an index names it: os/architecture[/variant]. */
struct platform {
	char os[32];
	char architecture[32];
	char variant[32];
};

bool is_docker_ref(const char *text);
int image_ref_parse(const char *text, struct image_ref *ref, capsula_error *err);
/* docker.io/library/ubuntu:24.04 (with @DIGEST when there is one). */
void image_ref_format(const struct image_ref *ref, char *out, size_t size);
/* What to ask the registry for: the digest if given, else the tag. */
const char *image_ref_reference(const struct image_ref *ref);

/* "linux/arm64/v8"; NULL or "" means this machine's. */
int platform_parse(const char *text, struct platform *p, capsula_error *err);
void platform_format(const struct platform *p, char *out, size_t size);

#endif
