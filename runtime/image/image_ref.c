#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/sha256.h"
#include "runtime/image/image_ref.h"

#define HINT_REF "write REGISTRY/REPOSITORY:TAG or @sha256:DIGEST, e.g. ubuntu:24.04 or " \
	"ghcr.io/org/app:1.0"
#define MAX_TAG 128

bool is_docker_ref(const char *text)
{
	return strncmp(text, DOCKER_PREFIX, strlen(DOCKER_PREFIX)) == 0;
}

/* A repository component: lower-case letters and digits, separated by one
 * '.', one or two '_', or any number of '-'. */
static bool valid_component(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
		return false;
	while (i < len) {
		if (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])) {
			i++;
			continue;
		}
		if (s[i] == '.' || s[i] == '_') {
			size_t run = 1;

			while (i + run < len && s[i + run] == s[i])
				run++;
			if (run > (s[i] == '_' ? 2u : 1u))
				return false;
			i += run;
		} else if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else {
			return false;
		}
	}
	return true;
}

static bool valid_repository(const char *repo)
{
	const char *start = repo, *slash;

	if (repo[0] == '\0')
		return false;
	for (;;) {
		slash = strchr(start, '/');
		size_t len = slash ? (size_t)(slash - start) : strlen(start);

		if (!valid_component(start, len))
			return false;
		if (slash == NULL)
			return true;
		start = slash + 1;
	}
}

static bool valid_tag(const char *tag)
{
	size_t len = strlen(tag);

	if (len == 0 || len > MAX_TAG || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)tag[i]) && strchr("_.-", tag[i]) == NULL)
			return false;
	return true;
}

/* Names the cache's paths too: no empty label, so never "." or "..". */
static bool valid_host(const char *host)
{
	for (const char *p = host; *p; p++)
		if (!isalnum((unsigned char)*p) && strchr(".-:[]", *p) == NULL)
			return false;
	return isalnum((unsigned char)host[0]) || host[0] == '[' ?
	       strstr(host, "..") == NULL && strstr(host, ".:") == NULL : false;
}

/* The first component names a registry only if it looks like a host. */
static bool names_registry(const char *first, size_t len)
{
	return memchr(first, '.', len) != NULL || memchr(first, ':', len) != NULL ||
	       (len == 9 && memcmp(first, "localhost", 9) == 0);
}

static int split_registry(const char *name, struct image_ref *ref, capsula_error *err)
{
	const char *slash = strchr(name, '/');
	const char *repo = name;

	if (slash != NULL && names_registry(name, (size_t)(slash - name))) {
		if ((size_t)(slash - name) >= sizeof ref->registry)
			return fail(err, 0, HINT_REF, "registry name in '%s' is too long", name);
		memcpy(ref->registry, name, (size_t)(slash - name));
		ref->registry[slash - name] = '\0';
		repo = slash + 1;
	} else {
		strcpy(ref->registry, "docker.io");
	}
	if (!valid_host(ref->registry))
		return fail(err, 0, HINT_REF, "'%s' is not a registry host name", ref->registry);
	if (strcmp(ref->registry, "index.docker.io") == 0)
		strcpy(ref->registry, "docker.io");
	if (strcmp(ref->registry, "docker.io") == 0)
		strcpy(ref->host, "registry-1.docker.io");
	else
		strcpy(ref->host, ref->registry);
	/* Docker Hub's official images live under library/. */
	if (strlen(repo) + strlen("library/") >= sizeof ref->repository)
		return fail(err, 0, HINT_REF, "repository name '%s' is too long", repo);
	if (strcmp(ref->registry, "docker.io") == 0 && strchr(repo, '/') == NULL)
		snprintf(ref->repository, sizeof ref->repository, "library/%.240s", repo);
	else
		snprintf(ref->repository, sizeof ref->repository, "%.248s", repo);
	if (!valid_repository(ref->repository))
		return fail(err, 0, HINT_REF, "'%s' is not a valid repository name (lower case "
		            "letters, digits and . _ - between them)", repo);
	return 0;
}

int image_ref_parse(const char *text, struct image_ref *ref, capsula_error *err)
{
	char name[600];
	char *at, *colon, *slash;

	memset(ref, 0, sizeof *ref);
	if (is_docker_ref(text))
		text += strlen(DOCKER_PREFIX);
	if (snprintf(name, sizeof name, "%s", text) >= (int)sizeof name)
		return fail(err, 0, HINT_REF, "image reference is too long");
	if (name[0] == '\0')
		return fail(err, 0, HINT_REF, "empty image reference");
	at = strchr(name, '@');
	if (at != NULL) {
		*at = '\0';
		if (!sha256_digest_valid(at + 1))
			return fail(err, 0, "give the digest as sha256: and 64 hexadecimal digits",
			            "'%s' is not a sha256 digest", at + 1);
		snprintf(ref->digest, sizeof ref->digest, "%s", at + 1);
	}
	/* A colon after the last slash starts the tag (one before is a port). */
	slash = strrchr(name, '/');
	colon = strrchr(slash ? slash : name, ':');
	if (colon != NULL) {
		*colon = '\0';
		if (!valid_tag(colon + 1))
			return fail(err, 0, "a tag has letters, digits, '_', '.' and '-', at most 128",
			            "'%s' is not a valid tag", colon + 1);
		snprintf(ref->tag, sizeof ref->tag, "%s", colon + 1);
	} else if (at == NULL) {
		strcpy(ref->tag, "latest");
	}
	return split_registry(name, ref, err);
}

void image_ref_format(const struct image_ref *ref, char *out, size_t size)
{
	snprintf(out, size, "%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag[0] ? ":" : "",
	         ref->tag, ref->digest[0] ? "@" : "", ref->digest);
}

const char *image_ref_reference(const struct image_ref *ref)
{
	return ref->digest[0] ? ref->digest : ref->tag;
}

static const char *machine_architecture(void)
{
	static const struct { const char *machine, *arch; } names[] = {
		{"x86_64", "amd64"}, {"aarch64", "arm64"}, {"ppc64le", "ppc64le"},
		{"s390x", "s390x"}, {"riscv64", "riscv64"}, {"i686", "386"}, {"armv7l", "arm"},
	};
	static struct utsname u;

	if (uname(&u) < 0)
		return "amd64";
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(u.machine, names[i].machine) == 0)
			return names[i].arch;
	return u.machine;
}

static int copy_field(char *out, size_t size, const char *start, size_t len)
{
	if (len == 0 || len >= size)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)start[i]) && start[i] != '_' && start[i] != '-')
			return -1;
	memcpy(out, start, len);
	out[len] = '\0';
	return 0;
}

int platform_parse(const char *text, struct platform *p, capsula_error *err)
{
	const char *first, *second;

	memset(p, 0, sizeof *p);
	if (text == NULL || text[0] == '\0') {
		strcpy(p->os, "linux");
		snprintf(p->architecture, sizeof p->architecture, "%.31s", machine_architecture());
		return 0;
	}
	first = strchr(text, '/');
	second = first ? strchr(first + 1, '/') : NULL;
	if (first == NULL || copy_field(p->os, sizeof p->os, text, (size_t)(first - text)) < 0 ||
	    copy_field(p->architecture, sizeof p->architecture, first + 1,
	               second ? (size_t)(second - first - 1) : strlen(first + 1)) < 0 ||
	    (second != NULL && copy_field(p->variant, sizeof p->variant, second + 1,
	                                  strlen(second + 1)) < 0))
		return fail(err, 0, "write OS/ARCHITECTURE[/VARIANT], e.g. linux/arm64",
		            "'%s' is not a platform", text);
	return 0;
}

void platform_format(const struct platform *p, char *out, size_t size)
{
	snprintf(out, size, "%s/%s%s%s", p->os, p->architecture, p->variant[0] ? "/" : "",
	         p->variant);
}
