/* Container Device Interface spec files as the administrator (or a device
 * vendor's tool, such as nvidia-ctk) writes them: JSON, or YAML read with
 * libyaml, both into one jansson tree so that one reader interprets them. */
#ifndef CAPSULA_CDI_SPEC_H
#define CAPSULA_CDI_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

/* A spec file is a few KiB; vendors' largest are under 100 KiB. */
#define CDI_SPEC_MAX_BYTES (4u << 20)

/* Does the file name end in .json, .yaml or .yml (the spec files)? */
bool cdi_spec_name(const char *name);

/* Parse text (length bytes of the file called name, YAML when the name
 * ends in .yaml or .yml) into *spec. */
int cdi_spec_parse(const char *text, size_t length, const char *name, json_t **spec,
                   capsula_error *err);

/* "VENDOR/CLASS=NAME" split at '=', checked against CDI's rules for each
 * part: kind gets "VENDOR/CLASS", device NAME. */
int cdi_device_name(const char *qualified, char *kind, size_t kind_size, char *device,
                    size_t device_size, capsula_error *err);

#endif
