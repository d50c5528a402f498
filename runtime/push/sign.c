#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/option_hint.h"
#include "common/sha256.h"
#include "runtime/config/site_config.h"
#include "runtime/pull/registry.h"
#include "runtime/pull/signature.h"
#include "runtime/push/push.h"
#include "runtime/push/sign.h"

static const char sign_usage[] =
	"Usage: capsula sign --key KEY [OPTIONS] [IMAGE] docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]\n"
	"Sign the image a registry holds under REF, as cosign does: a simple-signing\n"
	"payload naming its manifest digest, signed with KEY (PEM, ECDSA P-256 or\n"
	"Ed25519, not encrypted: openssl genpkey), kept under the tag sha256-HEX.sig\n"
	"beside the signatures already there. Given IMAGE, the registry's image must be\n"
	"the one 'capsula push IMAGE' gives, or nothing is signed.\n"
	"\n"
	"  --key FILE                the private key\n"
	"  --tls-ca FILE, --insecure, --retries N   as for capsula push\n"
	"  -q, --quiet               only warnings and errors\n"
	"  -h, --help                this text\n";

#define USAGE_HINT "see 'capsula sign --help'"
#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"

struct sign {
	const char *key_path, *image, *ref_text;
	struct registry_access access;
	bool quiet;
	struct image_ref ref;
	char name[700];
	char digest[72];             /* what is signed */
	struct signature_key key;
	char *payload, *signature;
	char payload_digest[72];
	json_t *layers;              /* the signature manifest's, ours added */
	char *config_text, *manifest_text;
	struct capsula_config config;
	struct registry registry;
	bool registry_open;
	struct registry_connection connection;
};

enum { OPT_KEY = 256 };

static const struct option long_options[] = {
	{"key", required_argument, NULL, OPT_KEY},
	REGISTRY_LONG_OPTIONS,
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* 1: help was asked for. */
static int parse_options(struct sign *s, int argc, char **argv, capsula_error *err)
{
	int c;

	registry_access_default(&s->access);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:qh", long_options, NULL)) != -1) {
		int applied = registry_access_option(c, optarg, &s->access, USAGE_HINT, err);

		if (applied < 0)
			return -1;
		if (applied > 0)
			continue;
		switch (c) {
		case OPT_KEY:
			s->key_path = optarg;
			break;
		case 'q':
			s->quiet = true;
			break;
		case 'h':
			return 1;
		case ':':
			return fail(err, 0, USAGE_HINT, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fail_unknown_option(err, long_options, argv[optind - 1], USAGE_HINT);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		return fail(err, 0, USAGE_HINT, "give the image's reference (and, if wanted, the image)");
	if (s->key_path == NULL)
		return fail(err, 0, USAGE_HINT, "give the private key with --key FILE");
	s->image = argc - optind == 2 ? argv[optind] : NULL;
	s->ref_text = argv[argc - 1];
	return 0;
}

static int open_registry(struct sign *s, capsula_error *err)
{
	struct registry_settings settings = {
		.ca_file = s->access.tls_ca, .insecure = s->access.insecure,
		.retries = s->access.retries,
		.quiet = s->quiet, .push = true,
	};

	if (image_ref_parse(s->ref_text, &s->ref, err) < 0 ||
	    config_load(CAPSULA_CONFIG_FILE, &s->config, err) < 0)
		return -1;
	image_ref_format(&s->ref, s->name, sizeof s->name);
	registry_apply_site(&settings, &s->config, s->ref.registry);
	if (registry_open(&s->registry, &s->ref, &settings, err) < 0)
		return -1;
	s->registry_open = true;
	return registry_connect(&s->connection, &s->registry, err);
}

/* The digest the reference names now; with IMAGE, it must be IMAGE's. */
static int find_digest(struct sign *s, capsula_error *err)
{
	char *body, type[128], expected[72];
	size_t length;

	if (registry_get_manifest(&s->connection, image_ref_reference(&s->ref), &body, &length, type,
	                          sizeof type, s->digest, err) < 0)
		return -1;
	free(body);
	if (s->image == NULL)
		return 0;
	struct push_options push = {
		.image = s->image, .ref = s->ref_text, .quiet = true, .no_upload = true,
		.layer = {.compression = "gzip"},
	};

	if (s->ref.tag[0] == '\0')
		return fail(err, 0, "name the tag IMAGE was pushed to", "%s: give a tag with IMAGE",
		            s->ref_text);
	if (push_image(&push, expected, err) < 0)
		return -1;
	if (strcmp(expected, s->digest) != 0)
		return fail(err, 0, "push IMAGE again, or sign the reference alone",
		            "%s is %s, not the image %s pushes as (%s, with gzip)", s->name, s->digest,
		            s->image, expected);
	return 0;
}

static int make_signature(struct sign *s, capsula_error *err)
{
	char repository[600];

	if (signature_load_private_key(s->key_path, &s->key, err) < 0)
		return -1;
	snprintf(repository, sizeof repository, "%s/%s", s->ref.registry, s->ref.repository);
	s->payload = signature_payload(repository, s->digest);
	if (s->payload == NULL)
		return fail(err, ENOMEM, NULL, "signature payload");
	sha256_digest_of(s->payload, strlen(s->payload), s->payload_digest);
	return signature_sign(&s->key, s->payload, strlen(s->payload), &s->signature, err);
}

/* The signatures already kept for the digest, ours added. */
static int gather_layers(struct sign *s, const char *tag, capsula_error *err)
{
	char *body = NULL, type[128], found[72];
	size_t length;
	json_t *doc = NULL, *ours;
	int absent = registry_find_manifest(&s->connection, tag, &body, &length, type, sizeof type,
	                                    found, err);

	if (absent < 0)
		return -1;
	if (absent == 0)
		doc = json_loadb(body, length, 0, NULL);
	free(body);
	s->layers = json_incref(json_object_get(doc, "layers"));
	json_decref(doc);
	if (!json_is_array(s->layers)) {
		json_decref(s->layers);
		s->layers = json_array();
	}
	ours = json_pack("{s:s, s:I, s:s, s:{s:s}}", "mediaType", SIMPLE_SIGNING_TYPE,
	                 "size", (json_int_t)strlen(s->payload), "digest", s->payload_digest,
	                 "annotations", SIGNATURE_ANNOTATION, s->signature);
	if (s->layers == NULL || ours == NULL || json_array_append_new(s->layers, ours) < 0)
		return fail(err, ENOMEM, NULL, "signature manifest");
	return 0;
}

static int make_documents(struct sign *s, char config_digest[72], capsula_error *err)
{
	json_t *diff_ids = json_array(), *config, *manifest;
	const json_t *layer;
	size_t i;

	json_array_foreach(s->layers, i, layer) {
		json_array_append(diff_ids, json_object_get(layer, "digest"));
	}
	config = json_pack("{s:s, s:{}, s:s, s:[{s:s}], s:s, s:{s:s, s:o}}", "architecture", "",
	                   "config", "created", "0001-01-01T00:00:00Z", "history", "created",
	                   "0001-01-01T00:00:00Z", "os", "", "rootfs", "type", "layers",
	                   "diff_ids", diff_ids);
	s->config_text = config ? json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(config);
	if (s->config_text == NULL)
		return fail(err, ENOMEM, NULL, "signature config");
	sha256_digest_of(s->config_text, strlen(s->config_text), config_digest);
	manifest = json_pack("{s:i, s:s, s:{s:s, s:I, s:s}, s:O}", "schemaVersion", 2, "mediaType",
	                     OCI_MANIFEST, "config", "mediaType", OCI_CONFIG, "size",
	                     (json_int_t)strlen(s->config_text), "digest", config_digest, "layers",
	                     s->layers);
	s->manifest_text = manifest ? json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(manifest);
	return s->manifest_text ? 0 : fail(err, ENOMEM, NULL, "signature manifest");
}

static int send_if_missing(struct sign *s, const char *text, const char *digest,
                           capsula_error *err)
{
	bool has = false;

	if (registry_has_blob(&s->connection, digest, &has, err) < 0)
		return -1;
	return has ? 0 : registry_push_blob(&s->connection, -1, text, strlen(text), digest, NULL,
	                                    err);
}

static int store(struct sign *s, capsula_error *err)
{
	char tag[96], config_digest[72];

	signature_tag(s->digest, tag, sizeof tag);
	if (gather_layers(s, tag, err) < 0 || make_documents(s, config_digest, err) < 0 ||
	    send_if_missing(s, s->payload, s->payload_digest, err) < 0 ||
	    send_if_missing(s, s->config_text, config_digest, err) < 0)
		return -1;
	return registry_put_manifest(&s->connection, tag, s->manifest_text,
	                             strlen(s->manifest_text), OCI_MANIFEST, err);
}

static void release(struct sign *s)
{
	registry_disconnect(&s->connection);
	if (s->registry_open)
		registry_close(&s->registry);
	signature_key_free(&s->key);
	free(s->payload);
	free(s->signature);
	free(s->config_text);
	free(s->manifest_text);
	json_decref(s->layers);
	config_free(&s->config);
}

int sign_main(int argc, char **argv)
{
	struct sign s = {0};
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	int parsed = parse_options(&s, argc, argv, &err);

	if (parsed == 1) {
		fputs(sign_usage, stdout);
		return 0;
	}
	if (parsed < 0 || open_registry(&s, &err) < 0 || find_digest(&s, &err) < 0 ||
	    make_signature(&s, &err) < 0 || store(&s, &err) < 0) {
		release(&s);
		error_print(&err);
		return err.status;
	}
	if (!s.quiet)
		fprintf(stderr, "capsula: signed %s (%s) with %s (%s)\n", s.name, s.digest, s.key_path,
		        s.key.fingerprint);
	release(&s);
	return 0;
}
