/* What signatures an image must carry to be pulled: the user's
 * --verify-key and the site's image policy (runtime/config/image_policy.h),
 * both enforced; the signatures the registry keeps for the image checked
 * against them; and a record beside the cached image of who signed it, so
 * that the ranks of a job check a record rather than the registry. */
#ifndef CAPSULA_PULL_VERIFY_H
#define CAPSULA_PULL_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "runtime/config/site_config.h"
#include "runtime/image/image_cache.h"
#include "runtime/pull/registry.h"
#include "runtime/pull/signature.h"

/* One requirement: a signature by one of keys. */
struct key_set {
	struct signature_key *keys;
	size_t count;
	const char *who;          /* "--verify-key", "the site's policy for PREFIX" */
};

struct pull_trust {
	struct key_set user, site;
	char site_rule[600];
	bool site_rejects;
	struct signers_record checked;   /* after a check: its digest and the keys that verified */
};

/* The requirements for ref: the user's keys (paths) and the site's rule. */
int pull_trust_load(struct pull_trust *t, const struct capsula_config *config,
                    const struct image_ref *ref, const char *const *user_keys, size_t count,
                    capsula_error *err);
void pull_trust_free(struct pull_trust *t);
bool pull_trust_required(const struct pull_trust *t);

/* Check the registry's signatures of digest (what the reference resolved
 * to) against every requirement; name is the image for messages. */
int pull_trust_verify(struct pull_trust *t, struct registry_connection *c, const char *name,
                      const char *digest, capsula_error *err);

/* The record of the check, beside the cached image of image_digest. */
int pull_trust_record(const struct pull_trust *t, const struct image_cache *cache,
                      const char *image_digest, capsula_error *err);
/* Does the cached image's record meet every requirement? */
bool pull_trust_recorded(const struct pull_trust *t, const struct image_cache *cache,
                         const char *image_digest);

#endif
