#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/config/image_policy.h"
#include "runtime/pull/pull_verify.h"

#define MAX_SIGNATURES 100
#define HINT_SIGN "pull an image signed by such a key (capsula sign --key KEY docker://REF signs one)"

static int load_keys(struct key_set *set, const char *const *paths, size_t count, bool site,
                     capsula_error *err)
{
	set->keys = calloc(count ? count : 1, sizeof *set->keys);
	if (set->keys == NULL)
		return fail(err, ENOMEM, NULL, "keys");
	for (size_t i = 0; i < count; i++) {
		struct stat st;

		/* A key that others could replace would let them choose what runs. */
		if (site && (stat(paths[i], &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) != 0))
			return fail(err, errno, "the administrator must make it root's and closed to others' "
			            "writes", "site key %s (image policy in %s) is missing or not root's alone",
			            paths[i], CAPSULA_CONFIG_FILE);
		if (signature_load_public_key(paths[i], &set->keys[i], err) < 0)
			return -1;
		set->count++;
	}
	return 0;
}

int pull_trust_load(struct pull_trust *t, const struct capsula_config *config,
                    const struct image_ref *ref, const char *const *user_keys, size_t count,
                    capsula_error *err)
{
	struct image_policy_rule rule;
	char why[300];
	int found;

	memset(t, 0, sizeof *t);
	t->user.who = "--verify-key";
	t->site.who = t->site_rule;
	if (load_keys(&t->user, user_keys, count, false, err) < 0)
		return -1;
	found = image_policy_find(&config->image_policies, ref->registry, ref->repository, &rule, why,
	                          sizeof why);
	if (found < 0)
		return fail(err, 0, "tell the site's administrators", "%s: image policy: %s",
		            config->path, why);
	if (found == 0)
		return 0;
	snprintf(t->site_rule, sizeof t->site_rule, "the site's policy for %s", rule.prefix);
	t->site_rejects = rule.kind == POLICY_REJECT;
	int ret = rule.kind == POLICY_SIGNED_BY ?
	          load_keys(&t->site, (const char *const *)rule.keys.items, rule.keys.count, true, err) : 0;

	image_policy_rule_free(&rule);
	return ret;
}

static void free_keys(struct key_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		signature_key_free(&set->keys[i]);
	free(set->keys);
	set->keys = NULL;
	set->count = 0;
}

void pull_trust_free(struct pull_trust *t)
{
	free_keys(&t->user);
	free_keys(&t->site);
}

bool pull_trust_required(const struct pull_trust *t)
{
	return t->user.count > 0 || t->site.count > 0;
}

static bool has_signer(const char *signers, const char *fingerprint)
{
	size_t length = strlen(fingerprint);

	for (const char *at = strstr(signers, fingerprint); at != NULL;
	     at = strstr(at + 1, fingerprint))
		if ((at == signers || at[-1] == ' ') && (at[length] == ' ' || at[length] == '\0' ||
		                                          at[length] == '\n'))
			return true;
	return false;
}

static bool set_met(const struct key_set *set, const char *signers)
{
	if (set->count == 0)
		return true;
	for (size_t i = 0; i < set->count; i++)
		if (has_signer(signers, set->keys[i].fingerprint))
			return true;
	return false;
}

static void add_signer(struct pull_trust *t, const struct signature_key *key)
{
	size_t used = strlen(t->checked.signers);

	if (!has_signer(t->checked.signers, key->fingerprint))
		snprintf(t->checked.signers + used, sizeof t->checked.signers - used, "%s%s", used ? " " : "",
		         key->fingerprint);
}

static void check_keys(struct pull_trust *t, const struct key_set *set, const char *payload,
                       size_t length, const char *signature)
{
	for (size_t i = 0; i < set->count; i++)
		if (signature_verify(&set->keys[i], payload, length, signature))
			add_signer(t, &set->keys[i]);
}

/* One layer of the signature manifest: its payload fetched and checked. */
static int check_layer(struct pull_trust *t, struct registry_connection *c, const json_t *layer,
                       const char *digest, char *why, size_t why_size, capsula_error *err)
{
	const char *type = json_string_value(json_object_get(layer, "mediaType"));
	const char *blob = json_string_value(json_object_get(layer, "digest"));
	const char *signature = json_string_value(json_object_get(json_object_get(layer,
	                                          "annotations"), SIGNATURE_ANNOTATION));
	char *payload;
	size_t length;

	if (type == NULL || strcmp(type, SIMPLE_SIGNING_TYPE) != 0 || blob == NULL ||
	    signature == NULL) {
		snprintf(why, why_size, "a layer is no simple-signing signature");
		return 0;
	}
	if (registry_get_small_blob(c, blob, SIGNATURE_PAYLOAD_MAX, &payload, &length, err) < 0)
		return -1;
	if (signature_payload_check(payload, length, digest, why, why_size) == 0) {
		check_keys(t, &t->user, payload, length, signature);
		check_keys(t, &t->site, payload, length, signature);
		snprintf(why, why_size, "no signature verifies with the key");
	}
	free(payload);
	return 0;
}

static void key_list(const struct key_set *set, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < set->count && used < size; i++)
		used += (size_t)snprintf(out + used, size - used, "%s%s (%.23s...)", i ? ", " : "",
		                         set->keys[i].path, set->keys[i].fingerprint);
}

static int unmet(const struct key_set *set, const char *name, size_t signatures, const char *why,
                 capsula_error *err)
{
	char keys[1024];

	key_list(set, keys, sizeof keys);
	if (signatures == 0)
		return fail(err, 0, HINT_SIGN, "%s is not signed, and %s wants a signature by %s", name,
		            set->who, keys);
	return fail(err, 0, HINT_SIGN, "%s: none of its %zu signature%s is by %s, as %s wants (%s)",
	            name, signatures, signatures == 1 ? "" : "s", keys, set->who, why);
}

int pull_trust_verify(struct pull_trust *t, struct registry_connection *c, const char *name,
                      const char *digest, capsula_error *err)
{
	char tag[96], type[128], found[72], why[300] = "";
	char *body = NULL;
	size_t length, i, count = 0;
	json_t *doc = NULL;
	const json_t *layer, *layers;
	int ret = -1, absent;

	snprintf(t->checked.signed_digest, sizeof t->checked.signed_digest, "%s", digest);
	t->checked.signers[0] = '\0';
	signature_tag(digest, tag, sizeof tag);
	absent = registry_find_manifest(c, tag, &body, &length, type, sizeof type, found, err);
	if (absent < 0)
		return -1;
	if (absent == 0) {
		json_error_t problem;

		doc = json_loadb(body, length, JSON_REJECT_DUPLICATES, &problem);
		layers = json_object_get(doc, "layers");
		count = json_array_size(layers);
		if (count > MAX_SIGNATURES) {
			fail(err, 0, "tell the registry's operator", "%s: %zu signatures, more than %u",
			     name, count, MAX_SIGNATURES);
			goto out;
		}
		json_array_foreach(layers, i, layer) {
			if (check_layer(t, c, layer, digest, why, sizeof why, err) < 0)
				goto out;
		}
	}
	if (!set_met(&t->user, t->checked.signers))
		unmet(&t->user, name, count, why, err);
	else if (!set_met(&t->site, t->checked.signers))
		unmet(&t->site, name, count, why, err);
	else
		ret = 0;
out:
	json_decref(doc);
	free(body);
	return ret;
}

int pull_trust_record(const struct pull_trust *t, const struct image_cache *cache,
                      const char *image_digest, capsula_error *err)
{
	if (t->checked.signers[0] == '\0')
		return 0;
	return cache_signers_write(cache->fd, image_digest, &t->checked, err);
}

bool pull_trust_recorded(const struct pull_trust *t, const struct image_cache *cache,
                         const char *image_digest)
{
	struct signers_record r;

	return cache_signers_read(cache->fd, image_digest, &r) && set_met(&t->user, r.signers) &&
	       set_met(&t->site, r.signers);
}
