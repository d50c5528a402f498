/* The site's image policy: capsula.conf lines
 *   image policy = PREFIX signed-by KEY.pub [KEY.pub...]
 *   image policy = PREFIX reject
 *   image policy = PREFIX accept
 * where PREFIX is a registry (ghcr.io), a registry and the first components
 * of repositories in it (ghcr.io/org), or * for every image. An image takes
 * the rule of the longest PREFIX that matches it by whole components: the
 * registry exactly, then each component of the repository, so that
 * reg/a never covers reg/ab. No rule: accepted. */
#ifndef CAPSULA_IMAGE_POLICY_H
#define CAPSULA_IMAGE_POLICY_H

#include <stddef.h>

#include "common/strvec.h"

enum image_policy_kind { POLICY_ACCEPT, POLICY_REJECT, POLICY_SIGNED_BY };

struct image_policy_rule {
	char prefix[512];          /* as written, for messages */
	enum image_policy_kind kind;
	struct strvec keys;        /* signed-by: absolute paths of public keys */
};

/* One line's value; -1 with why. */
int image_policy_parse(const char *value, struct image_policy_rule *rule, char *why,
                       size_t why_size);
void image_policy_rule_free(struct image_policy_rule *rule);

/* Components of PREFIX that match REGISTRY/REPOSITORY: -1 when it does not
 * match, 0 for *, else 1 for the registry and one per repository part. */
int image_policy_prefix_match(const char *prefix, const char *registry, const char *repository);

/* The rule of lines (values already checked) for an image: 1 with rule
 * filled, 0 when none matches, -1 with why. */
int image_policy_find(const struct strvec *lines, const char *registry, const char *repository,
                      struct image_policy_rule *rule, char *why, size_t why_size);

#endif
