#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/image/image_files.h"
#include "runtime/image/image_run.h"

#define MAX_CONFIG_SIZE (1u << 20)

/* Apptainer's action scripts source every env script before running the
 * command; capsula does the same with the image's own shell. */
static const char apptainer_prelude[] =
	"for f in " APPTAINER_DIR "/env/*.sh; do [ -r \"$f\" ] && . \"$f\"; done; ";

static int load_config(struct image_files *files, struct image_run *run, capsula_error *err)
{
	char *text;
	size_t length;
	char why[160];
	int ret;

	if (image_files_read(files, IMAGE_CONFIG_PATH, MAX_CONFIG_SIZE, &text, &length) < 0) {
		if (errno == ENOENT)
			return 0;
		return fail(err, errno, "rebuild the image with capsula build",
		            "image metadata %s", IMAGE_CONFIG_PATH);
	}
	ret = image_config_parse(text, length, &run->config, why, sizeof why);
	free(text);
	if (ret < 0)
		return fail(err, 0, "rebuild the image with capsula build", "image metadata %s: %s",
		            IMAGE_CONFIG_PATH, why);
	for (size_t i = 0; i < run->config.env.count; i++)
		if (strchr(run->config.env.items[i], '=') != NULL &&
		    strvec_push(&run->env, run->config.env.items[i]) < 0)
			return fail(err, errno, NULL, "image environment");
	run->workdir = run->config.workdir;
	return 0;
}

void image_prompt_name(const char *image_path, char *out, size_t size)
{
	const char *base = strrchr(image_path, '/');
	const char *dot;
	size_t n = 0;

	base = base ? base + 1 : image_path;
	dot = strrchr(base, '.');
	if (dot == NULL || dot == base)
		dot = base + strlen(base);
	for (const char *c = base; c < dot && n + 1 < size; c++)
		out[n++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
		                  *c) != NULL ? *c : '_';
	out[n] = '\0';
}

static int push_all(struct strvec *v, char *const *items)
{
	for (; items != NULL && *items != NULL; items++)
		if (strvec_push(v, *items) < 0)
			return -1;
	return 0;
}

static int run_command(struct image_run *run, const struct capsula_image *image,
                       char *const *args, capsula_error *err)
{
	bool have_args = args != NULL && args[0] != NULL;

	if (run->runscript)
		return strvec_push(&run->argv, APPTAINER_DIR "/runscript") < 0 ||
		       push_all(&run->argv, args) < 0 ? fail(err, errno, NULL, "command") : 0;
	if (run->config.entrypoint.count == 0 && run->config.cmd.count == 0 && !have_args)
		return fail(err, 0, "give a command with capsula exec IMAGE COMMAND",
		            "image %s has no runscript, Entrypoint or Cmd", image->path);
	/* Docker's rule: arguments replace Cmd, never the Entrypoint. */
	if (push_all(&run->argv, run->config.entrypoint.items) < 0 ||
	    push_all(&run->argv, have_args ? args : run->config.cmd.items) < 0)
		return fail(err, errno, NULL, "command");
	return 0;
}

static int shell_command(struct image_run *run, const struct capsula_image *image,
                         char *const *args, capsula_error *err)
{
	char name[64];
	char *prompt;
	bool bash = strcmp(run->shell, "/bin/bash") == 0;

	image_prompt_name(image->path, name, sizeof name);
	if (asprintf(&prompt, "PS1=capsula:%s \\w%s ", name, bash ? "\\$" : "$") < 0)
		return fail(err, errno, NULL, "prompt");
	if (strvec_push_owned(&run->env, prompt) < 0 || strvec_push(&run->argv, run->shell) < 0 ||
	    (bash && strvec_push(&run->argv, "--norc") < 0) || push_all(&run->argv, args) < 0)
		return fail(err, errno, NULL, "shell");
	return 0;
}

/* Run the command through the image's shell after Apptainer's env scripts;
 * they may set PS1 themselves, so a shell's prompt is set again after. */
static int wrap_for_apptainer(struct image_run *run, enum run_mode mode, capsula_error *err)
{
	struct strvec wrapped = {0};
	char *script;
	int ret;

	ret = asprintf(&script, "%s%sexec \"$@\"", apptainer_prelude,
	               mode == RUN_SHELL ? "PS1=$CAPSULA_PS1; " : "");
	if (ret < 0)
		return fail(err, errno, NULL, "command");
	if (strvec_push(&wrapped, "/bin/sh") < 0 || strvec_push(&wrapped, "-c") < 0 ||
	    strvec_push_owned(&wrapped, script) < 0 || strvec_push(&wrapped, "capsula") < 0 ||
	    push_all(&wrapped, run->argv.items) < 0) {
		strvec_free(&wrapped);
		return fail(err, errno, NULL, "command");
	}
	if (mode == RUN_SHELL) {
		for (size_t i = 0; i < run->env.count; i++) {
			if (strncmp(run->env.items[i], "PS1=", 4) != 0)
				continue;
			char *copy;

			if (asprintf(&copy, "CAPSULA_%s", run->env.items[i]) < 0 ||
			    strvec_push_owned(&run->env, copy) < 0) {
				strvec_free(&wrapped);
				return fail(err, errno, NULL, "prompt");
			}
			break;
		}
	}
	strvec_free(&run->argv);
	run->argv = wrapped;
	return 0;
}

int image_run_describe(struct image_files *files, struct image_run *run, capsula_error *err)
{
	mode_t type;

	memset(run, 0, sizeof *run);
	if (load_config(files, run, err) < 0)
		return -1;
	run->apptainer = image_files_exists(files, APPTAINER_DIR "/env", &type) && S_ISDIR(type);
	run->runscript = image_files_exists(files, APPTAINER_DIR "/runscript", &type) &&
	                 S_ISREG(type);
	run->shell = image_files_exists(files, "/bin/bash", NULL) ? "/bin/bash" : "/bin/sh";
	return 0;
}

int image_run_prepare(const struct capsula_image *image, enum run_mode mode,
                      char *const *args, struct image_run *run, capsula_error *err)
{
	struct image_files files;
	int ret;

	memset(run, 0, sizeof *run);
	if (image_files_open(&files, image, err) < 0)
		return -1;
	ret = image_run_describe(&files, run, err);
	image_files_close(&files);
	if (ret < 0)
		return -1;
	if (mode == RUN_EXEC)
		ret = push_all(&run->argv, args) < 0 ? fail(err, errno, NULL, "command") : 0;
	else if (mode == RUN_RUN)
		ret = run_command(run, image, args, err);
	else
		ret = shell_command(run, image, args, err);
	if (ret == 0 && run->apptainer)
		ret = wrap_for_apptainer(run, mode, err);
	return ret;
}

void image_run_free(struct image_run *run)
{
	image_config_free(&run->config);
	strvec_free(&run->env);
	strvec_free(&run->argv);
	memset(run, 0, sizeof *run);
}
