#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "runtime/config/cdi_spec.h"

/* Aliases let a small YAML file name one node many times; the tree made
 * from it is bounded, as a JSON file's is by its size. */
#define MAX_TREE_NODES 100000
#define MAX_TREE_DEPTH 64

static bool ends_with(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s && strcmp(name + n - s, suffix) == 0;
}

bool cdi_spec_name(const char *name)
{
	return ends_with(name, ".json") || ends_with(name, ".yaml") || ends_with(name, ".yml");
}

struct yaml_tree {
	yaml_document_t *doc;
	size_t made;
	bool failed;
	const char *name;
	capsula_error *err;
};

/* A plain scalar is typed as YAML reads it (numbers, booleans, null); a
 * quoted one is a string. */
static json_t *scalar_value(const yaml_node_t *node)
{
	const char *text = (const char *)node->data.scalar.value;
	char *end;
	long long number;

	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(text, node->data.scalar.length);
	if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
		return json_boolean(text[0] == 't');
	if (strcmp(text, "null") == 0 || strcmp(text, "~") == 0 || text[0] == '\0')
		return json_null();
	if (isdigit((unsigned char)text[0]) ||
	    ((text[0] == '-' || text[0] == '+') && isdigit((unsigned char)text[1]))) {
		errno = 0;
		number = strtoll(text, &end, 0);
		if (errno == 0 && *end == '\0')
			return json_integer(number);
	}
	return json_stringn(text, node->data.scalar.length);
}

static json_t *tree_of(struct yaml_tree *t, const yaml_node_t *node, unsigned depth)
{
	json_t *value = NULL;

	if (node == NULL || depth > MAX_TREE_DEPTH || ++t->made > MAX_TREE_NODES) {
		t->failed = true;
		fail(t->err, 0, "ask the administrator to fix the spec", "CDI spec %s: nested too "
		     "deep or too large (more than %d levels or %d values)", t->name, MAX_TREE_DEPTH,
		     MAX_TREE_NODES);
		return NULL;
	}
	switch (node->type) {
	case YAML_SCALAR_NODE:
		value = scalar_value(node);
		break;
	case YAML_SEQUENCE_NODE:
		value = json_array();
		for (yaml_node_item_t *i = node->data.sequence.items.start;
		     value != NULL && i < node->data.sequence.items.top; i++) {
			json_t *item = tree_of(t, yaml_document_get_node(t->doc, *i), depth + 1);

			if (item == NULL || json_array_append_new(value, item) < 0) {
				json_decref(value);
				value = NULL;
			}
		}
		break;
	case YAML_MAPPING_NODE:
		value = json_object();
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     value != NULL && p < node->data.mapping.pairs.top; p++) {
			const yaml_node_t *key = yaml_document_get_node(t->doc, p->key);
			json_t *item;

			if (key == NULL || key->type != YAML_SCALAR_NODE) {
				t->failed = true;
				fail(t->err, 0, "ask the administrator to fix the spec",
				     "CDI spec %s: a key that is not a plain name", t->name);
				json_decref(value);
				return NULL;
			}
			item = tree_of(t, yaml_document_get_node(t->doc, p->value), depth + 1);
			if (item == NULL ||
			    json_object_set_new(value, (const char *)key->data.scalar.value, item) < 0) {
				json_decref(value);
				value = NULL;
			}
		}
		break;
	default:
		break;
	}
	if (value == NULL && !t->failed) {
		t->failed = true;
		fail(t->err, ENOMEM, NULL, "CDI spec %s", t->name);
	}
	return value;
}

static int parse_yaml(const char *text, size_t length, const char *name, json_t **spec,
                      capsula_error *err)
{
	struct yaml_tree t = {.name = name, .err = err};
	yaml_parser_t parser;
	yaml_document_t doc;
	int ret = -1;

	if (!yaml_parser_initialize(&parser))
		return fail(err, ENOMEM, NULL, "CDI spec %s", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, length);
	if (!yaml_parser_load(&parser, &doc)) {
		fail(err, 0, "ask the administrator to fix the spec", "CDI spec %s: line %zu: %s",
		     name, parser.problem_mark.line + 1,
		     parser.problem != NULL ? parser.problem : "not YAML");
		yaml_parser_delete(&parser);
		return -1;
	}
	t.doc = &doc;
	*spec = tree_of(&t, yaml_document_get_root_node(&doc), 0);
	if (*spec != NULL && !json_is_object(*spec)) {
		json_decref(*spec);
		*spec = NULL;
		fail(err, 0, "ask the administrator to fix the spec", "CDI spec %s: not a mapping",
		     name);
	}
	if (*spec != NULL)
		ret = 0;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}

int cdi_spec_parse(const char *text, size_t length, const char *name, json_t **spec,
                   capsula_error *err)
{
	json_error_t problem;

	*spec = NULL;
	if (ends_with(name, ".yaml") || ends_with(name, ".yml"))
		return parse_yaml(text, length, name, spec, err);
	*spec = json_loadb(text, length, JSON_REJECT_DUPLICATES, &problem);
	if (*spec == NULL)
		return fail(err, 0, "ask the administrator to fix the spec",
		            "CDI spec %s: line %d: %s", name, problem.line, problem.text);
	if (!json_is_object(*spec)) {
		json_decref(*spec);
		*spec = NULL;
		return fail(err, 0, "ask the administrator to fix the spec",
		            "CDI spec %s: not an object", name);
	}
	return 0;
}

/* CDI's rules: a letter (a letter or digit for a device) first, a letter or
 * digit last, and between them letters, digits and the characters of
 * between. */
static bool well_formed(const char *s, size_t n, bool digit_first, const char *between)
{
	if (n == 0 || !isalnum((unsigned char)s[n - 1]) ||
	    !(isalpha((unsigned char)s[0]) || (digit_first && isdigit((unsigned char)s[0]))))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(between, s[i]) == NULL)
			return false;
	return true;
}

int cdi_device_name(const char *qualified, char *kind, size_t kind_size, char *device,
                    size_t device_size, capsula_error *err)
{
	const char *slash = strchr(qualified, '/');
	const char *equals = strchr(qualified, '=');
	size_t vendor_len, class_len, device_len;

	if (slash == NULL || equals == NULL || equals < slash)
		return fail(err, 0, "name a device as VENDOR/CLASS=NAME, such as nvidia.com/gpu=0",
		            "--device %s: not VENDOR/CLASS=NAME", qualified);
	vendor_len = (size_t)(slash - qualified);
	class_len = (size_t)(equals - slash - 1);
	device_len = strlen(equals + 1);
	if (!well_formed(qualified, vendor_len, false, "-_.") ||
	    !well_formed(slash + 1, class_len, false, "-_") ||
	    !well_formed(equals + 1, device_len, true, "-_.:"))
		return fail(err, 0, "a vendor is a domain name, a class a word, a name letters, "
		            "digits and -_.: (CDI's rules)",
		            "--device %s: a malformed CDI device name", qualified);
	if (vendor_len + 1 + class_len >= kind_size || device_len >= device_size)
		return fail(err, ENAMETOOLONG, NULL, "--device %s", qualified);
	memcpy(kind, qualified, vendor_len + 1 + class_len);
	kind[vendor_len + 1 + class_len] = '\0';
	memcpy(device, equals + 1, device_len + 1);
	return 0;
}
