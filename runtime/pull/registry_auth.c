#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/small_file.h"
#include "runtime/image/image_cache.h"
#include "runtime/pull/registry_auth.h"

#define AUTH_FILE_MAX (1u << 20)
#define DOCKER_HUB_KEY "https://index.docker.io/v1/"

void credentials_clear(struct credentials *c)
{
	explicit_bzero(c, sizeof *c);
}

/* "https://index.docker.io/v1/" -> host "docker.io", path "" (the v1/v2
 * path docker writes names no repository); "quay.io/org" -> "quay.io", "org". */
static void split_key(const char *key, char *host, size_t host_size, const char **path)
{
	const char *start = key, *slash;
	size_t len;

	if (strncmp(start, "https://", 8) == 0)
		start += 8;
	else if (strncmp(start, "http://", 7) == 0)
		start += 7;
	slash = strchr(start, '/');
	len = slash ? (size_t)(slash - start) : strlen(start);
	snprintf(host, host_size, "%.*s", (int)len, start);
	if (strcmp(host, "index.docker.io") == 0 || strcmp(host, "registry-1.docker.io") == 0)
		snprintf(host, host_size, "docker.io");
	*path = slash ? slash + 1 : "";
	if (strcmp(*path, "v1/") == 0 || strcmp(*path, "v1") == 0 || strcmp(*path, "v2/") == 0 ||
	    strcmp(*path, "v2") == 0)
		*path = "";
}

/* How well key fits ref: -1 not at all, else the length of its path. */
static int key_match(const char *key, const struct image_ref *ref)
{
	char host[256];
	const char *path;
	size_t len;

	split_key(key, host, sizeof host, &path);
	if (strcmp(host, ref->registry) != 0)
		return -1;
	len = strlen(path);
	while (len > 0 && path[len - 1] == '/')
		len--;
	if (len == 0)
		return 0;
	if (strncmp(ref->repository, path, len) == 0 &&
	    (ref->repository[len] == '\0' || ref->repository[len] == '/'))
		return (int)len;
	return -1;
}

static int decode_auth(const char *encoded, const char *file, struct credentials *c,
                       capsula_error *err)
{
	size_t len = strlen(encoded), padding = 0;
	unsigned char *decoded;
	char *colon;
	int n;

	if (len == 0 || len % 4 != 0 || len > 4096)
		return fail(err, 0, "log in again with capsula login", "%s: an \"auth\" value is not "
		            "base64", file);
	decoded = calloc(1, len);
	if (decoded == NULL)
		return fail(err, errno, NULL, "%s", file);
	n = EVP_DecodeBlock(decoded, (const unsigned char *)encoded, (int)len);
	while (padding < 2 && encoded[len - 1 - padding] == '=')
		padding++;
	if (n < 0 || (size_t)n < padding) {
		free(decoded);
		return fail(err, 0, "log in again with capsula login", "%s: an \"auth\" value is not "
		            "base64", file);
	}
	decoded[(size_t)n - padding] = '\0';
	colon = strchr((char *)decoded, ':');
	if (colon == NULL) {
		explicit_bzero(decoded, len);
		free(decoded);
		return fail(err, 0, "log in again with capsula login", "%s: an \"auth\" value is not "
		            "USER:PASSWORD", file);
	}
	*colon = '\0';
	snprintf(c->user, sizeof c->user, "%s", (char *)decoded);
	snprintf(c->password, sizeof c->password, "%s", colon + 1);
	explicit_bzero(decoded, len);
	free(decoded);
	c->found = true;
	snprintf(c->source, sizeof c->source, "%s", file);
	return 0;
}

int credentials_from_text(const char *text, const char *file, const struct image_ref *ref,
                          struct credentials *c, capsula_error *err)
{
	json_error_t problem;
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &problem);
	const json_t *auths, *entry, *best = NULL;
	const char *key;
	int best_score = -1, ret = 0;

	if (doc == NULL)
		return fail(err, 0, "fix or remove the file", "%s: line %d: %s", file, problem.line,
		            problem.text);
	auths = json_object_get(doc, "auths");
	json_object_foreach((json_t *)auths, key, entry) {
		int score = key_match(key, ref);

		if (score > best_score && json_is_object(entry)) {
			best = entry;
			best_score = score;
		}
	}
	if (best != NULL) {
		const char *auth = json_string_value(json_object_get(best, "auth"));

		if (auth != NULL && auth[0] != '\0')
			ret = decode_auth(auth, file, c, err);
	}
	json_decref(doc);
	return ret;
}

static int from_file(const char *path, const struct image_ref *ref, struct credentials *c,
                     capsula_error *err)
{
	char *text;
	size_t len;
	int ret;

	if (access(path, F_OK) < 0)
		return 0;
	if (read_small_file(path, AUTH_FILE_MAX, &text, &len, err) < 0)
		return -1;
	ret = credentials_from_text(text, path, ref, c, err);
	explicit_bzero(text, len);
	free(text);
	return ret;
}

int credentials_find(const struct image_ref *ref, struct credentials *c, capsula_error *err)
{
	const char *user = getenv("CAPSULA_DOCKER_USERNAME");
	const char *password = getenv("CAPSULA_DOCKER_PASSWORD");
	const char *value;
	char path[CACHE_PATH_MAX];

	memset(c, 0, sizeof *c);
	if (user != NULL && password != NULL) {
		snprintf(c->user, sizeof c->user, "%s", user);
		snprintf(c->password, sizeof c->password, "%s", password);
		snprintf(c->source, sizeof c->source, "CAPSULA_DOCKER_USERNAME/PASSWORD");
		c->found = true;
		return 0;
	}
	if ((value = getenv("REGISTRY_AUTH_FILE")) != NULL && value[0] != '\0' &&
	    (from_file(value, ref, c, err) < 0 || c->found))
		return c->found ? 0 : -1;
	if ((value = getenv("XDG_RUNTIME_DIR")) != NULL && value[0] == '/') {
		snprintf(path, sizeof path, "%s/containers/auth.json", value);
		if (from_file(path, ref, c, err) < 0 || c->found)
			return c->found ? 0 : -1;
	}
	if ((value = getenv("HOME")) != NULL && value[0] == '/') {
		snprintf(path, sizeof path, "%s/.docker/config.json", value);
		if (from_file(path, ref, c, err) < 0)
			return -1;
	}
	return 0;
}

const char *credentials_key(const char *registry)
{
	return strcmp(registry, "docker.io") == 0 ? DOCKER_HUB_KEY : registry;
}

static int auth_file_path(char *file, size_t size, capsula_error *err)
{
	const char *value = getenv("REGISTRY_AUTH_FILE");
	char dir[CACHE_PATH_MAX];

	if (value != NULL && value[0] != '\0') {
		snprintf(file, size, "%s", value);
		return 0;
	}
	value = getenv("HOME");
	if (value == NULL || value[0] != '/')
		return fail(err, 0, "set HOME or REGISTRY_AUTH_FILE", "nowhere to store credentials");
	snprintf(dir, sizeof dir, "%s/.docker", value);
	if (make_directories(dir, 0700, err) < 0)
		return -1;
	snprintf(file, size, "%s/config.json", dir);
	return 0;
}

static json_t *load_auth_file(const char *file, capsula_error *err)
{
	json_error_t problem;
	json_t *doc;

	if (access(file, F_OK) < 0)
		return json_object();
	doc = json_load_file(file, JSON_REJECT_DUPLICATES, &problem);
	if (doc == NULL || !json_is_object(doc)) {
		fail(err, 0, "fix or remove the file", "%s: line %d: %s", file, problem.line,
		     doc ? "not a JSON object" : problem.text);
		json_decref(doc);
		return NULL;
	}
	return doc;
}

int credentials_store(const char *registry, const char *user, const char *password,
                      char *file, size_t size, capsula_error *err)
{
	size_t pair_len = strlen(user) + 1 + strlen(password);
	char *pair = malloc(pair_len + 1), *encoded = malloc(4 * (pair_len / 3 + 1) + 1), *text;
	json_t *doc = NULL, *auths;
	int ret = -1;

	if (pair == NULL || encoded == NULL) {
		fail(err, errno, NULL, "store credentials");
		goto out;
	}
	snprintf(pair, pair_len + 1, "%s:%s", user, password);
	EVP_EncodeBlock((unsigned char *)encoded, (const unsigned char *)pair, (int)pair_len);
	if (auth_file_path(file, size, err) < 0 || (doc = load_auth_file(file, err)) == NULL)
		goto out;
	auths = json_object_get(doc, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		if (json_object_set_new(doc, "auths", auths) < 0)
			goto nomem;
	}
	if (json_object_set_new(auths, credentials_key(registry),
	                        json_pack("{s:s}", "auth", encoded)) < 0)
		goto nomem;
	text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (text == NULL)
		goto nomem;
	ret = cache_write_file(file, text, strlen(text), 0600, err);
	explicit_bzero(text, strlen(text));
	free(text);
	goto out;
nomem:
	fail(err, ENOMEM, NULL, "store credentials in %s", file);
out:
	json_decref(doc);
	if (pair != NULL)
		explicit_bzero(pair, pair_len);
	if (encoded != NULL)
		explicit_bzero(encoded, strlen(encoded));
	free(pair);
	free(encoded);
	return ret;
}

/* One auth-param: NAME=VALUE or NAME="VALUE" (with \ escapes). */
static const char *parse_param(const char *p, char *name, size_t name_size, char *value,
                               size_t value_size)
{
	size_t n = 0, v = 0;

	while (*p == ' ' || *p == ',')
		p++;
	while (*p != '\0' && *p != '=' && *p != ' ' && *p != ',')
		if (n + 1 < name_size)
			name[n++] = (char)tolower((unsigned char)*p++);
		else
			p++;
	name[n] = '\0';
	if (*p != '=')
		return NULL;
	p++;
	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (v + 1 < value_size)
				value[v++] = *p;
		}
		if (*p != '"')
			return NULL;
		p++;
	} else {
		while (*p != '\0' && *p != ',' && *p != ' ')
			if (v + 1 < value_size)
				value[v++] = *p++;
			else
				p++;
	}
	value[v] = '\0';
	return p;
}

int challenge_parse(const char *header, struct challenge *c)
{
	const char *p = header;
	char name[32], value[1024];

	memset(c, 0, sizeof *c);
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "Bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\0'))
		c->bearer = true;
	else if (!(strncasecmp(p, "Basic", 5) == 0 && (p[5] == ' ' || p[5] == '\0')))
		return -1;
	p += c->bearer ? 6 : 5;
	while (*p != '\0') {
		p = parse_param(p, name, sizeof name, value, sizeof value);
		if (p == NULL)
			return -1;
		if (strcmp(name, "realm") == 0)
			snprintf(c->realm, sizeof c->realm, "%.*s", (int)sizeof c->realm - 1, value);
		else if (strcmp(name, "service") == 0)
			snprintf(c->service, sizeof c->service, "%.*s", (int)sizeof c->service - 1, value);
		else if (strcmp(name, "scope") == 0)
			snprintf(c->scope, sizeof c->scope, "%.*s", (int)sizeof c->scope - 1, value);
		while (*p == ' ' || *p == ',')
			p++;
	}
	return c->bearer && c->realm[0] == '\0' ? -1 : 0;
}
