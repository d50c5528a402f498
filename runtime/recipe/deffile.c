/* Apptainer/Singularity definition files: a header of "Key: value" lines
 * (Bootstrap, From, Stage), then %sections, for one stage or several, with
 * {{ NAME }} templates filled from build arguments and %arguments. Each
 * stage becomes the steps Apptainer takes, in its order: %files (COPY),
 * %post (RUN), then the files of Apptainer's layout (environment,
 * runscript, startscript, test, labels, help) and %test last. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/recipe/recipe.h"
#include "runtime/recipe/words.h"

#define HINT_DEF "see Apptainer's definition file reference"
#define SINGULARITY_DIR "/.singularity.d"
#define MAX_TEMPLATE_BYTES (1u << 20)

struct section {
	char name[32];
	char *args;              /* after the name: "from STAGE", "-c /bin/bash" */
	char *body;
	unsigned line;
};

/* One stage as the file gives it, before it becomes steps. */
struct def_stage {
	char *bootstrap, *from, *name;
	unsigned line;
	struct section *sections;
	size_t count;
};

struct def_reader {
	const char *file;
	capsula_error *err;
	struct def_stage *stages;
	size_t count;
	struct strvec arguments;  /* %arguments: NAME=VALUE defaults */
};

static char *trimmed_copy(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return strndup(s, n);
}

static void free_stages(struct def_reader *d)
{
	for (size_t i = 0; i < d->count; i++) {
		for (size_t k = 0; k < d->stages[i].count; k++) {
			free(d->stages[i].sections[k].args);
			free(d->stages[i].sections[k].body);
		}
		free(d->stages[i].sections);
		free(d->stages[i].bootstrap);
		free(d->stages[i].from);
		free(d->stages[i].name);
	}
	free(d->stages);
	strvec_free(&d->arguments);
}

/* ---------------------------------------------------------------- templates */

static const char *argument_value(const struct strvec *build_args, const struct strvec *defaults,
                                  const char *name)
{
	const char *v = build_args != NULL ? words_lookup(build_args, name) : NULL;

	return v != NULL ? v : words_lookup(defaults, name);
}

/* {{ NAME }} replaced everywhere; %arguments lines give the defaults. */
static int fill_templates(const char *text, size_t length, const char *file,
                          const struct strvec *build_args, const struct strvec *defaults,
                          char **out, capsula_error *err)
{
	size_t used = 0, size = length + 1;
	char *buf = malloc(size);
	unsigned line = 1;

	if (buf == NULL)
		return fail(err, ENOMEM, NULL, "%s", file);
	for (size_t i = 0; i < length;) {
		const char *open = text + i;
		size_t add = 1;
		const char *value = NULL;
		char name[128];

		if (i + 1 < length && open[0] == '{' && open[1] == '{') {
			const char *close = memmem(open, length - i, "}}", 2);
			char *inside = close ? trimmed_copy(open + 2, (size_t)(close - open - 2)) : NULL;

			if (inside != NULL && words_is_name(inside) && strlen(inside) < sizeof name) {
				snprintf(name, sizeof name, "%s", inside);
				value = argument_value(build_args, defaults, name);
				if (value == NULL) {
					free(inside);
					free(buf);
					return fail(err, 0, "give it with --build-arg NAME=VALUE or in %arguments",
					            "%s:%u: {{ %s }} has no value", file, line, name);
				}
				add = (size_t)(close + 2 - open);
			}
			free(inside);
		}
		if (value != NULL) {
			size_t n = strlen(value);

			if (used + n + 1 > size) {
				char *grown;

				size = (used + n + 1) * 2;
				if (size > MAX_TEMPLATE_BYTES + length ||
				    (grown = realloc(buf, size)) == NULL) {
					free(buf);
					return fail(err, ENOMEM, NULL, "%s: templates expand too much", file);
				}
				buf = grown;
			}
			memcpy(buf + used, value, n);
			used += n;
		} else {
			if (used + 2 > size) {
				char *grown = realloc(buf, size *= 2);

				if (grown == NULL) {
					free(buf);
					return fail(err, ENOMEM, NULL, "%s", file);
				}
				buf = grown;
			}
			line += *open == '\n';
			buf[used++] = *open;
		}
		i += add;
	}
	buf[used] = '\0';
	*out = buf;
	return 0;
}

/* %arguments sections, read before the templates are filled. */
static int gather_arguments(const char *text, const char *file, struct strvec *defaults,
                            capsula_error *err)
{
	bool inside = false;

	for (const char *p = text; *p != '\0';) {
		const char *end = strchrnul(p, '\n');
		char *line = trimmed_copy(p, (size_t)(end - p));

		if (line == NULL)
			return fail(err, ENOMEM, NULL, "%s", file);
		if (line[0] == '%')
			inside = strncmp(line, "%arguments", 10) == 0 &&
			         (line[10] == '\0' || isspace((unsigned char)line[10]));
		else if (inside && line[0] != '\0' && line[0] != '#' && strchr(line, '=') != NULL &&
		         strvec_push(defaults, line) < 0) {
			free(line);
			return fail(err, ENOMEM, NULL, "%s", file);
		}
		free(line);
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* ---------------------------------------------------------------- sections */

static struct def_stage *new_stage(struct def_reader *d, unsigned line)
{
	struct def_stage *grown = realloc(d->stages, (d->count + 1) * sizeof *grown);

	if (grown == NULL)
		return NULL;
	d->stages = grown;
	grown = &grown[d->count++];
	memset(grown, 0, sizeof *grown);
	grown->line = line;
	return grown;
}

static int header_line(struct def_reader *d, struct def_stage **stage, const char *line,
                       unsigned number)
{
	const char *colon = strchr(line, ':');
	char *key, *value;
	int ret = 0;

	if (colon == NULL)
		return fail(d->err, 0, HINT_DEF, "%s:%u: expected 'Key: value' or a %%section",
		            d->file, number);
	key = trimmed_copy(line, (size_t)(colon - line));
	value = trimmed_copy(colon + 1, strlen(colon + 1));
	if (key == NULL || value == NULL) {
		free(key);
		free(value);
		return fail(d->err, ENOMEM, NULL, "%s", d->file);
	}
	/* A Bootstrap line after sections begins another stage. */
	if (strcasecmp(key, "Bootstrap") == 0 && (*stage == NULL || (*stage)->bootstrap != NULL))
		*stage = new_stage(d, number);
	else if (*stage == NULL)
		*stage = new_stage(d, number);
	if (*stage == NULL) {
		ret = fail(d->err, ENOMEM, NULL, "%s", d->file);
	} else if (strcasecmp(key, "Bootstrap") == 0) {
		(*stage)->bootstrap = value;
		value = NULL;
	} else if (strcasecmp(key, "From") == 0) {
		free((*stage)->from);
		(*stage)->from = value;
		value = NULL;
	} else if (strcasecmp(key, "Stage") == 0) {
		free((*stage)->name);
		(*stage)->name = value;
		value = NULL;
	} else if (strcasecmp(key, "Fingerprints") != 0 && strcasecmp(key, "MirrorURL") != 0) {
		ret = fail(d->err, 0, "capsula reads Bootstrap, From and Stage", "%s:%u: header "
		           "'%s' is not supported", d->file, number, key);
	}
	free(key);
	free(value);
	return ret;
}

static int start_section(struct def_reader *d, struct def_stage *stage, const char *line,
                         unsigned number)
{
	struct section *grown;
	size_t n = strcspn(line + 1, " \t");

	if (stage == NULL)
		return fail(d->err, 0, "begin with Bootstrap: and From:", "%s:%u: a section before "
		            "the header", d->file, number);
	grown = realloc(stage->sections, (stage->count + 1) * sizeof *grown);
	if (grown == NULL)
		return fail(d->err, ENOMEM, NULL, "%s", d->file);
	stage->sections = grown;
	grown = &grown[stage->count++];
	memset(grown, 0, sizeof *grown);
	snprintf(grown->name, sizeof grown->name, "%.*s", (int)n, line + 1);
	grown->args = trimmed_copy(line + 1 + n, strlen(line + 1 + n));
	grown->body = strdup("");
	grown->line = number;
	if (grown->args == NULL || grown->body == NULL)
		return fail(d->err, ENOMEM, NULL, "%s", d->file);
	return 0;
}

static int add_body_line(struct def_reader *d, struct section *s, const char *line, size_t n)
{
	size_t used = strlen(s->body);
	char *grown = realloc(s->body, used + n + 2);

	if (grown == NULL)
		return fail(d->err, ENOMEM, NULL, "%s", d->file);
	memcpy(grown + used, line, n);
	grown[used + n] = '\n';
	grown[used + n + 1] = '\0';
	s->body = grown;
	return 0;
}

static int read_sections(struct def_reader *d, const char *text)
{
	struct def_stage *stage = NULL;
	struct section *section = NULL;
	unsigned number = 0;

	for (const char *p = text; *p != '\0';) {
		const char *end = strchrnul(p, '\n');
		size_t n = (size_t)(end - p);
		char *line = trimmed_copy(p, n);
		int ret = 0;

		number++;
		if (line == NULL)
			return fail(d->err, ENOMEM, NULL, "%s", d->file);
		if (line[0] == '%' && isalpha((unsigned char)line[1])) {
			ret = start_section(d, stage, line, number);
			section = ret == 0 ? &stage->sections[stage->count - 1] : NULL;
		} else if (section != NULL && !(line[0] != '\0' && strncasecmp(line, "Bootstrap:", 10) == 0)) {
			ret = add_body_line(d, section, p, n);
		} else if (line[0] != '\0' && line[0] != '#') {
			section = NULL;
			ret = header_line(d, &stage, line, number);
		}
		free(line);
		if (ret < 0)
			return -1;
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* ---------------------------------------------------------------- steps */

static int add_file_step(struct stage *st, const char *path, const char *content, mode_t mode,
                         unsigned line)
{
	struct step *s = steps_add(&st->steps, &st->count, STEP_FILE, line);

	if (s == NULL || strvec_push(&s->args, path) < 0 || (s->content = strdup(content)) == NULL ||
	    asprintf(&s->text, "write %s", path) < 0)
		return -1;
	s->mode = mode;
	return 0;
}

/* %files [from STAGE]: "SRC [DEST]" lines. */
static int files_steps(struct def_reader *d, struct stage *st, const struct section *sec)
{
	char *from = NULL;

	if (sec->args[0] != '\0') {
		if (strncasecmp(sec->args, "from", 4) != 0 || !isspace((unsigned char)sec->args[4]))
			return fail(d->err, 0, "write %files from STAGE", "%s:%u: %%files %s", d->file,
			            sec->line, sec->args);
		from = trimmed_copy(sec->args + 4, strlen(sec->args + 4));
		if (from == NULL)
			return fail(d->err, ENOMEM, NULL, "%s", d->file);
	}
	for (const char *p = sec->body; *p != '\0';) {
		const char *end = strchrnul(p, '\n');
		char *line = trimmed_copy(p, (size_t)(end - p));
		struct strvec words = {0};
		struct step *s = NULL;
		int ret = 0;

		if (line == NULL)
			ret = fail(d->err, ENOMEM, NULL, "%s", d->file);
		else if (line[0] != '\0' && line[0] != '#') {
			if (words_split(line, '\\', &words) < 0 || words.count < 1 || words.count > 2)
				ret = fail(d->err, 0, "write SRC [DEST]", "%s: %%files: '%s'", d->file, line);
			else if ((s = steps_add(&st->steps, &st->count, STEP_COPY, sec->line)) == NULL ||
			         strvec_push(&s->args, words.items[0]) < 0 ||
			         strvec_push(&s->args, words.items[words.count - 1]) < 0 ||
			         asprintf(&s->text, "%%files%s%s %s", from ? " from " : "", from ? from : "",
			                  line) < 0)
				ret = fail(d->err, ENOMEM, NULL, "%s", d->file);
			if (ret == 0 && from != NULL) {
				char *flag;

				if (asprintf(&flag, "from=%s", from) < 0 || strvec_push_owned(&s->flags, flag) < 0)
					ret = fail(d->err, ENOMEM, NULL, "%s", d->file);
			}
		}
		strvec_free(&words);
		free(line);
		if (ret < 0) {
			free(from);
			return -1;
		}
		p = *end ? end + 1 : end;
	}
	free(from);
	return 0;
}

/* %labels: "KEY VALUE" lines, as LABEL and in labels.json. */
static int label_step(struct def_reader *d, struct stage *st, const struct section *sec)
{
	struct step *s = steps_add(&st->steps, &st->count, STEP_LABEL, sec->line);
	size_t pairs = 0;

	if (s == NULL || asprintf(&s->text, "%%labels") < 0)
		return fail(d->err, ENOMEM, NULL, "%s", d->file);
	for (const char *p = sec->body; *p != '\0';) {
		const char *end = strchrnul(p, '\n');
		char *line = trimmed_copy(p, (size_t)(end - p));
		size_t k;

		if (line == NULL)
			return fail(d->err, ENOMEM, NULL, "%s", d->file);
		k = strcspn(line, " \t");
		if (line[0] != '\0' && line[0] != '#') {
			char *key = strndup(line, k), *value = trimmed_copy(line + k, strlen(line + k));
			bool *grown = realloc(s->has_value, (pairs + 1) * sizeof *grown);

			if (grown != NULL)
				s->has_value = grown;
			if (key == NULL || value == NULL || grown == NULL) {
				free(key);
				free(value);
				free(line);
				return fail(d->err, ENOMEM, NULL, "%s", d->file);
			}
			if (strvec_push_owned(&s->args, key) < 0) {
				free(key);
				free(value);
				free(line);
				return fail(d->err, ENOMEM, NULL, "%s", d->file);
			}
			if (strvec_push_owned(&s->args, value) < 0) {
				free(value);
				free(line);
				return fail(d->err, ENOMEM, NULL, "%s", d->file);
			}
			s->has_value[pairs++] = true;
		}
		free(line);
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* A script of Apptainer's layout: its own shebang, else /bin/sh. */
static int script_file(struct stage *st, const char *path, const struct section *sec)
{
	char *content;
	int ret;

	if (asprintf(&content, "%s%s", strncmp(sec->body, "#!", 2) == 0 ? "" : "#!/bin/sh\n",
	             sec->body) < 0)
		return -1;
	ret = add_file_step(st, path, content, 0755, sec->line);
	free(content);
	return ret;
}

static const struct section *find_section(const struct def_stage *ds, const char *name)
{
	for (size_t i = ds->count; i > 0; i--)
		if (strcmp(ds->sections[i - 1].name, name) == 0)
			return &ds->sections[i - 1];
	return NULL;
}

static int post_step(struct def_reader *d, struct stage *st, const struct section *sec)
{
	const char *shell = "/bin/sh";
	struct step *s;

	if (strncmp(sec->args, "-c", 2) == 0) {
		shell = sec->args + 2;
		while (isspace((unsigned char)*shell))
			shell++;
	}
	s = steps_add(&st->steps, &st->count, sec->name[0] == 'p' ? STEP_RUN : STEP_TEST, sec->line);
	/* Apptainer stops a scriptlet at its first failing command. */
	if (s == NULL || strvec_push(&s->args, shell) < 0 || strvec_push(&s->args, "-e") < 0 ||
	    strvec_push(&s->args, "-c") < 0 || strvec_push(&s->args, sec->body) < 0 ||
	    asprintf(&s->text, "%%%s", sec->name) < 0)
		return fail(d->err, ENOMEM, NULL, "%s", d->file);
	s->exec_form = true;
	return 0;
}

static int checked_stage(struct def_reader *d, const struct def_stage *ds)
{
	static const char *const known[] = {"files", "post", "environment", "runscript",
	                                    "startscript", "test", "labels", "help", "arguments"};

	if (ds->bootstrap == NULL)
		return fail(d->err, 0, "begin each stage with Bootstrap: docker, localimage or scratch",
		            "%s:%u: a stage without Bootstrap", d->file, ds->line);
	if (strcasecmp(ds->bootstrap, "docker") != 0 && strcasecmp(ds->bootstrap, "localimage") != 0 &&
	    strcasecmp(ds->bootstrap, "scratch") != 0)
		return fail(d->err, 0, "use Bootstrap: docker, localimage or scratch",
		            "%s:%u: Bootstrap: %s is not supported", d->file, ds->line, ds->bootstrap);
	if (strcasecmp(ds->bootstrap, "scratch") != 0 && (ds->from == NULL || ds->from[0] == '\0'))
		return fail(d->err, 0, "say what to start from with From:", "%s:%u: Bootstrap: %s "
		            "needs From:", d->file, ds->line, ds->bootstrap);
	for (size_t i = 0; i < ds->count; i++) {
		const struct section *sec = &ds->sections[i];
		bool ok = false;

		if (strcmp(sec->name, "setup") == 0)
			return fail(d->err, 0, "move it to %post (inside the container) or %files",
			            "%s:%u: %%setup runs on the host as root in Apptainer; capsula builds "
			            "run nothing outside the container", d->file, sec->line);
		for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
			ok = ok || strcmp(sec->name, known[k]) == 0;
		if (!ok)
			return fail(d->err, 0, "capsula reads %files, %post, %environment, %runscript, "
			            "%startscript, %test, %labels, %help and %arguments",
			            "%s:%u: section %%%s is not supported", d->file, sec->line, sec->name);
	}
	return 0;
}

static int stage_steps(struct def_reader *d, const struct def_stage *ds, struct stage *st)
{
	static const struct { const char *section, *path; mode_t mode; } layout[] = {
		{"environment", SINGULARITY_DIR "/env/90-environment.sh", 0755},
		{"runscript", SINGULARITY_DIR "/runscript", 0755},
		{"startscript", SINGULARITY_DIR "/startscript", 0755},
		{"test", SINGULARITY_DIR "/test", 0755},
		{"help", SINGULARITY_DIR "/runscript.help", 0644},
	};
	const struct section *sec;
	char *from;

	if (checked_stage(d, ds) < 0)
		return -1;
	if (strcasecmp(ds->bootstrap, "scratch") == 0)
		from = strdup("scratch");
	else if (ds->from == NULL)
		return fail(d->err, 0, "add a From: line", "%s:%u: no From:", d->file, ds->line);
	else if (strcasecmp(ds->bootstrap, "docker") == 0 && strncmp(ds->from, "docker://", 9) != 0)
		from = asprintf(&from, "docker://%s", ds->from) < 0 ? NULL : from;
	else
		from = strdup(ds->from);
	st->from = from;
	st->name = ds->name ? strdup(ds->name) : NULL;
	st->line = ds->line;
	if (st->from == NULL || (ds->name && st->name == NULL))
		return fail(d->err, ENOMEM, NULL, "%s", d->file);
	for (size_t i = 0; i < ds->count; i++)
		if (strcmp(ds->sections[i].name, "files") == 0 && files_steps(d, st, &ds->sections[i]) < 0)
			return -1;
	if ((sec = find_section(ds, "post")) != NULL && post_step(d, st, sec) < 0)
		return -1;
	for (size_t i = 0; i < sizeof layout / sizeof layout[0]; i++) {
		sec = find_section(ds, layout[i].section);
		if (sec == NULL)
			continue;
		if ((layout[i].mode == 0755 && strcmp(layout[i].section, "environment") != 0 ?
		     script_file(st, layout[i].path, sec) :
		     add_file_step(st, layout[i].path, sec->body, layout[i].mode, sec->line)) < 0)
			return fail(d->err, ENOMEM, NULL, "%s", d->file);
	}
	if ((sec = find_section(ds, "labels")) != NULL && label_step(d, st, sec) < 0)
		return -1;
	if ((sec = find_section(ds, "test")) != NULL && post_step(d, st, sec) < 0)
		return -1;
	return 0;
}

int deffile_parse(const char *text, size_t length, const char *file,
                  const struct strvec *build_args, struct recipe *r, capsula_error *err)
{
	struct def_reader d = {.file = file, .err = err};
	char *filled = NULL, *copy = strndup(text, length);
	int ret = -1;

	memset(r, 0, sizeof *r);
	r->apptainer = true;
	if (copy == NULL || (r->file = strdup(file)) == NULL) {
		free(copy);
		return fail(err, ENOMEM, NULL, "%s", file);
	}
	if (gather_arguments(copy, file, &d.arguments, err) < 0 ||
	    fill_templates(copy, strlen(copy), file, build_args, &d.arguments, &filled, err) < 0 ||
	    read_sections(&d, filled) < 0)
		goto out;
	if (d.count == 0) {
		fail(err, 0, "begin with Bootstrap: and From:", "%s: no Bootstrap header", file);
		goto out;
	}
	r->stages = calloc(d.count, sizeof *r->stages);
	if (r->stages == NULL) {
		fail(err, ENOMEM, NULL, "%s", file);
		goto out;
	}
	r->count = d.count;
	/* free_stages() at out frees the reader's stages on every path. */
	/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
	for (size_t i = 0; i < d.count; i++)
		if (stage_steps(&d, &d.stages[i], &r->stages[i]) < 0)
			goto out;
	ret = 0;
out:
	free(copy);
	free(filled);
	free_stages(&d);
	return ret;
}
