#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "common/json_out.h"
#include "common/small_file.h"
#include "common/timing.h"
#include "runtime/plan/instance.h"
#include "runtime/plan/launch.h"
#include "runtime/plan/rundir.h"
#include "starter/starter.h"

static const char instance_usage[] =
	"Usage: capsula instance start [OPTIONS] IMAGE NAME\n"
	"       capsula instance list [--json]\n"
	"       capsula instance stop NAME\n"
	"A named container that stays until stopped; run commands in it with\n"
	"'capsula exec instance://NAME COMMAND'. Instances are per user.\n"
	"'capsula instance start --help' lists the options of start.\n";

#define MAX_RECORD_SIZE 16384

bool instance_name_valid(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= 64 && name[0] != '.' && name[0] != '-' &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* The records of the user's instances on this node, in the private
 * runtime directory (runtime/plan/rundir.h). */
static int records_dir(char *out, size_t size, capsula_error *err)
{
	char base[4096];

	if (rundir_path(base, sizeof base, err) < 0)
		return -1;
	if ((size_t)snprintf(out, size, "%s/instances", base) >= size)
		return fail(err, ENAMETOOLONG, NULL, "%s", base);
	if (mkdir(out, 0700) < 0 && errno != EEXIST)
		return fail(err, errno, NULL, "instance directory %s", out);
	return 0;
}

static int record_path(const char *name, char *out, size_t size, capsula_error *err)
{
	char dir[4096];

	if (!instance_name_valid(name))
		return fail(err, 0, "use 1 to 64 letters, digits, '.', '_' or '-'",
		            "'%s' is not a valid instance name", name);
	if (records_dir(dir, sizeof dir, err) < 0)
		return -1;
	if ((size_t)snprintf(out, size, "%s/%s.json", dir, name) >= size)
		return fail(err, ENAMETOOLONG, NULL, "%s", dir);
	return 0;
}

static int read_record(const char *path, struct instance_record *r, capsula_error *err)
{
	json_error_t error;
	json_t *doc;
	char *text;
	size_t length;
	const char *name, *id, *image, *key;
	json_int_t holder, started, holder_started = 0;
	int fakeroot = 0;

	if (read_small_file(path, MAX_RECORD_SIZE, &text, &length, err) < 0)
		return -1;
	doc = json_loadb(text, length, 0, &error);
	free(text);
	if (doc == NULL)
		return fail(err, 0, "remove it", "instance record %s: line %d: %s", path, error.line,
		            error.text);
	if (json_unpack(doc, "{s:s,s:s,s:s,s:s,s:I,s:I,s?b,s?I}", "name", &name, "id", &id,
	                "image", &image, "key", &key, "holder", &holder, "started", &started,
	                "fakeroot", &fakeroot, "holder_started", &holder_started) < 0) {
		json_decref(doc);
		return fail(err, 0, "remove it", "instance record %s is incomplete", path);
	}
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->id, sizeof r->id, "%s", id);
	snprintf(r->image, sizeof r->image, "%s", image);
	snprintf(r->key, sizeof r->key, "%s", key);
	r->holder = (pid_t)holder;
	r->holder_started = holder_started > 0 ? (unsigned long long)holder_started : 0;
	r->started = (long long)started;
	r->fakeroot = fakeroot != 0;
	json_decref(doc);
	return 0;
}

static json_t *record_json(const struct instance_record *r)
{
	return json_pack("{s:o,s:s,s:o,s:s,s:i,s:I,s:I,s:b}", "name", json_text(r->name),
	                 "id", r->id, "image", json_text(r->image), "key", r->key,
	                 "holder", (int)r->holder, "holder_started", (json_int_t)r->holder_started,
	                 "started", (json_int_t)r->started, "fakeroot", r->fakeroot);
}

/* Written beside its final name and renamed: never seen half written. */
static int write_record(const char *path, const struct instance_record *r, capsula_error *err)
{
	char partial[4200];
	FILE *f;

	snprintf(partial, sizeof partial, "%s.partial", path);
	f = fopen(partial, "we");
	if (f == NULL)
		return fail(err, errno, NULL, "instance record %s", partial);
	if (json_print(record_json(r), f) < 0) {
		int saved = errno;

		fclose(f);
		unlink(partial);
		return fail(err, saved, NULL, "instance record %s", partial);
	}
	if (fclose(f) != 0 || rename(partial, path) < 0) {
		int saved = errno;

		unlink(partial);
		return fail(err, saved, NULL, "instance record %s", path);
	}
	return 0;
}

static struct instance_holder holder_of(const struct instance_record *r)
{
	return (struct instance_holder){.key = r->key, .pid = r->holder,
	                                .started = r->holder_started};
}

/* The instance's state, its record removed only once its holder is gone. */
static enum instance_state check_instance(int socket_dir_fd, const char *path,
                                          const struct instance_record *r)
{
	struct instance_holder h = holder_of(r);
	enum instance_state state = starter_instance_state(socket_dir_fd, &h);

	if (state == INSTANCE_GONE)
		unlink(path);
	return state;
}

int instance_lookup(const char *name, struct instance_record *record, capsula_error *err)
{
	char path[4096];
	int dir_fd = -1;
	enum instance_state state;

	if (record_path(name, path, sizeof path, err) < 0)
		return -1;
	if (access(path, F_OK) < 0)
		return fail(err, 0, "see capsula instance list", "no instance named '%s'", name);
	if (read_record(path, record, err) < 0 || rundir_open_sockets(&dir_fd, err) < 0)
		return -1;
	state = check_instance(dir_fd, path, record);
	close(dir_fd);
	if (state == INSTANCE_GONE)
		return fail(err, 0, "start it again with capsula instance start",
		            "instance '%s' is no longer running", name);
	if (state == INSTANCE_BUSY)
		return fail(err, 0, "try again in a moment", "instance '%s' does not answer: its "
		            "socket's queue is full", name);
	return 0;
}

static int start_main(int argc, char **argv)
{
	struct launch l;
	struct instance_record record = {0};
	struct instance_holder holder = {0};
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	char path[4096];
	uuid_t uuid;
	int status = EXIT_CAPSULA_FAILED;

	if (launch_parse(&l, argc, argv, &err) < 0)
		goto out;
	if (l.opts.help) {
		fputs(exec_usage(RUN_INSTANCE), stdout);
		status = 0;
		goto out;
	}
	if (record_path(l.opts.instance_name, path, sizeof path, &err) < 0 ||
	    launch_plan(&l, l.opts.image, &err) < 0 ||
	    rundir_open_sockets(&l.plan.socket_dir_fd, &err) < 0)
		goto out;
	if (access(path, F_OK) == 0 && read_record(path, &record, &err) == 0 &&
	    check_instance(l.plan.socket_dir_fd, path, &record) != INSTANCE_GONE) {
		fail(&err, 0, "stop it first, or pick another name", "instance '%s' already runs",
		     l.opts.instance_name);
		goto out;
	}
	uuid_generate(uuid);
	memset(&record, 0, sizeof record);
	uuid_unparse_lower(uuid, record.id);
	snprintf(record.name, sizeof record.name, "%s", l.opts.instance_name);
	/* The image itself, also for docker://REF: a later pull must not change it. */
	if (realpath(l.plan.image.path, record.image) == NULL)
		snprintf(record.image, sizeof record.image, "%s", l.plan.image.path);
	snprintf(record.key, sizeof record.key, "capsula-%u-%s", (unsigned)l.facts.uid, record.id);
	snprintf(l.plan.join_key, sizeof l.plan.join_key, "%s", record.key);
	holder.key = record.key;
	l.plan.grace_ms = GRACE_FOREVER;
	l.plan.start_us = timing_now_us();
	if (starter_start_instance(&l.plan, &holder, &err) < 0)
		goto out;
	record.holder = holder.pid;
	record.holder_started = holder.started;
	record.started = (long long)time(NULL);
	record.fakeroot = l.plan.fakeroot;
	if (write_record(path, &record, &err) < 0) {
		capsula_error ignored;

		starter_stop_instance(l.plan.socket_dir_fd, &holder, &ignored);
		goto out;
	}
	if (l.opts.verbosity >= 0)
		fprintf(stderr, "capsula: instance %s started (id %s)\n", record.name, record.id);
	status = 0;
out:
	if (status != 0)
		error_print(&err);
	launch_release(&l);
	return status == 0 ? 0 : err.status;
}

static int list_main(int argc, char **argv)
{
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
	int socket_dir_fd = -1;
	char dir[4096];
	struct dirent *d;
	DIR *listing;
	json_t *list = NULL;

	if (argc > 2 || (argc == 2 && !json)) {
		fail(&err, 0, "see 'capsula instance --help'", "unexpected argument '%s'", argv[1]);
		error_print(&err);
		return err.status;
	}
	if (rundir_open_sockets(&socket_dir_fd, &err) < 0 || records_dir(dir, sizeof dir, &err) < 0 ||
	    (listing = opendir(dir)) == NULL) {
		if (err.message[0] == '\0')
			fail(&err, errno, NULL, "%s", dir);
		error_print(&err);
		if (socket_dir_fd >= 0)
			close(socket_dir_fd);
		return err.status;
	}
	if (json)
		list = json_array();
	else
		printf("%-20s %-36s %-8s %s\n", "NAME", "ID", "PID", "IMAGE");
	while ((d = readdir(listing)) != NULL) {
		struct instance_record r;
		char path[8192];
		size_t n = strlen(d->d_name);

		if (n < 6 || strcmp(d->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
		if (read_record(path, &r, &err) < 0)
			continue;
		/* A busy one is listed: only a holder shown gone loses its record. */
		if (check_instance(socket_dir_fd, path, &r) == INSTANCE_GONE)
			continue;
		if (json) {
			if (list != NULL && json_array_append_new(list, record_json(&r)) < 0) {
				json_decref(list);
				list = NULL;
			}
		} else {
			printf("%-20s %-36s %-8d %s\n", r.name, r.id, (int)r.holder, r.image);
		}
	}
	closedir(listing);
	close(socket_dir_fd);
	if (json && json_print(list, stdout) < 0) {
		fail(&err, errno, NULL, "instance list");
		error_print(&err);
		return err.status;
	}
	return 0;
}

static int stop_main(int argc, char **argv)
{
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	struct instance_holder holder;
	struct instance_record r;
	char path[4096];
	int socket_dir_fd = -1, ret;

	if (argc != 2) {
		fail(&err, 0, "see 'capsula instance --help'", "give the NAME of one instance");
		goto failed;
	}
	if (record_path(argv[1], path, sizeof path, &err) < 0)
		goto failed;
	if (access(path, F_OK) < 0) {
		fail(&err, 0, "see capsula instance list", "no instance named '%s'", argv[1]);
		goto failed;
	}
	if (read_record(path, &r, &err) < 0 || rundir_open_sockets(&socket_dir_fd, &err) < 0)
		goto failed;
	holder = holder_of(&r);
	ret = starter_stop_instance(socket_dir_fd, &holder, &err);
	close(socket_dir_fd);
	if (ret < 0)
		goto failed;
	if (unlink(path) < 0) {
		fail(&err, errno, NULL, "instance record %s", path);
		goto failed;
	}
	return 0;
failed:
	error_print(&err);
	return err.status;
}

int instance_main(int argc, char **argv)
{
	capsula_error err;

	if (argc >= 2 && strcmp(argv[1], "start") == 0)
		return start_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return list_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "stop") == 0)
		return stop_main(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(instance_usage, stdout);
		return 0;
	}
	fail(&err, 0, "see 'capsula instance --help'", "instance needs start, list or stop");
	error_print(&err);
	return EXIT_CAPSULA_FAILED;
}
