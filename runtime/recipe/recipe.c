#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/recipe/recipe.h"

static const char *const kind_names[] = {
	[STEP_RUN] = "RUN", [STEP_COPY] = "COPY", [STEP_ADD] = "ADD", [STEP_ENV] = "ENV",
	[STEP_ARG] = "ARG", [STEP_WORKDIR] = "WORKDIR", [STEP_USER] = "USER",
	[STEP_SHELL] = "SHELL", [STEP_LABEL] = "LABEL", [STEP_CMD] = "CMD",
	[STEP_ENTRYPOINT] = "ENTRYPOINT", [STEP_EXPOSE] = "EXPOSE", [STEP_VOLUME] = "VOLUME",
	[STEP_STOPSIGNAL] = "STOPSIGNAL", [STEP_HEALTHCHECK] = "HEALTHCHECK",
	[STEP_ONBUILD] = "ONBUILD", [STEP_FILE] = "FILE", [STEP_TEST] = "TEST",
};

const char *step_kind_name(enum step_kind kind)
{
	return kind_names[kind];
}

struct step *steps_add(struct step **steps, size_t *count, enum step_kind kind, unsigned line)
{
	struct step *grown = realloc(*steps, (*count + 1) * sizeof *grown);

	if (grown == NULL)
		return NULL;
	*steps = grown;
	grown = &grown[(*count)++];
	memset(grown, 0, sizeof *grown);
	grown->kind = kind;
	grown->line = line;
	return grown;
}

static void step_free(struct step *s)
{
	free(s->text);
	strvec_free(&s->flags);
	strvec_free(&s->args);
	free(s->has_value);
	for (size_t i = 0; i < s->heredoc_count; i++) {
		free(s->heredocs[i].name);
		free(s->heredocs[i].body);
	}
	free(s->heredocs);
	free(s->content);
}

void recipe_free(struct recipe *r)
{
	for (size_t i = 0; i < r->global_count; i++)
		step_free(&r->global_args[i]);
	free(r->global_args);
	for (size_t i = 0; i < r->count; i++) {
		struct stage *st = &r->stages[i];

		for (size_t k = 0; k < st->count; k++)
			step_free(&st->steps[k]);
		free(st->steps);
		free(st->name);
		free(st->from);
		strvec_free(&st->from_flags);
	}
	free(r->stages);
	free(r->file);
	memset(r, 0, sizeof *r);
}
