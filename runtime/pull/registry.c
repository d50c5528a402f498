#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "common/small_file.h"
#include "common/text.h"
#include "common/timing.h"
#include "runtime/pull/registry.h"

#define ERROR_BODY_MAX 8192
/* Longer bearer tokens are refused, never cut. */
#define TOKEN_MAX 8192
#define CA_BUNDLE_MAX (8u << 20)
#define MAX_RETRY_WAIT_S 60
#define HINT_TLS "if the registry uses a private CA, give it with --tls-ca FILE or the site's " \
	"'registry ca' setting"
#define HINT_SPACE "free space there, or pull into another cache with CAPSULA_CACHEDIR"

static const char manifest_types[] =
	"Accept: application/vnd.oci.image.index.v1+json, "
	"application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json, "
	"application/vnd.docker.distribution.manifest.v2+json";

/* One HTTP exchange, with its retries: what the headers said and where
 * the body goes (memory, or a blob's file while it is hashed). */
struct exchange {
	long status;
	char challenge[1024];
	char content_type[128];
	long retry_after;          /* seconds, or -1 */
	unsigned generation;       /* of the token the request carried */
	bool token_request;        /* to the token service: basic credentials, no token */
	char *body;                /* error bodies, manifests, tokens */
	size_t length, limit;
	bool too_large;
	int fd;                    /* a blob's partial file, else -1 */
	uint64_t offset, expected;
	bool range_checked;
	struct sha256 *hash;
	uint64_t *done;
	int write_errno;
	/* What a push sends: a document from memory, or a range of a file. */
	const char *method;        /* NULL: GET */
	const char *send_type;     /* its Content-Type */
	const char *send_data;
	int send_fd;
	uint64_t send_from, send_length, sent;
	const struct registry_body_source *source;   /* a body of a length not known yet */
	bool once;                 /* never sent again: what it sent may be stored */
	char location[2048];       /* where an upload goes on */
	char range[64];            /* what an upload holds so far */
};

static void exchange_init(struct exchange *ex, size_t limit)
{
	memset(ex, 0, sizeof *ex);
	ex->fd = -1;
	ex->send_fd = -1;
	ex->limit = limit;
}

static void exchange_free(struct exchange *ex)
{
	free(ex->body);
	ex->body = NULL;
}

static void exchange_reset(struct exchange *ex)
{
	ex->status = 0;
	ex->challenge[0] = ex->content_type[0] = '\0';
	ex->retry_after = -1;
	ex->length = 0;
	ex->too_large = false;
	ex->range_checked = false;
	ex->location[0] = ex->range[0] = '\0';
	ex->sent = 0;
}

static void copy_header_value(char *out, size_t size, const char *value, size_t len)
{
	while (len > 0 && (*value == ' ' || *value == '\t'))
		value++, len--;
	while (len > 0 && (value[len - 1] == '\r' || value[len - 1] == '\n' || value[len - 1] == ' '))
		len--;
	snprintf(out, size, "%.*s", (int)len, value);
}

static size_t on_header(char *line, size_t size, size_t count, void *data)
{
	struct exchange *ex = data;
	size_t len = size * count;
	char value[64];

	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		const char *space = memchr(line, ' ', len);

		/* A new response (after a redirect or a 100): forget the last one's. */
		exchange_reset(ex);
		ex->status = space ? strtol(space + 1, NULL, 10) : 0;
	} else if (len > 17 && strncasecmp(line, "WWW-Authenticate:", 17) == 0) {
		copy_header_value(ex->challenge, sizeof ex->challenge, line + 17, len - 17);
	} else if (len > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
		copy_header_value(ex->content_type, sizeof ex->content_type, line + 13, len - 13);
	} else if (len > 9 && strncasecmp(line, "Location:", 9) == 0) {
		copy_header_value(ex->location, sizeof ex->location, line + 9, len - 9);
	} else if (len > 6 && strncasecmp(line, "Range:", 6) == 0) {
		copy_header_value(ex->range, sizeof ex->range, line + 6, len - 6);
	} else if (len > 12 && strncasecmp(line, "Retry-After:", 12) == 0) {
		copy_header_value(value, sizeof value, line + 12, len - 12);
		ex->retry_after = strtol(value, NULL, 10);
	}
	return len;
}

static size_t to_memory(struct exchange *ex, const char *data, size_t len)
{
	if (ex->length + len > ex->limit) {
		ex->too_large = true;
		/* An error text may be cut; a document must be whole. */
		return ex->limit == ERROR_BODY_MAX ? len : 0;
	}
	char *grown = realloc(ex->body, ex->length + len + 1);

	if (grown == NULL) {
		ex->write_errno = ENOMEM;
		return 0;
	}
	ex->body = grown;
	memcpy(ex->body + ex->length, data, len);
	ex->length += len;
	ex->body[ex->length] = '\0';
	return len;
}

/* The server may ignore a Range and send the whole blob: start again. */
static int check_range(struct exchange *ex)
{
	ex->range_checked = true;
	if (ex->status != 200 || ex->offset == 0)
		return 0;
	if (ftruncate(ex->fd, 0) < 0)
		return -1;
	__atomic_fetch_sub(ex->done, ex->offset, __ATOMIC_RELAXED);
	ex->offset = 0;
	return sha256_begin(ex->hash);
}

static size_t to_file(struct exchange *ex, const char *data, size_t len)
{
	if (!ex->range_checked && check_range(ex) < 0) {
		ex->write_errno = errno;
		return 0;
	}
	if (ex->offset + len > ex->expected) {
		ex->too_large = true;
		return 0;
	}
	for (size_t written = 0; written < len;) {
		ssize_t n = pwrite(ex->fd, data + written, len - written, (off_t)(ex->offset + written));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ex->write_errno = errno;
			return 0;
		}
		written += (size_t)n;
	}
	sha256_update(ex->hash, data, len);
	ex->offset += len;
	__atomic_fetch_add(ex->done, len, __ATOMIC_RELAXED);
	return len;
}

static size_t on_body(char *data, size_t size, size_t count, void *userdata)
{
	struct exchange *ex = userdata;
	size_t len = size * count;

	if (ex->fd >= 0 && (ex->status == 200 || ex->status == 206))
		return to_file(ex, data, len);
	return to_memory(ex, data, len);
}

/* What the source holds past what was sent; it waits for more. */
static size_t send_from_source(struct exchange *ex, char *out, size_t want)
{
	ssize_t ready = ex->source->available(ex->source->arg, ex->sent), n;

	if (ready < 0) {
		ex->write_errno = ECANCELED;
		return CURL_READFUNC_ABORT;
	}
	if ((size_t)ready < want)
		want = (size_t)ready;
	if (want == 0)
		return 0;
	n = pread(ex->source->fd, out, want, (off_t)ex->sent);
	if (n <= 0) {
		ex->write_errno = n < 0 ? errno : EIO;
		return CURL_READFUNC_ABORT;
	}
	ex->sent += (uint64_t)n;
	return (size_t)n;
}

static size_t on_send(char *out, size_t size, size_t count, void *data)
{
	struct exchange *ex = data;
	size_t want = size * count;
	uint64_t left = ex->send_length - ex->sent;

	if (ex->source != NULL)
		return send_from_source(ex, out, want);
	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (ex->send_data != NULL) {
		memcpy(out, ex->send_data + ex->send_from + ex->sent, want);
	} else {
		ssize_t n = pread(ex->send_fd, out, want, (off_t)(ex->send_from + ex->sent));

		if (n <= 0) {
			ex->write_errno = n < 0 ? errno : EIO;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)n;
	}
	ex->sent += want;
	return want;
}

static int on_progress(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	const struct registry_connection *c = data;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return c->cancel != NULL && *c->cancel;
}

static struct curl_blob ca_blob;

/* --tls-ca adds to the system's CAs rather than replacing them: a blob
 * of the registry may be served from elsewhere (a CDN). */
static int load_ca_bundle(const char *extra, capsula_error *err)
{
	CURL *probe;
	char *system_path = NULL, *system_text = NULL, *extra_text, *joined;
	size_t system_len = 0, extra_len;

	if (ca_blob.data != NULL)
		return 0;
	if (read_small_file(extra, CA_BUNDLE_MAX, &extra_text, &extra_len, err) < 0)
		return fail(err, 0, "give a PEM file with --tls-ca", "CA file %s unreadable", extra);
	probe = curl_easy_init();
	if (probe != NULL && curl_easy_getinfo(probe, CURLINFO_CAINFO, &system_path) == CURLE_OK &&
	    system_path != NULL && read_small_file(system_path, CA_BUNDLE_MAX, &system_text,
	                                           &system_len, err) < 0)
		system_text = NULL, system_len = 0;
	if (probe != NULL)
		curl_easy_cleanup(probe);
	joined = malloc(system_len + extra_len + 2);
	if (joined == NULL) {
		free(extra_text);
		free(system_text);
		return fail(err, errno, NULL, "CA file %s", extra);
	}
	if (system_len > 0)
		memcpy(joined, system_text, system_len);
	joined[system_len] = '\n';
	memcpy(joined + system_len + 1, extra_text, extra_len + 1);
	free(extra_text);
	free(system_text);
	ca_blob.data = joined;
	ca_blob.len = system_len + 1 + extra_len;
	ca_blob.flags = CURL_BLOB_NOCOPY;
	return 0;
}

void registry_apply_site(struct registry_settings *settings, const struct capsula_config *config,
                         const char *registry)
{
	if (settings->ca_file != NULL && settings->ca_file[0] == '\0')
		settings->ca_file = NULL;
	if (settings->ca_file == NULL && config->registry_ca[0] != '\0')
		settings->ca_file = config->registry_ca;
	for (size_t i = 0; i < config->insecure_registries.count; i++)
		if (strcmp(config->insecure_registries.items[i], registry) == 0)
			settings->insecure = true;
	settings->deadline_s = config->registry_deadline_s;
	settings->min_rate = config->registry_min_rate;
	settings->rate_window_s = config->registry_rate_window_s;
	settings->retry_time_s = config->registry_retry_time_s;
}

int registry_open(struct registry *r, const struct image_ref *ref,
                  const struct registry_settings *settings, capsula_error *err)
{
	memset(r, 0, sizeof *r);
	r->ref = *ref;
	r->settings = *settings;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return fail(err, 0, NULL, "libcurl could not start");
	if (settings->ca_file != NULL && load_ca_bundle(settings->ca_file, err) < 0)
		return -1;
	snprintf(r->base_url, sizeof r->base_url, "%s://%s/v2/%s",
	         settings->insecure ? "http" : "https", ref->host, ref->repository);
	if (credentials_find(ref, &r->credentials, err) < 0)
		return -1;
	pthread_mutex_init(&r->lock, NULL);
	return 0;
}

void registry_close(struct registry *r)
{
	credentials_clear(&r->credentials);
	if (r->token != NULL)
		explicit_bzero(r->token, strlen(r->token));
	free(r->token);
	r->token = NULL;
	pthread_mutex_destroy(&r->lock);
}

int registry_connect(struct registry_connection *c, struct registry *r, capsula_error *err)
{
	memset(c, 0, sizeof *c);
	c->r = r;
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		return fail(err, ENOMEM, NULL, "libcurl");
	return 0;
}

void registry_disconnect(struct registry_connection *c)
{
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

static void set_transfer_options(struct registry_connection *c, const char *url,
                                 struct exchange *ex, char *errors)
{
	CURL *curl = c->curl;
	const char *protocols = c->r->settings.insecure ? "http,https" : "https";
	long low_rate = 1, low_time = 60;

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, protocols);
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "capsula/" PACKAGE_VERSION);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A connection that stalls for a minute has dropped: retry it. A blob
	 * must also keep the site's minimum rate, and a document arrive whole
	 * in time: a registry dripping bytes cannot hold a pull (and every
	 * rank) forever. */
	if (ex->fd >= 0 && c->r->settings.min_rate > 0 && c->r->settings.rate_window_s > 0) {
		low_rate = (long)c->r->settings.min_rate;
		low_time = (long)c->r->settings.rate_window_s;
	}
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, low_rate);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, low_time);
	if (ex->fd < 0 && c->r->settings.deadline_s > 0)
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)c->r->settings.deadline_s);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errors);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, ex);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, ex);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c);
	if (ca_blob.data != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca_blob);
	if (c->r->settings.max_rate > 0)
		curl_easy_setopt(curl, CURLOPT_MAX_RECV_SPEED_LARGE,
		                 (curl_off_t)c->r->settings.max_rate);
	if (ex->method != NULL && strcmp(ex->method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	else if (ex->method != NULL) {
		/* Every push request carries a body, empty or not, of a known length. */
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		/* A length not known yet: sent in chunks as it comes. */
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
		                 ex->source ? (curl_off_t)-1 : (curl_off_t)ex->send_length);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_send);
		curl_easy_setopt(curl, CURLOPT_READDATA, ex);
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, ex->method);
	}
}

/* Credentials go only to the registry's host: libcurl drops them, and
 * the Authorization header, when a redirect leads elsewhere. */
static CURLcode perform(struct registry_connection *c, const char *url, const char *accept,
                        struct exchange *ex, char *errors)
{
	struct registry *r = c->r;
	struct curl_slist *headers = NULL, *grown;
	char line[TOKEN_MAX + 64];
	CURLcode rc;
	bool failed = false;

	set_transfer_options(c, url, ex, errors);
	if (accept != NULL)
		failed |= (headers = curl_slist_append(headers, accept)) == NULL;
	if (ex->method != NULL && strcmp(ex->method, "HEAD") != 0) {
		snprintf(line, sizeof line, "Content-Type: %s",
		         ex->send_type ? ex->send_type : "application/octet-stream");
		failed |= (grown = curl_slist_append(headers, line)) == NULL;
		headers = grown ? grown : headers;
		/* Nothing gained by waiting for a 100 Continue from a registry. */
		failed |= (grown = curl_slist_append(headers, "Expect:")) == NULL;
		headers = grown ? grown : headers;
	}
	if (ex->method != NULL && strcmp(ex->method, "PATCH") == 0 && ex->source == NULL) {
		snprintf(line, sizeof line, "Content-Range: %llu-%llu",
		         (unsigned long long)ex->send_from,
		         (unsigned long long)(ex->send_from + ex->send_length - 1));
		failed |= (grown = curl_slist_append(headers, line)) == NULL;
		headers = grown ? grown : headers;
	}
	if (ex->fd >= 0 && ex->offset > 0) {
		snprintf(line, sizeof line, "Range: bytes=%llu-", (unsigned long long)ex->offset);
		failed |= (grown = curl_slist_append(headers, line)) == NULL;
		headers = grown ? grown : headers;
	}
	pthread_mutex_lock(&r->lock);
	ex->generation = r->token_generation;
	if (ex->token_request || r->basic) {
		if (r->credentials.found) {
			curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(c->curl, CURLOPT_USERNAME, r->credentials.user);
			curl_easy_setopt(c->curl, CURLOPT_PASSWORD, r->credentials.password);
		}
	} else if (r->token != NULL) {
		snprintf(line, sizeof line, "Authorization: Bearer %s", r->token);
		failed |= (grown = curl_slist_append(headers, line)) == NULL;
		headers = grown ? grown : headers;
	}
	pthread_mutex_unlock(&r->lock);
	explicit_bzero(line, sizeof line);
	if (failed) {
		curl_slist_free_all(headers);
		return CURLE_OUT_OF_MEMORY;
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	return rc;
}

static bool transient(const struct registry *r, CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		/* Refused at first contact: nothing is there. Later: it restarts. */
		return r->reached;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static void wait_to_retry(const struct registry *r, unsigned attempt, long retry_after,
                          const char *what, const char *why)
{
	unsigned seconds = attempt < 5 ? 1u << attempt : 30;

	if (retry_after >= 0)
		seconds = retry_after > MAX_RETRY_WAIT_S ? MAX_RETRY_WAIT_S : (unsigned)retry_after;
	char shown[4 * 1024 + 1];

	if (!r->settings.quiet) {
		/* The registry's words: one inert line. */
		text_escape_controls(why, shown, sizeof shown);
		fprintf(stderr, "capsula: %s: %s; trying again in %u s (%u of %u)\n", what, shown,
		        seconds, attempt + 1, r->settings.retries);
	}
	sleep(seconds);
}

static int curl_failure(struct registry_connection *c, const struct exchange *ex, CURLcode rc,
                        const char *errors, const char *what, capsula_error *err)
{
	const struct registry_settings *set = &c->r->settings;
	const char *host = c->r->ref.host;
	const char *why = errors[0] ? errors : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return fail(err, 0, "check the registry's name in the image reference",
		            "%s: unknown host %s", what, host);
	case CURLE_COULDNT_RESOLVE_PROXY:
		return fail(err, 0, "check https_proxy and http_proxy", "%s: unknown proxy (%s)",
		            what, why);
	case CURLE_COULDNT_CONNECT:
		return fail(err, 0, "check that the registry runs and the port is right",
		            "%s: cannot connect to %s (%s)", what, host, why);
	case CURLE_SSL_CONNECT_ERROR:
		/* OpenSSL's words for an answer that is no TLS at all. */
		if (strstr(why, "wrong version number") != NULL || strstr(why, "packet length too long"))
			return fail(err, 0, "the registry speaks plain HTTP: use --insecure, or ask the "
			            "site for an 'insecure registry' line for it",
			            "%s: %s answered without TLS (%s)", what, host, why);
		return fail(err, 0, HINT_TLS, "%s: TLS with %s failed (%s)", what, host, why);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return fail(err, 0, HINT_TLS, "%s: TLS with %s failed (%s)", what, host, why);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return fail(err, 0, "a registry reached over plain HTTP must be named insecure "
		            "(--insecure or the site's 'insecure registry')",
		            "%s: refused to follow %s to plain HTTP (%s)", what, host, why);
	case CURLE_OPERATION_TIMEDOUT:
		if (ex->fd < 0 && set->deadline_s > 0)
			return fail(err, 0, "pull again later; a site allows slower registries with "
			            "'registry deadline' in capsula.conf",
			            "%s: %s did not send it within %u s (%s)", what, host, set->deadline_s,
			            why);
		if (ex->fd >= 0 && set->min_rate > 0 && set->rate_window_s > 0)
			return fail(err, 0, "pull again: it resumes where this one stopped; a site "
			            "allows slower links with 'registry minimum rate' in capsula.conf",
			            "%s: %s sent less than %llu bytes/s for %u s (%s)", what, host,
			            (unsigned long long)set->min_rate, set->rate_window_s, why);
		return fail(err, 0, "pull again: it resumes where this one stopped",
		            "%s: %s stopped answering (%s)", what, host, why);
	default:
		return fail(err, 0, "pull again: it resumes where this one stopped", "%s: %s", what,
		            why);
	}
}

/* The distribution API's {"errors":[{"code":..,"message":..}]} as text. */
static void registry_message(const struct exchange *ex, char *out, size_t size)
{
	json_t *doc = ex->body ? json_loads(ex->body, 0, NULL) : NULL;
	const json_t *first = json_array_get(json_object_get(doc, "errors"), 0);
	const char *code = json_string_value(json_object_get(first, "code"));
	const char *message = json_string_value(json_object_get(first, "message"));

	if (code != NULL || message != NULL)
		snprintf(out, size, "%s%s%s", code ? code : "", code && message ? ": " : "",
		         message ? message : "");
	else
		snprintf(out, size, "HTTP %ld", ex->status);
	json_decref(doc);
}

static int status_failure(struct registry_connection *c, const struct exchange *ex,
                          const char *what, capsula_error *err)
{
	const struct registry *r = c->r;
	char message[512], hint[1400];

	registry_message(ex, message, sizeof message);
	switch (ex->status) {
	case 401:
	case 403:
		if (r->credentials.found)
			snprintf(hint, sizeof hint, "the credentials from %s were refused; log in again "
			         "with capsula login %s", r->credentials.source, r->ref.registry);
		else
			snprintf(hint, sizeof hint, "log in with capsula login %s; credentials are read "
			         "from " CREDENTIAL_SOURCES, r->ref.registry);
		return fail(err, 0, hint, "%s: access denied by %s (%s)", what, r->ref.registry,
		            message);
	case 404:
		return fail(err, 0, "check the repository and tag (capsula pull takes Docker's names)",
		            "%s: not found on %s (%s)", what, r->ref.registry, message);
	case 429:
		return fail(err, 0, "wait, log in (anonymous pulls are limited), or use a mirror",
		            "%s: too many requests to %s (%s)", what, r->ref.registry, message);
	default:
		return fail(err, 0, "pull again later; if it persists, tell the registry's operator",
		            "%s: %s answered %s", what, r->ref.registry, message);
	}
}

static int fetch_token(struct registry_connection *c, const struct challenge *ch,
                       capsula_error *err);

/* 0: ask again with what the challenge wanted; -1: the 401 stands. */
static int answer_challenge(struct registry_connection *c, const struct exchange *ex,
                            capsula_error *err)
{
	struct registry *r = c->r;
	struct challenge ch;
	bool renewed;

	if (challenge_parse(ex->challenge, &ch) < 0)
		return -1;
	pthread_mutex_lock(&r->lock);
	renewed = r->token_generation != ex->generation;
	if (!renewed && !ch.bearer) {
		if (!r->credentials.found || r->basic) {
			pthread_mutex_unlock(&r->lock);
			return -1;
		}
		r->basic = true;
		r->token_generation++;
		renewed = true;
	}
	pthread_mutex_unlock(&r->lock);
	if (renewed)
		return 0;
	return fetch_token(c, &ch, err) < 0 ? -2 : 0;
}

/* GET url until it is answered, retrying what a retry can fix. Leaves the
 * final status in ex; 0, or -1 when no answer came. */
static int request(struct registry_connection *c, const char *url, const char *accept,
                   struct exchange *ex, const char *what, capsula_error *err)
{
	struct registry *r = c->r;
	unsigned attempt = 0, challenges = 0;
	char errors[CURL_ERROR_SIZE];
	uint64_t retry_until = r->settings.retry_time_s == 0 ? UINT64_MAX :
	                       timing_now_us() + r->settings.retry_time_s * 1000000ULL;

	for (;;) {
		CURLcode rc;
		bool may_retry;

		errors[0] = '\0';
		exchange_reset(ex);
		rc = perform(c, url, accept, ex, errors);
		/* Retries are bounded by their count and, waits included, by time. */
		may_retry = !ex->once && attempt < r->settings.retries && timing_now_us() < retry_until;
		if (ex->write_errno != 0)
			return fail(err, ex->write_errno, ex->write_errno == ENOSPC ? HINT_SPACE : NULL,
			            "%s: write", what);
		if (c->cancel != NULL && *c->cancel)
			return fail(err, 0, NULL, "%s: abandoned", what);
		if (ex->too_large)
			return fail(err, 0, "tell the registry's operator", "%s: larger than %s",
			            what, ex->fd >= 0 ? "its descriptor says" : "a manifest may be");
		if (rc != CURLE_OK) {
			if (transient(r, rc) && may_retry) {
				wait_to_retry(r, attempt++, -1, what, errors[0] ? errors :
				              curl_easy_strerror(rc));
				continue;
			}
			return curl_failure(c, ex, rc, errors, what, err);
		}
		r->reached = true;
		if (ex->status == 401 && !ex->token_request && challenges++ < 2) {
			int answered = answer_challenge(c, ex, err);

			if (answered == -2)
				return -1;
			if (answered == 0)
				continue;
		}
		if ((ex->status == 429 || ex->status >= 500) && may_retry) {
			char message[512];

			registry_message(ex, message, sizeof message);
			wait_to_retry(r, attempt++, ex->retry_after, what, message);
			continue;
		}
		return 0;
	}
}

static int fetch_token(struct registry_connection *c, const struct challenge *ch,
                       capsula_error *err)
{
	struct registry *r = c->r;
	struct exchange ex;
	char *service = curl_easy_escape(c->curl, ch->service, 0);
	char *scope = NULL, url[2400], wanted[600], what[1100];
	json_t *doc = NULL;
	const char *token;
	int ret = -1;

	if (ch->scope[0] != '\0')
		snprintf(wanted, sizeof wanted, "%s", ch->scope);
	else if (r->ref.repository[0] != '\0')
		snprintf(wanted, sizeof wanted, "repository:%s:%s", r->ref.repository,
		         r->settings.push ? "pull,push" : "pull");
	else
		wanted[0] = '\0';
	scope = curl_easy_escape(c->curl, wanted, 0);
	exchange_init(&ex, MANIFEST_MAX);
	ex.token_request = true;
	snprintf(what, sizeof what, "token from %s", ch->realm);
	if (service == NULL || scope == NULL) {
		fail(err, ENOMEM, NULL, "%s", what);
		goto out;
	}
	snprintf(url, sizeof url, "%s%cservice=%s%s%s", ch->realm,
	         strchr(ch->realm, '?') ? '&' : '?', service, wanted[0] ? "&scope=" : "", scope);
	if (request(c, url, NULL, &ex, what, err) < 0)
		goto out;
	if (ex.status != 200) {
		status_failure(c, &ex, what, err);
		goto out;
	}
	doc = json_loads(ex.body ? ex.body : "", 0, NULL);
	token = json_string_value(json_object_get(doc, "token"));
	if (token == NULL)
		token = json_string_value(json_object_get(doc, "access_token"));
	if (token == NULL || token[0] == '\0') {
		fail(err, 0, "tell the registry's operator", "%s: the answer holds no token", what);
		goto out;
	}
	/* It goes into a header of every request: nothing that could end the
	 * header or start another one, and nothing cut short. */
	if (strlen(token) > TOKEN_MAX) {
		fail(err, 0, "tell the registry's operator", "%s: the token is longer than %u bytes",
		     what, TOKEN_MAX);
		goto out;
	}
	for (const char *t = token; *t != '\0'; t++)
		if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 0x7f) {
			fail(err, 0, "tell the registry's operator", "%s: the token holds a character "
			     "no HTTP header may carry (0x%02x)", what, (unsigned char)*t);
			goto out;
		}
	pthread_mutex_lock(&r->lock);
	free(r->token);
	r->token = strdup(token);
	r->token_generation++;
	pthread_mutex_unlock(&r->lock);
	ret = r->token ? 0 : fail(err, ENOMEM, NULL, "%s", what);
out:
	if (ex.body != NULL)
		explicit_bzero(ex.body, ex.length);
	exchange_free(&ex);
	json_decref(doc);
	curl_free(service);
	curl_free(scope);
	return ret;
}

/* A manifest; 1 when absent_ok and the registry has none by that name. */
static int get_manifest(struct registry_connection *c, const char *reference, bool absent_ok,
                        char **body, size_t *length, char *media_type, size_t type_size,
                        char digest[72], capsula_error *err)
{
	struct registry *r = c->r;
	struct exchange ex;
	char url[1000], what[800];

	snprintf(url, sizeof url, "%s/manifests/%s", r->base_url, reference);
	snprintf(what, sizeof what, "%s/%s%s%s", r->ref.registry, r->ref.repository,
	         strncmp(reference, "sha256:", 7) == 0 ? "@" : ":", reference);
	exchange_init(&ex, MANIFEST_MAX);
	if (request(c, url, manifest_types, &ex, what, err) < 0)
		goto failed;
	if (absent_ok && ex.status == 404) {
		exchange_free(&ex);
		return 1;
	}
	if (ex.status != 200) {
		status_failure(c, &ex, what, err);
		goto failed;
	}
	sha256_digest_of(ex.body ? ex.body : "", ex.length, digest);
	if (digest[0] == '\0') {
		fail(err, ELIBACC, "install libssl3", "%s: hash", what);
		goto failed;
	}
	if (strncmp(reference, "sha256:", 7) == 0 && strcmp(reference, digest) != 0) {
		fail(err, 0, "the registry's copy is damaged or was tampered with; tell its operator",
		     "%s: the manifest has digest %s", what, digest);
		goto failed;
	}
	snprintf(media_type, type_size, "%.*s", (int)strcspn(ex.content_type, "; "),
	         ex.content_type);
	*body = ex.body ? ex.body : strdup("");
	*length = ex.length;
	return *body ? 0 : fail(err, ENOMEM, NULL, "%s", what);
failed:
	exchange_free(&ex);
	return -1;
}

int registry_get_manifest(struct registry_connection *c, const char *reference, char **body,
                          size_t *length, char *media_type, size_t type_size, char digest[72],
                          capsula_error *err)
{
	return get_manifest(c, reference, false, body, length, media_type, type_size, digest, err);
}

int registry_find_manifest(struct registry_connection *c, const char *reference, char **body,
                           size_t *length, char *media_type, size_t type_size, char digest[72],
                           capsula_error *err)
{
	return get_manifest(c, reference, true, body, length, media_type, type_size, digest, err);
}

int registry_get_small_blob(struct registry_connection *c, const char *digest, size_t max,
                            char **body, size_t *length, capsula_error *err)
{
	struct exchange ex;
	char url[1000], what[800], found[72];

	snprintf(url, sizeof url, "%s/blobs/%s", c->r->base_url, digest);
	snprintf(what, sizeof what, "blob %s of %s/%s", digest, c->r->ref.registry,
	         c->r->ref.repository);
	exchange_init(&ex, max);
	if (request(c, url, NULL, &ex, what, err) < 0)
		goto failed;
	if (ex.status != 200) {
		status_failure(c, &ex, what, err);
		goto failed;
	}
	sha256_digest_of(ex.body ? ex.body : "", ex.length, found);
	if (strcmp(found, digest) != 0) {
		fail(err, 0, "the registry's copy is damaged or was tampered with; tell its operator",
		     "%s: received bytes with digest %s", what, found);
		goto failed;
	}
	*body = ex.body ? ex.body : strdup("");
	*length = ex.length;
	return *body ? 0 : fail(err, ENOMEM, NULL, "%s", what);
failed:
	exchange_free(&ex);
	return -1;
}

/* Hash what an earlier, interrupted pull left, to go on from there. */
static int hash_partial(int fd, struct sha256 *h, uint64_t *have, const char *path,
                        capsula_error *err)
{
	static __thread unsigned char buffer[1 << 16];
	struct stat st;
	ssize_t n;

	if (sha256_begin(h) < 0)
		return fail(err, errno, "install libssl3", "hash %s", path);
	if (fstat(fd, &st) < 0)
		return fail(err, errno, NULL, "%s", path);
	*have = 0;
	while ((n = pread(fd, buffer, sizeof buffer, (off_t)*have)) > 0) {
		sha256_update(h, buffer, (size_t)n);
		*have += (uint64_t)n;
	}
	if (n < 0)
		return fail(err, errno, NULL, "read %s", path);
	return 0;
}

static int check_blob(struct sha256 *h, const char *expected, uint64_t size, uint64_t have,
                      char *found, size_t found_size)
{
	char digest[72];

	if (sha256_end_digest(h, digest) < 0)
		return -1;
	snprintf(found, found_size, "%s", digest);
	return have == size && strcmp(found, expected) == 0 ? 0 : -1;
}

static int keep_blob(int fd, int dir_fd, const char *partial, const char *final,
                     capsula_error *err)
{
	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
		return fail(err, errno, errno == ENOSPC ? HINT_SPACE : NULL, "%s", partial);
	if (renameat(dir_fd, partial, dir_fd, final) < 0)
		return fail(err, errno, NULL, "rename %s to %s", partial, final);
	return 0;
}

int registry_fetch_blob(struct registry_connection *c, const char *digest, int64_t size,
                        int dir_fd, const char *partial, const char *final, uint64_t *done,
                        capsula_error *err)
{
	struct registry *r = c->r;
	struct exchange ex;
	struct sha256 hash;
	char url[1000], what[800], found[80];
	uint64_t have;
	int fd, ret = -1;

	snprintf(url, sizeof url, "%s/blobs/%s", r->base_url, digest);
	snprintf(what, sizeof what, "blob %s of %s/%s", digest, r->ref.registry, r->ref.repository);
	fd = openat(dir_fd, partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fail(err, errno, errno == ENOSPC ? HINT_SPACE : NULL, "%s", partial);
	exchange_init(&ex, ERROR_BODY_MAX);
	ex.fd = fd;
	ex.hash = &hash;
	ex.done = done;
	ex.expected = (uint64_t)size;
	if (hash_partial(fd, &hash, &have, partial, err) < 0)
		goto out;
	for (int from_start = have == 0; ; from_start = 1) {
		ex.offset = have;
		__atomic_fetch_add(done, have, __ATOMIC_RELAXED);
		if (have < (uint64_t)size) {
			if (request(c, url, NULL, &ex, what, err) < 0)
				goto out;
			if (ex.status != 200 && ex.status != 206) {
				status_failure(c, &ex, what, err);
				goto out;
			}
		}
		if (check_blob(&hash, digest, (uint64_t)size, ex.offset, found, sizeof found) == 0) {
			ret = keep_blob(fd, dir_fd, partial, final, err);
			goto out;
		}
		/* What an earlier pull left may be what is wrong: once more from the start. */
		__atomic_fetch_sub(done, ex.offset, __ATOMIC_RELAXED);
		if (from_start)
			break;
		if (ftruncate(fd, 0) < 0 || sha256_begin(&hash) < 0) {
			fail(err, errno, NULL, "%s", partial);
			goto out;
		}
		have = 0;
	}
	unlinkat(dir_fd, partial, 0);
	fail(err, 0, "the registry's copy is damaged or was tampered with; tell its operator",
	     "%s: received %llu bytes with digest %s", what, (unsigned long long)ex.offset, found);
out:
	close(fd);
	exchange_free(&ex);
	return ret;
}

int registry_check_access(struct registry_connection *c, capsula_error *err)
{
	struct registry *r = c->r;
	struct exchange ex;
	char url[800], what[400];
	int ret;

	snprintf(url, sizeof url, "%s://%s/v2/", r->settings.insecure ? "http" : "https",
	         r->ref.host);
	snprintf(what, sizeof what, "log in to %s", r->ref.registry);
	exchange_init(&ex, ERROR_BODY_MAX);
	ret = request(c, url, NULL, &ex, what, err);
	if (ret == 0 && ex.status != 200)
		ret = status_failure(c, &ex, what, err);
	exchange_free(&ex);
	return ret;
}

/* ---------------------------------------------------------------- push */

/* A Location header as a URL: registries give it whole or from the root. */
static void location_url(const struct registry *r, const char *location, char *out, size_t size)
{
	int n = 0;

	if (location[0] == '/')
		n = snprintf(out, size, "%s://%s", r->settings.insecure ? "http" : "https", r->ref.host);
	if (n >= 0 && (size_t)n < size)
		snprintf(out + n, size - (size_t)n, "%.*s", (int)(size - (size_t)n - 1), location);
}

/* A request that sends a document (possibly empty) and must be answered
 * with want; NULL data with a length sends that range of send_fd. */
static int send_request(struct registry_connection *c, const char *method, const char *url,
                        struct exchange *ex, long want, const char *what, capsula_error *err)
{
	ex->method = method;
	if (request(c, url, NULL, ex, what, err) < 0)
		return -1;
	if (ex->status != want)
		return status_failure(c, ex, what, err);
	return 0;
}

int registry_has_blob(struct registry_connection *c, const char *digest, bool *has,
                      capsula_error *err)
{
	struct exchange ex;
	char url[1000], what[800];
	int ret = 0;

	snprintf(url, sizeof url, "%s/blobs/%s", c->r->base_url, digest);
	snprintf(what, sizeof what, "blob %s of %s/%s", digest, c->r->ref.registry,
	         c->r->ref.repository);
	exchange_init(&ex, ERROR_BODY_MAX);
	ex.method = "HEAD";
	if (request(c, url, NULL, &ex, what, err) < 0)
		ret = -1;
	else if (ex.status == 200 || ex.status == 404)
		*has = ex.status == 200;
	else
		ret = status_failure(c, &ex, what, err);
	exchange_free(&ex);
	return ret;
}

int registry_mount_blob(struct registry_connection *c, const char *digest,
                        const char *from_repository, bool *mounted, capsula_error *err)
{
	struct exchange ex;
	char url[1600], what[1000];
	char *from = curl_easy_escape(c->curl, from_repository, 0);
	int ret = 0;

	if (from == NULL)
		return fail(err, ENOMEM, NULL, "mount %s", digest);
	snprintf(url, sizeof url, "%s/blobs/uploads/?mount=%s&from=%s", c->r->base_url, digest, from);
	curl_free(from);
	snprintf(what, sizeof what, "mount blob %s from %s into %s/%s", digest, from_repository,
	         c->r->ref.registry, c->r->ref.repository);
	exchange_init(&ex, ERROR_BODY_MAX);
	ex.method = "POST";
	if (request(c, url, NULL, &ex, what, err) < 0)
		ret = -1;
	/* 202: it started an upload instead, which it forgets in time. */
	else if (ex.status == 201 || ex.status == 202)
		*mounted = ex.status == 201;
	else
		ret = status_failure(c, &ex, what, err);
	exchange_free(&ex);
	return ret;
}

/* Where the registry stands in an upload: the first byte it lacks. */
static int upload_offset(struct registry_connection *c, const char *url, uint64_t *offset,
                         char *next, size_t next_size, const char *what, capsula_error *err)
{
	struct exchange ex;
	unsigned long long first, last;
	int ret = -1;

	exchange_init(&ex, ERROR_BODY_MAX);
	if (request(c, url, NULL, &ex, what, err) < 0)
		goto out;
	if (ex.status != 204) {
		status_failure(c, &ex, what, err);
		goto out;
	}
	if (ex.range[0] == '\0')
		*offset = 0;
	else if (sscanf(ex.range, "%llu-%llu", &first, &last) == 2 && first == 0)
		*offset = last + 1;
	else {
		fail(err, 0, "tell the registry's operator", "%s: the upload's range is '%s'", what,
		     ex.range);
		goto out;
	}
	if (ex.location[0] != '\0')
		location_url(c->r, ex.location, next, next_size);
	ret = 0;
out:
	exchange_free(&ex);
	return ret;
}

/* The chunks of a blob, each PATCHed where the last left the upload. */
static int push_chunks(struct registry_connection *c, int fd, const char *data, uint64_t size,
                       char *url,
                       size_t url_size, uint64_t *done, const char *what, capsula_error *err)
{
	uint64_t chunk = c->r->settings.chunk_size, offset = 0;
	unsigned restarts = 0;

	while (offset < size) {
		struct exchange ex;
		int ret = 0;

		exchange_init(&ex, ERROR_BODY_MAX);
		ex.method = "PATCH";
		ex.send_fd = fd;
		ex.send_data = data;
		ex.send_from = offset;
		ex.send_length = size - offset < chunk ? size - offset : chunk;
		if (request(c, url, NULL, &ex, what, err) < 0)
			ret = -1;
		else if (ex.status == 202 && ex.location[0] != '\0') {
			offset += ex.send_length;
			if (done != NULL)
				*done += ex.send_length;
			location_url(c->r, ex.location, url, url_size);
		} else if (ex.status == 416 && restarts++ < c->r->settings.retries) {
			/* A try that broke off left part of the chunk there. */
			ret = upload_offset(c, url, &offset, url, url_size, what, err);
			if (ret == 0 && offset > size)
				ret = fail(err, 0, "tell the registry's operator",
				           "%s: the registry holds more than the blob", what);
		} else
			ret = status_failure(c, &ex, what, err);
		exchange_free(&ex);
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* A new upload session: url becomes where its data goes. */
static int start_upload(struct registry_connection *c, char *url, size_t url_size,
                        const char *what, capsula_error *err)
{
	struct exchange ex;
	int ret = -1;

	snprintf(url, url_size, "%s/blobs/uploads/", c->r->base_url);
	exchange_init(&ex, ERROR_BODY_MAX);
	if (send_request(c, "POST", url, &ex, 202, what, err) < 0)
		goto out;
	if (ex.location[0] == '\0') {
		fail(err, 0, "tell the registry's operator", "%s: no Location to upload to", what);
		goto out;
	}
	location_url(c->r, ex.location, url, url_size);
	ret = 0;
out:
	exchange_free(&ex);
	return ret;
}

int registry_stream_blob(struct registry_connection *c, const struct registry_body_source *source,
                         char *url, size_t url_size, capsula_error *err)
{
	struct exchange ex;
	char what[800];
	int ret = -1;

	snprintf(what, sizeof what, "streamed upload to %s/%s", c->r->ref.registry,
	         c->r->ref.repository);
	if (url_size <= 100 || start_upload(c, url, url_size - 100, what, err) < 0)
		return -1;
	exchange_init(&ex, ERROR_BODY_MAX);
	ex.method = "PATCH";
	ex.source = source;
	ex.once = true;
	if (request(c, url, NULL, &ex, what, err) < 0)
		goto out;
	if (ex.status != 202) {
		status_failure(c, &ex, what, err);
		goto out;
	}
	if (ex.location[0] != '\0')
		location_url(c->r, ex.location, url, url_size - 100);
	ret = 0;
out:
	exchange_free(&ex);
	return ret;
}

static void add_digest(char *url, size_t room, const char *digest)
{
	size_t length = strlen(url);

	snprintf(url + length, room, "%cdigest=%s", strchr(url, '?') ? '&' : '?', digest);
}

int registry_commit_blob(struct registry_connection *c, char *url, size_t url_size,
                         const char *digest, capsula_error *err)
{
	struct exchange ex;
	char what[800];
	int ret;

	snprintf(what, sizeof what, "upload blob %s to %s/%s", digest, c->r->ref.registry,
	         c->r->ref.repository);
	if (strlen(url) + 100 > url_size)
		return fail(err, ENAMETOOLONG, "tell the registry's operator", "%s: its upload URL",
		            what);
	add_digest(url, 100, digest);
	exchange_init(&ex, ERROR_BODY_MAX);
	ret = send_request(c, "PUT", url, &ex, 201, what, err);
	exchange_free(&ex);
	return ret;
}

int registry_push_blob(struct registry_connection *c, int fd, const char *data, uint64_t size,
                       const char *digest, uint64_t *done, capsula_error *err)
{
	struct registry *r = c->r;
	struct exchange ex;
	char url[2400], what[800];
	bool whole = r->settings.chunk_size == 0 || size <= r->settings.chunk_size;
	int ret = -1;

	snprintf(what, sizeof what, "upload blob %s to %s/%s", digest, r->ref.registry,
	         r->ref.repository);
	if (start_upload(c, url, sizeof url - 100, what, err) < 0)
		return -1;
	if (!whole && push_chunks(c, fd, data, size, url, sizeof url - 100, done, what, err) < 0)
		return -1;
	add_digest(url, 100, digest);
	exchange_init(&ex, ERROR_BODY_MAX);
	if (whole) {
		ex.send_fd = fd;
		ex.send_data = data;
		ex.send_length = size;
	}
	if (send_request(c, "PUT", url, &ex, 201, what, err) < 0)
		goto out;
	if (whole && done != NULL)
		*done += size;
	ret = 0;
out:
	exchange_free(&ex);
	return ret;
}

int registry_put_manifest(struct registry_connection *c, const char *reference,
                          const char *body, size_t length, const char *media_type,
                          capsula_error *err)
{
	struct exchange ex;
	char url[1000], what[800];
	int ret;

	snprintf(url, sizeof url, "%s/manifests/%s", c->r->base_url, reference);
	snprintf(what, sizeof what, "put manifest %s/%s%s%s", c->r->ref.registry,
	         c->r->ref.repository, strncmp(reference, "sha256:", 7) == 0 ? "@" : ":", reference);
	exchange_init(&ex, ERROR_BODY_MAX);
	ex.send_type = media_type;
	ex.send_data = body;
	ex.send_length = length;
	ret = send_request(c, "PUT", url, &ex, 201, what, err);
	exchange_free(&ex);
	return ret;
}
