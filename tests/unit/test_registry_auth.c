#include "config.h"

#include "runtime/pull/registry_auth.h"
#include "tests/unit/tap.h"

int main(void)
{
	struct challenge ch;
	struct credentials c;
	struct image_ref ref;
	capsula_error err;
	/* dXNlcjpzM2NyZXQ6eA== is "user:s3cret:x"; YWRtaW46cHc= is "admin:pw". */
	static const char config[] =
		"{\"auths\": {"
		"\"https://index.docker.io/v1/\": {\"auth\": \"dXNlcjpzM2NyZXQ6eA==\"},"
		"\"quay.io\": {\"auth\": \"YWRtaW46cHc=\"},"
		"\"quay.io/team\": {\"auth\": \"dXNlcjpzM2NyZXQ6eA==\"}}}";

	ok(challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	                   "scope=\"repository:library/ubuntu:pull\"", &ch) == 0, "a Bearer challenge");
	ok(ch.bearer, "is Bearer");
	is_str(ch.realm, "https://auth.docker.io/token", "its realm");
	is_str(ch.service, "registry.docker.io", "its service");
	is_str(ch.scope, "repository:library/ubuntu:pull", "its scope");
	ok(challenge_parse("bearer realm=\"https://h/t\", error=\"insufficient_scope\"", &ch) == 0 &&
	   ch.scope[0] == '\0', "the scheme is case-insensitive and unknown parameters are skipped");
	ok(challenge_parse("Basic realm=\"Registry Realm\"", &ch) == 0 && !ch.bearer, "Basic");
	ok(challenge_parse("Bearer realm=\"a\\\"b\"", &ch) == 0, "an escaped quote");
	is_str(ch.realm, "a\"b", "is kept");
	ok(challenge_parse("Negotiate abc", &ch) < 0, "another scheme is refused");
	ok(challenge_parse("Bearer service=\"x\"", &ch) < 0, "Bearer without a realm is refused");
	ok(challenge_parse("Bearer realm=\"unterminated", &ch) < 0, "an open quote is refused");

	image_ref_parse("ubuntu", &ref, &err);
	ok(credentials_from_text(config, "f", &ref, &c, &err) == 0 && c.found, "docker.io's v1 key");
	is_str(c.user, "user", "the user before the first colon");
	is_str(c.password, "s3cret:x", "the password may hold colons");
	image_ref_parse("quay.io/other/app", &ref, &err);
	ok(credentials_from_text(config, "f", &ref, &c, &err) == 0 && c.found, "a registry key");
	is_str(c.user, "admin", "the registry's entry");
	image_ref_parse("quay.io/team/app", &ref, &err);
	ok(credentials_from_text(config, "f", &ref, &c, &err) == 0, "a repository key");
	is_str(c.user, "user", "the more specific entry wins");
	image_ref_parse("ghcr.io/x/y", &ref, &err);
	memset(&c, 0, sizeof c);
	ok(credentials_from_text(config, "f", &ref, &c, &err) == 0 && !c.found,
	   "no entry is no credentials, not an error");
	image_ref_parse("quay.io/a", &ref, &err);
	ok(credentials_from_text("{\"auths\":{\"quay.io\":{\"auth\":\"!!!\"}}}", "f", &ref, &c,
	                         &err) < 0, "a damaged auth value is an error");
	ok(strstr(err.message, "base64") != NULL, "naming base64: %s", err.message);
	ok(credentials_from_text("{\"auths\":{\"quay.io\":{\"auth\":\"bm9jb2xvbg==\"}}}", "f", &ref,
	                         &c, &err) < 0, "a value without a colon is an error");
	ok(credentials_from_text("{", "f", &ref, &c, &err) < 0, "malformed JSON is an error");
	is_str(credentials_key("docker.io"), "https://index.docker.io/v1/",
	       "Docker Hub's key is docker's");
	is_str(credentials_key("ghcr.io"), "ghcr.io", "others are the host");
	return tap_done();
}
