/* CDI specs: JSON and YAML into one tree (YAML's plain scalars typed, quoted
 * ones strings), errors with the file and line, a bound on what aliases can
 * make of a small file; device names by CDI's rules. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/cdi_spec.h"
#include "runtime/config/site_config.h"
#include "tests/unit/tap.h"

static json_t *parse(const char *text, const char *name, capsula_error *err)
{
	json_t *spec = NULL;

	memset(err, 0, sizeof *err);
	if (cdi_spec_parse(text, strlen(text), name, &spec, err) < 0)
		return NULL;
	return spec;
}

static void test_yaml(void)
{
	const char *text =
		"cdiVersion: \"0.6.0\"\n"
		"kind: vendor.example/gpu\n"
		"devices:\n"
		"  - name: \"0\"\n"
		"    containerEdits:\n"
		"      env: [A=1]\n"
		"      deviceNodes:\n"
		"        - {path: /dev/g0, major: 195, minor: 0x10, fileMode: 0640}\n"
		"      mounts: [{hostPath: /h, containerPath: /c, options: [ro]}]\n"
		"  - name: 1\n"
		"    flag: true\n"
		"    nothing: ~\n";
	capsula_error err;
	json_t *spec = parse(text, "gpu.yaml", &err);
	json_t *devices, *node;

	ok(spec != NULL, "a YAML spec parses: %s", err.message);
	if (spec == NULL)
		return;
	devices = json_object_get(spec, "devices");
	node = json_array_get(json_object_get(json_object_get(json_array_get(devices, 0),
	                                                      "containerEdits"), "deviceNodes"), 0);
	ok(json_is_string(json_object_get(spec, "cdiVersion")), "a quoted version stays a string");
	ok(json_is_string(json_object_get(json_array_get(devices, 0), "name")) &&
	   json_is_integer(json_object_get(json_array_get(devices, 1), "name")),
	   "a quoted \"0\" is a string, a plain 1 a number");
	ok(json_integer_value(json_object_get(node, "major")) == 195 &&
	   json_integer_value(json_object_get(node, "minor")) == 16 &&
	   json_integer_value(json_object_get(node, "fileMode")) == 0640,
	   "plain numbers: decimal, 0x hexadecimal, 0 octal (YAML 1.1)");
	ok(json_is_true(json_object_get(json_array_get(devices, 1), "flag")) &&
	   json_is_null(json_object_get(json_array_get(devices, 1), "nothing")),
	   "true and ~ are a boolean and null");
	ok(strcmp(json_string_value(json_array_get(json_object_get(json_object_get(
	          json_array_get(devices, 0), "containerEdits"), "env"), 0)), "A=1") == 0,
	   "flow sequences and mappings");
	json_decref(spec);
}

static void test_errors(void)
{
	capsula_error err;
	char *bomb;
	size_t used = 0;

	ok(parse("kind: [unclosed\n", "bad.yaml", &err) == NULL &&
	   strstr(err.message, "CDI spec bad.yaml: line ") != NULL,
	   "malformed YAML names the file and line: %s", err.message);
	ok(parse("{\"kind\": 1,}", "bad.json", &err) == NULL &&
	   strstr(err.message, "CDI spec bad.json: line 1") != NULL,
	   "malformed JSON too: %s", err.message);
	ok(parse("[1, 2]", "list.json", &err) == NULL && strstr(err.message, "not an object"),
	   "a spec is an object");
	ok(parse("- 1\n- 2\n", "list.yml", &err) == NULL && strstr(err.message, "not a mapping"),
	   "and a YAML spec a mapping");
	/* Ten levels of ten aliases each: ten billion values from 600 bytes. */
	bomb = malloc(4096);
	if (bomb == NULL)
		return;
	used += (size_t)snprintf(bomb + used, 4096 - used, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int level = 1; level < 10; level++)
		used += (size_t)snprintf(bomb + used, 4096 - used,
		                         "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
		                         "*a%d, *a%d]\n", level, level, level - 1, level - 1,
		                         level - 1, level - 1, level - 1, level - 1, level - 1,
		                         level - 1, level - 1, level - 1);
	ok(parse(bomb, "bomb.yaml", &err) == NULL && strstr(err.message, "too large") != NULL,
	   "aliases that multiply are bounded: %s", err.message);
	free(bomb);
}

static void test_names(void)
{
	char kind[64], name[64];
	capsula_error err = {0};

	ok(cdi_device_name("nvidia.com/gpu=0", kind, sizeof kind, name, sizeof name, &err) == 0 &&
	   strcmp(kind, "nvidia.com/gpu") == 0 && strcmp(name, "0") == 0,
	   "VENDOR/CLASS=NAME splits into kind and name");
	ok(cdi_device_name("vendor.example/a_b-c=MIG-1:2.x", kind, sizeof kind, name, sizeof name,
	                   &err) == 0, "- _ in a class, - : . in a name");
	ok(cdi_device_name("nvidia.com/gpu", kind, sizeof kind, name, sizeof name, &err) < 0 &&
	   strstr(err.message, "not VENDOR/CLASS=NAME") != NULL, "no =NAME is refused");
	ok(cdi_device_name("1vendor/gpu=0", kind, sizeof kind, name, sizeof name, &err) < 0,
	   "a vendor starting with a digit is refused");
	ok(cdi_device_name("vendor/gpu.x=0", kind, sizeof kind, name, sizeof name, &err) < 0,
	   "a . in a class is refused");
	ok(cdi_device_name("vendor/gpu=0-", kind, sizeof kind, name, sizeof name, &err) < 0,
	   "a name ending in - is refused");
	ok(cdi_device_name("vendor/gpu=a=b", kind, sizeof kind, name, sizeof name, &err) < 0,
	   "a second = is refused");
	ok(cdi_spec_name("a.json") && cdi_spec_name("b.yaml") && cdi_spec_name("c.yml") &&
	   !cdi_spec_name("d.json.bak") && !cdi_spec_name(".json"), "spec files by their suffix");
}

static void test_site_keys(void)
{
	struct capsula_config config;
	capsula_error err = {0};

	config_defaults(&config);
	ok(config.cdi_devices && config.cdi_dirs.count == 0,
	   "by default --device is allowed, with the standard directories");
	ok(config_parse("allow cdi devices = no\ncdi spec directory = /site/cdi\n"
	                "cdi spec directory = /run/cdi\n", "c.conf", &config, &err) == 0 &&
	   !config.cdi_devices && config.cdi_dirs.count == 2 &&
	   strcmp(config.cdi_dirs.items[1], "/run/cdi") == 0,
	   "the site's 'allow cdi devices' and 'cdi spec directory' lines, in order");
	config_free(&config);
	config_defaults(&config);
	ok(config_parse("cdi spec directory = cdi\n", "c.conf", &config, &err) < 0 &&
	   strstr(err.message, "c.conf line 1: cdi spec directory: expected an absolute path"),
	   "a relative spec directory is refused: %s", err.message);
	config_free(&config);
}

int main(void)
{
	test_yaml();
	test_errors();
	test_names();
	test_site_keys();
	return tap_done();
}
