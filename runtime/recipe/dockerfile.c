/* The Dockerfile grammar, in three layers: physical lines into logical
 * ones (parser directives, comments, the escape character's line
 * continuations, here-documents), a logical line into its instruction,
 * flags and arguments (a JSON array through jansson, or raw shell words),
 * and the arguments into each instruction's shape. Quotes and variables
 * stay raw: the build expands them with what is in scope at each step. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/recipe/recipe.h"
#include "runtime/recipe/words.h"

#define HINT_SYNTAX "see the Dockerfile reference"
#define MAX_HEREDOCS 8

struct reader {
	const char *text, *end;
	const char *at;          /* the next physical line */
	unsigned number;         /* of the line last read */
	char escape;
	const char *file;
	struct recipe *recipe;
	capsula_error *err;
};

/* The next physical line (without its newline); false at the end. */
static bool next_line(struct reader *r, const char **line, size_t *length)
{
	const char *newline;

	if (r->at >= r->end)
		return false;
	newline = memchr(r->at, '\n', (size_t)(r->end - r->at));
	*line = r->at;
	*length = (size_t)((newline ? newline : r->end) - r->at);
	if (*length > 0 && (*line)[*length - 1] == '\r')
		(*length)--;
	r->at = newline ? newline + 1 : r->end;
	r->number++;
	return true;
}

static const char *skip_space(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

/* "# name=value" at the very top: escape (and syntax, check: read, unused). */
static bool parse_directive(struct reader *r, const char *line, size_t length, bool *failed)
{
	const char *end = line + length, *p = skip_space(line, end), *name, *value;
	size_t name_len, value_len;

	if (p == end || *p != '#')
		return false;
	p = skip_space(p + 1, end);
	name = p;
	while (p < end && isalpha((unsigned char)*p))
		p++;
	name_len = (size_t)(p - name);
	p = skip_space(p, end);
	if (name_len == 0 || p == end || *p != '=')
		return false;
	value = skip_space(p + 1, end);
	value_len = (size_t)(end - value);
	while (value_len > 0 && isspace((unsigned char)value[value_len - 1]))
		value_len--;
	if (name_len == 6 && strncasecmp(name, "escape", 6) == 0) {
		if (value_len != 1 || (value[0] != '\\' && value[0] != '`')) {
			*failed = true;
			fail(r->err, 0, "use escape=\\ or escape=`", "%s:%u: escape=%.*s: not \\ or `",
			     r->file, r->number, (int)value_len, value);
			return true;
		}
		r->escape = value[0];
	}
	return true;
}

/* Whether the line (as read so far) ends with the escape character. */
static bool continues(const char *line, size_t *length, char escape)
{
	size_t n = *length;

	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	if (n == 0 || line[n - 1] != escape)
		return false;
	*length = n - 1;
	return true;
}

static int append(char **buf, size_t *used, const char *s, size_t n)
{
	char *grown = realloc(*buf, *used + n + 1);

	if (grown == NULL)
		return -1;
	memcpy(grown + *used, s, n);
	*used += n;
	grown[*used] = '\0';
	*buf = grown;
	return 0;
}

/* The next logical line into *out (NULL at the end), the line it began on
 * in *first. Comment and empty lines are dropped, also inside a line
 * continued with the escape character. */
static int logical_line(struct reader *r, char **out, unsigned *first)
{
	const char *line;
	size_t length, used = 0;
	char *buf = NULL;
	bool continued = false;

	*out = NULL;
	while (next_line(r, &line, &length)) {
		const char *p = skip_space(line, line + length);

		if (p == line + length || *p == '#')
			continue;
		if (!continued)
			*first = r->number;
		continued = continues(line, &length, r->escape);
		if (append(&buf, &used, line, length) < 0) {
			free(buf);
			return fail(r->err, ENOMEM, NULL, "%s", r->file);
		}
		if (!continued) {
			*out = buf;
			return 0;
		}
	}
	if (continued) {
		free(buf);
		return fail(r->err, 0, HINT_SYNTAX, "%s:%u: the file ends inside a continued line",
		            r->file, r->number);
	}
	return 0;
}

/* ---------------------------------------------------------------- here-documents */

/* The here-documents that the arguments name (<<NAME, <<-NAME, <<"NAME",
 * <<'NAME' outside quotes), read from the lines that follow. */
static int read_heredocs(struct reader *r, struct step *s, const char *rest)
{
	char quote = 0;

	for (const char *p = rest; *p != '\0'; p++) {
		bool strip = false, quoted = false;
		char delimiter = 0, name[64];
		size_t n = 0;
		char *body = NULL;
		size_t used = 0;
		const char *line;
		size_t length;
		bool found = false;

		if (*p == r->escape && p[1] != '\0' && quote != '\'') {
			p++;
			continue;
		}
		if (quote != 0) {
			quote = *p == quote ? 0 : quote;
			continue;
		}
		if (*p == '\'' || *p == '"') {
			quote = *p;
			continue;
		}
		if (p[0] != '<' || p[1] != '<')
			continue;
		p += 2;
		if (*p == '-') {
			strip = true;
			p++;
		}
		if (*p == '"' || *p == '\'') {
			delimiter = *p++;
			quoted = true;
		}
		while ((isalnum((unsigned char)*p) || *p == '_') && n < sizeof name - 1)
			name[n++] = *p++;
		name[n] = '\0';
		if (n == 0 || (delimiter && *p != delimiter)) {
			p--;
			continue;  /* not a here-document (an unquoted <<, a redirection) */
		}
		if (s->heredoc_count == MAX_HEREDOCS)
			return fail(r->err, 0, HINT_SYNTAX, "%s:%u: more than %d here-documents",
			            r->file, s->line, MAX_HEREDOCS);
		while (next_line(r, &line, &length)) {
			const char *content = line;
			size_t content_len = length;

			while (strip && content_len > 0 && *content == '\t') {
				content++;
				content_len--;
			}
			if (content_len == n && strncmp(content, name, n) == 0) {
				found = true;
				break;
			}
			if (append(&body, &used, content, content_len) < 0 ||
			    append(&body, &used, "\n", 1) < 0) {
				free(body);
				return fail(r->err, ENOMEM, NULL, "%s", r->file);
			}
		}
		if (!found) {
			free(body);
			return fail(r->err, 0, HINT_SYNTAX, "%s:%u: here-document %s never ends", r->file,
			            s->line, name);
		}
		{
			struct heredoc *grown = realloc(s->heredocs,
			                                (s->heredoc_count + 1) * sizeof *grown);

			if (grown == NULL) {
				free(body);
				return fail(r->err, ENOMEM, NULL, "%s", r->file);
			}
			s->heredocs = grown;
			grown[s->heredoc_count].name = strdup(name);
			grown[s->heredoc_count].body = body ? body : strdup("");
			grown[s->heredoc_count].expand = !quoted;
			s->heredoc_count++;
		}
		if (delimiter)
			p++;
		p--;
	}
	return 0;
}

/* ---------------------------------------------------------------- arguments */

static const struct {
	const char *name;
	enum step_kind kind;
} instructions[] = {
	{"RUN", STEP_RUN}, {"COPY", STEP_COPY}, {"ADD", STEP_ADD}, {"ENV", STEP_ENV},
	{"ARG", STEP_ARG}, {"WORKDIR", STEP_WORKDIR}, {"USER", STEP_USER}, {"SHELL", STEP_SHELL},
	{"LABEL", STEP_LABEL}, {"CMD", STEP_CMD}, {"ENTRYPOINT", STEP_ENTRYPOINT},
	{"EXPOSE", STEP_EXPOSE}, {"VOLUME", STEP_VOLUME}, {"STOPSIGNAL", STEP_STOPSIGNAL},
	{"HEALTHCHECK", STEP_HEALTHCHECK}, {"ONBUILD", STEP_ONBUILD}, {"MAINTAINER", STEP_LABEL},
};

/* Leading --NAME[=VALUE] words. */
static int take_flags(struct reader *r, const char **rest, struct strvec *flags)
{
	const char *p = *rest;

	while (p[0] == '-' && p[1] == '-') {
		const char *start = p + 2;

		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		if (p == start) {
			*rest = p;
			return 0;
		}
		{
			char *flag = strndup(start, (size_t)(p - start));

			if (flag == NULL || strvec_push_owned(flags, flag) < 0)
				return fail(r->err, ENOMEM, NULL, "%s", r->file);
		}
		while (isspace((unsigned char)*p))
			p++;
	}
	*rest = p;
	return 0;
}

/* ["a", "b"]: the exec form, when it is a JSON array of strings. */
static bool take_json(const char *rest, struct strvec *args, bool *failed)
{
	json_t *array;
	size_t i;
	json_t *item;

	if (rest[0] != '[')
		return false;
	array = json_loads(rest, JSON_DECODE_ANY, NULL);
	if (!json_is_array(array)) {
		json_decref(array);
		return false;
	}
	json_array_foreach(array, i, item)
		if (!json_is_string(item)) {
			json_decref(array);
			return false;
		}
	json_array_foreach(array, i, item)
		if (strvec_push(args, json_string_value(item)) < 0)
			*failed = true;
	json_decref(array);
	return true;
}

static void trim_end(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* NAME=VALUE pairs (ENV, LABEL, ARG), or ENV's and LABEL's old NAME VALUE. */
static int take_pairs(struct reader *r, struct step *s, const char *rest, bool legacy_allowed)
{
	struct strvec words = {0};
	int ret = 0;

	if (words_split(rest, r->escape, &words) < 0) {
		strvec_free(&words);
		return fail(r->err, 0, HINT_SYNTAX, "%s:%u: a quote is not closed", r->file, s->line);
	}
	if (words.count == 0) {
		strvec_free(&words);
		return fail(r->err, 0, HINT_SYNTAX, "%s:%u: %s needs a NAME", r->file, s->line,
		            step_kind_name(s->kind));
	}
	s->has_value = calloc(words.count, sizeof *s->has_value);
	if (s->has_value == NULL)
		ret = fail(r->err, ENOMEM, NULL, "%s", r->file);
	if (ret == 0 && legacy_allowed && words_unquoted_index(words.items[0], '=', r->escape) < 0) {
		/* ENV NAME VALUE...: the rest of the line is the value. */
		const char *value = rest + strlen(words.items[0]);

		while (isspace((unsigned char)*value))
			value++;
		if (strvec_push(&s->args, words.items[0]) < 0 || strvec_push(&s->args, value) < 0)
			ret = fail(r->err, ENOMEM, NULL, "%s", r->file);
		s->has_value[0] = true;
		strvec_free(&words);
		return ret;
	}
	for (size_t i = 0; ret == 0 && i < words.count; i++) {
		const char *word = words.items[i];
		long eq = words_unquoted_index(word, '=', r->escape);
		char *name = eq < 0 ? strdup(word) : strndup(word, (size_t)eq);

		if (name == NULL || strvec_push_owned(&s->args, name) < 0 ||
		    strvec_push(&s->args, eq < 0 ? "" : word + eq + 1) < 0) {
			ret = fail(r->err, ENOMEM, NULL, "%s", r->file);
			break;
		}
		s->has_value[i] = eq >= 0;
		if (eq < 0 && s->kind != STEP_ARG)
			ret = fail(r->err, 0, HINT_SYNTAX, "%s:%u: %s %s: expected NAME=VALUE", r->file,
			           s->line, step_kind_name(s->kind), word);
		else if (eq == 0 || !words_is_name(name))
			ret = fail(r->err, 0, HINT_SYNTAX, "%s:%u: %s: '%s' is not a variable name",
			           r->file, s->line, step_kind_name(s->kind), name);
	}
	strvec_free(&words);
	return ret;
}

static int take_arguments(struct reader *r, struct step *s, const char *rest)
{
	bool failed = false;

	switch (s->kind) {
	case STEP_RUN:
	case STEP_CMD:
	case STEP_ENTRYPOINT:
	case STEP_SHELL:
	case STEP_HEALTHCHECK:
	case STEP_COPY:
	case STEP_ADD:
	case STEP_VOLUME:
		if (s->kind != STEP_HEALTHCHECK && take_json(rest, &s->args, &failed)) {
			s->exec_form = true;
			return failed ? fail(r->err, ENOMEM, NULL, "%s", r->file) : 0;
		}
		if (s->kind == STEP_SHELL)
			return fail(r->err, 0, "write SHELL [\"/bin/sh\", \"-c\"]",
			            "%s:%u: SHELL takes a JSON array", r->file, s->line);
		if (s->kind == STEP_COPY || s->kind == STEP_ADD || s->kind == STEP_VOLUME)
			break;
		if (strvec_push(&s->args, rest) < 0)
			return fail(r->err, ENOMEM, NULL, "%s", r->file);
		trim_end(s->args.items[0]);
		return 0;
	case STEP_ENV:
	case STEP_LABEL:
		return take_pairs(r, s, rest, true);
	case STEP_ARG:
		return take_pairs(r, s, rest, false);
	default:
		break;
	}
	if (words_split(rest, r->escape, &s->args) < 0)
		return fail(r->err, 0, HINT_SYNTAX, "%s:%u: a quote is not closed", r->file, s->line);
	return 0;
}

/* Each instruction's own rules on its arguments. */
static int check_arguments(struct reader *r, const struct step *s, const char *keyword)
{
	size_t n = s->args.count + s->heredoc_count;

	switch (s->kind) {
	case STEP_RUN:
	case STEP_CMD:
	case STEP_ENTRYPOINT:
		if (s->kind == STEP_RUN && (s->args.count == 0 || s->args.items[0][0] == '\0'))
			return fail(r->err, 0, HINT_SYNTAX, "%s:%u: RUN needs a command", r->file, s->line);
		return 0;
	case STEP_COPY:
	case STEP_ADD:
		if (n < 2)
			return fail(r->err, 0, HINT_SYNTAX, "%s:%u: %s needs a source and a destination",
			            r->file, s->line, keyword);
		return 0;
	case STEP_WORKDIR:
	case STEP_USER:
	case STEP_STOPSIGNAL:
		if (s->args.count != 1)
			return fail(r->err, 0, HINT_SYNTAX, "%s:%u: %s takes one argument", r->file,
			            s->line, keyword);
		return 0;
	case STEP_EXPOSE:
	case STEP_VOLUME:
	case STEP_HEALTHCHECK:
	case STEP_ONBUILD:
		if (s->args.count == 0)
			return fail(r->err, 0, HINT_SYNTAX, "%s:%u: %s needs an argument", r->file,
			            s->line, keyword);
		return 0;
	default:
		return 0;
	}
}

static struct stage *current_stage(struct recipe *recipe)
{
	return recipe->count > 0 ? &recipe->stages[recipe->count - 1] : NULL;
}

/* FROM [--platform=P] IMAGE [AS NAME]: a new stage. */
static int start_stage(struct reader *r, const char *rest, unsigned line)
{
	struct recipe *recipe = r->recipe;
	struct strvec flags = {0}, words = {0};
	struct stage *grown;
	int ret = 0;

	if (take_flags(r, &rest, &flags) < 0 || words_split(rest, r->escape, &words) < 0) {
		strvec_free(&flags);
		strvec_free(&words);
		return r->err->message[0] ? -1 : fail(r->err, 0, HINT_SYNTAX,
		                                      "%s:%u: a quote is not closed", r->file, line);
	}
	if (words.count != 1 && !(words.count == 3 && strcasecmp(words.items[1], "AS") == 0))
		ret = fail(r->err, 0, "write FROM IMAGE [AS NAME]", "%s:%u: FROM %s", r->file, line,
		           rest);
	grown = ret == 0 ? realloc(recipe->stages, (recipe->count + 1) * sizeof *grown) : NULL;
	if (ret == 0 && grown == NULL)
		ret = fail(r->err, ENOMEM, NULL, "%s", r->file);
	if (ret < 0) {
		strvec_free(&flags);
		strvec_free(&words);
		return -1;
	}
	recipe->stages = grown;
	grown = &grown[recipe->count++];
	memset(grown, 0, sizeof *grown);
	grown->line = line;
	grown->from_flags = flags;
	grown->from = strdup(words.items[0]);
	grown->name = words.count == 3 ? strdup(words.items[2]) : NULL;
	strvec_free(&words);
	if (grown->from == NULL || (words.count == 3 && grown->name == NULL))
		return fail(r->err, ENOMEM, NULL, "%s", r->file);
	for (char *c = grown->name; c != NULL && *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	return 0;
}

static int parse_instruction(struct reader *r, char *text, unsigned line)
{
	const char *p = skip_space(text, text + strlen(text)), *keyword = p, *rest;
	size_t keyword_len = 0;
	struct stage *stage;
	struct step *s = NULL;
	enum step_kind kind = STEP_RUN;
	bool known = false;

	while (p[keyword_len] != '\0' && !isspace((unsigned char)p[keyword_len]))
		keyword_len++;
	rest = p + keyword_len;
	while (isspace((unsigned char)*rest))
		rest++;
	if (keyword_len == 4 && strncasecmp(keyword, "FROM", 4) == 0)
		return start_stage(r, rest, line);
	for (size_t i = 0; i < sizeof instructions / sizeof instructions[0]; i++)
		if (strlen(instructions[i].name) == keyword_len &&
		    strncasecmp(keyword, instructions[i].name, keyword_len) == 0) {
			kind = instructions[i].kind;
			known = true;
		}
	if (!known)
		return fail(r->err, 0, HINT_SYNTAX, "%s:%u: unknown instruction %.*s", r->file, line,
		            (int)keyword_len, keyword);
	stage = current_stage(r->recipe);
	if (stage == NULL && kind != STEP_ARG)
		return fail(r->err, 0, "begin with FROM (only ARG may come before it)",
		            "%s:%u: %.*s before any FROM", r->file, line, (int)keyword_len, keyword);
	s = stage != NULL ? steps_add(&stage->steps, &stage->count, kind, line) :
	    steps_add(&r->recipe->global_args, &r->recipe->global_count, kind, line);
	if (s == NULL)
		return fail(r->err, ENOMEM, NULL, "%s", r->file);
	if (asprintf(&s->text, "%.*s %s", (int)keyword_len, keyword, rest) < 0) {
		s->text = NULL;
		return fail(r->err, ENOMEM, NULL, "%s", r->file);
	}
	for (size_t i = 0; i < keyword_len; i++)
		s->text[i] = (char)toupper((unsigned char)s->text[i]);
	trim_end(s->text);
	if (strncasecmp(keyword, "MAINTAINER", keyword_len) == 0 && keyword_len == 10) {
		if (strvec_push(&s->args, "maintainer") < 0 || strvec_push(&s->args, rest) < 0 ||
		    (s->has_value = calloc(1, sizeof *s->has_value)) == NULL)
			return fail(r->err, ENOMEM, NULL, "%s", r->file);
		s->has_value[0] = true;
		return 0;
	}
	if (kind == STEP_RUN || kind == STEP_COPY || kind == STEP_ADD || kind == STEP_HEALTHCHECK)
		if (take_flags(r, &rest, &s->flags) < 0)
			return -1;
	if ((kind == STEP_RUN || kind == STEP_COPY || kind == STEP_ADD) &&
	    read_heredocs(r, s, rest) < 0)
		return -1;
	if (take_arguments(r, s, rest) < 0)
		return -1;
	return check_arguments(r, s, step_kind_name(kind));
}

int dockerfile_parse(const char *text, size_t length, const char *file, struct recipe *recipe,
                     capsula_error *err)
{
	struct reader r = {
		.text = text, .end = text + length, .at = text, .escape = '\\', .file = file,
		.recipe = recipe, .err = err,
	};
	const char *line;
	size_t line_length;
	bool failed = false;

	memset(recipe, 0, sizeof *recipe);
	recipe->file = strdup(file);
	if (recipe->file == NULL)
		return fail(err, ENOMEM, NULL, "%s", file);
	/* Parser directives: only the very first lines, before anything else. */
	for (;;) {
		const char *before = r.at;
		unsigned number = r.number;

		if (!next_line(&r, &line, &line_length))
			break;
		if (!parse_directive(&r, line, line_length, &failed)) {
			r.at = before;
			r.number = number;
			break;
		}
		if (failed)
			return -1;
	}
	for (;;) {
		char *logical;
		unsigned first = 0;
		int ret;

		if (logical_line(&r, &logical, &first) < 0)
			return -1;
		if (logical == NULL)
			break;
		ret = parse_instruction(&r, logical, first);
		free(logical);
		if (ret < 0)
			return -1;
	}
	if (recipe->count == 0)
		return fail(err, 0, "add a FROM line", "%s: no FROM instruction", file);
	return 0;
}
