#include "config.h"

#include <errno.h>

#include "runtime/convert/archive_reader.h"

#define READ_BLOCK (1u << 16)

struct archive *archive_reader_new(bool raw)
{
	struct archive *a = archive_read_new();

	if (a == NULL)
		return NULL;
	/* Each by name: archive_read_support_filter_all() would also run
	 * lrzip, lzop or grzip as child processes. */
	if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    archive_read_support_filter_bzip2(a) != ARCHIVE_OK ||
	    archive_read_support_filter_xz(a) != ARCHIVE_OK ||
	    archive_read_support_filter_lzma(a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
	    archive_read_support_filter_lz4(a) != ARCHIVE_OK ||
	    archive_read_support_filter_compress(a) != ARCHIVE_OK ||
	    (raw ? archive_read_support_format_raw(a) : archive_read_support_format_tar(a)) !=
	    ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int archive_reader_open_file(struct archive **out, const char *path, capsula_error *err)
{
	*out = archive_reader_new(false);
	if (*out == NULL)
		return fail(err, ENOMEM, NULL, "archive reader");
	if (archive_read_open_filename(*out, path, READ_BLOCK) != ARCHIVE_OK) {
		archive_reader_fail(*out, err, path);
		archive_read_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int archive_reader_fail(struct archive *a, capsula_error *err, const char *what)
{
	const char *why = archive_error_string(a);
	int errnum = archive_errno(a);

	/* libarchive says "bad format" with EILSEQ and "other" with -1: its
	 * own text says more than strerror would. */
	if (errnum < 0 || errnum == EILSEQ)
		errnum = 0;
	if (why == NULL)
		why = "unreadable";
	return fail(err, errnum, errnum == 0 ? "the archive is damaged or not one capsula reads"
	                                     : NULL, "%s: %s", what, why);
}
