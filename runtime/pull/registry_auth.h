/* Who the user is to a registry: credentials from the files and variables
 * the container tools share, and the registry's WWW-Authenticate
 * challenge that says how to present them. */
#ifndef CAPSULA_REGISTRY_AUTH_H
#define CAPSULA_REGISTRY_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "runtime/image/image_ref.h"

#define CREDENTIAL_SOURCES "CAPSULA_DOCKER_USERNAME/PASSWORD, $REGISTRY_AUTH_FILE, " \
	"$XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json (capsula login)"

struct credentials {
	bool found;
	char user[256];
	char password[1024];
	char source[512];        /* where they came from, for messages */
};

/* The first of CREDENTIAL_SOURCES with an entry for ref's registry (and
 * repository, for entries that name one); none found is not an error. */
int credentials_find(const struct image_ref *ref, struct credentials *c, capsula_error *err);
/* The entry for registry in an auth file's text (auth.json or config.json). */
int credentials_from_text(const char *text, const char *file, const struct image_ref *ref,
                          struct credentials *c, capsula_error *err);
void credentials_clear(struct credentials *c);

/* The key `capsula login` writes for a registry, as docker does. */
const char *credentials_key(const char *registry);
/* Add or replace registry's entry in the auth file (created 0600). */
int credentials_store(const char *registry, const char *user, const char *password,
                      char *file, size_t size, capsula_error *err);

struct challenge {
	bool bearer;             /* else Basic */
	char realm[1024];
	char service[256];
	char scope[512];
};

/* A WWW-Authenticate header's value; -1 for a scheme neither Bearer nor Basic. */
int challenge_parse(const char *header, struct challenge *c);

#endif
