/* The recipe parsers: Dockerfiles (directives, continuations, comments,
 * here-documents, the exec form, ENV and ARG forms, stages, flags, errors
 * with FILE:LINE), Docker's word expansion, and definition files
 * (sections, templates, stages, refused %setup). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/recipe/recipe.h"
#include "runtime/recipe/words.h"
#include "tests/unit/tap.h"

static int parse(const char *text, struct recipe *r, capsula_error *err)
{
	memset(err, 0, sizeof *err);
	return dockerfile_parse(text, strlen(text), "Dockerfile", r, err);
}

static void test_lines(void)
{
	struct recipe r;
	capsula_error err;
	const char *text =
		"# syntax=docker/dockerfile:1\n"
		"ARG BASE=debian:12\n"
		"FROM ${BASE} AS Build\n"
		"RUN apt-get update && \\\n"
		"# a comment inside\n"
		"\n"
		"    apt-get install -y gcc\n"
		"  run [\"/bin/echo\", \"hi there\"]\n"
		"ENV A=1 B=\"two words\"\n"
		"COPY --chown=svc:svc --chmod=0644 a b /dst/\n"
		"FROM scratch\n"
		"COPY --from=build /out /\n";
	bool ok_parse = parse(text, &r, &err) == 0;

	ok(ok_parse, "a Dockerfile with continuations, comments and stages parses: %s", err.message);
	if (!ok_parse)
		return;
	ok(r.global_count == 1 && strcmp(r.global_args[0].args.items[0], "BASE") == 0 &&
	   strcmp(r.global_args[0].args.items[1], "debian:12") == 0, "ARG before FROM is global");
	ok(r.count == 2 && strcmp(r.stages[0].from, "${BASE}") == 0 &&
	   strcmp(r.stages[0].name, "build") == 0, "FROM IMAGE AS NAME, the name in lower case");
	ok(r.stages[0].count == 4, "four steps in the first stage (%zu)", r.stages[0].count);
	ok(r.stages[0].steps[0].line == 4 &&
	   strcmp(r.stages[0].steps[0].args.items[0],
	          "apt-get update &&     apt-get install -y gcc") == 0,
	   "a continued line is one command, its comment and empty line dropped: '%s'",
	   r.stages[0].steps[0].args.items[0]);
	ok(r.stages[0].steps[1].exec_form && r.stages[0].steps[1].args.count == 2 &&
	   strcmp(r.stages[0].steps[1].args.items[1], "hi there") == 0,
	   "the exec form is a JSON array, instructions in any case");
	ok(r.stages[0].steps[2].args.count == 4 &&
	   strcmp(r.stages[0].steps[2].args.items[3], "\"two words\"") == 0 &&
	   r.stages[0].steps[2].has_value[1], "ENV NAME=VALUE pairs, their values raw");
	ok(r.stages[0].steps[3].flags.count == 2 &&
	   strcmp(r.stages[0].steps[3].flags.items[0], "chown=svc:svc") == 0 &&
	   r.stages[0].steps[3].args.count == 3, "COPY's flags and arguments");
	ok(strcmp(r.stages[1].steps[0].flags.items[0], "from=build") == 0, "COPY --from");
	recipe_free(&r);
}

static void test_heredocs_and_escape(void)
{
	struct recipe r;
	capsula_error err;
	const char *text =
		"# escape=`\n"
		"FROM busybox\n"
		"RUN <<EOF\n"
		"echo one\n"
		"echo two\n"
		"EOF\n"
		"COPY <<-'END' /etc/motd\n"
		"\thello $USER\n"
		"\tEND\n"
		"RUN echo a `\n"
		"  b\n";

	ok(parse(text, &r, &err) == 0, "here-documents and escape=` parse: %s", err.message);
	if (r.count != 1)
		return;
	ok(r.stages[0].steps[0].heredoc_count == 1 &&
	   strcmp(r.stages[0].steps[0].heredocs[0].body, "echo one\necho two\n") == 0,
	   "RUN <<EOF takes the lines up to EOF");
	ok(r.stages[0].steps[1].heredoc_count == 1 &&
	   strcmp(r.stages[0].steps[1].heredocs[0].body, "hello $USER\n") == 0 &&
	   !r.stages[0].steps[1].heredocs[0].expand, "<<-'END': tabs stripped, not expanded");
	ok(strcmp(r.stages[0].steps[2].args.items[0], "echo a   b") == 0,
	   "` continues a line under escape=`: '%s'", r.stages[0].steps[2].args.items[0]);
	recipe_free(&r);
}

static void test_errors(void)
{
	struct recipe r;
	capsula_error err;

	ok(parse("FROM a\nFROB x\n", &r, &err) < 0 &&
	   strstr(err.message, "Dockerfile:2: unknown instruction FROB") != NULL,
	   "an unknown instruction names its line: %s", err.message);
	recipe_free(&r);
	ok(parse("RUN true\n", &r, &err) < 0 && strstr(err.message, "before any FROM") != NULL,
	   "RUN before FROM is refused");
	recipe_free(&r);
	ok(parse("FROM a\nCOPY \"x /y\n", &r, &err) < 0 && strstr(err.message, "Dockerfile:2") != NULL,
	   "an unclosed quote is refused with its line");
	recipe_free(&r);
	ok(parse("FROM a\nRUN echo \\\n", &r, &err) < 0 && strstr(err.message, "continued line") != NULL,
	   "a file ending inside a continued line is refused");
	recipe_free(&r);
	ok(parse("FROM a\nRUN <<EOF\nnever ends\n", &r, &err) < 0 &&
	   strstr(err.message, "never ends") != NULL, "an unterminated here-document is refused");
	recipe_free(&r);
	ok(parse("# nothing\n", &r, &err) < 0 && strstr(err.message, "no FROM") != NULL,
	   "a file without FROM is refused");
	recipe_free(&r);
	ok(parse("FROM a\nCOPY onlyone\n", &r, &err) < 0 &&
	   strstr(err.message, "needs a source and a destination") != NULL,
	   "COPY with one argument is refused");
	recipe_free(&r);
	/* The file's last bytes: nothing after them to read (no newline, no NUL). */
	{
		static const char directive[] = "#\tescape=\t\t";
		size_t length = sizeof directive - 1;
		char *exact = malloc(length);

		if (exact != NULL) {
			memcpy(exact, directive, length);
			ok(dockerfile_parse(exact, length, "Dockerfile", &r, &err) < 0 &&
			   strstr(err.message, "Dockerfile:1: escape=: not") != NULL,
			   "an empty escape directive at the end of the file is refused: %s", err.message);
			recipe_free(&r);
			free(exact);
		}
	}
}

/* Expand text with vars; passes when it gives want. */
static void expands(const struct strvec *vars, const char *text, const char *want,
                    const char *description)
{
	capsula_error err;
	char *out = NULL;
	int ret = words_expand(text, '\\', vars, &out, "w", &err);

	ok(ret == 0 && strcmp(out, want) == 0, "%s: '%s'", description, ret == 0 ? out : err.message);
	free(out);
}

static void test_expansion(void)
{
	struct strvec vars = {0};
	capsula_error err;
	char *out = NULL;

	strvec_push(&vars, "NAME=world");
	strvec_push(&vars, "EMPTY=");
	expands(&vars, "hello $NAME ${NAME}!", "hello world world!", "$NAME and ${NAME}");
	expands(&vars, "'$NAME' \"$NAME\" \\$NAME", "$NAME world $NAME",
	        "single quotes and the escape keep $");
	expands(&vars, "${MISSING:-dflt} ${EMPTY:-e} ${EMPTY-set} ${NAME:+yes} ${MISSING:+no}.",
	        "dflt e  yes .", ":- - :+ as Docker has them");
	expands(&vars, "${NAME:-${EMPTY:-nested}}", "world", "a nested default");
	ok(words_expand("${NAME#w}", '\\', &vars, &out, "w", &err) < 0 &&
	   strstr(err.message, "unsupported") != NULL, "an unsupported substitution is refused");
	ok(words_expand("\"open", '\\', &vars, &out, "w", &err) < 0, "an unclosed quote is refused");
	expands(&vars, "$ $1 cost", "$ $1 cost", "a lone $ and $1 stay");
	strvec_free(&vars);
}

static void test_deffile(void)
{
	struct recipe r;
	struct strvec args = {0};
	capsula_error err = {0};
	const char *text =
		"Bootstrap: docker\n"
		"From: debian:{{ RELEASE }}\n"
		"Stage: build\n"
		"%arguments\n"
		"    RELEASE=12\n"
		"%files\n"
		"    hello.c /src/hello.c\n"
		"%post\n"
		"    cc -o /hello /src/hello.c\n"
		"Bootstrap: docker\n"
		"From: debian:12\n"
		"%files from build\n"
		"    /hello\n"
		"%environment\n"
		"    export GREETING=hi\n"
		"%runscript\n"
		"    exec /hello \"$@\"\n"
		"%labels\n"
		"    Author someone here\n"
		"%test\n"
		"    /hello\n";
	bool parsed;

	strvec_push(&args, "UNUSED=1");
	parsed = deffile_parse(text, strlen(text), "app.def", &args, &r, &err) == 0;
	ok(parsed, "a two-stage definition file parses: %s", err.message);
	if (!parsed)
		return;
	ok(r.apptainer && r.count == 2 && strcmp(r.stages[0].from, "docker://debian:12") == 0 &&
	   strcmp(r.stages[0].name, "build") == 0, "{{ RELEASE }} comes from %%arguments");
	ok(r.stages[0].count == 2 && r.stages[0].steps[0].kind == STEP_COPY &&
	   r.stages[0].steps[1].kind == STEP_RUN, "%%files, then %%post");
	ok(strcmp(r.stages[1].steps[0].flags.items[0], "from=build") == 0 &&
	   strcmp(r.stages[1].steps[0].args.items[1], "/hello") == 0,
	   "%%files from STAGE with one path copies it to the same place");
	ok(r.stages[1].count == 6, "files, environment, runscript, test file, labels, test (%zu)",
	   r.stages[1].count);
	ok(r.stages[1].steps[1].kind == STEP_FILE &&
	   strcmp(r.stages[1].steps[1].args.items[0], "/.singularity.d/env/90-environment.sh") == 0,
	   "%%environment becomes Apptainer's 90-environment.sh");
	ok(strcmp(r.stages[1].steps[4].args.items[1], "someone here") == 0, "%%labels KEY VALUE");
	ok(r.stages[1].steps[5].kind == STEP_TEST, "%%test runs last");
	recipe_free(&r);
	strvec_free(&args);

	ok(deffile_parse("Bootstrap: docker\nFrom: x\n%setup\n  touch /host\n", 39, "s.def", NULL, &r,
	                 &err) < 0 && strstr(err.message, "%setup runs on the host") != NULL,
	   "%%setup is refused with a reason: %s", err.message);
	recipe_free(&r);
	ok(deffile_parse("Bootstrap: docker\nFrom: x:{{ V }}\n", 33, "t.def", NULL, &r, &err) < 0 &&
	   strstr(err.message, "{{ V }} has no value") != NULL, "a template without a value is refused");
	recipe_free(&r);
	ok(deffile_parse("Bootstrap: library\nFrom: x\n", 27, "l.def", NULL, &r, &err) < 0 &&
	   strstr(err.message, "Bootstrap: library is not supported") != NULL,
	   "an unsupported bootstrap agent is refused");
	recipe_free(&r);
}

int main(void)
{
	test_lines();
	test_heredocs_and_escape();
	test_errors();
	test_expansion();
	test_deffile();
	return tap_done();
}
