/* The Slurm plugin's translation: pyxis's image references, mount lists and
 * options into a capsula command line. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "slurm/container_request.h"
#include "tests/unit/tap.h"

static void image_is(const char *given, const char *want)
{
	char out[256], why[128] = "";

	ok(request_image_ref(given, out, sizeof out, why, sizeof why) == 0 && strcmp(out, want) == 0,
	   "%s -> %s (%s)", given, want, why);
}

static void test_images(void)
{
	char out[256], why[128];

	image_is("/scratch/app.sqfs", "/scratch/app.sqfs");
	image_is("./app.sif", "./app.sif");
	image_is("app.sqfs", "app.sqfs");
	image_is("docker://reg.example/app:1", "docker://reg.example/app:1");
	image_is("ubuntu:22.04", "docker://ubuntu:22.04");
	image_is("nvcr.io#nvidia/pytorch:24.01", "docker://nvcr.io/nvidia/pytorch:24.01");
	image_is("someone@nvcr.io#nvidia/pytorch:24.01", "docker://nvcr.io/nvidia/pytorch:24.01");
	image_is("someone@ubuntu", "docker://ubuntu");
	image_is("ubuntu@sha256:0123", "docker://ubuntu@sha256:0123");
	ok(request_image_ref("reg#", out, sizeof out, why, sizeof why) < 0, "REGISTRY# alone is refused");
	ok(request_image_ref("a#b#c", out, sizeof out, why, sizeof why) < 0, "two # are refused");
	ok(request_image_ref("", out, sizeof out, why, sizeof why) < 0, "an empty image is refused");
}

static void test_mounts(void)
{
	char why[128];

	ok(request_check_mounts("/a:/b,/c:/d:ro,/e", why, sizeof why) == 0, "SRC:DST, :ro and SRC alone");
	ok(request_check_mounts("a:/b", why, sizeof why) < 0, "a relative source is refused");
	ok(request_check_mounts("/a:b", why, sizeof why) < 0, "a relative destination is refused");
	ok(request_check_mounts("/a:/b:rbind", why, sizeof why) < 0 && strstr(why, "ro or rw"),
	   "flags other than ro and rw are refused: %s", why);
	ok(request_check_mounts("/a,,/b", why, sizeof why) < 0, "an empty entry is refused");
}

/* The arguments as one string, '|' between them. */
static void join(char **argv, char *out, size_t size)
{
	out[0] = '\0';
	for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
		snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "|" : "", argv[i]);
}

static void test_argv(void)
{
	struct container_request r = {
		.mounts = "/data:/data:ro", .workdir = "/w", .env_names = "KEEP,ABSENT",
		.writable = CHOICE_YES, .mount_home = CHOICE_NO, .remap_root = CHOICE_YES,
		.entrypoint = CHOICE_UNSET, .nv = CHOICE_YES,
	};
	char *env[] = {"KEEP=job value", "OTHER=1", NULL};
	char *command[] = {"python3", "-c", "pass", NULL};
	char joined[1024] = "", why[128];
	char **argv = request_argv(&r, "/usr/bin/capsula", "docker://app", NULL, env, command, why,
	                           sizeof why);

	join(argv, joined, sizeof joined);
	ok(strcmp(joined, "/usr/bin/capsula|exec|--bind|/data:/data:ro|--pwd|/w|--writable-tmpfs|"
	          "--no-home|--fakeroot|--nv|--env|KEEP=job value|--|docker://app|python3|-c|pass") == 0,
	   "every option, the options before -- and the image: %s", joined);
	request_argv_free(argv);
	r = (struct container_request){.writable = CHOICE_YES, .entrypoint = CHOICE_YES,
	                               .mount_home = CHOICE_UNSET, .remap_root = CHOICE_UNSET,
	                               .nv = CHOICE_UNSET,
	                               .script = "/spool/job1/slurm_script"};
	argv = request_argv(&r, "capsula", "/i.sqfs", "/h/.capsula/slurm/n/1/app/overlay", env,
	                    command, why, sizeof why);
	join(argv, joined, sizeof joined);
	ok(strcmp(joined, "capsula|run|--bind|/spool/job1/slurm_script:/spool/job1/slurm_script:ro|"
	          "--overlay|/h/.capsula/slurm/n/1/app/overlay|--|/i.sqfs|python3|-c|pass") == 0,
	   "the entrypoint, a batch script bound, a named container's layer: %s", joined);
	request_argv_free(argv);
	r = (struct container_request){.writable = CHOICE_UNSET, .entrypoint = CHOICE_UNSET,
	                               .mount_home = CHOICE_UNSET, .remap_root = CHOICE_UNSET,
	                               .nv = CHOICE_UNSET, .job = "slurm:7.0", .hold = true};
	argv = request_argv(&r, "capsula", "/i.sqfs", NULL, env, command, why, sizeof why);
	join(argv, joined, sizeof joined);
	ok(strcmp(joined, "capsula|exec|--job|slurm:7.0|--hold|--|/i.sqfs|python3|-c|pass") == 0,
	   "the step's name for its container, and the line that holds it ready: %s", joined);
	request_argv_free(argv);
	r.hold_notify = true;
	argv = request_argv(&r, "capsula", "/i.sqfs", NULL, env, command, why, sizeof why);
	join(argv, joined, sizeof joined);
	ok(strcmp(joined, "capsula|exec|--job|slurm:7.0|--hold|--hold-notify|3|--|/i.sqfs|python3|"
	          "-c|pass") == 0, "which tells the tasks how to join it on descriptor 3: %s", joined);
	request_argv_free(argv);
	r.hold = false;
	argv = request_argv(&r, "capsula", "/i.sqfs", NULL, env, command, why, sizeof why);
	join(argv, joined, sizeof joined);
	ok(strstr(joined, "--hold") == NULL, "a task's line never has it: %s", joined);
	request_argv_free(argv);
}

int main(void)
{
	test_images();
	test_mounts();
	test_argv();
	return tap_done();
}
