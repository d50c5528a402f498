/* The pull cache: one directory per user, content-addressed.
 *
 *   blobs/sha256/HEX      verified manifests, configs and layers, shared
 *                         between images (the directory is an OCI layout)
 *   images/HEX.sqfs       an image converted, named by its manifest digest
 *   refs/REGISTRY/REPO/TAG,OS-ARCH   the manifest digest a tag resolved to
 *   partial/              blobs being fetched, resumed by the next pull
 *   locks/                one process fetches or converts; others wait
 *
 * Every file appears by rename, so a pull killed at any moment leaves
 * nothing that looks complete and is not. The launch path only reads it. */
#ifndef CAPSULA_IMAGE_CACHE_H
#define CAPSULA_IMAGE_CACHE_H

#include <stddef.h>

#include "common/error.h"
#include "runtime/config/site_config.h"
#include "runtime/image/image_ref.h"

#define CACHE_PATH_MAX 4096

struct image_cache {
	char dir[2048];            /* short enough that every path below fits */
};

/* $CAPSULA_CACHEDIR, else the site's cache directory (a directory per
 * uid below it), else $XDG_CACHE_HOME/capsula or ~/.cache/capsula.
 * create: make it (0700) and its subdirectories. It must be the user's. */
int cache_locate(const struct capsula_config *config, struct image_cache *cache, int create,
                 capsula_error *err);

void cache_blob_path(const struct image_cache *cache, const char *digest, char *out, size_t size);
void cache_image_path(const struct image_cache *cache, const char *digest, char *out,
                      size_t size);

/* 1 with the image's path when REF was pulled for platform and its image is
 * there, 0 when not, -1 on error. */
int cache_lookup(const struct image_cache *cache, const struct image_ref *ref,
                 const struct platform *platform, char *image, size_t size, capsula_error *err);
/* A tag's record: the manifest digest it resolved to ("sha256:HEX"). */
int cache_read_record(const char *path, char digest[72], capsula_error *err);
int cache_record_ref(const struct image_cache *cache, const struct image_ref *ref,
                     const struct platform *platform, const char *digest, capsula_error *err);

/* Wait for and take the lock called name; returns its descriptor. */
int cache_lock(const struct image_cache *cache, const char *name, capsula_error *err);
void cache_unlock(int fd);
/* Once what the lock guards is in place, its file goes too. */
void cache_unlock_remove(const struct image_cache *cache, const char *name, int fd);

/* Write data to path through a temporary name and a rename. */
int cache_write_file(const char *path, const void *data, size_t size, int mode,
                     capsula_error *err);
/* mkdir -p, each new directory with mode. */
int make_directories(const char *path, int mode, capsula_error *err);

#endif
