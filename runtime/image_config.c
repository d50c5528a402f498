#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/image_config.h"

static int strings_from(const struct json *value, const char *name, struct strvec *out,
                        char *why, size_t why_size)
{
	if (value == NULL || value->type == JSON_NULL)
		return 0;
	if (value->type != JSON_ARRAY) {
		snprintf(why, why_size, "config %s is not a list", name);
		return -1;
	}
	for (size_t i = 0; i < value->count; i++) {
		const char *s = json_string(&value->items[i]);

		if (s == NULL) {
			snprintf(why, why_size, "config %s holds a non-string", name);
			return -1;
		}
		if (strvec_push(out, s) < 0) {
			snprintf(why, why_size, "%s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int labels_from(const struct json *value, struct image_config *config, char *why,
                       size_t why_size)
{
	if (value == NULL || value->type == JSON_NULL)
		return 0;
	if (value->type != JSON_OBJECT) {
		snprintf(why, why_size, "config Labels is not an object");
		return -1;
	}
	for (size_t i = 0; i < value->count; i++) {
		const char *s = json_string(&value->items[i]);

		if (s == NULL) {
			snprintf(why, why_size, "label %s is not a string", value->keys[i]);
			return -1;
		}
		if (strvec_push(&config->label_keys, value->keys[i]) < 0 ||
		    strvec_push(&config->label_values, s) < 0) {
			snprintf(why, why_size, "%s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

int image_config_from_json(const struct json *document, struct image_config *config,
                           char *why, size_t why_size)
{
	const struct json *c = json_get(document, "config");
	const struct json *workdir;

	memset(config, 0, sizeof *config);
	if (document == NULL || document->type != JSON_OBJECT) {
		snprintf(why, why_size, "the image config is not a JSON object");
		return -1;
	}
	if (c == NULL || c->type == JSON_NULL)
		return 0;
	workdir = json_get(c, "WorkingDir");
	if (strings_from(json_get(c, "Env"), "Env", &config->env, why, why_size) < 0 ||
	    strings_from(json_get(c, "Entrypoint"), "Entrypoint", &config->entrypoint, why,
	                 why_size) < 0 ||
	    strings_from(json_get(c, "Cmd"), "Cmd", &config->cmd, why, why_size) < 0 ||
	    labels_from(json_get(c, "Labels"), config, why, why_size) < 0)
		goto fail;
	if (json_string(workdir) != NULL && json_string(workdir)[0] != '\0' &&
	    (config->workdir = strdup(json_string(workdir))) == NULL) {
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
	struct json document;
	int ret;

	memset(config, 0, sizeof *config);
	if (json_parse(text, length, &document, why, why_size) < 0)
		return -1;
	ret = image_config_from_json(&document, config, why, why_size);
	json_free(&document);
	return ret;
}

void json_write_strings(FILE *out, char *const *items, size_t count)
{
	putc('[', out);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			fputs(", ", out);
		json_write_string(out, items[i]);
	}
	putc(']', out);
}

void json_write_labels(FILE *out, const struct image_config *config)
{
	putc('{', out);
	for (size_t i = 0; i < config->label_keys.count; i++) {
		fputs(i > 0 ? ", " : "", out);
		json_write_string(out, config->label_keys.items[i]);
		fputs(": ", out);
		json_write_string(out, config->label_values.items[i]);
	}
	putc('}', out);
}

void image_config_write(const struct image_config *config, FILE *out)
{
	fputs("{\"config\": {\n  \"Env\": ", out);
	json_write_strings(out, config->env.items, config->env.count);
	fputs(",\n  \"Entrypoint\": ", out);
	json_write_strings(out, config->entrypoint.items, config->entrypoint.count);
	fputs(",\n  \"Cmd\": ", out);
	json_write_strings(out, config->cmd.items, config->cmd.count);
	fputs(",\n  \"WorkingDir\": ", out);
	json_write_string(out, config->workdir ? config->workdir : "");
	fputs(",\n  \"Labels\": ", out);
	json_write_labels(out, config);
	fputs("\n}}\n", out);
}

void image_config_free(struct image_config *config)
{
	strvec_free(&config->env);
	strvec_free(&config->entrypoint);
	strvec_free(&config->cmd);
	strvec_free(&config->label_keys);
	strvec_free(&config->label_values);
	free(config->workdir);
	memset(config, 0, sizeof *config);
}
