#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "runtime/plan/env.h"
#include "tests/unit/tap.h"

static const char *get(const struct strvec *env, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < env->count; i++)
		if (strncmp(env->items[i], name, len) == 0 && env->items[i][len] == '=')
			return env->items[i] + len + 1;
	return NULL;
}

static char *write_temp(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof path, "/tmp/capsula-env-test.XXXXXX");
	fd = mkstemp(path);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return NULL;
	close(fd);
	return path;
}

int main(void)
{
	char *host[] = {
		"PATH=/host/bin", "LD_LIBRARY_PATH=/host/lib", "OMPI_COMM_WORLD_RANK=3",
		"PMIX_NAMESPACE=prterun-n1-42@1", "SLURM_JOB_ID=7", "TERM=xterm",
		"HOME=/home/alice", "NOEQUALS", "CAPSULA_DOCKER_PASSWORD=s3cret", NULL,
	};
	char *assignments[] = {"LD_LIBRARY_PATH=/opt/lib", "FOO=bar", NULL};
	struct env_request req = {.host = host, .image_path = "/img.sqfs"};
	struct strvec env = {0};
	capsula_error err = {0};
	char *files[2] = {NULL, NULL};

	ok(env_build(&req, &env, &err) == 0, "environment built");
	is_str(get(&env, "PATH"), CONTAINER_DEFAULT_PATH, "PATH comes from the image, not the host");
	ok(get(&env, "LD_LIBRARY_PATH") == NULL, "the host's LD_LIBRARY_PATH does not leak in");
	is_str(get(&env, "OMPI_COMM_WORLD_RANK"), "3", "Open MPI variables pass through");
	is_str(get(&env, "PMIX_NAMESPACE"), "prterun-n1-42@1", "PMIx variables pass through");
	is_str(get(&env, "SLURM_JOB_ID"), "7", "Slurm variables pass through");
	is_str(get(&env, "HOME"), "/home/alice", "HOME passes through when not set");
	is_str(get(&env, "CAPSULA_CONTAINER"), "/img.sqfs", "CAPSULA_CONTAINER names the image");
	is_str(get(&env, "APPTAINER_CONTAINER"), "/img.sqfs", "APPTAINER_CONTAINER too, as Apptainer sets it");
	is_str(get(&env, "APPTAINER_NAME"), "img.sqfs", "APPTAINER_NAME is the image's file name");
	is_str(get(&env, "SINGULARITY_NAME"), "img.sqfs", "and SINGULARITY_NAME, for older scripts");
	ok(get(&env, "NOEQUALS") == NULL, "malformed entries are dropped");
	ok(get(&env, "CAPSULA_DOCKER_PASSWORD") == NULL, "a registry password does not reach the command");
	strvec_free(&env);

	req.assignments = assignments;
	req.home = "/work/home";
	ok(env_build(&req, &env, &err) == 0, "environment with --env built");
	is_str(get(&env, "LD_LIBRARY_PATH"), "/opt/lib", "--env may set LD_LIBRARY_PATH");
	is_str(get(&env, "FOO"), "bar", "--env adds variables");
	is_str(get(&env, "HOME"), "/work/home", "--home sets HOME");
	strvec_free(&env);

	req.cleanenv = true;
	req.assignments = NULL;
	ok(env_build(&req, &env, &err) == 0, "clean environment built");
	ok(get(&env, "OMPI_COMM_WORLD_RANK") == NULL && get(&env, "SLURM_JOB_ID") == NULL,
	   "--cleanenv drops the host's variables");
	is_str(get(&env, "TERM"), "xterm", "--cleanenv keeps TERM");
	is_str(get(&env, "PATH"), CONTAINER_DEFAULT_PATH, "--cleanenv still sets PATH");
	strvec_free(&env);

	files[0] = write_temp("# comment\n\nexport A=1\nB=\"two words\"\nC='x'\n  D = ignored\n");
	req.cleanenv = false;
	req.env_files = files;
	ok(env_build(&req, &env, &err) < 0 && strstr(err.message, "line 6"),
	   "a bad env-file line is reported with its number (%s)", err.message);
	strvec_free(&env);
	unlink(files[0]);

	files[0] = write_temp("export A=1\nB=\"two words\"\nC='x'\nPATH=/opt/bin\n");
	ok(env_build(&req, &env, &err) == 0, "env-file read");
	is_str(get(&env, "A"), "1", "export prefix accepted");
	is_str(get(&env, "B"), "two words", "double quotes removed");
	is_str(get(&env, "C"), "x", "single quotes removed");
	is_str(get(&env, "PATH"), "/opt/bin", "an env-file may set PATH");
	strvec_free(&env);
	unlink(files[0]);

	files[0] = "/nonexistent/env";
	ok(env_build(&req, &env, &err) < 0 && strstr(err.message, "No such file"),
	   "a missing env-file is an error");
	strvec_free(&env);
	return tap_done();
}
