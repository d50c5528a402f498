/* The site's image policy (prefixes matched by whole components) and
 * simple-signing signatures (payloads, signing and verifying). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/config/image_policy.h"
#include "runtime/pull/signature.h"
#include "tests/unit/tap.h"

static void test_prefixes(void)
{
	ok(image_policy_prefix_match("reg", "reg", "a/b") == 1, "a registry covers its repositories");
	ok(image_policy_prefix_match("reg/a", "reg", "a") == 2, "reg/a covers reg/a");
	ok(image_policy_prefix_match("reg/a", "reg", "a/x") == 2, "reg/a covers reg/a/x");
	ok(image_policy_prefix_match("reg/a", "reg", "ab") == -1, "reg/a does not cover reg/ab");
	ok(image_policy_prefix_match("reg/a", "reg", "ab/x") == -1, "nor reg/ab/x");
	ok(image_policy_prefix_match("reg/a/b", "reg", "a") == -1, "reg/a/b does not cover reg/a");
	ok(image_policy_prefix_match("reg/a/b", "reg", "a/bc") == -1, "nor reg/a/bc");
	ok(image_policy_prefix_match("reg/a/b", "reg", "a/b/c") == 3, "but covers reg/a/b/c");
	ok(image_policy_prefix_match("reg", "reg:5000", "a") == -1, "reg does not cover reg:5000");
	ok(image_policy_prefix_match("re", "reg", "a") == -1, "re does not cover reg");
	ok(image_policy_prefix_match("*", "reg", "a") == 0, "* covers everything, least of all");
}

static void test_rules(void)
{
	struct image_policy_rule rule;
	struct strvec lines = {0};
	char why[300];

	ok(image_policy_parse("reg/a signed-by /k1.pub /k2.pub", &rule, why, sizeof why) == 0 &&
	   rule.kind == POLICY_SIGNED_BY && rule.keys.count == 2, "signed-by with two keys");
	image_policy_rule_free(&rule);
	ok(image_policy_parse("reg reject", &rule, why, sizeof why) == 0 && rule.kind == POLICY_REJECT,
	   "reject");
	ok(image_policy_parse("reg signed-by", &rule, why, sizeof why) < 0, "signed-by without keys is refused");
	ok(image_policy_parse("reg signed-by key.pub", &rule, why, sizeof why) < 0,
	   "a relative key path is refused");
	ok(image_policy_parse("reg/ reject", &rule, why, sizeof why) < 0, "an empty component is refused");
	ok(image_policy_parse("reg/a* reject", &rule, why, sizeof why) < 0, "a wildcard is refused");
	ok(image_policy_parse("reg/a:1 trust", &rule, why, sizeof why) < 0, "an unknown kind is refused");
	ok(image_policy_parse("reg reject now", &rule, why, sizeof why) < 0, "words after reject are refused");

	strvec_push(&lines, "* reject");
	strvec_push(&lines, "reg/a signed-by /a.pub");
	strvec_push(&lines, "reg/a/public accept");
	ok(image_policy_find(&lines, "reg", "a/app", &rule, why, sizeof why) == 1 &&
	   rule.kind == POLICY_SIGNED_BY, "reg/a/app takes reg/a's rule");
	image_policy_rule_free(&rule);
	ok(image_policy_find(&lines, "reg", "a/public/app", &rule, why, sizeof why) == 1 &&
	   rule.kind == POLICY_ACCEPT, "the longer prefix wins");
	image_policy_rule_free(&rule);
	ok(image_policy_find(&lines, "reg", "ab/app", &rule, why, sizeof why) == 1 &&
	   rule.kind == POLICY_REJECT, "reg/ab/app falls to *");
	image_policy_rule_free(&rule);
	strvec_free(&lines);
	ok(image_policy_find(&lines, "reg", "a", &rule, why, sizeof why) == 0, "no rule: none found");
}

static const char digest[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void test_payloads(void)
{
	char *payload = signature_payload("reg/app", digest), why[300];
	char other[] = "sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

	ok(payload != NULL && signature_payload_check(payload, strlen(payload), digest, why,
	                                               sizeof why) == 0, "a payload names its digest");
	ok(payload != NULL && signature_payload_check(payload, strlen(payload), other, why,
	                                               sizeof why) < 0, "and no other");
	ok(signature_payload_check("{\"critical\":{}}", 15, digest, why, sizeof why) < 0,
	   "a payload without the cosign type is refused");
	ok(signature_payload_check("[", 1, digest, why, sizeof why) < 0, "so is one that is no JSON");
	free(payload);
}

/* Keys made by openssl, as a user makes them. */
static int make_key(const char *dir, const char *name, const char *algorithm)
{
	char command[1024];

	snprintf(command, sizeof command,
	         "openssl genpkey %s -out %s/%s.key 2>/dev/null && "
	         "openssl pkey -in %s/%s.key -pubout -out %s/%s.pub 2>/dev/null",
	         algorithm, dir, name, dir, name, dir, name);
	return system(command);
}

static void test_signatures(void)
{
	char dir[] = "/tmp/capsula-trust.XXXXXX", path[256], *sig = NULL;
	const char *kinds[][2] = {{"ec", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"},
	                          {"ed", "-algorithm ED25519"}, {"rsa", "-algorithm RSA"}};
	struct signature_key priv, pub, other;
	const char *payload = "{\"critical\":{}}";
	capsula_error err;

	if (mkdtemp(dir) == NULL || make_key(dir, "ec", kinds[0][1]) != 0 ||
	    make_key(dir, "ed", kinds[1][1]) != 0 || make_key(dir, "rsa", kinds[2][1]) != 0) {
		ok(0, "openssl makes the test keys");
		return;
	}
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof path, "%s/%s.key", dir, kinds[k][0]);
		ok(signature_load_private_key(path, &priv, &err) == 0, "%s private key loads", kinds[k][0]);
		snprintf(path, sizeof path, "%s/%s.pub", dir, kinds[k][0]);
		ok(signature_load_public_key(path, &pub, &err) == 0, "%s public key loads", kinds[k][0]);
		ok(strcmp(priv.fingerprint, pub.fingerprint) == 0 && strncmp(pub.fingerprint, "SHA256:", 7) == 0,
		   "both have one fingerprint");
		ok(signature_sign(&priv, payload, strlen(payload), &sig, &err) == 0, "%s signs", kinds[k][0]);
		ok(sig != NULL && signature_verify(&pub, payload, strlen(payload), sig),
		   "and the signature verifies");
		ok(sig != NULL && !signature_verify(&pub, "{\"critical\":[]}", 15, sig),
		   "over that payload only");
		snprintf(path, sizeof path, "%s/%s.pub", dir, kinds[1 - k][0]);
		ok(signature_load_public_key(path, &other, &err) == 0 &&
		   !signature_verify(&other, payload, strlen(payload), sig), "and with that key only");
		ok(!signature_verify(&pub, payload, strlen(payload), "AAAA") &&
		   !signature_verify(&pub, payload, strlen(payload), "") &&
		   !signature_verify(&pub, payload, strlen(payload), "not base64!"),
		   "garbage never verifies");
		signature_key_free(&other);
		signature_key_free(&pub);
		signature_key_free(&priv);
		free(sig);
		sig = NULL;
	}
	snprintf(path, sizeof path, "%s/rsa.pub", dir);
	ok(signature_load_public_key(path, &pub, &err) < 0 && strstr(err.message, "neither") != NULL,
	   "an RSA key is refused: cosign's kinds only");
	snprintf(path, sizeof path, "%s/ec.key", dir);
	ok(signature_load_public_key(path, &pub, &err) < 0, "a private key is no public key");
	snprintf(path, sizeof path, "rm -rf %s", dir);
	if (system(path) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
}

int main(void)
{
	test_prefixes();
	test_rules();
	test_payloads();
	test_signatures();
	return tap_done();
}
