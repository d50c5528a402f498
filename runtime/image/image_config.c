#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_out.h"
#include "runtime/image/image_config.h"

static int strings_from(const json_t *value, const char *name, struct strvec *out,
                        char *why, size_t why_size)
{
	size_t i;
	const json_t *item;

	if (value == NULL || json_is_null(value))
		return 0;
	if (!json_is_array(value)) {
		snprintf(why, why_size, "config %s is not a list", name);
		return -1;
	}
	json_array_foreach(value, i, item) {
		if (!json_is_string(item)) {
			snprintf(why, why_size, "config %s holds a non-string", name);
			return -1;
		}
		if (strvec_push(out, json_string_value(item)) < 0) {
			snprintf(why, why_size, "%s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* {"80/tcp": {}, ...}: the keys. */
static int keys_from(const json_t *value, const char *name, struct strvec *out, char *why,
                     size_t why_size)
{
	const char *key;
	const json_t *item;

	if (value == NULL || json_is_null(value))
		return 0;
	if (!json_is_object(value)) {
		snprintf(why, why_size, "config %s is not an object", name);
		return -1;
	}
	json_object_foreach((json_t *)value, key, item)
		if (strvec_push(out, key) < 0) {
			snprintf(why, why_size, "%s", strerror(errno));
			return -1;
		}
	return 0;
}

static int string_from(const json_t *value, char **out, char *why, size_t why_size)
{
	const char *text = json_string_value(value);

	if (text == NULL || text[0] == '\0')
		return 0;
	*out = strdup(text);
	if (*out == NULL) {
		snprintf(why, why_size, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

static int labels_from(const json_t *value, struct image_config *config, char *why,
                       size_t why_size)
{
	const char *key;
	const json_t *item;

	if (value == NULL || json_is_null(value))
		return 0;
	if (!json_is_object(value)) {
		snprintf(why, why_size, "config Labels is not an object");
		return -1;
	}
	json_object_foreach((json_t *)value, key, item) {
		if (!json_is_string(item)) {
			snprintf(why, why_size, "label %s is not a string", key);
			return -1;
		}
		if (strvec_push(&config->label_keys, key) < 0 ||
		    strvec_push(&config->label_values, json_string_value(item)) < 0) {
			snprintf(why, why_size, "%s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

int image_config_from_json(const json_t *document, struct image_config *config,
                           char *why, size_t why_size)
{
	const json_t *c = json_object_get(document, "config");
	const char *workdir;

	memset(config, 0, sizeof *config);
	if (!json_is_object(document)) {
		snprintf(why, why_size, "the image config is not a JSON object");
		return -1;
	}
	if (c == NULL || json_is_null(c))
		return 0;
	if (!json_is_object(c)) {
		snprintf(why, why_size, "the image config's config is not an object");
		return -1;
	}
	workdir = json_string_value(json_object_get(c, "WorkingDir"));
	if (strings_from(json_object_get(c, "Env"), "Env", &config->env, why, why_size) < 0 ||
	    strings_from(json_object_get(c, "Entrypoint"), "Entrypoint", &config->entrypoint, why,
	                 why_size) < 0 ||
	    strings_from(json_object_get(c, "Cmd"), "Cmd", &config->cmd, why, why_size) < 0 ||
	    labels_from(json_object_get(c, "Labels"), config, why, why_size) < 0 ||
	    string_from(json_object_get(c, "User"), &config->user, why, why_size) < 0 ||
	    keys_from(json_object_get(c, "ExposedPorts"), "ExposedPorts", &config->exposed_ports,
	              why, why_size) < 0 ||
	    keys_from(json_object_get(c, "Volumes"), "Volumes", &config->volumes, why, why_size) < 0 ||
	    string_from(json_object_get(c, "StopSignal"), &config->stop_signal, why, why_size) < 0 ||
	    strings_from(json_object_get(json_object_get(c, "Healthcheck"), "Test"), "Healthcheck",
	                 &config->healthcheck, why, why_size) < 0)
		goto fail;
	if (workdir != NULL && workdir[0] != '\0' && (config->workdir = strdup(workdir)) == NULL) {
		snprintf(why, why_size, "%s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	image_config_free(config);
	return -1;
}

int image_config_parse(const char *text, size_t length, struct image_config *config,
                       char *why, size_t why_size)
{
	json_error_t error;
	json_t *document = json_loadb(text, length, 0, &error);
	int ret;

	memset(config, 0, sizeof *config);
	if (document == NULL) {
		snprintf(why, why_size, "line %d: %s", error.line, error.text);
		return -1;
	}
	ret = image_config_from_json(document, config, why, why_size);
	json_decref(document);
	return ret;
}

int image_config_add_labels(const char *text, size_t length, struct image_config *config,
                            char *why, size_t why_size)
{
	json_error_t problem;
	json_t *labels = json_loadb(text, length, 0, &problem);
	const char *key;
	const json_t *item;
	int ret = 0;

	if (!json_is_object(labels)) {
		snprintf(why, why_size, "%s", labels ? "not a JSON object" : problem.text);
		json_decref(labels);
		return -1;
	}
	json_object_foreach(labels, key, item) {
		bool known = false;

		for (size_t i = 0; i < config->label_keys.count && !known; i++)
			known = strcmp(config->label_keys.items[i], key) == 0;
		if (known || !json_is_string(item))
			continue;
		if (strvec_push(&config->label_keys, key) < 0 ||
		    strvec_push(&config->label_values, json_string_value(item)) < 0) {
			snprintf(why, why_size, "%s", strerror(errno));
			ret = -1;
			break;
		}
	}
	json_decref(labels);
	return ret;
}

json_t *json_labels(const struct image_config *config)
{
	json_t *labels = json_object();

	for (size_t i = 0; labels != NULL && i < config->label_keys.count; i++)
		if (json_object_set_new(labels, config->label_keys.items[i],
		                        json_text(config->label_values.items[i])) < 0) {
			json_decref(labels);
			labels = NULL;
		}
	return labels;
}

/* {"KEY": {}, ...} */
static json_t *key_set(const struct strvec *keys)
{
	json_t *set = json_object();

	for (size_t i = 0; set != NULL && i < keys->count; i++)
		if (json_object_set_new(set, keys->items[i], json_object()) < 0) {
			json_decref(set);
			set = NULL;
		}
	return set;
}

/* The members that are set, besides those every config has. */
static int add_optional(json_t *c, const struct image_config *config)
{
	int ret = 0;

	if (config->user != NULL)
		ret |= json_object_set_new(c, "User", json_text(config->user));
	if (config->exposed_ports.count > 0)
		ret |= json_object_set_new(c, "ExposedPorts", key_set(&config->exposed_ports));
	if (config->volumes.count > 0)
		ret |= json_object_set_new(c, "Volumes", key_set(&config->volumes));
	if (config->stop_signal != NULL)
		ret |= json_object_set_new(c, "StopSignal", json_text(config->stop_signal));
	if (config->healthcheck.count > 0)
		ret |= json_object_set_new(c, "Healthcheck",
		                           json_pack("{s:o}", "Test",
		                                     json_text_list(config->healthcheck.items,
		                                                    config->healthcheck.count)));
	return ret;
}

json_t *image_config_to_json(const struct image_config *config)
{
	json_t *document = json_pack("{s:{s:o,s:o,s:o,s:s,s:o}}", "config",
	                             "Env", json_text_list(config->env.items, config->env.count),
	                             "Entrypoint", json_text_list(config->entrypoint.items,
	                                                          config->entrypoint.count),
	                             "Cmd", json_text_list(config->cmd.items, config->cmd.count),
	                             "WorkingDir", config->workdir ? config->workdir : "",
	                             "Labels", json_labels(config));

	if (document != NULL && add_optional(json_object_get(document, "config"), config) != 0) {
		json_decref(document);
		return NULL;
	}
	return document;
}

void image_config_free(struct image_config *config)
{
	strvec_free(&config->env);
	strvec_free(&config->entrypoint);
	strvec_free(&config->cmd);
	strvec_free(&config->label_keys);
	strvec_free(&config->label_values);
	strvec_free(&config->exposed_ports);
	strvec_free(&config->volumes);
	strvec_free(&config->healthcheck);
	free(config->workdir);
	free(config->user);
	free(config->stop_signal);
	memset(config, 0, sizeof *config);
}
