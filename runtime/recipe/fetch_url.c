#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/text.h"
#include "runtime/recipe/fetch_url.h"

#define MAX_URL_BYTES (16ULL << 30)

struct download {
	int fd;
	struct sha256 hash;
	unsigned long long bytes;
	int error;
};

static size_t write_block(char *data, size_t size, size_t count, void *arg)
{
	struct download *d = arg;
	size_t n = size * count;

	if (d->bytes + n > MAX_URL_BYTES || write(d->fd, data, n) != (ssize_t)n) {
		d->error = errno ? errno : EFBIG;
		return 0;
	}
	sha256_update(&d->hash, data, n);
	d->bytes += n;
	return n;
}

/* The URL's last part, without its query: what Docker names the file. */
static void file_name(const char *url, char *name, size_t size)
{
	const char *path = strstr(url, "://");
	const char *end, *start;

	path = path ? strchr(path + 3, '/') : NULL;
	if (path == NULL) {
		snprintf(name, size, "index.html");
		return;
	}
	end = path + strcspn(path, "?#");
	start = end;
	while (start > path && start[-1] != '/')
		start--;
	if (start == end)
		snprintf(name, size, "index.html");
	else
		snprintf(name, size, "%.*s", (int)(end - start), start);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		snprintf(name, size, "download");
}

int fetch_url(const char *work_base, const char *url, const char *checksum, int *dir_fd,
              char *name, size_t name_size, char hex[SHA256_HEX_BYTES], capsula_error *err)
{
	struct download d = {.fd = -1};
	char dir[4096], errors[CURL_ERROR_SIZE] = "", shown[1024];
	CURL *curl;
	CURLcode rc;
	long status = 0;
	int ret = -1;

	text_escape_controls(url, shown, sizeof shown);
	if (checksum != NULL && (strncmp(checksum, "sha256:", 7) != 0 || strlen(checksum) != 71))
		return fail(err, 0, "give --checksum=sha256:HEX", "ADD %s: --checksum=%s", shown,
		            checksum);
	snprintf(dir, sizeof dir, "%s/url.XXXXXX", work_base);
	if (mkdtemp(dir) == NULL)
		return fail(err, errno, NULL, "ADD %s: a directory for it", shown);
	*dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	file_name(url, name, name_size);
	if (*dir_fd < 0 || sha256_begin(&d.hash) < 0)
		return fail(err, errno, NULL, "ADD %s", shown);
	d.fd = openat(*dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	curl = d.fd >= 0 ? curl_easy_init() : NULL;
	if (curl == NULL) {
		ret = fail(err, errno, NULL, "ADD %s", shown);
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_block);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errors);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "capsula/" PACKAGE_VERSION);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (rc != CURLE_OK) {
		ret = d.error ? fail(err, d.error, NULL, "ADD %s: keep what it sent", shown) :
		      fail(err, 0, "check the URL and the network", "ADD %s: %s", shown,
		           errors[0] ? errors : curl_easy_strerror(rc));
		goto out;
	}
	if (status >= 400) {
		ret = fail(err, 0, "check the URL", "ADD %s: the server answered HTTP %ld", shown,
		           status);
		goto out;
	}
	if (sha256_end_hex(&d.hash, hex) < 0) {
		ret = fail(err, 0, NULL, "ADD %s: libcrypto failed to hash it", shown);
		goto out;
	}
	if (checksum != NULL && strcmp(checksum + 7, hex) != 0) {
		ret = fail(err, 0, "the file at the URL changed, or the checksum is wrong",
		           "ADD %s: its sha256 is %s, not %s", shown, hex, checksum + 7);
		goto out;
	}
	ret = 0;
out:
	if (d.fd >= 0)
		close(d.fd);
	return ret;
}
