#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "runtime/pull/signature.h"

#define COSIGN_TYPE "cosign container image signature"
#define HINT_KEY "give a PEM key: ECDSA P-256 or Ed25519 (openssl genpkey; cosign public keys)"

static void set_fingerprint(struct signature_key *key)
{
	unsigned char *der = NULL;
	char hex[SHA256_HEX_BYTES];
	int length = i2d_PUBKEY(key->pkey, &der);
	struct sha256 h;

	key->fingerprint[0] = '\0';
	if (length <= 0 || sha256_begin(&h) < 0) {
		OPENSSL_free(der);
		return;
	}
	sha256_update(&h, der, (size_t)length);
	OPENSSL_free(der);
	if (sha256_end_hex(&h, hex) == 0) {
		snprintf(key->fingerprint, sizeof key->fingerprint, "SHA256:%s", hex);
	}
}

/* Only the kinds cosign makes and verifies. */
static bool supported(EVP_PKEY *pkey)
{
	if (EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519)
		return true;
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_EC)
		return false;
	char group[64];
	size_t length;

	return EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof group, &length) == 1 &&
	       strcmp(group, "prime256v1") == 0;
}

static int load_key(const char *path, bool private_key, struct signature_key *key,
                    capsula_error *err)
{
	FILE *file;

	memset(key, 0, sizeof *key);
	snprintf(key->path, sizeof key->path, "%s", path);
	file = fopen(path, "re");
	if (file == NULL)
		return fail(err, errno, NULL, "key %s", path);
	/* A passphrase is never asked for: ranks have no terminal. */
	key->pkey = private_key ? PEM_read_PrivateKey(file, NULL, NULL, (void *)"") :
	            PEM_read_PUBKEY(file, NULL, NULL, NULL);
	fclose(file);
	if (key->pkey == NULL)
		return fail(err, 0, private_key ? HINT_KEY ", not encrypted" : HINT_KEY,
		            "key %s: no %s key in PEM form", path, private_key ? "private" : "public");
	if (!supported(key->pkey)) {
		signature_key_free(key);
		return fail(err, 0, HINT_KEY, "key %s: neither ECDSA P-256 nor Ed25519", path);
	}
	set_fingerprint(key);
	return 0;
}

int signature_load_public_key(const char *path, struct signature_key *key, capsula_error *err)
{
	return load_key(path, false, key, err);
}

int signature_load_private_key(const char *path, struct signature_key *key, capsula_error *err)
{
	return load_key(path, true, key, err);
}

void signature_key_free(struct signature_key *key)
{
	EVP_PKEY_free(key->pkey);
	key->pkey = NULL;
}

char *signature_payload(const char *repository, const char *digest)
{
	json_t *doc = json_pack("{s:{s:{s:s}, s:{s:s}, s:s}, s:n}", "critical", "identity",
	                        "docker-reference", repository, "image", "docker-manifest-digest",
	                        digest, "type", COSIGN_TYPE, "optional");
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(doc);
	return text;
}

int signature_payload_check(const char *payload, size_t length, const char *digest, char *why,
                            size_t why_size)
{
	json_error_t problem;
	json_t *doc = json_loadb(payload, length, JSON_REJECT_DUPLICATES, &problem);
	const json_t *critical = json_object_get(doc, "critical");
	const char *type = json_string_value(json_object_get(critical, "type"));
	const char *named = json_string_value(json_object_get(json_object_get(critical, "image"),
	                                                      "docker-manifest-digest"));
	int ret = -1;

	if (doc == NULL)
		snprintf(why, why_size, "the payload is no JSON (%s)", problem.text);
	else if (type == NULL || strcmp(type, COSIGN_TYPE) != 0)
		snprintf(why, why_size, "the payload is not a cosign image signature");
	else if (named == NULL || strcmp(named, digest) != 0)
		snprintf(why, why_size, "the payload signs %s, not %s", named ? named : "no digest",
		         digest);
	else
		ret = 0;
	json_decref(doc);
	return ret;
}

/* ECDSA signs a SHA-256 digest of the payload; Ed25519 the payload itself. */
static const EVP_MD *digest_for(EVP_PKEY *pkey)
{
	return EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
}

int signature_sign(const struct signature_key *key, const char *payload, size_t length,
                   char **base64, capsula_error *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *signature = NULL;
	size_t size = 0;
	int ret = -1;

	*base64 = NULL;
	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, digest_for(key->pkey), NULL, key->pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &size, (const unsigned char *)payload, length) != 1 ||
	    (signature = malloc(size)) == NULL ||
	    EVP_DigestSign(ctx, signature, &size, (const unsigned char *)payload, length) != 1) {
		fail(err, 0, HINT_KEY, "sign with %s: libcrypto refused", key->path);
		goto out;
	}
	*base64 = malloc(4 * ((size + 2) / 3) + 1);
	if (*base64 == NULL) {
		fail(err, ENOMEM, NULL, "signature");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)*base64, signature, (int)size);
	ret = 0;
out:
	free(signature);
	EVP_MD_CTX_free(ctx);
	return ret;
}

bool signature_verify(const struct signature_key *key, const char *payload, size_t length,
                      const char *base64)
{
	size_t text = strlen(base64), padding = 0;
	unsigned char *signature;
	EVP_MD_CTX *ctx;
	int decoded;
	bool good = false;

	if (text == 0 || text % 4 != 0 || text > 4096)
		return false;
	padding = (base64[text - 1] == '=') + (base64[text - 2] == '=');
	if ((signature = malloc(text / 4 * 3)) == NULL)
		return false;
	decoded = EVP_DecodeBlock(signature, (const unsigned char *)base64, (int)text);
	ctx = EVP_MD_CTX_new();
	if (decoded > (int)padding && ctx != NULL &&
	    EVP_DigestVerifyInit(ctx, NULL, digest_for(key->pkey), NULL, key->pkey) == 1)
		good = EVP_DigestVerify(ctx, signature, (size_t)decoded - padding,
		                        (const unsigned char *)payload, length) == 1;
	EVP_MD_CTX_free(ctx);
	free(signature);
	return good;
}

void signature_tag(const char *digest, char *out, size_t size)
{
	snprintf(out, size, "sha256-%s.sig", strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest);
}
