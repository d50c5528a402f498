#include "config.h"

#include "runtime/image/image_ref.h"
#include "tests/unit/tap.h"

static struct image_ref ref;
static capsula_error err;

static int parses(const char *text)
{
	return image_ref_parse(text, &ref, &err) == 0;
}

int main(void)
{
	char text[700];
	struct platform p;

	ok(parses("ubuntu"), "a bare name parses");
	is_str(ref.registry, "docker.io", "a bare name is on Docker Hub");
	is_str(ref.host, "registry-1.docker.io", "whose API is registry-1.docker.io");
	is_str(ref.repository, "library/ubuntu", "official images are under library/");
	is_str(ref.tag, "latest", "no tag means latest");

	ok(parses("docker://ubuntu:24.04"), "the docker:// prefix is accepted");
	is_str(ref.tag, "24.04", "the tag after the colon");
	image_ref_format(&ref, text, sizeof text);
	is_str(text, "docker.io/library/ubuntu:24.04", "the canonical form names registry and library");

	ok(parses("bitnami/redis"), "a user's repository on Docker Hub");
	is_str(ref.repository, "bitnami/redis", "keeps its namespace without library/");

	ok(parses("ghcr.io/org/app@sha256:"
	          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), "a digest");
	is_str(ref.registry, "ghcr.io", "a host with a dot is a registry");
	is_str(ref.tag, "", "a digest alone has no tag");
	ok(image_ref_reference(&ref) == ref.digest, "the registry is asked for the digest");

	ok(parses("127.0.0.1:5000/ns/app:v1.2"), "a registry with a port");
	is_str(ref.registry, "127.0.0.1:5000", "the port belongs to the registry");
	is_str(ref.host, "127.0.0.1:5000", "and to its API host");
	is_str(ref.repository, "ns/app", "the repository follows");
	is_str(ref.tag, "v1.2", "the colon after the last slash starts the tag");

	ok(parses("localhost/app"), "localhost is a registry");
	is_str(ref.registry, "localhost", "named localhost");
	ok(parses("index.docker.io/library/busybox"), "index.docker.io is Docker Hub");
	is_str(ref.registry, "docker.io", "under its usual name");

	ok(!parses(""), "an empty reference is refused");
	ok(!parses("Ubuntu"), "upper case in a repository is refused");
	ok(strstr(err.message, "not a valid repository") != NULL, "with a reason: %s", err.message);
	ok(!parses("ns/App:x"), "upper case after a namespace is refused");
	ok(!parses("ubuntu:-x"), "a tag starting with '-' is refused");
	ok(!parses("app@sha256:12"), "a short digest is refused");
	ok(!parses("app@md5:0123456789abcdef0123456789abcdef"), "another algorithm is refused");
	ok(!parses("ns/a..b"), "a doubled dot in a component is refused");
	ok(!parses("ns//app"), "an empty component is refused");
	ok(!parses("ho st:5000/app"), "a space in a host is refused");
	ok(!parses("../app"), "a host of dots is refused");
	ok(!parses("a..b:5000/app"), "an empty label in a host is refused");
	ok(parses("[::1]:5000/app"), "an IPv6 address in brackets is a host");

	ok(platform_parse(NULL, &p, &err) == 0 && strcmp(p.os, "linux") == 0 &&
	   p.architecture[0] != '\0', "no platform means this machine's");
	ok(platform_parse("linux/arm64/v8", &p, &err) == 0, "a platform with a variant");
	platform_format(&p, text, sizeof text);
	is_str(text, "linux/arm64/v8", "formats back the same");
	ok(platform_parse("linux", &p, &err) != 0, "an OS alone is refused");
	ok(platform_parse("linux/a b", &p, &err) != 0, "a space in an architecture is refused");
	return tap_done();
}
