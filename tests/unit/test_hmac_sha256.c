/* capsula's own SHA-256 and HMAC-SHA256 (socket names) against the
 * published test vectors (FIPS 180-4 examples, RFC 4231). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common/hmac_sha256.h"
#include "tests/unit/tap.h"

static const char *hex(const unsigned char *bytes, size_t n)
{
	static char text[2 * 64 + 1];

	for (size_t i = 0; i < n; i++)
		snprintf(text + 2 * i, 3, "%02x", bytes[i]);
	return text;
}

static const char *sha256_of(const char *text, size_t repeat)
{
	unsigned char digest[HMAC_SHA256_BYTES];
	struct sha256_state s;

	sha256_init(&s);
	for (size_t i = 0; i < repeat; i++)
		sha256_add(&s, text, strlen(text));
	sha256_finish(&s, digest);
	return hex(digest, sizeof digest);
}

int main(void)
{
	unsigned char mac[HMAC_SHA256_BYTES], key[20];

	is_str(sha256_of("", 1), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	       "SHA-256 of nothing");
	is_str(sha256_of("abc", 1), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	       "SHA-256 of abc");
	is_str(sha256_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1),
	       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
	       "SHA-256 of 56 bytes: the padding takes a block of its own");
	is_str(sha256_of("a", 1000000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
	       "SHA-256 of a million a, added one byte at a time");
	hmac_sha256((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, mac);
	is_str(hex(mac, sizeof mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	       "HMAC-SHA256, RFC 4231 test case 2");
	memset(key, 0x0b, sizeof key);
	hmac_sha256(key, sizeof key, "Hi There", 8, mac);
	is_str(hex(mac, sizeof mac), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
	       "HMAC-SHA256, RFC 4231 test case 1");
	return tap_done();
}
