/* The pull cache: one directory per user, content-addressed.
 *
 *   blobs/sha256/HEX      verified manifests, configs and layers, shared
 *                         between images (the directory is an OCI layout)
 *   images/HEX.sqfs       an image converted, named by its manifest digest
 *   images/HEX.id         what capsula made it as (inode and size), checked
 *                         whenever the image is opened
 *   images/HEX.signers    the signature checked when it was pulled, and by whom
 *   refs/REGISTRY/REPO/TAG,OS-ARCH   the manifest digest a tag resolved to
 *   partial/              blobs being fetched, resumed by the next pull
 *   locks/                one process fetches or converts; others wait
 *   pushed/HEX            the repositories a layer capsula pushed went to
 *
 * The directory is opened once, after every directory above it was checked
 * (root's or the user's, closed to everyone else's writes unless sticky),
 * and everything below is reached from that descriptor: no path is walked
 * again by name, so nobody can swap a directory in between. A site's cache
 * directory is never created by capsula (the administrator makes it); the
 * user's own directory in it is. Every file appears by rename, so a pull
 * killed at any moment leaves nothing that looks complete and is not. The
 * launch path only reads it. */
#ifndef CAPSULA_IMAGE_CACHE_H
#define CAPSULA_IMAGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "runtime/config/site_config.h"
#include "runtime/image/image_ref.h"

#define CACHE_PATH_MAX 4096
#define CACHE_NAME_MAX 1200     /* a name below the cache directory */

struct image_cache {
	int fd;                 /* the directory (O_PATH), -1 when there is none */
	char dir[2048];         /* its path, for messages */
	char root[32];          /* "/proc/self/fd/N": for what must take a path */
};

/* $CAPSULA_CACHEDIR, else the site's cache directory (a directory per
 * uid below it), else $XDG_CACHE_HOME/capsula or ~/.cache/capsula.
 * create: make the user's directory (0700) and its subdirectories; without
 * it, a cache that does not exist leaves cache->fd at -1. */
int cache_locate(const struct capsula_config *config, struct image_cache *cache, int create,
                 capsula_error *err);
void cache_close(struct image_cache *cache);

/* Names below the cache directory. */
void cache_blob_name(const char *digest, char *out, size_t size);
void cache_image_name(const char *digest, char *out, size_t size);
/* Beside an image: who signed it, as the pull that checked recorded
 * ("signed DIGEST\nsigners FINGERPRINT...\n"). */
void cache_signers_name(const char *digest, char *out, size_t size);
struct signers_record {
	char signed_digest[72];   /* what the signatures name */
	char signers[1024];       /* the keys' fingerprints, space-separated */
};
int cache_signers_write(int cache_fd, const char *image_digest, const struct signers_record *r,
                        capsula_error *err);
/* The record beside the image of image_digest; false when there is none
 * (or it does not read as one). */
bool cache_signers_read(int cache_fd, const char *image_digest, struct signers_record *r);

/* 1 with the manifest digest when REF was pulled for platform and its image
 * is there, 0 when not, -1 on error. */
int cache_lookup(const struct image_cache *cache, const struct image_ref *ref,
                 const struct platform *platform, char digest[72], capsula_error *err);
/* Open the image of digest, read-only: the user's own file, not writable
 * by others, and the very file the cache recorded making. */
int cache_open_image(const struct image_cache *cache, const char *digest, capsula_error *err);
/* Record the image of digest, just made, as the one to open. */
int cache_record_image(const struct image_cache *cache, const char *digest, capsula_error *err);

/* A tag's record (name below dir_fd): the manifest digest it resolved to
 * ("sha256:HEX"). */
int cache_read_record(int dir_fd, const char *name, char digest[72], capsula_error *err);
int cache_record_ref(const struct image_cache *cache, const struct image_ref *ref,
                     const struct platform *platform, const char *digest, capsula_error *err);

/* Wait for and take the lock called name; returns its descriptor. */
int cache_lock(const struct image_cache *cache, const char *name, capsula_error *err);
void cache_unlock(int fd);
/* Once what the lock guards is in place, its file goes too. */
void cache_unlock_remove(const struct image_cache *cache, const char *name, int fd);

/* Write data to name below dir_fd through a temporary name and a rename. */
int cache_write_at(int dir_fd, const char *name, const void *data, size_t size, int mode,
                   capsula_error *err);
/* The same for a path (files of the user's own outside the cache). */
int cache_write_file(const char *path, const void *data, size_t size, int mode,
                     capsula_error *err);
/* mkdir -p, each new directory with mode. */
int make_directories(const char *path, int mode, capsula_error *err);

#endif
