/* HMAC-SHA256 (RFC 2104, FIPS 180-4) of a short message, computed here: the
 * launch needs one per join (a socket name), and loading libcrypto for it
 * would cost each launch most of a millisecond, as would the kernel's AF_ALG
 * where it exists (and it is often left out). Not for bulk data: image and
 * registry digests use libcrypto (common/sha256.h). */
#ifndef CAPSULA_HMAC_SHA256_H
#define CAPSULA_HMAC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define HMAC_SHA256_BYTES 32

struct sha256_state {
	uint32_t h[8];
	uint64_t length;          /* bytes hashed so far */
	unsigned char block[64];
	size_t used;              /* bytes waiting in block */
};

void sha256_init(struct sha256_state *s);
void sha256_add(struct sha256_state *s, const void *data, size_t len);
void sha256_finish(struct sha256_state *s, unsigned char digest[HMAC_SHA256_BYTES]);

/* key of at most 64 bytes. */
void hmac_sha256(const unsigned char *key, size_t key_len, const void *message, size_t len,
                 unsigned char mac[HMAC_SHA256_BYTES]);

#endif
