/* Small tar archives (pax) that would make large work, for the build tests,
 * written to standard output:
 *   hostile-tar many N        N empty files
 *   hostile-tar longlink N    a symbolic link to a name of N bytes
 *   hostile-tar bigxattr N    a file with an extended attribute of N bytes
 *   hostile-tar hardlinks N   a file and N hard links to it
 *   hostile-tar deep N        directories nested N deep
 * Only headers: a few bytes of input each, however much they declare. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 512

static void octal(char *field, size_t size, unsigned long long value)
{
	snprintf(field, size, "%0*llo", (int)size - 1, value);
}

/* One ustar header (name and linkname cut to their fields; pax records
 * carry the long ones). */
static void header(const char *name, char type, unsigned long long size, const char *link)
{
	unsigned char h[BLOCK] = {0};
	unsigned sum = 0;

	snprintf((char *)h, 100, "%s", name);
	octal((char *)h + 100, 8, type == '5' ? 0755 : 0644);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size);
	octal((char *)h + 136, 12, 1700000000);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	if (link != NULL)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (size_t i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	fwrite(h, 1, BLOCK, stdout);
}

static void padding(unsigned long long size)
{
	static const char zeros[BLOCK];

	if (size % BLOCK != 0)
		fwrite(zeros, 1, BLOCK - size % BLOCK, stdout);
}

/* A pax extended header with one record KEY=VALUE (value of length n). */
static void pax_record(const char *key, const char *value, size_t n)
{
	size_t body = strlen(key) + n + 3, digits = 1, length;
	char prefix[32];

	for (;;) {
		length = body + digits;
		snprintf(prefix, sizeof prefix, "%zu", length);
		if (strlen(prefix) == digits)
			break;
		digits = strlen(prefix);
	}
	header("PaxHeader", 'x', length, NULL);
	printf("%s %s=", prefix, key);
	fwrite(value, 1, n, stdout);
	putchar('\n');
	padding(length);
}

static char *filled(size_t n, char c)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		exit(1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

int main(int argc, char **argv)
{
	static const char zeros[2 * BLOCK];
	unsigned long n;
	char name[64];

	if (argc != 3)
		return 2;
	n = strtoul(argv[2], NULL, 10);
	if (strcmp(argv[1], "many") == 0) {
		for (unsigned long i = 0; i < n; i++) {
			snprintf(name, sizeof name, "f%lu", i);
			header(name, '0', 0, NULL);
		}
	} else if (strcmp(argv[1], "longlink") == 0) {
		char *target = filled(n, 't');

		pax_record("linkpath", target, n);
		header("link", '2', 0, "t");
		free(target);
	} else if (strcmp(argv[1], "bigxattr") == 0) {
		char *value = filled(n, 'v');

		pax_record("SCHILY.xattr.user.big", value, n);
		header("f", '0', 0, NULL);
		free(value);
	} else if (strcmp(argv[1], "hardlinks") == 0) {
		header("f", '0', 0, NULL);
		for (unsigned long i = 0; i < n; i++) {
			snprintf(name, sizeof name, "l%lu", i);
			header(name, '1', 0, "f");
		}
	} else if (strcmp(argv[1], "deep") == 0) {
		char *path = malloc(2 * n + 1);

		if (path == NULL)
			return 1;
		for (unsigned long i = 0; i < n; i++)
			memcpy(path + 2 * i, "d/", 2);
		path[2 * n] = '\0';
		pax_record("path", path, 2 * n);
		header("d", '5', 0, NULL);
		free(path);
	} else {
		return 2;
	}
	fwrite(zeros, 1, sizeof zeros, stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}
