/* ADD https://...: the file fetched with libcurl into a directory of its
 * own in the build's work, its sha256 computed and, with --checksum,
 * checked before anything uses it. */
#ifndef CAPSULA_FETCH_URL_H
#define CAPSULA_FETCH_URL_H

#include <stddef.h>

#include "common/error.h"
#include "common/sha256.h"

/* *dir_fd: the directory holding it, name: its name there (the URL's last
 * part), hex: its sha256. checksum: "sha256:HEX" or NULL. */
int fetch_url(const char *work_base, const char *url, const char *checksum, int *dir_fd,
              char *name, size_t name_size, char hex[SHA256_HEX_BYTES], capsula_error *err);

#endif
