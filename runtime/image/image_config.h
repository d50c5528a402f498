/* What an image says about how to run it: the OCI/docker image config's
 * Env, Entrypoint, Cmd, WorkingDir, Labels, User, ExposedPorts, Volumes,
 * StopSignal and Healthcheck. capsula build keeps them in
 * the image at IMAGE_CONFIG_PATH in the same JSON shape, so one reader
 * serves both. */
#ifndef CAPSULA_IMAGE_CONFIG_H
#define CAPSULA_IMAGE_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#include "common/strvec.h"

#define IMAGE_METADATA_DIR "/.capsula"
#define IMAGE_CONFIG_PATH IMAGE_METADATA_DIR "/config.json"
/* The Dockerfile or definition file a recipe build made the image from. */
#define IMAGE_RECIPE_PATH IMAGE_METADATA_DIR "/recipe"

struct image_config {
	struct strvec env;          /* K=V */
	struct strvec entrypoint;
	struct strvec cmd;
	char *workdir;              /* NULL when unset */
	struct strvec label_keys;   /* parallel to label_values */
	struct strvec label_values;
	char *user;                 /* USER, NULL when unset */
	struct strvec exposed_ports;  /* "80/tcp" */
	struct strvec volumes;
	char *stop_signal;
	struct strvec healthcheck;  /* its Test: ["CMD", ...], ["NONE"] */
};

/* From a parsed config document ({"config": {...}}); absent or null
 * members leave their field empty. Returns -1 with why for wrong types. */
int image_config_from_json(const json_t *document, struct image_config *config,
                           char *why, size_t why_size);
int image_config_parse(const char *text, size_t length, struct image_config *config,
                       char *why, size_t why_size);
/* The config as capsula keeps it in an image (a new reference). */
json_t *image_config_to_json(const struct image_config *config);
void image_config_free(struct image_config *config);

/* Labels from a JSON object of strings (Apptainer's labels.json), those
 * not already set; other values are left out. */
int image_config_add_labels(const char *text, size_t length, struct image_config *config,
                            char *why, size_t why_size);
/* The labels as one JSON object (a new reference, NULL on ENOMEM). */
json_t *json_labels(const struct image_config *config);

#endif
