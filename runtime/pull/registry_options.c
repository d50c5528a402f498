#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "runtime/pull/registry_options.h"

void registry_access_default(struct registry_access *access)
{
	access->retries = REGISTRY_DEFAULT_RETRIES;
	access->insecure = false;
	/* exec docker://REF takes no pull options: its CA comes from here. */
	access->tls_ca = getenv("CAPSULA_TLS_CA");
	if (access->tls_ca != NULL && access->tls_ca[0] == '\0')
		access->tls_ca = NULL;
}

int registry_access_option(int option, const char *value, struct registry_access *access,
                           const char *usage_hint, capsula_error *err)
{
	char *end;
	unsigned long retries;

	switch (option) {
	case REGISTRY_OPT_TLS_CA:
		access->tls_ca = value;
		return 1;
	case REGISTRY_OPT_INSECURE:
		access->insecure = true;
		return 1;
	case REGISTRY_OPT_RETRIES:
		errno = 0;
		retries = strtoul(value, &end, 10);
		if (errno != 0 || *end != '\0' || value[0] < '0' || value[0] > '9' || retries > 100)
			return fail(err, 0, usage_hint, "--retries %s: give a number from 0 to 100", value);
		access->retries = (unsigned)retries;
		return 1;
	default:
		return 0;
	}
}
