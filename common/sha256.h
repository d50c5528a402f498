/* SHA-256 from the system's libcrypto, loaded when first needed rather than
 * linked: the launch path must not pay for loading it. */
#ifndef CAPSULA_SHA256_H
#define CAPSULA_SHA256_H

#include <stdbool.h>
#include <stddef.h>

#define SHA256_BYTES 32
#define SHA256_HEX_BYTES 65   /* 64 digits and a NUL */

struct sha256 {
	/* libcrypto's SHA256_CTX is 112 bytes; room to spare, aligned. */
	union { unsigned char bytes[256]; unsigned long long align; } ctx;
	int failed;
};

/* Start a digest; -1 with errno ELIBACC when libcrypto cannot be loaded. */
int sha256_begin(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* 0, or -1 if libcrypto failed at any step of this digest. */
int sha256_end(struct sha256 *h, unsigned char digest[SHA256_BYTES]);
void sha256_hex(const unsigned char digest[SHA256_BYTES], char hex[SHA256_HEX_BYTES]);
/* sha256_end written as hexadecimal digits, or (digest) as "sha256:HEX";
 * "" and -1 if libcrypto failed. */
int sha256_end_hex(struct sha256 *h, char hex[SHA256_HEX_BYTES]);
int sha256_end_digest(struct sha256 *h, char digest[72]);
/* "sha256:HEX" of data, or "" if libcrypto failed. */
void sha256_digest_of(const void *data, size_t len, char digest[72]);
/* Is text "sha256:" and 64 lower-case hexadecimal digits, as OCI writes it? */
bool sha256_digest_valid(const char *text);

#endif
