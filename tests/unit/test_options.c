#include "config.h"

#include "runtime/plan/options.h"
#include "tests/unit/tap.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static int parse(int argc, char **argv, struct exec_options *opts, capsula_error *err)
{
	exec_options_free(opts);
	memset(err, 0, sizeof *err);
	return exec_options_parse(argc, argv, opts, err);
}

int main(void)
{
	struct exec_options opts = {0};
	capsula_error err;

	char *simple[] = {"exec", "img.sqfs", "hostname", NULL};
	ok(parse(ARGC(simple), simple, &opts, &err) == 0, "exec IMAGE CMD parses");
	is_str(opts.image, "img.sqfs", "image found");
	is_str(opts.command[0], "hostname", "command found");
	ok(opts.dev_mode == DEV_MINIMAL && opts.join == JOIN_AUTO && opts.verbosity == 0,
	   "defaults: minimal /dev, join auto, normal verbosity");

	char *full[] = {"exec", "-B", "/a,/b:/c:ro", "--bind=/d", "--home", "/h:/home/x",
	                "--pwd", "/work", "--env", "A=1", "--env", "B=2", "-e", "--dev", "host",
	                "--join", "never", "-v", "-v", "--dry-run", "img", "ls", "-l", "--all", NULL};
	ok(parse(ARGC(full), full, &opts, &err) == 0, "all options parse (%s)", err.message);
	ok(opts.binds.count == 3, "three binds from two -B");
	is_str(opts.home, "/h:/home/x", "--home kept");
	is_str(opts.pwd, "/work", "--pwd kept");
	ok(opts.env.count == 2, "two --env");
	ok(opts.cleanenv && opts.dev_mode == DEV_HOST && opts.join == JOIN_NEVER,
	   "-e, --dev host, --join never");
	ok(opts.verbosity == 2 && opts.dry_run, "-v twice, --dry-run");
	ok(strcmp(opts.command[1], "-l") == 0 && strcmp(opts.command[2], "--all") == 0,
	   "the command's own options are left alone");

	char *held[] = {"exec", "--job", "slurm:7.0", "--hold", "img", "true", NULL};
	ok(parse(ARGC(held), held, &opts, &err) == 0 && opts.hold && strcmp(opts.job, "slurm:7.0") == 0,
	   "--job ID --hold (%s)", err.message);
	char *hold_never[] = {"exec", "--hold", "--join", "never", "img", "true", NULL};
	ok(parse(ARGC(hold_never), hold_never, &opts, &err) < 0 &&
	   strstr(err.message, "--hold keeps a job's shared container: not with --join never"),
	   "--hold with --join never is refused (%s)", err.message);
	char *hold_instance[] = {"start", "--hold", "img", "name", NULL};
	ok(parse(ARGC(hold_instance), hold_instance, &opts, &err) < 0 &&
	   strstr(err.message, "or an instance"), "so is --hold for an instance (%s)", err.message);
	char *notify[] = {"exec", "--job", "slurm:7.0", "--hold", "--hold-notify", "5", "img", "true",
	                  NULL};
	ok(parse(ARGC(notify), notify, &opts, &err) == 0 && opts.hold_notify_fd == 5,
	   "--hold --hold-notify FD (%s)", err.message);
	char *notify_alone[] = {"exec", "--hold-notify", "5", "img", "true", NULL};
	ok(parse(ARGC(notify_alone), notify_alone, &opts, &err) < 0 &&
	   strstr(err.message, "--hold-notify goes with --hold"),
	   "--hold-notify without --hold is refused (%s)", err.message);
	char *notify_stdio[] = {"exec", "--hold", "--hold-notify", "1", "img", "true", NULL};
	ok(parse(ARGC(notify_stdio), notify_stdio, &opts, &err) < 0 &&
	   strstr(err.message, "of 3 or more"), "--hold-notify on stdout is refused (%s)",
	   err.message);
	ok(parse(ARGC(held), held, &opts, &err) == 0 && opts.hold_notify_fd == -1,
	   "without it, no descriptor");
	char *empty_job[] = {"exec", "--job", "", "img", "true", NULL};
	ok(parse(ARGC(empty_job), empty_job, &opts, &err) < 0 &&
	   strstr(err.message, "--job needs a name of 1 to 200 characters"),
	   "an empty --job is refused (%s)", err.message);

	char *unknown[] = {"exec", "--frobnicate", "img", "ls", NULL};
	ok(parse(ARGC(unknown), unknown, &opts, &err) < 0 && strstr(err.message, "--frobnicate"),
	   "an unknown long option is named (%s)", err.message);
	ok(err.status == 125, "usage errors exit 125");
	ok(strstr(err.message, "did you mean") == NULL, "and nothing near it is suggested (%s)",
	   err.message);

	char *typo[] = {"exec", "--writeable-tmpfs", "img", "ls", NULL};
	ok(parse(ARGC(typo), typo, &opts, &err) < 0 &&
	   strstr(err.message, "unknown option '--writeable-tmpfs'; did you mean '--writable-tmpfs'?"),
	   "a misspelt option is named with the one meant (%s)", err.message);
	char *swapped[] = {"exec", "--cleanevn", "img", "ls", NULL};
	ok(parse(ARGC(swapped), swapped, &opts, &err) < 0 &&
	   strstr(err.message, "did you mean '--cleanenv'?"), "two letters swapped (%s)", err.message);
	char *with_value[] = {"exec", "--bnid=/a", "img", "ls", NULL};
	ok(parse(ARGC(with_value), with_value, &opts, &err) < 0 &&
	   strstr(err.message, "did you mean '--bind'?"), "a misspelt option with =VALUE (%s)",
	   err.message);
	char *far[] = {"exec", "--vn", "img", "ls", NULL};
	ok(parse(ARGC(far), far, &opts, &err) < 0 && strstr(err.message, "did you mean") == NULL,
	   "a short name is not matched to a guess (%s)", err.message);

	char *unknown_short[] = {"exec", "-Z", "img", "ls", NULL};
	ok(parse(ARGC(unknown_short), unknown_short, &opts, &err) < 0 && strstr(err.message, "-Z"),
	   "an unknown short option is named");

	char *noimage[] = {"exec", NULL};
	ok(parse(ARGC(noimage), noimage, &opts, &err) < 0 && strstr(err.message, "no image"),
	   "a missing image is reported");

	char *nocmd[] = {"exec", "img", NULL};
	ok(parse(ARGC(nocmd), nocmd, &opts, &err) < 0 && strstr(err.message, "no command"),
	   "a missing command is reported");

	char *noarg[] = {"exec", "img", "--bind", NULL};
	ok(parse(ARGC(noarg), noarg, &opts, &err) == 0 && strcmp(opts.command[0], "--bind") == 0,
	   "options after the image belong to the command");

	char *missing[] = {"exec", "--bind", NULL};
	ok(parse(ARGC(missing), missing, &opts, &err) < 0 && strstr(err.message, "needs a value"),
	   "an option without its value is reported");

	char *baddev[] = {"exec", "--dev", "all", "img", "ls", NULL};
	ok(parse(ARGC(baddev), baddev, &opts, &err) < 0 && strstr(err.message, "'all'"),
	   "a bad --dev value is named");

	char *badenv[] = {"exec", "--env", "NOVALUE", "img", "ls", NULL};
	ok(parse(ARGC(badenv), badenv, &opts, &err) < 0 && strstr(err.message, "NAME=VALUE"),
	   "--env without = is refused");

	char *relpwd[] = {"exec", "--pwd", "rel", "img", "ls", NULL};
	ok(parse(ARGC(relpwd), relpwd, &opts, &err) < 0 && strstr(err.message, "absolute"),
	   "a relative --pwd is refused");

	char *conflict[] = {"exec", "--home", "/h", "--no-home", "img", "ls", NULL};
	ok(parse(ARGC(conflict), conflict, &opts, &err) < 0 && strstr(err.message, "--no-home"),
	   "--home with --no-home is refused");

	char *badbind[] = {"exec", "-B", "/a:rel", "img", "ls", NULL};
	ok(parse(ARGC(badbind), badbind, &opts, &err) < 0 && strstr(err.message, "absolute"),
	   "a bad bind spec fails the parse");

	char *help[] = {"exec", "--help", NULL};
	ok(parse(ARGC(help), help, &opts, &err) == 0 && opts.help, "--help needs no image");

	char *quiet[] = {"exec", "-q", "img", "true", NULL};
	ok(parse(ARGC(quiet), quiet, &opts, &err) == 0 && opts.verbosity < 0, "-q is quiet");

	char *writable[] = {"exec", "--writable-tmpfs", "--tmpfs-size", "512M", "--overlay", "/a.sqfs",
	                    "--overlay=/upper", "--fakeroot", "--nv", "--rocm", "img", "ls", NULL};
	ok(parse(ARGC(writable), writable, &opts, &err) == 0, "the overlay, fakeroot and GPU "
	   "options parse (%s)", err.message);
	ok(opts.writable_tmpfs && opts.tmpfs_bytes == 512ULL << 20, "--writable-tmpfs 512M");
	ok(opts.overlays.count == 2 && strcmp(opts.overlays.items[1], "/upper") == 0,
	   "two --overlay, in order");
	ok(opts.fakeroot && opts.gpus == (GPU_NVIDIA | GPU_AMD), "--fakeroot, --nv, --rocm");

	char *sizeonly[] = {"exec", "--tmpfs-size", "1G", "img", "ls", NULL};
	ok(parse(ARGC(sizeonly), sizeonly, &opts, &err) < 0 && strstr(err.message, "--writable-tmpfs"),
	   "--tmpfs-size without --writable-tmpfs is refused");
	char *tiny[] = {"exec", "--writable-tmpfs", "--tmpfs-size", "100K", "img", "ls", NULL};
	ok(parse(ARGC(tiny), tiny, &opts, &err) < 0 && strstr(err.message, "at least 1M"),
	   "a tmpfs under 1M is refused");
	char *empty[] = {"exec", "--overlay", "", "img", "ls", NULL};
	ok(parse(ARGC(empty), empty, &opts, &err) < 0, "an empty --overlay is refused");

	exec_options_free(&opts);
	return tap_done();
}
