/* The administrator's configuration, $(sysconfdir)/capsula/capsula.conf:
 * root-owned "setting = value" lines that bound what users may do. A
 * missing file means the defaults; a malformed one is an error with its
 * line number, never silently ignored. */
#ifndef CAPSULA_SITE_CONFIG_H
#define CAPSULA_SITE_CONFIG_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strvec.h"
#include "runtime/config/bindspec.h"

#define DEFAULT_GRACE_MS 1500
#define DEFAULT_REUSE_GRACE_MS 2000

/* Apptainer's 64 MiB is what its users keep running out of; memory is only
 * used as files are written. */
#define DEFAULT_WRITABLE_TMPFS_BYTES (2ULL << 30)

struct capsula_config {
	struct strvec image_dirs;  /* images must lie under one; none: anywhere */
	uid_t image_owner;         /* besides root, who may own them and their directories */
	bool has_image_owner;
	struct bind_list binds;    /* added to every container */
	struct strvec devices;     /* host devices added to a minimal /dev */
	bool user_binds;           /* may users add -B binds (default yes) */
	bool dev_host;             /* may users ask for --dev host (default yes) */
	bool cdi_devices;          /* may users ask for --device (default yes) */
	struct strvec cdi_dirs;    /* CDI spec directories; none: /etc/cdi, /var/run/cdi */
	unsigned grace_ms;         /* holder's wait for late ranks */
	unsigned reuse_grace_ms;   /* a private holder's wait for the same launch */
	unsigned long long tmpfs_bytes;  /* --writable-tmpfs's default size */
	unsigned long long max_image_entries;  /* a conversion's bounds; 0: the defaults */
	unsigned long long max_image_bytes;
	char cache_dir[512];       /* base of users' pull caches; "" for their homes */
	char registry_ca[512];     /* extra CA bundle for registries, or "" */
	struct strvec insecure_registries;  /* reached over plain HTTP */
	struct strvec image_policies;  /* "image policy" values (image_policy.h), checked */
	/* How long a registry may take: a manifest, index or token answer as a
	 * whole; a blob at least this rate over the window; all retries. */
	unsigned registry_deadline_s;
	unsigned long long registry_min_rate;
	unsigned registry_rate_window_s;
	unsigned registry_retry_time_s;
	char path[256];            /* where it came from, for messages */
};

/* A manifest, index or token answer is a few KiB: a minute is generous. A
 * blob slower than 1 KiB/s for a minute has as good as stopped. Retries
 * (with their waits) end after ten minutes. */
#define DEFAULT_REGISTRY_DEADLINE_S 60
#define DEFAULT_REGISTRY_MIN_RATE 1024
#define DEFAULT_REGISTRY_RATE_WINDOW_S 60
#define DEFAULT_REGISTRY_RETRY_TIME_S 600

void config_defaults(struct capsula_config *config);
/* Parse text (the contents of the file called name) over the defaults. */
int config_parse(const char *text, const char *name, struct capsula_config *config,
                 capsula_error *err);
/* Read path: absent -> defaults; not root's or writable by others -> error. */
int config_load(const char *path, struct capsula_config *config, capsula_error *err);
void config_free(struct capsula_config *config);

/* Is the image (a canonical path) in an allowed directory? */
bool config_allows_image(const struct capsula_config *config, const char *real_path);

#endif
