/* Named, persistent containers: capsula instance start|list|stop, and the
 * instance://NAME images exec, run and shell join. Each is a holder that
 * stays until stopped, recorded per user in a runtime directory. */
#ifndef CAPSULA_INSTANCE_H
#define CAPSULA_INSTANCE_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/plan.h"

#define INSTANCE_PREFIX "instance://"

struct instance_record {
	char name[65];
	char id[37];          /* libuuid */
	char image[4096];
	char key[64];         /* the holder's join key */
	pid_t holder;
	unsigned long long holder_started;  /* its start time (/proc/PID/stat), 0: unknown */
	long long started;    /* seconds since the epoch */
	bool fakeroot;        /* its user is root inside: commands keep root's capabilities */
};

int instance_main(int argc, char **argv);

/* For exec/run/shell of instance://NAME: the instance's record. */
int instance_lookup(const char *name, struct instance_record *record, capsula_error *err);

/* A valid name: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool instance_name_valid(const char *name);

#endif
