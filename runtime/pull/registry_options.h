/* How pull, push and sign reach a registry: --tls-ca FILE (default
 * $CAPSULA_TLS_CA), --insecure and --retries N (default 5), parsed alike. */
#ifndef CAPSULA_REGISTRY_OPTIONS_H
#define CAPSULA_REGISTRY_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>

#include "common/error.h"

enum { REGISTRY_OPT_TLS_CA = 0x1000, REGISTRY_OPT_INSECURE, REGISTRY_OPT_RETRIES };

#define REGISTRY_LONG_OPTIONS \
	{"tls-ca", required_argument, NULL, REGISTRY_OPT_TLS_CA}, \
	{"insecure", no_argument, NULL, REGISTRY_OPT_INSECURE}, \
	{"retries", required_argument, NULL, REGISTRY_OPT_RETRIES}

#define REGISTRY_DEFAULT_RETRIES 5

struct registry_access {
	const char *tls_ca;       /* trusted besides the system's CAs, or NULL */
	bool insecure;            /* plain HTTP */
	unsigned retries;
};

void registry_access_default(struct registry_access *access);
/* 1 when option is one of these (applied), 0 when not, -1 for a bad value. */
int registry_access_option(int option, const char *value, struct registry_access *access,
                           const char *usage_hint, capsula_error *err);

#endif
