/* A client of one repository on an OCI distribution (Docker Registry v2)
 * server, through libcurl: manifests and blobs, with the authentication
 * the registry asks for, retries of what a retry can fix, and every
 * failure translated into one line that says what to do. */
#ifndef CAPSULA_REGISTRY_H
#define CAPSULA_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "runtime/config/site_config.h"
#include "runtime/image/image_ref.h"
#include "runtime/pull/registry_auth.h"

#define MANIFEST_MAX (4u << 20)

struct registry_settings {
	const char *ca_file;     /* trusted besides the system's CAs; NULL: none */
	bool insecure;           /* plain HTTP: only when the user or admin said so */
	unsigned retries;        /* of 429, 5xx and dropped connections */
	bool quiet;              /* no word of retries */
	uint64_t max_rate;       /* bytes/s of one transfer; 0: no limit */
	unsigned deadline_s;     /* a manifest, index or token answer, whole; 0: none */
	uint64_t min_rate;       /* a blob slower than this (bytes/s)... */
	unsigned rate_window_s;  /* ...for this long has stopped; 0: 1 B/s for 60 s */
	unsigned retry_time_s;   /* retries end after this long; 0: no bound but their count */
	bool push;               /* ask for the right to push as well */
	uint64_t chunk_size;     /* uploads in chunks of this size; 0: whole */
};

struct registry {
	struct image_ref ref;
	struct registry_settings settings;
	char base_url[700];      /* scheme://host/v2/repository */
	struct credentials credentials;
	pthread_mutex_t lock;    /* guards what follows */
	char *token;             /* bearer token for pulling from the repository */
	unsigned token_generation;
	bool basic;              /* the registry asked for basic authentication */
	bool reached;            /* it answered once: a refused connection is now transient */
};

/* What the site's capsula.conf says of registries, added to settings:
 * its CA unless one was given, plain HTTP for its insecure registries,
 * its deadlines and rates. */
void registry_apply_site(struct registry_settings *settings, const struct capsula_config *config,
                         const char *registry);

int registry_open(struct registry *r, const struct image_ref *ref,
                  const struct registry_settings *settings, capsula_error *err);
void registry_close(struct registry *r);

/* One connection (a libcurl handle) per thread. */
struct registry_connection {
	struct registry *r;
	void *curl;
	volatile const int *cancel;   /* nonzero: abandon the transfer */
};

int registry_connect(struct registry_connection *c, struct registry *r, capsula_error *err);
void registry_disconnect(struct registry_connection *c);

/* A manifest or index by tag or digest: its bytes, media type and digest.
 * Given a digest, the bytes must hash to it. */
int registry_get_manifest(struct registry_connection *c, const char *reference, char **body,
                          size_t *length, char *media_type, size_t type_size,
                          char digest[72], capsula_error *err);

/* The same; 1 when the registry has no manifest by that name. */
int registry_find_manifest(struct registry_connection *c, const char *reference, char **body,
                           size_t *length, char *media_type, size_t type_size,
                           char digest[72], capsula_error *err);
/* A blob of at most max bytes into memory (NUL-terminated), checked
 * against its digest. */
int registry_get_small_blob(struct registry_connection *c, const char *digest, size_t max,
                            char **body, size_t *length, capsula_error *err);

/* A blob into partial below dir_fd (resumed where an earlier try stopped),
 * checked against digest and size, then renamed to final. *done counts its
 * bytes. */
int registry_fetch_blob(struct registry_connection *c, const char *digest, int64_t size,
                        int dir_fd, const char *partial, const char *final, uint64_t *done,
                        capsula_error *err);

/* Pushing (the distribution spec's push workflow). Whether the repository
 * holds a blob. */
int registry_has_blob(struct registry_connection *c, const char *digest, bool *has,
                      capsula_error *err);
/* Ask the registry to link a blob it holds in from_repository (same
 * registry) into this one; *mounted false when it would not. */
int registry_mount_blob(struct registry_connection *c, const char *digest,
                        const char *from_repository, bool *mounted, capsula_error *err);
/* Upload size bytes of data, or if it is NULL of fd, as the blob digest:
 * whole, or in chunks of the settings' chunk size, each resent from where
 * the registry says it stands when a try fails. *done counts bytes. */
int registry_push_blob(struct registry_connection *c, int fd, const char *data, uint64_t size,
                       const char *digest, uint64_t *done, capsula_error *err);

/* A blob whose bytes are still being made: they are read from fd as
 * available says they are there. available(arg, offset) waits until the
 * source holds more than offset bytes and says how many more (0: the
 * source is whole, -1: it was given up). */
struct registry_body_source {
	int fd;
	ssize_t (*available)(void *arg, uint64_t offset);
	void *arg;
};

/* Start an upload and send the source in one streamed request while it is
 * made (never resent: a failed stream is abandoned, and the caller uploads
 * the blob again once it is whole). url (url_size > 100) gets where the
 * upload goes on. */
int registry_stream_blob(struct registry_connection *c, const struct registry_body_source *source,
                         char *url, size_t url_size, capsula_error *err);
/* End the upload at url as the blob digest, which the registry checks. */
int registry_commit_blob(struct registry_connection *c, char *url, size_t url_size,
                         const char *digest, capsula_error *err);
/* Put a manifest (or any document) under a tag or its digest. */
int registry_put_manifest(struct registry_connection *c, const char *reference,
                          const char *body, size_t length, const char *media_type,
                          capsula_error *err);

/* May the user pull (or, without a repository, log in)? */
int registry_check_access(struct registry_connection *c, capsula_error *err);

#endif
