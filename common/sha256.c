#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/sha256.h"

struct sha256_api {
	int (*init)(void *ctx);
	int (*update)(void *ctx, const void *data, size_t len);
	int (*final)(unsigned char *md, void *ctx);
};

static struct sha256_api api;

static int load_api(void)
{
	static const char *const names[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"};

	if (api.init != NULL)
		return 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		/* Kept loaded for the process's life: digests are taken often. */
		void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);

		if (lib == NULL)
			continue;
		void *init = dlsym(lib, "SHA256_Init");
		void *update = dlsym(lib, "SHA256_Update");
		void *final = dlsym(lib, "SHA256_Final");

		/* dlsym gives data pointers; copy them into function pointers. */
		if (init != NULL && update != NULL && final != NULL) {
			memcpy(&api.update, &update, sizeof update);
			memcpy(&api.final, &final, sizeof final);
			memcpy(&api.init, &init, sizeof init);
			return 0;
		}
		dlclose(lib);
	}
	errno = ELIBACC;
	return -1;
}

int sha256_begin(struct sha256 *h)
{
	memset(h, 0, sizeof *h);
	if (load_api() < 0)
		return -1;
	h->failed = !api.init(&h->ctx);
	return 0;
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
	if (len > 0 && !h->failed)
		h->failed = !api.update(&h->ctx, data, len);
}

int sha256_end(struct sha256 *h, unsigned char digest[SHA256_BYTES])
{
	if (!h->failed)
		h->failed = !api.final(digest, &h->ctx);
	return h->failed ? -1 : 0;
}

void sha256_hex(const unsigned char digest[SHA256_BYTES], char hex[SHA256_HEX_BYTES])
{
	for (unsigned i = 0; i < SHA256_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

bool sha256_digest_valid(const char *text)
{
	return text != NULL && strncmp(text, "sha256:", 7) == 0 && strlen(text) == 7 + 64 &&
	       strspn(text + 7, "0123456789abcdef") == 64;
}

int sha256_end_hex(struct sha256 *h, char hex[SHA256_HEX_BYTES])
{
	unsigned char raw[SHA256_BYTES];

	hex[0] = '\0';
	if (sha256_end(h, raw) < 0)
		return -1;
	sha256_hex(raw, hex);
	return 0;
}

int sha256_end_digest(struct sha256 *h, char digest[72])
{
	char hex[SHA256_HEX_BYTES];

	digest[0] = '\0';
	if (sha256_end_hex(h, hex) < 0)
		return -1;
	snprintf(digest, 72, "sha256:%s", hex);
	return 0;
}

void sha256_digest_of(const void *data, size_t len, char digest[72])
{
	struct sha256 h;

	digest[0] = '\0';
	if (sha256_begin(&h) < 0)
		return;
	sha256_update(&h, data, len);
	sha256_end_digest(&h, digest);
}
