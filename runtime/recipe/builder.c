#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/small_file.h"
#include "common/timing.h"
#include "runtime/convert/squashfs_layers.h"
#include "runtime/image/image.h"
#include "runtime/image/image_files.h"
#include "runtime/image/image_ref.h"
#include "runtime/image/image_run.h"
#include "runtime/plan/fakeroot_plan.h"
#include "runtime/plan/rundir.h"
#include "runtime/pull/pull.h"
#include "runtime/recipe/build_state.h"
#include "runtime/recipe/builder.h"
#include "runtime/recipe/words.h"

#define MAX_RECIPE_BYTES (1u << 20)
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---------------------------------------------------------------- which source */

static bool is_dockerfile_name(const char *name)
{
	size_t n = strlen(name);

	return strcmp(name, "Dockerfile") == 0 || strcmp(name, "Containerfile") == 0 ||
	       strncmp(name, "Dockerfile.", 11) == 0 || strncmp(name, "Containerfile.", 14) == 0 ||
	       (n > 11 && strcasecmp(name + n - 11, ".dockerfile") == 0);
}

static bool is_deffile_name(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcmp(name + n - 4, ".def") == 0;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

bool recipe_wanted(const struct build_options *opts)
{
	struct stat st;
	const char *name = base_name(opts->source);

	if (opts->recipe_file != NULL)
		return true;
	return (is_dockerfile_name(name) || is_deffile_name(name)) && stat(opts->source, &st) == 0 &&
	       S_ISREG(st.st_mode);
}

/* ---------------------------------------------------------------- shared helpers */

const char *step_where(const struct builder *b, const struct step *s)
{
	static char where[PATH_MAX + 16];

	snprintf(where, sizeof where, "%s:%u", b->file, s->line);
	return where;
}

int step_variables(const struct stage_state *st, struct strvec *vars, capsula_error *err)
{
	for (size_t i = 0; i < st->config.env.count; i++)
		if (strvec_push(vars, st->config.env.items[i]) < 0)
			return fail(err, ENOMEM, NULL, "variables");
	for (size_t i = 0; i < st->args.count; i++)
		if (strvec_push(vars, st->args.items[i]) < 0)
			return fail(err, ENOMEM, NULL, "variables");
	return 0;
}

void step_key(const struct stage_state *st, const char *description, char key[KEY_HEX])
{
	unsigned char digest[SHA256_BYTES];
	struct sha256 h;

	if (sha256_begin(&h) < 0) {
		snprintf(key, KEY_HEX, "%s", "nokey");
		return;
	}
	sha256_update(&h, st->key, strlen(st->key));
	sha256_update(&h, "\n", 1);
	sha256_update(&h, description, strlen(description));
	if (sha256_end(&h, digest) < 0)
		memset(digest, 0, sizeof digest);
	sha256_hex(digest, key);
}

void step_begin(struct builder *b, const struct step *s)
{
	/* A WORKDIR no later step made is made after the stage's last step, in
	 * a layer of its own that is not a step of the recipe. */
	bool numbered = s->line != 0;

	b->step += numbered;
	if (b->opts->quiet)
		return;
	if (numbered)
		fprintf(stderr, "[%u/%u] %.*s\n", b->step, b->total, 200, s->text);
	else
		fprintf(stderr, "      %.*s\n", 200, s->text);
	fflush(stderr);
}

void step_end(struct builder *b, bool cached, uint64_t start_us)
{
	b->cached += cached;
	if (b->opts->quiet)
		return;
	if (cached)
		fprintf(stderr, "      CACHED\n");
	else
		fprintf(stderr, "      done in %.1f s\n", (double)(timing_now_us() - start_us) / 1e6);
}

/* ---------------------------------------------------------------- variables */

static int expand(const struct stage_state *st, const char *word, char **out, const char *what,
                  capsula_error *err)
{
	struct strvec vars = {0};
	int ret = st != NULL ? step_variables(st, &vars, err) : 0;

	if (ret == 0)
		ret = words_expand(word, '\\', &vars, out, what, err);
	strvec_free(&vars);
	return ret;
}

/* Set NAME=VALUE in a list of assignments, replacing an earlier one. */
static int set_assignment(struct strvec *list, const char *name, const char *value)
{
	size_t n = strlen(name);
	char *entry;

	if (asprintf(&entry, "%s=%s", name, value) < 0)
		return -1;
	for (size_t i = 0; i < list->count; i++)
		if (strncmp(list->items[i], name, n) == 0 && list->items[i][n] == '=') {
			free(list->items[i]);
			list->items[i] = entry;
			return 0;
		}
	return strvec_push_owned(list, entry);
}

static int declare_args(struct builder *b, const struct stage_state *scope, struct strvec *args,
                        const struct step *s, capsula_error *err);

/* ARG before the first FROM: what FROM lines may use. */
static int declare_args_global(struct builder *b, capsula_error *err)
{
	for (size_t i = 0; i < b->recipe.global_count; i++)
		if (declare_args(b, NULL, &b->global_args, &b->recipe.global_args[i], err) < 0)
			return -1;
	return 0;
}

/* ---------------------------------------------------------------- config steps */

/* ARG NAME[=DEFAULT]...: a --build-arg wins, then the default. */
static int declare_args(struct builder *b, const struct stage_state *scope, struct strvec *args,
                        const struct step *s, capsula_error *err)
{
	for (size_t i = 0; i + 1 < s->args.count; i += 2) {
		const char *name = s->args.items[i];
		const char *given = words_lookup(&b->opts->build_args, name);
		const char *global = words_lookup(&b->global_args, name);
		char *value = NULL;
		int ret = 0;

		if (given != NULL)
			value = strdup(given);
		else if (s->has_value[i / 2])
			ret = expand(scope, s->args.items[i + 1], &value, step_where(b, s), err);
		else if (global != NULL && scope != NULL)
			value = strdup(global);  /* ARG NAME in a stage takes the global one */
		else
			continue;
		if (given != NULL || global != NULL)
			ret = value ? 0 : fail(err, ENOMEM, NULL, "ARG");
		if (ret < 0)
			return -1;
		ret = set_assignment(args, name, value);
		free(value);
		if (ret < 0)
			return fail(err, ENOMEM, NULL, "ARG");
	}
	return 0;
}

static int set_pairs(struct builder *b, struct stage_state *st, const struct step *s,
                     bool env, capsula_error *err)
{
	for (size_t i = 0; i + 1 < s->args.count; i += 2) {
		char *value;
		int ret;

		if (expand(st, s->args.items[i + 1], &value, step_where(b, s), err) < 0)
			return -1;
		if (env) {
			ret = set_assignment(&st->config.env, s->args.items[i], value);
		} else {
			size_t k = 0;

			while (k < st->config.label_keys.count &&
			       strcmp(st->config.label_keys.items[k], s->args.items[i]) != 0)
				k++;
			if (k < st->config.label_keys.count) {
				free(st->config.label_values.items[k]);
				st->config.label_values.items[k] = value;
				value = NULL;
				ret = 0;
			} else {
				ret = strvec_push(&st->config.label_keys, s->args.items[i]) < 0 ||
				      strvec_push(&st->config.label_values, value) < 0 ? -1 : 0;
			}
		}
		free(value);
		if (ret < 0)
			return fail(err, ENOMEM, NULL, "%s", step_where(b, s));
	}
	return 0;
}

/* The words of the step, each expanded. */
static int expanded_words(struct builder *b, struct stage_state *st, const struct step *s,
                          struct strvec *out, capsula_error *err)
{
	for (size_t i = 0; i < s->args.count; i++) {
		char *word;

		if (expand(st, s->args.items[i], &word, step_where(b, s), err) < 0)
			return -1;
		if (strvec_push_owned(out, word) < 0)
			return fail(err, ENOMEM, NULL, "%s", step_where(b, s));
	}
	return 0;
}

/* CMD and ENTRYPOINT: the exec form as it is, the shell form through SHELL. */
static int command_of(const struct stage_state *st, const struct step *s, struct strvec *out)
{
	strvec_free(out);
	if (s->exec_form) {
		for (size_t i = 0; i < s->args.count; i++)
			if (strvec_push(out, s->args.items[i]) < 0)
				return -1;
		return 0;
	}
	if (st->shell.count > 0) {
		for (size_t i = 0; i < st->shell.count; i++)
			if (strvec_push(out, st->shell.items[i]) < 0)
				return -1;
	} else if (strvec_push(out, "/bin/sh") < 0 || strvec_push(out, "-c") < 0) {
		return -1;
	}
	return strvec_push(out, s->args.items[0]);
}

static int replace_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

static int workdir_of(struct builder *b, struct stage_state *st, const struct step *s,
                      capsula_error *err)
{
	char *dir, *joined;
	int ret;

	if (expand(st, s->args.items[0], &dir, step_where(b, s), err) < 0)
		return -1;
	if (dir[0] == '/')
		joined = dir;
	else if (asprintf(&joined, "%s/%s", st->config.workdir ? st->config.workdir : "", dir) < 0)
		joined = NULL;
	if (joined != dir)
		free(dir);
	if (joined == NULL)
		return fail(err, ENOMEM, NULL, "WORKDIR");
	ret = replace_string(&st->config.workdir, joined);
	free(joined);
	st->workdir_pending = true;
	return ret < 0 ? fail(err, ENOMEM, NULL, "WORKDIR") : 0;
}

static int config_step(struct builder *b, struct stage_state *st, const struct step *s,
                       capsula_error *err)
{
	struct strvec words = {0};
	int ret = 0;

	switch (s->kind) {
	case STEP_ARG:
		return declare_args(b, st, &st->args, s, err);
	case STEP_ENV:
		return set_pairs(b, st, s, true, err);
	case STEP_LABEL:
		return set_pairs(b, st, s, false, err);
	case STEP_WORKDIR:
		return workdir_of(b, st, s, err);
	case STEP_SHELL:
		strvec_free(&st->shell);
		for (size_t i = 0; ret == 0 && i < s->args.count; i++)
			ret = strvec_push(&st->shell, s->args.items[i]);
		break;
	case STEP_CMD:
		ret = command_of(st, s, &st->config.cmd);
		break;
	case STEP_ENTRYPOINT:
		/* A new ENTRYPOINT drops the CMD the base image had. */
		ret = command_of(st, s, &st->config.entrypoint);
		strvec_free(&st->config.cmd);
		break;
	case STEP_USER:
	case STEP_STOPSIGNAL:
	case STEP_EXPOSE:
	case STEP_VOLUME:
		if (expanded_words(b, st, s, &words, err) < 0 || words.count == 0) {
			strvec_free(&words);
			return words.count == 0 ? fail(err, 0, "give the instruction its value",
			                               "%s: %.200s: empty", step_where(b, s), s->text) : -1;
		}
		if (s->kind == STEP_USER)
			ret = replace_string(&st->config.user, words.items[0]);
		else if (s->kind == STEP_STOPSIGNAL)
			ret = replace_string(&st->config.stop_signal, words.items[0]);
		for (size_t i = 0; s->kind == STEP_EXPOSE && ret == 0 && i < words.count; i++) {
			char *port;

			ret = asprintf(&port, "%s%s", words.items[i],
			               strchr(words.items[i], '/') ? "" : "/tcp") < 0 ? -1 :
			      strvec_push_owned(&st->config.exposed_ports, port);
		}
		for (size_t i = 0; s->kind == STEP_VOLUME && ret == 0 && i < words.count; i++)
			ret = strvec_push(&st->config.volumes, words.items[i]);
		strvec_free(&words);
		break;
	case STEP_HEALTHCHECK:
		strvec_free(&st->config.healthcheck);
		if (strncasecmp(s->args.items[0], "NONE", 4) == 0)
			ret = strvec_push(&st->config.healthcheck, "NONE");
		else if (strncasecmp(s->args.items[0], "CMD", 3) == 0 &&
		         isspace((unsigned char)s->args.items[0][3]))
			ret = strvec_push(&st->config.healthcheck, "CMD-SHELL") < 0 ? -1 :
			      strvec_push(&st->config.healthcheck, s->args.items[0] + 4);
		else
			return fail(err, 0, "write HEALTHCHECK CMD COMMAND or HEALTHCHECK NONE",
			            "%s: HEALTHCHECK %s", step_where(b, s), s->args.items[0]);
		break;
	case STEP_ONBUILD:
		return fail(err, 0, "remove it: triggers for later builds are docker's alone",
		            "%s: ONBUILD is not supported", step_where(b, s));
	default:
		return fail(err, 0, NULL, "%s: not a configuration step", step_where(b, s));
	}
	return ret < 0 ? fail(err, ENOMEM, NULL, "%s", step_where(b, s)) : 0;
}

/* ---------------------------------------------------------------- bases */

/* The base's run settings, as an image made by capsula or Apptainer says. */
static int read_base_config(struct stage_state *st, capsula_error *err)
{
	struct capsula_image image = {.fd = -1};
	struct squashfs_info info;
	struct image_files files;
	struct image_run run = {0};
	int ret;

	if (image_open(st->base, &image, &info, err) < 0)
		return -1;
	st->base_offset = image.offset;
	ret = image_files_open(&files, &image, err);
	if (ret == 0) {
		ret = image_run_describe(&files, &run, err);
		image_files_close(&files);
	}
	if (ret == 0) {
		st->config = run.config;
		memset(&run.config, 0, sizeof run.config);
	}
	image_run_free(&run);
	close(image.fd);
	free(image.path);
	return ret;
}

/* An empty image, once per cache, for FROM scratch. */
static int scratch_base(struct builder *b, struct stage_state *st, capsula_error *err)
{
	struct build_options o;
	struct stat st_;
	char empty[PATH_MAX + 8];
	int ret;

	snprintf(st->base, sizeof st->base, "%s/scratch.sqfs", b->layers_dir);
	if (stat(st->base, &st_) == 0)
		return 0;
	snprintf(empty, sizeof empty, "%s/empty", b->work_base);
	if (mkdir(empty, 0755) < 0)
		return fail(err, errno, NULL, "an empty base for FROM scratch");
	build_options_default(&o);
	o.output = "scratch.sqfs";
	o.output_dir_fd = b->layers_fd;
	o.source = empty;
	o.quiet = true;
	o.force = true;
	ret = build_image(&o, err);
	rmdir(empty);
	return ret;
}

static int pull_base(struct builder *b, struct stage_state *st, const char *ref,
                     capsula_error *err)
{
	struct pull_options p;
	char image[PATH_MAX];

	pull_options_default(&p);
	p.ref = ref;
	p.build.quiet = b->opts->quiet;
	if (pull_image(&p, image, sizeof image, err) < 0)
		return -1;
	/* The image the pull left, through the cache this build has open. */
	if (strncmp(image, b->cache.dir, strlen(b->cache.dir)) == 0)
		snprintf(st->base, sizeof st->base, "%s%s", b->cache.root, image + strlen(b->cache.dir));
	else
		snprintf(st->base, sizeof st->base, "%s", image);
	return 0;
}

static bool names_local_file(const char *from)
{
	struct stat st;
	size_t n = strlen(from);

	return (from[0] == '/' || strncmp(from, "./", 2) == 0 || strncmp(from, "../", 3) == 0 ||
	        (n > 5 && (strcmp(from + n - 5, ".sqfs") == 0 || strcmp(from + n - 4, ".sif") == 0))) &&
	       stat(from, &st) == 0 && S_ISREG(st.st_mode);
}

static int copy_stage(struct stage_state *to, const struct stage_state *from, capsula_error *err)
{
	json_t *config = image_config_to_json(&from->config);
	char why[200];
	int ret;

	snprintf(to->base, sizeof to->base, "%s", from->base);
	to->base_offset = from->base_offset;
	for (size_t i = 0; i < from->layers.count; i++)
		if (strvec_push(&to->layers, from->layers.items[i]) < 0)
			return fail(err, ENOMEM, NULL, "stage");
	for (size_t i = 0; i < from->shell.count; i++)
		if (strvec_push(&to->shell, from->shell.items[i]) < 0)
			return fail(err, ENOMEM, NULL, "stage");
	ret = config ? image_config_from_json(config, &to->config, why, sizeof why) : -1;
	json_decref(config);
	if (ret < 0)
		return fail(err, ENOMEM, NULL, "stage");
	snprintf(to->key, sizeof to->key, "%s", from->key);
	return 0;
}

/* FROM: what the stage starts with, and the first key. */
static int start_stage(struct builder *b, size_t index, capsula_error *err)
{
	struct stage *stage = &b->recipe.stages[index];
	struct stage_state *st = &b->stages[index], *other;
	char *from, description[PATH_MAX + 64];
	struct stat file;
	int ret;

	if (words_expand(stage->from, '\\', &b->global_args, &from, b->file, err) < 0)
		return -1;
	if (strcmp(from, "scratch") == 0) {
		ret = scratch_base(b, st, err);
		snprintf(description, sizeof description, "FROM scratch");
	} else if ((ret = stage_named(b, from, &other, err)) != 0) {
		/* A stage FROM another goes on where that one ended, key included. */
		free(from);
		return ret < 0 || other == NULL ? -1 : copy_stage(st, other, err);
	} else if (names_local_file(from)) {
		ret = realpath(from, st->base) ? 0 : fail(err, errno, NULL, "FROM %s", from);
		if (ret == 0 && stat(st->base, &file) == 0)
			snprintf(description, sizeof description, "FROM file %s %lld %lld", st->base,
			         (long long)file.st_size, (long long)file.st_mtime);
	} else {
		ret = pull_base(b, st, strncmp(from, "docker://", 9) == 0 ? from + 9 : from, err);
		snprintf(description, sizeof description, "FROM %s", base_name(st->base));
	}
	free(from);
	if (ret < 0)
		return -1;
	if (read_base_config(st, err) < 0)
		return -1;
	step_key(&(struct stage_state){.key = ""}, description, st->key);
	return 0;
}

/* ---------------------------------------------------------------- stages */

static int build_stage(struct builder *b, size_t index, capsula_error *err);

int stage_named(struct builder *b, const char *name, struct stage_state **out,
                capsula_error *err)
{
	char *end;
	unsigned long number = strtoul(name, &end, 10);

	*out = NULL;
	for (size_t i = 0; i < b->recipe.count; i++) {
		const char *stage = b->recipe.stages[i].name;

		if ((stage != NULL && strcasecmp(stage, name) == 0) ||
		    (end != name && *end == '\0' && number == i)) {
			if (build_stage(b, i, err) < 0)
				return -1;
			*out = &b->stages[i];
			return 1;
		}
	}
	return 0;
}

/* A definition file's labels also go where Apptainer keeps them, for the
 * tools that read them there. */
static int apptainer_labels(struct builder *b, struct stage_state *st, capsula_error *err)
{
	json_t *labels = json_object();
	char path[] = "/.singularity.d/labels.json";
	struct step s = {.kind = STEP_FILE, .text = "and /.singularity.d/labels.json:", .mode = 0644};
	int ret = labels == NULL ? -1 : 0;

	for (size_t i = 0; ret == 0 && i < st->config.label_keys.count; i++)
		ret = json_object_set_new(labels, st->config.label_keys.items[i],
		                          json_string(st->config.label_values.items[i]));
	s.content = ret == 0 ? json_dumps(labels, JSON_INDENT(4) | JSON_SORT_KEYS) : NULL;
	json_decref(labels);
	s.args.items = (char *[]){path, NULL};
	s.args.count = 1;
	ret = s.content == NULL ? fail(err, ENOMEM, NULL, "labels.json") : file_step(b, st, &s, err);
	free(s.content);
	return ret;
}

static int one_step(struct builder *b, struct stage_state *st, const struct step *s,
                    capsula_error *err)
{
	char description[4096];
	int ret;

	switch (s->kind) {
	case STEP_RUN:
		return run_step(b, st, s, err);
	case STEP_COPY:
	case STEP_ADD:
		return copy_step(b, st, s, err);
	case STEP_FILE:
		return file_step(b, st, s, err);
	case STEP_TEST:
		return b->opts->notest ? 0 : test_step(b, st, s, err);
	default:
		step_begin(b, s);
		ret = config_step(b, st, s, err);
		if (ret < 0)
			return -1;
		/* What follows depends on it: it is part of every later key (an ARG
		 * with the values it took). */
		snprintf(description, sizeof description, "%s", s->text);
		for (size_t i = 0; s->kind == STEP_ARG && i < st->args.count; i++) {
			size_t at = strlen(description);

			snprintf(description + at, sizeof description - at, "\n%s", st->args.items[i]);
		}
		/* Configuration takes no time worth telling. */
		step_key(st, description, st->key);
		if (s->kind == STEP_LABEL && b->recipe.apptainer)
			return apptainer_labels(b, st, err);
		return 0;
	}
}

static int build_stage(struct builder *b, size_t index, capsula_error *err)
{
	struct stage_state *st = &b->stages[index];
	const struct stage *stage = &b->recipe.stages[index];

	if (st->built)
		return 0;
	if (st->building)
		return fail(err, 0, "stages may use only stages before them",
		            "%s:%u: stage %s depends on itself", b->file, stage->line,
		            stage->name ? stage->name : "");
	st->building = true;
	if (start_stage(b, index, err) < 0)
		return -1;
	for (size_t i = 0; i < stage->count; i++)
		if (one_step(b, st, &stage->steps[i], err) < 0)
			return -1;
	if (st->workdir_pending && workdir_step(b, st, err) < 0)
		return -1;
	st->building = false;
	st->built = true;
	return 0;
}

/* How many steps will run: those of the target and of the stages it takes. */
static unsigned count_steps(const struct builder *b, size_t index, bool *seen)
{
	const struct stage *stage = &b->recipe.stages[index];
	unsigned n = (unsigned)stage->count;

	if (seen[index])
		return 0;
	seen[index] = true;
	for (size_t i = 0; i < b->recipe.count; i++) {
		bool used = b->recipe.stages[i].name != NULL &&
		            strcasecmp(b->recipe.stages[i].name, stage->from) == 0;

		for (size_t k = 0; !used && k < stage->count; k++)
			for (size_t f = 0; f < stage->steps[k].flags.count; f++) {
				const char *flag = stage->steps[k].flags.items[f];

				if (strncmp(flag, "from=", 5) == 0 && b->recipe.stages[i].name != NULL &&
				    strcasecmp(flag + 5, b->recipe.stages[i].name) == 0)
					used = true;
			}
		if (used && i != index)
			n += count_steps(b, i, seen);
	}
	return n;
}

/* ---------------------------------------------------------------- the whole build */

static int read_recipe(struct builder *b, capsula_error *err)
{
	const struct build_options *o = b->opts;
	const char *path = o->recipe_file ? o->recipe_file : o->source;
	char *text, context[PATH_MAX];
	size_t length;
	int ret;

	snprintf(b->file, sizeof b->file, "%s", o->recipe_file ? o->recipe_file : base_name(path));
	if (read_small_file(path, MAX_RECIPE_BYTES, &text, &length, err) < 0)
		return -1;
	ret = is_deffile_name(base_name(path)) ?
	      deffile_parse(text, length, b->file, &o->build_args, &b->recipe, err) :
	      dockerfile_parse(text, length, b->file, &b->recipe, err);
	b->text = text;
	if (ret < 0)
		return -1;
	snprintf(context, sizeof context, "%s", o->recipe_file ? o->source : path);
	b->context_fd = open(o->recipe_file ? context : dirname(context),
	                     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->context_fd < 0)
		return fail(err, errno, "give the build context as a directory",
		            "build context %s", o->recipe_file ? o->source : context);
	return ignore_rules_read(b->context_fd, &b->ignore, err);
}

static int check_platform(const struct build_options *o, capsula_error *err)
{
	struct platform here, wanted;
	char a[64], c[64];

	if (o->platform == NULL)
		return 0;
	if (platform_parse(NULL, &here, err) < 0 || platform_parse(o->platform, &wanted, err) < 0)
		return -1;
	platform_format(&here, a, sizeof a);
	platform_format(&wanted, c, sizeof c);
	if (strcmp(a, c) != 0)
		return fail(err, 0, "build on a machine of that kind: steps run natively, never "
		            "emulated", "--platform %s is not this machine's (%s)", c, a);
	return 0;
}

static int open_subdir(int dir_fd, const char *name, capsula_error *err)
{
	int fd;

	if (mkdirat(dir_fd, name, 0700) < 0 && errno != EEXIST)
		return fail(err, errno, NULL, "the build cache's %s", name);
	fd = openat(dir_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errno, NULL, "the build cache's %s", name);
	return fd;
}

static int prepare(struct builder *b, capsula_error *err)
{
	const char *tmp = getenv("TMPDIR");
	int build_fd, mounts_fd;

	if (config_load(CAPSULA_CONFIG_FILE, &b->site, err) < 0 ||
	    cache_locate(&b->site, &b->cache, 1, err) < 0)
		return -1;
	build_fd = open_subdir(b->cache.fd, "build", err);
	if (build_fd < 0)
		return -1;
	b->layers_fd = open_subdir(build_fd, "layers", err);
	mounts_fd = b->layers_fd < 0 ? -1 : open_subdir(build_fd, "mounts", err);
	close(build_fd);
	if (mounts_fd < 0)
		return -1;
	snprintf(b->layers_dir, sizeof b->layers_dir, "/proc/self/fd/%d", b->layers_fd);
	/* A bind source is a path the step's starter resolves after it closed
	 * the builder's descriptors: the directory's own name, in the cache
	 * that was checked as it was opened. */
	{
		char link[64];
		ssize_t n;

		snprintf(link, sizeof link, "/proc/self/fd/%d", mounts_fd);
		n = readlink(link, b->mounts_dir, sizeof b->mounts_dir - 1);
		close(mounts_fd);
		if (n < 0 || n >= (ssize_t)sizeof b->mounts_dir - 1)
			return fail(err, n < 0 ? errno : ENAMETOOLONG, NULL, "the cache's build/mounts");
		b->mounts_dir[n] = '\0';
	}
	/* The steps' work goes to local disk, not to the (maybe shared) cache. */
	snprintf(b->work_base, sizeof b->work_base, "%s/capsula-build.XXXXXX",
	         tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
	if (mkdtemp(b->work_base) == NULL)
		return fail(err, errno, "set TMPDIR to a local directory of yours with room",
		            "a work directory for the build in %s", tmp ? tmp : "/tmp");
	step_identity_init(&b->id);
	return rundir_open_sockets(&b->id.socket_dir_fd, err);
}

static int write_image(struct builder *b, struct stage_state *st, capsula_error *err)
{
	struct squashfs_layer *layers = calloc(st->layers.count + 1, sizeof *layers);
	struct build_options o = *b->opts;
	int ret;

	if (layers == NULL)
		return fail(err, ENOMEM, NULL, "layers");
	layers[0].path = st->base;
	layers[0].offset = st->base_offset;
	for (size_t i = 0; i < st->layers.count; i++)
		layers[i + 1].path = st->layers.items[i];
	o.layers = layers;
	o.layer_count = st->layers.count + 1;
	o.config = &st->config;
	o.recipe_text = b->text;
	o.source = NULL;
	ret = build_image(&o, err);
	free(layers);
	return ret;
}

static int remove_work(void *arg, capsula_error *err)
{
	return step_remove_tree(arg, err);
}

static void release(struct builder *b)
{
	capsula_error ignored;

	free(b->text);
	for (size_t i = 0; b->stages != NULL && i < b->recipe.count; i++) {
		strvec_free(&b->stages[i].layers);
		strvec_free(&b->stages[i].shell);
		strvec_free(&b->stages[i].args);
		image_config_free(&b->stages[i].config);
	}
	free(b->stages);
	if (b->work_base[0] != '\0' && b->work_base[strlen(b->work_base) - 1] != 'X')
		step_in_user_namespace(&b->id, remove_work, b->work_base, &ignored);
	recipe_free(&b->recipe);
	ignore_rules_free(&b->ignore);
	strvec_free(&b->global_args);
	if (b->context_fd >= 0)
		close(b->context_fd);
	if (b->layers_fd >= 0)
		close(b->layers_fd);
	if (b->id.socket_dir_fd >= 0)
		close(b->id.socket_dir_fd);
	step_identity_release(&b->id);
	cache_close(&b->cache);
	config_free(&b->site);
}

static size_t target_stage(const struct builder *b, capsula_error *err)
{
	if (b->opts->target == NULL)
		return b->recipe.count - 1;
	for (size_t i = 0; i < b->recipe.count; i++)
		if (b->recipe.stages[i].name != NULL &&
		    strcasecmp(b->recipe.stages[i].name, b->opts->target) == 0)
			return i;
	fail(err, 0, "name a stage of the recipe (FROM IMAGE AS NAME)", "--target %s: no such stage",
	     b->opts->target);
	return (size_t)-1;
}

int recipe_build(const struct build_options *opts, capsula_error *err)
{
	struct builder b = {.opts = opts, .context_fd = -1, .layers_fd = -1,
	                    .id.socket_dir_fd = -1, .cache.fd = -1};
	struct stat st;
	size_t target;
	bool *seen = NULL;
	int ret = -1;

	b.start_us = timing_now_us();
	if (!opts->force && lstat(opts->output, &st) == 0)
		return fail(err, 0, "use --force to replace it", "%s exists", opts->output);
	if (check_platform(opts, err) < 0 || read_recipe(&b, err) < 0 || prepare(&b, err) < 0 ||
	    declare_args_global(&b, err) < 0)
		goto out;
	target = target_stage(&b, err);
	b.stages = calloc(b.recipe.count, sizeof *b.stages);
	seen = calloc(b.recipe.count, sizeof *seen);
	if (target == (size_t)-1 || b.stages == NULL || seen == NULL) {
		if (target != (size_t)-1)
			fail(err, ENOMEM, NULL, "build");
		goto out;
	}
	b.total = count_steps(&b, target, seen);
	if (build_stage(&b, target, err) < 0 || write_image(&b, &b.stages[target], err) < 0)
		goto out;
	if (!opts->quiet)
		fprintf(stderr, "capsula: wrote %s in %.1f s (%u steps, %u cached)\n", opts->output,
		        (double)(timing_now_us() - b.start_us) / 1e6, b.step, b.cached);
	ret = 0;
out:
	free(seen);
	release(&b);
	return ret;
}
