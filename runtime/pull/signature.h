/* Signatures in sigstore's simple-signing form, as cosign stores them: a
 * JSON payload naming an image's manifest digest, signed with an ECDSA
 * (SHA-256) or Ed25519 key, the signature kept base64 in an annotation of
 * the payload's layer in the manifest tagged sha256-HEX.sig. Keys are PEM
 * files (openssl's, or cosign's exported public keys), through libcrypto. */
#ifndef CAPSULA_SIGNATURE_H
#define CAPSULA_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define SIMPLE_SIGNING_TYPE "application/vnd.dev.cosign.simplesigning.v1+json"
#define SIGNATURE_ANNOTATION "dev.cosignproject.cosign/signature"
#define SIGNATURE_PAYLOAD_MAX (64u << 10)

struct signature_key {
	void *pkey;                 /* libcrypto's EVP_PKEY */
	char fingerprint[80];       /* SHA256:HEX of the public key (DER) */
	char path[512];
};

int signature_load_public_key(const char *path, struct signature_key *key, capsula_error *err);
int signature_load_private_key(const char *path, struct signature_key *key, capsula_error *err);
void signature_key_free(struct signature_key *key);

/* The payload for the image digest of repository (REGISTRY/REPO), made
 * by malloc. */
char *signature_payload(const char *repository, const char *digest);
/* 0 when payload is a simple-signing document for exactly digest; else -1
 * with why. */
int signature_payload_check(const char *payload, size_t length, const char *digest, char *why,
                            size_t why_size);

/* Sign payload: the signature in base64, made by malloc. */
int signature_sign(const struct signature_key *key, const char *payload, size_t length,
                   char **base64, capsula_error *err);
/* Does the base64 signature verify over payload with key? */
bool signature_verify(const struct signature_key *key, const char *payload, size_t length,
                      const char *base64);

/* The tag a signature of digest is kept under: sha256-HEX.sig. */
void signature_tag(const char *digest, char *out, size_t size);

#endif
