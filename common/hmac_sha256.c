#include "config.h"

#include <string.h>

#include "common/hmac_sha256.h"

/* The first 32 bits of the fractional parts of the cube roots of the first
 * 64 primes (FIPS 180-4, 4.2.2). */
static const uint32_t round_constants[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

static uint32_t rotate_right(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static void compress(struct sha256_state *s, const unsigned char block[64])
{
	uint32_t w[64], v[8];

	for (unsigned i = 0; i < 16; i++)
		w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
		       (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
	for (unsigned i = 16; i < 64; i++) {
		uint32_t s0 = rotate_right(w[i - 15], 7) ^ rotate_right(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = rotate_right(w[i - 2], 17) ^ rotate_right(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, s->h, sizeof v);
	for (unsigned i = 0; i < 64; i++) {
		uint32_t sum1 = rotate_right(v[4], 6) ^ rotate_right(v[4], 11) ^ rotate_right(v[4], 25);
		uint32_t choose = (v[4] & v[5]) ^ (~v[4] & v[6]);
		uint32_t t1 = v[7] + sum1 + choose + round_constants[i] + w[i];
		uint32_t sum0 = rotate_right(v[0], 2) ^ rotate_right(v[0], 13) ^ rotate_right(v[0], 22);
		uint32_t majority = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);

		memmove(v + 1, v, 7 * sizeof v[0]);
		v[4] += t1;
		v[0] = t1 + sum0 + majority;
	}
	for (unsigned i = 0; i < 8; i++)
		s->h[i] += v[i];
}

void sha256_init(struct sha256_state *s)
{
	/* The first 32 bits of the fractional parts of the square roots of the
	 * first 8 primes (FIPS 180-4, 5.3.3). */
	static const uint32_t initial[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->h, initial, sizeof s->h);
	s->length = 0;
	s->used = 0;
}

void sha256_add(struct sha256_state *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	s->length += len;
	while (len > 0) {
		size_t take = sizeof s->block - s->used < len ? sizeof s->block - s->used : len;

		memcpy(s->block + s->used, p, take);
		s->used += take;
		p += take;
		len -= take;
		if (s->used == sizeof s->block) {
			compress(s, s->block);
			s->used = 0;
		}
	}
}

void sha256_finish(struct sha256_state *s, unsigned char digest[HMAC_SHA256_BYTES])
{
	uint64_t bits = s->length * 8;
	unsigned char tail[8];

	/* A 1 bit, zeros up to 56 bytes into a block, the length in bits. */
	sha256_add(s, "\x80", 1);
	while (s->used != 56)
		sha256_add(s, "", 1);
	for (unsigned i = 0; i < 8; i++)
		tail[i] = (unsigned char)(bits >> (56 - 8 * i));
	sha256_add(s, tail, sizeof tail);
	for (unsigned i = 0; i < 8; i++) {
		digest[4 * i] = (unsigned char)(s->h[i] >> 24);
		digest[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
		digest[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
		digest[4 * i + 3] = (unsigned char)s->h[i];
	}
}

/* SHA-256 of (the key, zero-padded to a block, each byte XOR fill) then
 * data: one half of the HMAC construction. */
static void hash_keyed(const unsigned char *key, size_t key_len, unsigned char fill,
                       const void *data, size_t len, unsigned char out[HMAC_SHA256_BYTES])
{
	unsigned char pad[64];
	struct sha256_state s;

	memset(pad, fill, sizeof pad);
	for (size_t i = 0; i < key_len && i < sizeof pad; i++)
		pad[i] ^= key[i];
	sha256_init(&s);
	sha256_add(&s, pad, sizeof pad);
	sha256_add(&s, data, len);
	sha256_finish(&s, out);
}

void hmac_sha256(const unsigned char *key, size_t key_len, const void *message, size_t len,
                 unsigned char mac[HMAC_SHA256_BYTES])
{
	unsigned char inner[HMAC_SHA256_BYTES];

	hash_keyed(key, key_len, 0x36, message, len, inner);
	hash_keyed(key, key_len, 0x5c, inner, sizeof inner, mac);
}
