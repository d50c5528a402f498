/* libarchive as capsula reads archives: tar only (pax, GNU and ustar
 * headers, sparse files, xattrs), every compression libarchive decodes
 * itself (never an outside program), and its errors in capsula's style. */
#ifndef CAPSULA_ARCHIVE_READER_H
#define CAPSULA_ARCHIVE_READER_H

#include <archive.h>
#include <stdbool.h>

#include "common/error.h"

/* A reader of tar archives, or with raw, of a compressed stream's bytes. */
struct archive *archive_reader_new(bool raw);
/* A tar reader over the file at path. */
int archive_reader_open_file(struct archive **out, const char *path, capsula_error *err);
/* Record a's last error about what; returns -1. */
int archive_reader_fail(struct archive *a, capsula_error *err, const char *what);

#endif
