/* The steps that change files: each runs in a step container over the
 * stage so far, with a fresh upper directory, and what it changed becomes
 * a layer (the upper read inside the user's own id map, so that owners
 * are kept), found in the cache next time under the same key. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/small_file.h"
#include "common/timing.h"
#include "runtime/recipe/build_state.h"
#include "runtime/recipe/copier.h"
#include "runtime/recipe/fake_root.h"
#include "runtime/recipe/fetch_url.h"
#include "runtime/recipe/words.h"
#include "starter/starter.h"

#define EXPORT_DIR "/.capsula-export"
#define LAYER_COMPRESSION_LEVEL 3

/* ---------------------------------------------------------------- layers */

/* The step's upper directory into its layer, then the work directory
 * gone: inside the user's own map, where the step's owners are ids. */
struct capture_job {
	const char *work;
	int layers_fd;
	const char *name;
	const struct strvec *skip;
};

static int capture(void *arg, capsula_error *err)
{
	struct capture_job *c = arg;
	struct build_options o;
	char upper[PATH_MAX];
	int ret;

	snprintf(upper, sizeof upper, "%s/upper", c->work);
	build_options_default(&o);
	o.source = upper;
	o.capture_upper = true;
	o.capture_skip = c->skip;
	o.output = c->name;
	o.output_dir_fd = c->layers_fd;
	o.output_shown = c->name;
	o.level = LAYER_COMPRESSION_LEVEL;
	o.quiet = true;
	o.force = true;
	ret = build_image(&o, err);
	{
		/* The build's own failure is the one to tell. */
		capsula_error removing;

		if (step_remove_tree(c->work, ret < 0 ? &removing : err) < 0)
			ret = -1;
	}
	return ret;
}

static int remove_work(void *arg, capsula_error *err)
{
	return step_remove_tree(arg, err);
}

static int make_work(struct builder *b, char *work, size_t size, capsula_error *err)
{
	char part[PATH_MAX + 8];

	snprintf(work, size, "%s/step.XXXXXX", b->work_base);
	if (mkdtemp(work) == NULL)
		return fail(err, errno, "set TMPDIR to a local directory of yours with room",
		            "a work directory in %s", b->work_base);
	snprintf(part, sizeof part, "%s/upper", work);
	if (mkdir(part, 0755) < 0)
		return fail(err, errno, NULL, "%s", part);
	snprintf(part, sizeof part, "%s/work", work);
	if (mkdir(part, 0700) < 0)
		return fail(err, errno, NULL, "%s", part);
	return 0;
}

/* The environment of a step's processes: the image's Env, the ARGs in
 * scope, a PATH and a HOME when the image has none. */
static int step_environment(const struct stage_state *st, struct strvec *env,
                            capsula_error *err)
{
	if (step_variables(st, env, err) < 0)
		return -1;
	if (words_lookup(env, "PATH") == NULL &&
	    strvec_push(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") < 0)
		return fail(err, ENOMEM, NULL, "environment");
	if (words_lookup(env, "HOME") == NULL && strvec_push(env, "HOME=/root") < 0)
		return fail(err, ENOMEM, NULL, "environment");
	return 0;
}

struct layer_request {
	const char *description;     /* what the key is made of, besides the stage so far */
	step_body body;
	void *arg;
	char **argv;
	const struct strvec *binds;
	bool keep;                   /* false: run, keep nothing (%test) */
};

/* Find the step's layer in the cache, or make it. */
static int make_layer(struct builder *b, struct stage_state *st, const struct step *s,
                      const struct layer_request *r, capsula_error *err)
{
	char key[KEY_HEX], name[KEY_HEX + 8], path[PATH_MAX], work[PATH_MAX];
	struct strvec env = {0}, skip = {0};
	struct stat file;
	uint64_t start = timing_now_us();
	int status = 0, ret;

	step_key(st, r->description, key);
	snprintf(name, sizeof name, "%s.sqfs", key);
	snprintf(path, sizeof path, "%s/%s", b->layers_dir, name);
	step_begin(b, s);
	if (r->keep && !b->opts->no_cache && fstatat(b->layers_fd, name, &file, 0) == 0) {
		if (strvec_push(&st->layers, path) < 0)
			return fail(err, ENOMEM, NULL, "layers");
		snprintf(st->key, sizeof st->key, "%s", key);
		st->workdir_pending = false;
		step_end(b, true, start);
		return 0;
	}
	if (make_work(b, work, sizeof work, err) < 0 || step_environment(st, &env, err) < 0) {
		strvec_free(&env);
		return -1;
	}
	{
		struct step_view v = {
			.base = st->base, .layers = &st->layers, .work = work,
			.cwd = st->config.workdir ? st->config.workdir : "/", .argv = r->argv,
			.envp = env.items, .binds = r->binds,
		};

		ret = step_container_run(&b->id, &v, r->body, r->arg, &status, err);
	}
	strvec_free(&env);
	if (ret == 0 && status != 0)
		ret = fail_status(err, status == 125 ? 125 : EXIT_CAPSULA_FAILED, 0,
		                  "the step's output above says why",
		                  "%s: %.200s: exit status %d", step_where(b, s), s->text, status);
	else if (ret < 0)
		ret = error_prefix(err, "%s", step_where(b, s));
	if (ret < 0 || !r->keep) {
		capsula_error ignored;

		step_in_user_namespace(&b->id, remove_work, work, &ignored);
		if (ret == 0)
			step_end(b, false, start);
		return ret;
	}
	step_mount_points(r->binds, &skip);
	{
		struct capture_job c = {.work = work, .layers_fd = b->layers_fd, .name = name,
		                        .skip = &skip};

		ret = step_in_user_namespace(&b->id, capture, &c, err);
	}
	strvec_free(&skip);
	if (ret < 0)
		return error_prefix(err, "%s: keep the step's files", step_where(b, s));
	if (strvec_push(&st->layers, path) < 0)
		return fail(err, ENOMEM, NULL, "layers");
	snprintf(st->key, sizeof st->key, "%s", key);
	st->workdir_pending = false;
	step_end(b, false, start);
	return 0;
}

/* ---------------------------------------------------------------- RUN */

struct run_job {
	const char *workdir;
	const char *user;        /* USER, run as that uid (with the full map) */
	bool emulate;            /* no subordinate ids: fake_root.h */
	bool quiet;
};

static int as_user(const char *user, capsula_error *err)
{
	uid_t uid;
	gid_t gid;

	if (copier_resolve_owner(user, &uid, &gid, err) < 0)
		return -1;
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		return fail(err, errno, NULL, "USER %s", user);
	return 0;
}

/* apt drops to its _apt user to fetch and checks that it did; the fake root
 * lets the drop succeed without effect, so the check fails ("Could not
 * switch group"). Without subordinate ids apt is told to fetch as root,
 * through a file in the step's private /dev/shm (never in the image) that
 * APT_CONFIG names, keeping the image's own apt.conf. */
#define FAKEROOT_APT_CONF "/dev/shm/.capsula-fakeroot-apt.conf"

static char **with_fakeroot_apt(char *const *envp, capsula_error *err)
{
	size_t n = 0;
	char **grown;
	FILE *conf;

	for (; envp[n] != NULL; n++)
		if (strncmp(envp[n], "APT_CONFIG=", 11) == 0)
			return NULL;  /* the recipe's own choice */
	conf = fopen(FAKEROOT_APT_CONF, "we");
	if (conf == NULL) {
		fail(err, errno, NULL, "write %s", FAKEROOT_APT_CONF);
		return NULL;
	}
	if (access("/etc/apt/apt.conf", F_OK) == 0)
		fputs("#include \"/etc/apt/apt.conf\";\n", conf);
	fputs("APT::Sandbox::User \"root\";\n", conf);
	if (fclose(conf) != 0) {
		fail(err, errno, NULL, "write %s", FAKEROOT_APT_CONF);
		return NULL;
	}
	grown = calloc(n + 2, sizeof *grown);
	if (grown == NULL) {
		fail(err, ENOMEM, NULL, "step environment");
		return NULL;
	}
	memcpy(grown, envp, n * sizeof *grown);
	grown[n] = (char *)"APT_CONFIG=" FAKEROOT_APT_CONF;
	return grown;
}

static int run_body(const struct capsula_plan *plan, void *arg, capsula_error *err)
{
	const struct run_job *j = arg;
	int root = copier_open_root(err), null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int status;
	pid_t command;

	if (root < 0)
		return -1;
	if (j->workdir != NULL && copier_make_dirs(root, j->workdir, err) < 0)
		return -1;
	close(root);
	/* No terminal, no input: a build step is not interactive. */
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		if (j->quiet) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		close(null);
	}
	if (!j->emulate) {
		if (j->user != NULL && as_user(j->user, err) < 0)
			return -1;
		return starter_exec(plan, err);
	}
	{
		int listener;

		if (fake_root_install(&listener, err) < 0)
			return -1;
		command = fork();
		if (command < 0)
			return fail(err, errno, NULL, "fork the step's command");
		if (command == 0) {
			capsula_error e = {.status = EXIT_CAPSULA_FAILED};
			struct capsula_plan faked = *plan;
			char **envp = with_fakeroot_apt(plan->envp, &e);

			close(listener);
			if (envp != NULL)
				faked.envp = envp;
			else if (e.message[0] != '\0')
				fprintf(stderr, "capsula: warning: %s; apt may fail to switch users\n",
				        e.message);
			starter_exec(&faked, &e);
			fprintf(stderr, "capsula: %s\n", e.message);
			_exit(e.status);
		}
		if (fake_root_serve(listener, command, &status, err) < 0)
			return -1;
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
}

/* RUN <<EOF (the script alone), or a command with here-documents after it. */
static int run_command(const struct stage_state *st, const struct step *s, struct strvec *argv)
{
	const char *cmd = s->args.items[0];
	char *script = NULL;
	size_t length = 0;
	FILE *text;

	if (s->exec_form) {
		for (size_t i = 0; i < s->args.count; i++)
			if (strvec_push(argv, s->args.items[i]) < 0)
				return -1;
		return 0;
	}
	for (size_t i = 0; i < (st->shell.count ? st->shell.count : 2); i++)
		if (strvec_push(argv, st->shell.count ? st->shell.items[i] :
		                i == 0 ? "/bin/sh" : "-c") < 0)
			return -1;
	if (s->heredoc_count == 1 && strncmp(cmd, "<<", 2) == 0 &&
	    strcspn(cmd, " \t") == strlen(cmd))
		return strvec_push(argv, s->heredocs[0].body);
	text = open_memstream(&script, &length);
	if (text == NULL)
		return -1;
	fputs(cmd, text);
	for (size_t i = 0; i < s->heredoc_count; i++)
		fprintf(text, "\n%s%s", s->heredocs[i].body, s->heredocs[i].name);
	if (fclose(text) != 0)
		return -1;
	return strvec_push_owned(argv, script);
}

/* RUN --mount=type=cache,target=DIR[,id=NAME]: a directory of the user's
 * that survives builds (apt's and pip's downloads). */
static int run_mounts(struct builder *b, const struct step *s, struct strvec *binds,
                      capsula_error *err)
{
	for (size_t i = 0; i < s->flags.count; i++) {
		const char *flag = s->flags.items[i];
		char target[PATH_MAX] = "", id[256] = "", type[32] = "", dir[PATH_MAX + 80];
		char *spec, *item, *save;
		char key[KEY_HEX], *bind;

		if (strncmp(flag, "network=", 8) == 0) {
			if (strcmp(flag + 8, "default") != 0 && strcmp(flag + 8, "host") != 0)
				return fail(err, 0, "leave it out: steps use the host's network",
				            "%s: RUN --%s is not supported", step_where(b, s), flag);
			continue;
		}
		if (strncmp(flag, "mount=", 6) != 0)
			return fail(err, 0, "capsula takes RUN --mount=type=cache and --network",
			            "%s: RUN --%s is not supported", step_where(b, s), flag);
		spec = strdup(flag + 6);
		if (spec == NULL)
			return fail(err, ENOMEM, NULL, "RUN --mount");
		for (item = strtok_r(spec, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
			if (strncmp(item, "type=", 5) == 0)
				snprintf(type, sizeof type, "%s", item + 5);
			else if (strncmp(item, "target=", 7) == 0 || strncmp(item, "dst=", 4) == 0 ||
			         strncmp(item, "destination=", 12) == 0)
				snprintf(target, sizeof target, "%s", strchr(item, '=') + 1);
			else if (strncmp(item, "id=", 3) == 0)
				snprintf(id, sizeof id, "%s", item + 3);
		}
		free(spec);
		if (strcmp(type, "cache") != 0 || target[0] != '/')
			return fail(err, 0, "capsula takes --mount=type=cache,target=/ABSOLUTE/DIR",
			            "%s: RUN --%s is not supported", step_where(b, s), flag);
		step_key(&(struct stage_state){.key = "mount"}, id[0] ? id : target, key);
		snprintf(dir, sizeof dir, "%s/%.32s", b->mounts_dir, key);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return fail(err, errno, NULL, "the cache of %s", target);
		if (asprintf(&bind, "%s:%s", dir, target) < 0 || strvec_push_owned(binds, bind) < 0)
			return fail(err, ENOMEM, NULL, "RUN --mount");
	}
	return 0;
}

int run_step(struct builder *b, struct stage_state *st, const struct step *s,
             capsula_error *err)
{
	struct strvec argv = {0}, binds = {0}, vars = {0};
	struct run_job job = {
		.workdir = st->config.workdir, .emulate = !b->id.full_map, .quiet = b->opts->quiet,
	};
	char *description = NULL;
	size_t length = 0;
	FILE *text;
	int ret = -1;

	if (st->config.user != NULL && strcmp(st->config.user, "root") != 0 &&
	    strcmp(st->config.user, "0") != 0) {
		if (job.emulate && !b->warned_user)
			fprintf(stderr, "capsula: warning: USER %s: without subordinate ids "
			        "(/etc/subuid) RUN steps run as root\n", st->config.user);
		b->warned_user = b->warned_user || job.emulate;
		job.user = job.emulate ? NULL : st->config.user;
	}
	if (run_command(st, s, &argv) < 0 || run_mounts(b, s, &binds, err) < 0 ||
	    step_variables(st, &vars, err) < 0) {
		if (err->message[0] == '\0')
			fail(err, ENOMEM, NULL, "%s", step_where(b, s));
		goto out;
	}
	/* The command, its environment, where and as whom it runs. */
	text = open_memstream(&description, &length);
	if (text == NULL)
		goto nomem;
	fprintf(text, "RUN\n%s\nworkdir=%s\nuser=%s\n", s->text, st->config.workdir ?
	        st->config.workdir : "/", st->config.user ? st->config.user : "");
	for (size_t i = 0; i < argv.count; i++)
		fprintf(text, "argv=%s\n", argv.items[i]);
	for (size_t i = 0; i < vars.count; i++)
		fprintf(text, "env=%s\n", vars.items[i]);
	for (size_t i = 0; i < binds.count; i++)
		fprintf(text, "mount=%s\n", strchr(binds.items[i], ':') + 1);
	if (fclose(text) != 0)
		goto nomem;
	{
		struct layer_request r = {.description = description, .body = run_body, .arg = &job,
		                          .argv = argv.items, .binds = &binds, .keep = true};

		ret = make_layer(b, st, s, &r, err);
	}
	goto out;
nomem:
	fail(err, ENOMEM, NULL, "%s", step_where(b, s));
out:
	free(description);
	strvec_free(&argv);
	strvec_free(&binds);
	strvec_free(&vars);
	return ret;
}

int test_step(struct builder *b, struct stage_state *st, const struct step *s,
              capsula_error *err)
{
	struct run_job job = {.emulate = !b->id.full_map, .quiet = b->opts->quiet};
	struct layer_request r = {.description = "TEST", .body = run_body, .arg = &job,
	                          .argv = s->args.items, .keep = false};

	return make_layer(b, st, s, &r, err);
}

/* ---------------------------------------------------------------- COPY and ADD */

struct copy_source {
	char *path;              /* below the source directory */
	char *inline_name;       /* a here-document: written with this name */
	char *inline_body;
	bool extract;            /* ADD of a local archive */
};

struct copy_job {
	int src_fd;
	struct copy_source *sources;
	size_t count;
	char *dest;              /* absolute */
	bool dest_is_dir;        /* it ends with '/' */
	const char *chown;
	bool has_chmod;
	mode_t chmod;
	const char *workdir;
	const struct ignore_rules *rules;
	const char *shown;
};

static int copy_body(const struct capsula_plan *plan, void *arg, capsula_error *err)
{
	const struct copy_job *j = arg;
	struct copy_owner owner = {.has_chmod = j->has_chmod, .chmod = j->chmod};
	int root = copier_open_root(err), ret = 0;
	bool into;

	(void)plan;
	if (root < 0)
		return -1;
	if (j->workdir != NULL && copier_make_dirs(root, j->workdir, err) < 0)
		return -1;
	if (j->chown != NULL) {
		if (copier_resolve_owner(j->chown, &owner.uid, &owner.gid, err) < 0)
			return -1;
		owner.has_chown = true;
	}
	into = j->dest_is_dir || j->count > 1 || copier_is_dir(root, j->dest);
	for (size_t i = 0; ret == 0 && i < j->count; i++) {
		const struct copy_source *c = &j->sources[i];

		if (c->inline_body != NULL) {
			char path[PATH_MAX];

			snprintf(path, sizeof path, "%s%s%s", j->dest, into ? "/" : "",
			         into ? c->inline_name : "");
			ret = copier_write_owned(root, path, c->inline_body, strlen(c->inline_body),
			                         j->has_chmod ? j->chmod : 0644, owner.uid, owner.gid,
			                         err);
		} else if (c->extract) {
			struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW,
			                       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
			int fd = (int)syscall(SYS_openat2, j->src_fd, c->path, &how, sizeof how);

			ret = fd < 0 ? fail(err, errno, NULL, "ADD %s", c->path) :
			      copier_extract(root, fd, j->dest, &owner, c->path, err);
			if (fd >= 0)
				close(fd);
		} else {
			ret = copier_copy(root, j->src_fd, c->path, j->dest, into, &owner, j->rules, err);
		}
	}
	close(root);
	if (ret == 0)
		_exit(0);
	return -1;
}

/* Hash what a source is (names, modes, sizes, contents, link targets), for
 * the cache key. */
struct hashing {
	struct sha256 h;
	capsula_error *err;
};

static int hash_one(const struct source_file *f, bool last, void *arg, capsula_error *err)
{
	struct hashing *x = arg;
	char line[PATH_MAX + 64];
	unsigned char buf[1 << 16];
	ssize_t n;
	int fd;

	if (last)
		return 0;
	snprintf(line, sizeof line, "%s\n%o\n%lld\n", f->dest_rel, (unsigned)f->st.st_mode,
	         (long long)f->st.st_size);
	sha256_update(&x->h, line, strlen(line));
	if (S_ISLNK(f->st.st_mode)) {
		n = readlinkat(f->parent_fd, f->name, (char *)buf, sizeof buf);
		if (n > 0)
			sha256_update(&x->h, buf, (size_t)n);
		return 0;
	}
	if (!S_ISREG(f->st.st_mode))
		return 0;
	fd = openat(f->parent_fd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fail(err, errno, "make it readable, or leave it out with .dockerignore",
		            "COPY %s", f->path);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		sha256_update(&x->h, buf, (size_t)n);
	close(fd);
	return n < 0 ? fail(err, errno, NULL, "read %s", f->path) : 0;
}

static int hash_source(int dir_fd, const char *path, const struct ignore_rules *rules,
                       char hex[SHA256_HEX_BYTES], capsula_error *err)
{
	struct hashing x = {.err = err};

	if (sha256_begin(&x.h) < 0)
		return fail(err, errno, "install libssl3", "hash the build context");
	if (sources_walk(dir_fd, path, rules, hash_one, &x, err) < 0)
		return -1;
	if (sha256_end_hex(&x.h, hex) < 0)
		return fail(err, 0, NULL, "libcrypto failed to hash %s", path);
	return 0;
}

static const char *flag_value(const struct step *s, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < s->flags.count; i++)
		if (strncmp(s->flags.items[i], name, n) == 0 && s->flags.items[i][n] == '=')
			return s->flags.items[i] + n + 1;
	return NULL;
}

static bool is_archive_name(const char *name)
{
	static const char *const endings[] = {".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2",
	                                      ".tbz2", ".tar.zst", ".tzst", ".tar.lz4"};
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof endings / sizeof endings[0]; i++)
		if (n > strlen(endings[i]) && strcmp(name + n - strlen(endings[i]), endings[i]) == 0)
			return true;
	return false;
}

static bool is_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static void free_sources(struct copy_job *j)
{
	for (size_t i = 0; i < j->count; i++) {
		free(j->sources[i].path);
		free(j->sources[i].inline_name);
		free(j->sources[i].inline_body);
	}
	free(j->sources);
	free(j->dest);
}

static struct copy_source *add_source(struct copy_job *j)
{
	struct copy_source *grown = realloc(j->sources, (j->count + 1) * sizeof *grown);

	if (grown == NULL)
		return NULL;
	j->sources = grown;
	memset(&grown[j->count], 0, sizeof *grown);
	return &grown[j->count++];
}

/* The here-document a COPY source names (<<NAME), or NULL. */
static const struct heredoc *inline_source(const struct step *s, const char *word)
{
	const char *name;

	if (strncmp(word, "<<", 2) != 0)
		return NULL;
	name = word + 2 + (word[2] == '-');
	for (size_t i = 0; i < s->heredoc_count; i++) {
		size_t n = strlen(s->heredocs[i].name);

		if (strncmp(name + (*name == '"' || *name == '\''), s->heredocs[i].name, n) == 0)
			return &s->heredocs[i];
	}
	return NULL;
}

static const struct ignore_rules no_rules;

/* An exported stage: what COPY --from=STAGE names, copied out of it. */
struct export_job {
	struct strvec *wanted;   /* absolute paths in the stage */
	const char *index;       /* written: "N d" or "N f NAME" per source */
};

static int export_body(const struct capsula_plan *plan, void *arg, capsula_error *err)
{
	const struct export_job *e = arg;
	struct copy_owner owner = {0};
	struct strvec matches = {0};
	FILE *index = NULL;
	char *text = NULL;
	size_t length = 0;
	int root = copier_open_root(err), ret = 0;

	(void)plan;
	if (root < 0)
		return -1;
	for (size_t i = 0; ret == 0 && i < e->wanted->count; i++)
		ret = sources_expand(root, e->wanted->items[i], &no_rules, &matches, err);
	index = ret == 0 ? open_memstream(&text, &length) : NULL;
	for (size_t i = 0; ret == 0 && index != NULL && i < matches.count; i++) {
		char dest[64], *path = matches.items[i];
		size_t n = strlen(path);
		bool dir = copier_is_dir(root, path);
		const char *slash;

		/* "/out/" names the directory /out. */
		while (n > 1 && path[n - 1] == '/')
			path[--n] = '\0';
		slash = strrchr(path, '/');

		snprintf(dest, sizeof dest, EXPORT_DIR "/%zu", i);
		ret = copier_copy(root, root, matches.items[i], dest, !dir, &owner, &no_rules, err);
		fprintf(index, "%zu %c %s\n", i, dir ? 'd' : 'f', dir ? "-" : slash ? slash + 1 : path);
	}
	strvec_free(&matches);
	if (index != NULL && fclose(index) == 0 && ret == 0)
		ret = copier_write(root, EXPORT_DIR "/index", text, length, 0644, err);
	free(text);
	close(root);
	if (ret == 0)
		_exit(0);
	return -1;
}

/* COPY --from=STAGE|IMAGE: the sources exported into a directory of the
 * build's, which the copy then takes as its source. */
static int export_from(struct builder *b, const struct step *s, const char *from,
                       struct strvec *wanted, struct copy_job *j, char *export_dir,
                       size_t size, char *from_key, capsula_error *err)
{
	struct stage_state *other = NULL;
	struct strvec binds = {0};
	char bind[PATH_MAX * 2], work[PATH_MAX], *text = NULL, index[PATH_MAX + 8];
	size_t length;
	int status = 0, ret;

	ret = stage_named(b, from, &other, err);
	if (ret < 0)
		return -1;
	if (ret == 0)
		return fail(err, 0, "name a stage of the recipe (FROM IMAGE AS NAME)",
		            "%s: COPY --from=%s: no such stage", step_where(b, s), from);
	snprintf(from_key, KEY_HEX, "%s", other->key);
	snprintf(export_dir, size, "%s/export.XXXXXX", b->work_base);
	if (mkdtemp(export_dir) == NULL || make_work(b, work, sizeof work, err) < 0)
		return fail(err, errno, NULL, "a work directory in %s", b->work_base);
	snprintf(bind, sizeof bind, "%s:" EXPORT_DIR, export_dir);
	if (strvec_push(&binds, bind) < 0)
		return fail(err, ENOMEM, NULL, "COPY --from");
	{
		struct export_job e = {.wanted = wanted};
		struct strvec env = {0};
		struct step_view v = {
			.base = other->base, .layers = &other->layers, .work = work, .cwd = "/",
			.envp = env.items, .binds = &binds,
		};

		ret = step_container_run(&b->id, &v, export_body, &e, &status, err);
	}
	strvec_free(&binds);
	{
		capsula_error ignored;

		step_in_user_namespace(&b->id, remove_work, work, &ignored);
	}
	if (ret < 0 || status != 0)
		return ret < 0 ? -1 : fail(err, 0, NULL, "%s: COPY --from=%s: the sources could not be "
		                           "copied out (status %d)", step_where(b, s), from, status);
	snprintf(index, sizeof index, "%s/index", export_dir);
	if (read_small_file(index, 1u << 20, &text, &length, err) < 0)
		return -1;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		unsigned n;
		char kind, name[PATH_MAX];
		struct copy_source *c;

		if (sscanf(line, "%u %c %4095[^\n]", &n, &kind, name) != 3 ||
		    (c = add_source(j)) == NULL ||
		    asprintf(&c->path, kind == 'd' ? "%u" : "%u/%s", n, name) < 0) {
			free(text);
			return fail(err, ENOMEM, NULL, "COPY --from");
		}
	}
	free(text);
	j->src_fd = open(export_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return j->src_fd < 0 ? fail(err, errno, NULL, "%s", export_dir) : 0;
}

/* The destination (already expanded), absolute: relative to WORKDIR. */
static int dest_of(struct builder *b, struct stage_state *st, const struct step *s,
                   const char *word, struct copy_job *j, capsula_error *err)
{
	char *dest = strdup(word);

	if (dest == NULL || dest[0] == '\0') {
		free(dest);
		return fail(err, 0, "name where to copy to", "%s: no destination", step_where(b, s));
	}
	j->dest_is_dir = dest[strlen(dest) - 1] == '/' || strcmp(dest, ".") == 0;
	if (dest[0] != '/') {
		char *joined;

		if (asprintf(&joined, "%s/%s", st->config.workdir ? st->config.workdir : "", dest) < 0) {
			free(dest);
			return fail(err, ENOMEM, NULL, "COPY");
		}
		free(dest);
		dest = joined;
	}
	for (size_t n = strlen(dest); n > 1 && dest[n - 1] == '/'; n--)
		dest[n - 1] = '\0';
	j->dest = dest;
	return 0;
}

int copy_step(struct builder *b, struct stage_state *st, const struct step *s,
              capsula_error *err)
{
	struct copy_job j = {.src_fd = b->context_fd, .workdir = st->config.workdir,
	                     .rules = &b->ignore};
	struct strvec words = {0}, vars = {0}, paths = {0}, wanted = {0};
	const char *from = flag_value(s, "from"), *chmod_text = flag_value(s, "chmod");
	char export_dir[PATH_MAX] = "", from_key[KEY_HEX] = "", *description = NULL;
	char *chown_spec = NULL;
	size_t length = 0, last;
	FILE *text = NULL;
	int ret = -1;
	bool add = s->kind == STEP_ADD;

	for (size_t i = 0; i < s->flags.count; i++) {
		const char *f = s->flags.items[i];

		if (strncmp(f, "from=", 5) != 0 && strncmp(f, "chown=", 6) != 0 &&
		    strncmp(f, "chmod=", 6) != 0 && strcmp(f, "link") != 0 &&
		    !(add && strncmp(f, "checksum=", 9) == 0)) {
			fail(err, 0, "capsula takes --from, --chown, --chmod (and ADD --checksum)",
			     "%s: %s --%s is not supported", step_where(b, s), step_kind_name(s->kind), f);
			goto out;
		}
	}
	if (step_variables(st, &vars, err) < 0)
		goto out;
	for (size_t i = 0; i < s->args.count; i++) {
		char *word;

		if (inline_source(s, s->args.items[i]) != NULL) {
			if (strvec_push(&words, s->args.items[i]) < 0)
				goto nomem;
			continue;
		}
		if (words_expand(s->args.items[i], '\\', &vars, &word, step_where(b, s), err) < 0)
			goto out;
		if (strvec_push_owned(&words, word) < 0)
			goto nomem;
	}
	if (flag_value(s, "chown") != NULL &&
	    words_expand(flag_value(s, "chown"), '\\', &vars, &chown_spec, step_where(b, s), err) < 0)
		goto out;
	j.chown = chown_spec;
	if (chmod_text != NULL) {
		char *end;
		unsigned long mode = strtoul(chmod_text, &end, 8);

		if (*end != '\0' || end == chmod_text || mode > 07777) {
			fail(err, 0, "give an octal mode such as 0644", "%s: --chmod=%s", step_where(b, s),
			     chmod_text);
			goto out;
		}
		j.has_chmod = true;
		j.chmod = (mode_t)mode;
	}
	if (words.count < 2) {
		fail(err, 0, "name the sources and the destination", "%s: %.200s: nothing to copy",
		     step_where(b, s), s->text);
		goto out;
	}
	last = words.count - 1;
	if (dest_of(b, st, s, words.items[last], &j, err) < 0)
		goto out;
	text = open_memstream(&description, &length);
	if (text == NULL)
		goto nomem;
	fprintf(text, "%s\ndest=%s\nchown=%s\nchmod=%s\nworkdir=%s\n", step_kind_name(s->kind),
	        j.dest, chown_spec ? chown_spec : "", chmod_text ? chmod_text : "",
	        st->config.workdir ? st->config.workdir : "");
	if (from != NULL) {
		for (size_t i = 0; i < last; i++)
			if (strvec_push(&wanted, words.items[i]) < 0)
				goto nomem;
		if (export_from(b, s, from, &wanted, &j, export_dir, sizeof export_dir, from_key,
		                err) < 0)
			goto out;
		j.rules = &no_rules;  /* .dockerignore is for the context only */
		fprintf(text, "from=%s\n", from_key);
		for (size_t i = 0; i < wanted.count; i++)
			fprintf(text, "source=%s\n", wanted.items[i]);
	} else {
		for (size_t i = 0; i < last; i++) {
			const struct heredoc *h = inline_source(s, words.items[i]);
			struct copy_source *c;
			char hex[SHA256_HEX_BYTES];

			if (h != NULL) {
				c = add_source(&j);
				if (c == NULL || (c->inline_name = strdup(h->name)) == NULL)
					goto nomem;
				if (h->expand ? words_expand(h->body, '\\', &vars, &c->inline_body,
				                             step_where(b, s), err) < 0 :
				    (c->inline_body = strdup(h->body)) == NULL)
					goto out;
				fprintf(text, "inline=%s\n%s\n", h->name, c->inline_body);
				continue;
			}
			if (add && is_url(words.items[i])) {
				char name[PATH_MAX];

				/* The file fetched is the source, in a directory of its own. */
				if (last != 1) {
					fail(err, 0, "ADD one URL at a time", "%s: ADD of a URL with other "
					     "sources", step_where(b, s));
					goto out;
				}
				if (fetch_url(b->work_base, words.items[i], flag_value(s, "checksum"),
				              &j.src_fd, name, sizeof name, hex, err) < 0)
					goto out;
				c = add_source(&j);
				if (c == NULL || (c->path = strdup(name)) == NULL)
					goto nomem;
				fprintf(text, "url=%s\nsha256=%s\n", words.items[i], hex);
				continue;
			}
			strvec_free(&paths);
			if (sources_expand(b->context_fd, words.items[i], &b->ignore, &paths, err) < 0) {
				snprintf(err->message + strlen(err->message),
				         sizeof err->message - strlen(err->message), " (%s)", step_where(b, s));
				goto out;
			}
			for (size_t k = 0; k < paths.count; k++) {
				if (hash_source(b->context_fd, paths.items[k], &b->ignore, hex, err) < 0)
					goto out;
				c = add_source(&j);
				if (c == NULL || (c->path = strdup(paths.items[k])) == NULL)
					goto nomem;
				c->extract = add && is_archive_name(paths.items[k]);
				fprintf(text, "source=%s\nextract=%d\nsha256=%s\n", paths.items[k], c->extract,
				        hex);
			}
		}
	}
	if (fclose(text) != 0) {
		text = NULL;
		goto nomem;
	}
	text = NULL;
	{
		struct layer_request r = {.description = description, .body = copy_body, .arg = &j,
		                          .keep = true};

		ret = make_layer(b, st, s, &r, err);
	}
	goto out;
nomem:
	fail(err, ENOMEM, NULL, "%s", step_where(b, s));
out:
	if (text != NULL)
		fclose(text);
	if (export_dir[0] != '\0') {
		capsula_error ignored;

		step_in_user_namespace(&b->id, remove_work, export_dir, &ignored);
	}
	if (j.src_fd != b->context_fd && j.src_fd >= 0)
		close(j.src_fd);
	free(description);
	free(chown_spec);
	free_sources(&j);
	strvec_free(&words);
	strvec_free(&vars);
	strvec_free(&paths);
	strvec_free(&wanted);
	return ret;
}

/* ---------------------------------------------------------------- files of a definition file */

struct write_job {
	const char *path;
	const char *content;
	mode_t mode;
	const char *workdir;
};

static int write_body(const struct capsula_plan *plan, void *arg, capsula_error *err)
{
	const struct write_job *w = arg;
	int root = copier_open_root(err), ret;

	(void)plan;
	if (root < 0)
		return -1;
	ret = w->workdir != NULL ? copier_make_dirs(root, w->workdir, err) : 0;
	if (ret == 0 && w->path != NULL)
		ret = copier_write(root, w->path, w->content, strlen(w->content), w->mode, err);
	close(root);
	if (ret == 0)
		_exit(0);
	return -1;
}

int file_step(struct builder *b, struct stage_state *st, const struct step *s,
              capsula_error *err)
{
	struct write_job w = {.path = s->args.items[0], .content = s->content, .mode = s->mode,
	                      .workdir = st->config.workdir};
	char *description;
	int ret;

	if (asprintf(&description, "FILE\n%s\n%o\n%s", w.path, (unsigned)w.mode, w.content) < 0)
		return fail(err, ENOMEM, NULL, "%s", step_where(b, s));
	{
		struct layer_request r = {.description = description, .body = write_body, .arg = &w,
		                          .keep = true};

		ret = make_layer(b, st, s, &r, err);
	}
	free(description);
	return ret;
}

int workdir_step(struct builder *b, struct stage_state *st, capsula_error *err)
{
	struct write_job w = {.workdir = st->config.workdir};
	struct step s = {.kind = STEP_WORKDIR, .text = "and the WORKDIR it names:"};
	char description[PATH_MAX + 16];
	struct layer_request r = {.description = description, .body = write_body, .arg = &w,
	                          .keep = true};

	snprintf(description, sizeof description, "WORKDIR made\n%s", st->config.workdir);
	return make_layer(b, st, &s, &r, err);
}
