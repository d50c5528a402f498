#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/plan.h"
#include "common/small_file.h"
#include "starter/container/identity.h"

int identity_lookup(uid_t uid, gid_t gid, struct identity *id, capsula_error *err)
{
	struct passwd *pw = getpwuid(uid);
	int count = 0;

	memset(id, 0, sizeof *id);
	id->uid = uid;
	id->gid = gid;
	if (pw != NULL) {
		id->user = strdup(pw->pw_name);
		id->gecos = strdup(pw->pw_gecos ? pw->pw_gecos : "");
		id->shell = strdup(pw->pw_shell && pw->pw_shell[0] ? pw->pw_shell : "/bin/sh");
	} else {
		/* A uid without a name (some batch systems): name it after the number. */
		if (asprintf(&id->user, "user%u", (unsigned)uid) < 0)
			id->user = NULL;
		id->gecos = strdup("");
		id->shell = strdup("/bin/sh");
	}
	if (id->user == NULL || id->gecos == NULL || id->shell == NULL)
		return fail(err, errno, NULL, "user identity");

	/* The groups this process has, as the kernel keeps them: what access
	 * inside is decided by, and no NSS enumeration of every group (which
	 * asks each source in nsswitch.conf, sssd or systemd-userdb included). */
	count = getgroups(0, NULL);
	if (count < 0)
		return fail(err, errno, NULL, "supplementary groups");
	id->gids = calloc((size_t)count + 1, sizeof *id->gids);
	id->group_names = calloc((size_t)count + 1, sizeof *id->group_names);
	if (id->gids == NULL || id->group_names == NULL)
		return fail(err, errno, NULL, "group list");
	id->gids[0] = gid;
	count = getgroups(count, id->gids + 1);
	if (count < 0)
		return fail(err, errno, NULL, "supplementary groups");
	count++;
	for (int i = 0; i < count; i++) {
		struct group *gr;
		char *name = NULL;

		if (i > 0 && id->gids[i] == gid)
			continue;  /* the primary group is first already */
		gr = getgrgid(id->gids[i]);
		if (gr != NULL)
			name = strdup(gr->gr_name);
		else if (asprintf(&name, "group%u", (unsigned)id->gids[i]) < 0)
			name = NULL;
		if (name == NULL)
			return fail(err, errno, NULL, "group list");
		id->group_names[id->group_count] = name;
		id->gids[id->group_count++] = id->gids[i];
	}
	return 0;
}

void identity_free(struct identity *id)
{
	free(id->user);
	free(id->gecos);
	free(id->shell);
	for (size_t i = 0; i < id->group_count; i++)
		free(id->group_names[i]);
	free(id->group_names);
	free(id->gids);
	memset(id, 0, sizeof *id);
}

/* Larger account files are a mistake, or an attack on the holder's memory. */
#define IMAGE_ACCOUNTS_MAX (64u << 20)

/* The image's file (an empty string when it has none), or NULL with err. */
static char *read_image_file(struct rootfs *rfs, const char *path, capsula_error *err)
{
	char *text;
	size_t length;
	int fd;

	if (rootfs_read_image_file(rfs, path, IMAGE_ACCOUNTS_MAX, &text, &length) == 1)
		return text;
	fd = rootfs_open(rfs, path, O_RDONLY);
	if (fd < 0) {
		text = strdup("");
		if (text == NULL)
			fail(err, errno, NULL, "read %s in the image", path);
		return text;
	}
	if (read_small_fd(fd, path, IMAGE_ACCOUNTS_MAX, &text, &length, err) < 0)
		return NULL;
	return text;
}

/* Field n (0-based) of a colon-separated line, as a length-limited span. */
static bool field(const char *line, int n, const char **start, size_t *len)
{
	const char *p = line;

	for (int i = 0; i < n; i++) {
		p = strchr(p, ':');
		if (p == NULL)
			return false;
		p++;
	}
	*start = p;
	*len = strcspn(p, ":\n");
	return true;
}

static bool field_is(const char *line, int n, const char *value)
{
	const char *start;
	size_t len;

	return field(line, n, &start, &len) && len == strlen(value) &&
	       strncmp(start, value, len) == 0;
}

static bool field_is_number(const char *line, int n, unsigned value)
{
	char text[16];

	snprintf(text, sizeof text, "%u", value);
	return field_is(line, n, text);
}

static bool passwd_line_is_callers(const char *line, const struct identity *id)
{
	return field_is(line, 0, id->user) || field_is_number(line, 2, (unsigned)id->uid);
}

static bool group_line_is_callers(const char *line, const struct identity *id)
{
	for (size_t i = 0; i < id->group_count; i++)
		if (field_is(line, 0, id->group_names[i]) ||
		    field_is_number(line, 2, (unsigned)id->gids[i]))
			return true;
	return false;
}

/* Copy the image's lines that are not the caller's into out. */
static void copy_other_lines(const char *text, FILE *out, const struct identity *id,
                             bool (*is_callers)(const char *, const struct identity *))
{
	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len > 0 && line[0] != '#' && !is_callers(line, id))
			fprintf(out, "%.*s\n", (int)len, line);
		line = end ? end + 1 : NULL;
	}
}

static int write_stage_file(int stage_fd, const char *name, const char *text,
                            capsula_error *err)
{
	int fd = openat(stage_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text);
	ssize_t written;

	if (fd < 0)
		return fail(err, errno, NULL, "create %s on the stage", name);
	written = write(fd, text, len);
	if (written < 0 || (size_t)written != len) {
		int saved = written < 0 ? errno : EIO;

		close(fd);
		return fail(err, saved, NULL, "write %s on the stage", name);
	}
	if (close(fd) < 0)
		return fail(err, errno, NULL, "close %s on the stage", name);
	return 0;
}

static const char *shell_in_image(struct rootfs *rfs, const char *shell)
{
	int fd = rootfs_open(rfs, shell, O_PATH);

	if (fd < 0)
		return "/bin/sh";
	close(fd);
	return shell;
}

static int install_one(struct rootfs *rfs, int stage_fd, const char *name,
                       const char *text, capsula_error *err)
{
	char destination[32];

	snprintf(destination, sizeof destination, "/etc/%s", name);
	if (write_stage_file(stage_fd, name, text, err) < 0)
		return -1;
	return rootfs_bind(rfs, stage_fd, name, destination, BIND_READONLY, false, err);
}

int identity_install(struct rootfs *rfs, int stage_fd, const struct identity *id,
                     const char *home, capsula_error *err)
{
	char *image_passwd = read_image_file(rfs, "/etc/passwd", err);
	char *image_group = image_passwd ? read_image_file(rfs, "/etc/group", err) : NULL;
	char *passwd = NULL, *group = NULL;
	size_t passwd_len, group_len;
	FILE *out;
	int ret = -1;

	if (image_passwd == NULL || image_group == NULL)
		goto out;
	out = open_memstream(&passwd, &passwd_len);
	if (out == NULL) {
		fail(err, errno, NULL, "passwd");
		goto out;
	}
	copy_other_lines(image_passwd, out, id, passwd_line_is_callers);
	fprintf(out, "%s:x:%u:%u:%s:%s:%s\n", id->user, (unsigned)id->uid, (unsigned)id->gid,
	        id->gecos, home ? home : "/", shell_in_image(rfs, id->shell));
	fclose(out);

	out = open_memstream(&group, &group_len);
	if (out == NULL) {
		fail(err, errno, NULL, "group");
		goto out;
	}
	copy_other_lines(image_group, out, id, group_line_is_callers);
	for (size_t i = 0; i < id->group_count; i++)
		fprintf(out, "%s:x:%u:%s\n", id->group_names[i], (unsigned)id->gids[i],
		        id->gids[i] == id->gid ? "" : id->user);
	fclose(out);

	if (install_one(rfs, stage_fd, "passwd", passwd, err) == 0 &&
	    install_one(rfs, stage_fd, "group", group, err) == 0)
		ret = 0;
out:
	free(image_passwd);
	free(image_group);
	free(passwd);
	free(group);
	return ret;
}
