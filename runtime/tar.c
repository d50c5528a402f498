#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/tar.h"

#define BLOCK 512
/* Long names and pax records beyond this are not file systems' business. */
#define MAX_META_SIZE (1u << 20)

static int read_full(struct tar_reader *r, void *buf, size_t size, capsula_error *err)
{
	size_t done = 0;

	while (done < size) {
		ssize_t got = read(r->fd, (char *)buf + done, size - done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return fail(err, errno, NULL, "%s: read", r->name);
		if (got == 0)
			return fail(err, 0, "the archive is truncated; fetch it again",
			            "%s: unexpected end of archive", r->name);
		done += (size_t)got;
	}
	return 0;
}

static int skip(struct tar_reader *r, uint64_t size, capsula_error *err)
{
	char buf[16384];

	while (size > 0) {
		size_t n = size < sizeof buf ? (size_t)size : sizeof buf;

		if (read_full(r, buf, n, err) < 0)
			return -1;
		size -= n;
	}
	return 0;
}

/* Octal, space or NUL terminated; or GNU base-256 with the top bit set. */
static int parse_number(const unsigned char *field, size_t size, uint64_t *out)
{
	uint64_t value = 0;
	size_t i = 0;

	if (field[0] & 0x80) {
		if (field[0] != 0x80)
			return -1;  /* negative, or too large for 64 bits below */
		for (i = 1; i < size; i++) {
			if (value >> 56)
				return -1;
			value = value << 8 | field[i];
		}
		*out = value;
		return 0;
	}
	while (i < size && field[i] == ' ')
		i++;
	for (; i < size && field[i] >= '0' && field[i] <= '7'; i++) {
		if (value >> 60)
			return -1;
		value = value << 3 | (uint64_t)(field[i] - '0');
	}
	if (i < size && field[i] != ' ' && field[i] != '\0')
		return -1;
	*out = value;
	return 0;
}

static char *field_string(const unsigned char *field, size_t size)
{
	size_t n = strnlen((const char *)field, size);
	char *s = malloc(n + 1);

	if (s != NULL) {
		memcpy(s, field, n);
		s[n] = '\0';
	}
	return s;
}

static void entry_clear(struct tar_entry *e)
{
	free(e->path);
	free(e->link);
	memset(e, 0, sizeof *e);
}

int tar_parse_header(const unsigned char block[BLOCK], struct tar_entry *e,
                     char *why, size_t why_size)
{
	uint64_t checksum, mode, size, mtime;
	unsigned sum = 0;
	bool zero = true;

	memset(e, 0, sizeof *e);
	for (size_t i = 0; i < BLOCK; i++) {
		zero = zero && block[i] == 0;
		/* The checksum counts its own field as spaces. */
		sum += i >= 148 && i < 156 ? ' ' : block[i];
	}
	if (zero)
		return 0;
	if (parse_number(block + 148, 8, &checksum) < 0 || checksum != sum) {
		snprintf(why, why_size, "bad header checksum (not a tar archive?)");
		return -1;
	}
	if (parse_number(block + 100, 8, &mode) < 0 || parse_number(block + 124, 12, &size) < 0 ||
	    parse_number(block + 136, 12, &mtime) < 0) {
		snprintf(why, why_size, "bad number in a header");
		return -1;
	}
	e->type = block[156] == '\0' || block[156] == '7' ? '0' : (char)block[156];
	e->mode = (mode_t)(mode & 07777);
	e->size = size;
	e->mtime = (int64_t)mtime;
	e->link = field_string(block + 157, 100);
	/* POSIX ustar has a name prefix where old GNU headers keep times. */
	if (memcmp(block + 257, "ustar\0", 6) == 0 && block[345] != '\0') {
		char *prefix = field_string(block + 345, 155);
		char *name = field_string(block, 100);

		if (prefix != NULL && name != NULL &&
		    (e->path = malloc(strlen(prefix) + strlen(name) + 2)) != NULL)
			sprintf(e->path, "%s/%s", prefix, name);
		free(prefix);
		free(name);
	} else {
		e->path = field_string(block, 100);
	}
	if (e->path == NULL || e->link == NULL) {
		entry_clear(e);
		snprintf(why, why_size, "%s", strerror(ENOMEM));
		return -1;
	}
	return 1;
}

static int read_meta(struct tar_reader *r, uint64_t size, char **out, capsula_error *err)
{
	uint64_t padded = (size + BLOCK - 1) / BLOCK * BLOCK;
	char *buf;

	if (size > MAX_META_SIZE)
		return fail(err, 0, NULL, "%s: a long name or pax header of %llu bytes", r->name,
		            (unsigned long long)size);
	buf = malloc(padded + 1);
	if (buf == NULL)
		return fail(err, errno, NULL, "%s", r->name);
	if (read_full(r, buf, padded, err) < 0) {
		free(buf);
		return -1;
	}
	buf[size] = '\0';
	*out = buf;
	return 0;
}

static void replace(char **slot, char *value)
{
	free(*slot);
	*slot = value;
}

/* pax records: "LENGTH KEY=VALUE\n"; only path, linkpath and size matter. */
static int apply_pax(struct tar_reader *r, char *records, size_t size, capsula_error *err)
{
	size_t at = 0;

	while (at < size) {
		char *end;
		unsigned long length = strtoul(records + at, &end, 10);
		char *key = end + 1;
		char *value, *stop;

		if (end == records + at || *end != ' ' || length == 0 || length > size - at ||
		    records[at + length - 1] != '\n')
			return fail(err, 0, NULL, "%s: malformed pax header", r->name);
		stop = records + at + length - 1;
		*stop = '\0';
		value = memchr(key, '=', (size_t)(stop - key));
		if (value == NULL)
			return fail(err, 0, NULL, "%s: malformed pax record", r->name);
		*value++ = '\0';
		if (strcmp(key, "path") == 0 || strcmp(key, "linkpath") == 0) {
			char *copy = strdup(value);

			if (copy == NULL)
				return fail(err, errno, NULL, "%s", r->name);
			replace(key[0] == 'p' ? &r->long_path : &r->long_link, copy);
		} else if (strcmp(key, "size") == 0) {
			r->pax_size = strtoull(value, &end, 10);
			if (*end != '\0')
				return fail(err, 0, NULL, "%s: bad pax size", r->name);
			r->pax_size_set = true;
		}
		at += length;
	}
	return 0;
}

void tar_open(struct tar_reader *r, int fd, const char *name)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->name = name;
}

int tar_next(struct tar_reader *r, struct tar_entry **out, capsula_error *err)
{
	unsigned char block[BLOCK];
	char why[128];

	if (skip(r, r->left + r->padding, err) < 0)
		return -1;
	r->left = r->padding = 0;
	for (;;) {
		char *meta = NULL;
		int ret;

		entry_clear(&r->entry);
		if (read_full(r, block, BLOCK, err) < 0)
			return -1;
		ret = tar_parse_header(block, &r->entry, why, sizeof why);
		if (ret < 0)
			return fail(err, 0, NULL, "%s: %s", r->name, why);
		if (ret == 0)
			return 0;  /* the end-of-archive block; the second is not needed */
		switch (r->entry.type) {
		case 'L':
		case 'K':
		case 'x':
			if (read_meta(r, r->entry.size, &meta, err) < 0)
				return -1;
			if (r->entry.type == 'x') {
				ret = apply_pax(r, meta, strlen(meta), err);
				free(meta);
				if (ret < 0)
					return -1;
			} else {
				replace(r->entry.type == 'L' ? &r->long_path : &r->long_link, meta);
			}
			continue;
		case 'g':
		case 'V':
			if (skip(r, (r->entry.size + BLOCK - 1) / BLOCK * BLOCK, err) < 0)
				return -1;
			continue;
		default:
			break;
		}
		if (r->long_path != NULL)
			replace(&r->entry.path, r->long_path);
		if (r->long_link != NULL)
			replace(&r->entry.link, r->long_link);
		if (r->pax_size_set)
			r->entry.size = r->pax_size;
		r->long_path = r->long_link = NULL;
		r->pax_size_set = false;
		/* Links, directories and devices carry no content whatever the
		 * size field says, except in some old archives; honour the field
		 * for skipping either way. */
		r->left = r->entry.size;
		r->padding = (BLOCK - r->entry.size % BLOCK) % BLOCK;
		if (r->entry.type != '0') {
			if (skip(r, r->left + r->padding, err) < 0)
				return -1;
			r->left = r->padding = 0;
			r->entry.size = 0;
		}
		*out = &r->entry;
		return 1;
	}
}

ssize_t tar_read(struct tar_reader *r, void *buf, size_t size, capsula_error *err)
{
	size_t n = r->left < size ? (size_t)r->left : size;

	if (n == 0)
		return 0;
	if (read_full(r, buf, n, err) < 0)
		return -1;
	r->left -= n;
	return (ssize_t)n;
}

void tar_close(struct tar_reader *r)
{
	entry_clear(&r->entry);
	free(r->long_path);
	free(r->long_link);
	r->long_path = r->long_link = NULL;
}
