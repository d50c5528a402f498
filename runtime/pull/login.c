#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/option_hint.h"
#include "runtime/config/site_config.h"
#include "runtime/pull/login.h"
#include "runtime/pull/registry.h"

static const char login_usage[] =
	"Usage: capsula login [OPTIONS] REGISTRY < PASSWORD\n"
	"Check a user name and password (or access token) with REGISTRY (docker.io,\n"
	"ghcr.io, host:port) and store them for capsula pull, 0600, in\n"
	"$REGISTRY_AUTH_FILE, else ~/.docker/config.json. The password is read\n"
	"from standard input, never from the command line.\n"
	"\n"
	"  -u, --username USER   the user name (default: $CAPSULA_DOCKER_USERNAME)\n"
	"  --tls-ca FILE         trust this CA (PEM) besides the system's\n"
	"                        (default: $CAPSULA_TLS_CA)\n"
	"  --insecure            reach the registry over plain HTTP\n"
	"  -h, --help            this text\n";

#define USAGE_HINT "see 'capsula login --help'"
#define PASSWORD_MAX 1024

enum { OPT_TLS_CA = 256, OPT_INSECURE };

static int read_password(char *password, size_t size, capsula_error *err)
{
	size_t len;

	if (isatty(STDIN_FILENO))
		fputs("Password: ", stderr);
	if (fgets(password, (int)size, stdin) == NULL)
		return fail(err, 0, "give the password on standard input: "
		            "echo \"$TOKEN\" | capsula login -u USER REGISTRY", "no password");
	len = strcspn(password, "\r\n");
	password[len] = '\0';
	if (len == 0)
		return fail(err, 0, "give the password on standard input", "empty password");
	return 0;
}

/* Ask the registry with the new credentials before keeping them. */
static int check_with_registry(const char *registry, const char *ca_file, bool insecure,
                               const char *user, const char *password, capsula_error *err)
{
	struct capsula_config config;
	struct registry r;
	struct registry_connection c;
	struct registry_settings settings = {.ca_file = ca_file, .insecure = insecure, .retries = 2};
	struct image_ref ref = {0};
	int ret = -1;

	if (config_load(CAPSULA_CONFIG_FILE, &config, err) < 0)
		return -1;
	registry_apply_site(&settings, &config, registry);
	/* Logging in is one question: no site deadline or rate applies. */
	settings.deadline_s = settings.min_rate = settings.rate_window_s = settings.retry_time_s = 0;
	snprintf(ref.registry, sizeof ref.registry, "%s", registry);
	snprintf(ref.host, sizeof ref.host, "%s",
	         strcmp(registry, "docker.io") == 0 ? "registry-1.docker.io" : registry);
	if (registry_open(&r, &ref, &settings, err) == 0) {
		credentials_clear(&r.credentials);
		r.credentials.found = true;
		snprintf(r.credentials.user, sizeof r.credentials.user, "%s", user);
		snprintf(r.credentials.password, sizeof r.credentials.password, "%s", password);
		snprintf(r.credentials.source, sizeof r.credentials.source, "standard input");
		if (registry_connect(&c, &r, err) == 0) {
			ret = registry_check_access(&c, err);
			registry_disconnect(&c);
		}
		registry_close(&r);
	}
	config_free(&config);
	return ret;
}

int login_main(int argc, char **argv)
{
	static const struct option options[] = {
		{"username", required_argument, NULL, 'u'},
		{"tls-ca", required_argument, NULL, OPT_TLS_CA},
		{"insecure", no_argument, NULL, OPT_INSECURE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	const char *user = getenv("CAPSULA_DOCKER_USERNAME"), *registry;
	const char *ca_file = getenv("CAPSULA_TLS_CA");
	char password[PASSWORD_MAX], file[4096];
	struct image_ref parsed;
	bool insecure = false;
	int c, ret = -1;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:u:h", options, NULL)) != -1) {
		switch (c) {
		case 'u':
			user = optarg;
			break;
		case OPT_TLS_CA:
			ca_file = optarg;
			break;
		case OPT_INSECURE:
			insecure = true;
			break;
		case 'h':
			fputs(login_usage, stdout);
			return 0;
		case ':':
			fail(&err, 0, USAGE_HINT, "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			fail_unknown_option(&err, options, argv[optind - 1], USAGE_HINT);
			goto out;
		}
	}
	if (argc - optind != 1) {
		fail(&err, 0, USAGE_HINT, "give one REGISTRY");
		goto out;
	}
	if (user == NULL || user[0] == '\0') {
		fail(&err, 0, "give it with -u USER", "no user name");
		goto out;
	}
	/* "docker.io", "index.docker.io" and a full reference all name a registry. */
	registry = argv[optind];
	if (strchr(registry, '/') == NULL && (strchr(registry, '.') || strchr(registry, ':') ||
	                                      strcmp(registry, "localhost") == 0)) {
		char probe[600];

		snprintf(probe, sizeof probe, "%s/x", registry);
		if (image_ref_parse(probe, &parsed, &err) < 0)
			goto out;
	} else if (image_ref_parse(registry, &parsed, &err) < 0) {
		goto out;
	}
	if (read_password(password, sizeof password, &err) < 0)
		goto out;
	if (check_with_registry(parsed.registry, ca_file, insecure, user, password, &err) == 0 &&
	    credentials_store(parsed.registry, user, password, file, sizeof file, &err) == 0) {
		fprintf(stderr, "capsula: logged in to %s as %s; credentials in %s\n",
		        parsed.registry, user, file);
		ret = 0;
	}
	explicit_bzero(password, sizeof password);
out:
	if (ret < 0)
		error_print(&err);
	return ret < 0 ? err.status : 0;
}
