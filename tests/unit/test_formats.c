/* The parsers of untrusted image formats: JSON, image configs, tar
 * headers, member paths and SIF headers. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "runtime/image_config.h"
#include "runtime/json.h"
#include "runtime/sif.h"
#include "runtime/tar.h"
#include "runtime/unpack.h"
#include "tests/unit/tap.h"

static int parses(const char *text)
{
	struct json v;
	char why[128];

	if (json_parse(text, strlen(text), &v, why, sizeof why) < 0)
		return 0;
	json_free(&v);
	return 1;
}

static void test_json(void)
{
	struct json v;
	char why[128];
	const char *text = "{\"a\": [1, 2.5, -3e2], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", "
	                   "\"t\": true, \"n\": null, \"a\": \"last\"}";

	ok(json_parse(text, strlen(text), &v, why, sizeof why) == 0, "a JSON object parses");
	is_str(json_string(json_get(&v, "s")), "x\xc3\xa9\xf0\x9f\x98\x80\n",
	       "escapes decode to UTF-8, surrogate pairs included");
	is_str(json_string(json_get(&v, "a")), "last", "the last duplicate key wins");
	ok(json_get(&v, "t")->type == JSON_BOOL && json_get(&v, "t")->boolean, "true is a boolean");
	ok(json_get(&v, "n")->type == JSON_NULL, "null is null");
	ok(json_get(&v, "missing") == NULL, "a missing key is NULL");
	json_free(&v);

	ok(!parses("{\"a\": 1,}"), "a trailing comma is refused");
	ok(!parses("[1, 2"), "an unterminated array is refused");
	ok(!parses("\"\\u0000\""), "NUL in a string is refused");
	ok(!parses("\"\\ud800\""), "a lone surrogate is refused");
	ok(!parses("\"tab\there\""), "a raw control character is refused");
	ok(!parses("{} {}"), "text after the value is refused");
	ok(!parses(""), "empty input is refused");

	char deep[300];
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = '\0';
	ok(!parses(deep), "nesting deeper than the limit is refused");
	ok(json_parse("{\n\"a\" 1}", 8, &v, why, sizeof why) < 0 &&
	   strcmp(why, "line 2: expected ':'") == 0, "errors name the line: %s", why);
}

static void test_json_write(void)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	json_write_string(f, "q\"b\\\n\x01\xff\xc3\xa9");
	fclose(f);
	is_str(buf, "\"q\\\"b\\\\\\n\\u0001\\ufffd\xc3\xa9\"",
	       "strings are escaped; bytes that are not UTF-8 become U+FFFD");
	free(buf);
}

static void test_image_config(void)
{
	struct image_config c, back;
	char why[128];
	const char *text = "{\"config\": {\"Env\": [\"A=1\", \"B=two words\"], "
	                   "\"Entrypoint\": [\"/bin/sh\", \"-c\"], \"Cmd\": null, "
	                   "\"WorkingDir\": \"/w\", \"Labels\": {\"k\": \"v\"}}}";
	char *written = NULL;
	size_t size = 0;
	FILE *f;

	ok(image_config_parse(text, strlen(text), &c, why, sizeof why) == 0, "a config parses");
	ok(c.env.count == 2 && strcmp(c.env.items[1], "B=two words") == 0, "Env is read");
	ok(c.entrypoint.count == 2 && c.cmd.count == 0, "Entrypoint is read, a null Cmd is empty");
	is_str(c.workdir, "/w", "WorkingDir is read");
	ok(c.label_keys.count == 1 && strcmp(c.label_values.items[0], "v") == 0, "Labels are read");
	f = open_memstream(&written, &size);
	image_config_write(&c, f);
	fclose(f);
	ok(image_config_parse(written, size, &back, why, sizeof why) == 0 &&
	   back.env.count == 2 && strcmp(back.workdir, "/w") == 0 && back.label_keys.count == 1,
	   "what capsula writes reads back the same");
	image_config_free(&back);
	image_config_free(&c);
	free(written);
	ok(image_config_parse("{\"config\": {\"Env\": \"A=1\"}}", 26, &c, why, sizeof why) < 0,
	   "an Env that is not a list is refused: %s", why);
	ok(image_config_parse("[]", 2, &c, why, sizeof why) < 0, "a config that is not an object is refused");
}

static void seal_tar_header(unsigned char *b)
{
	unsigned sum = 0;

	memset(b + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += b[i];
	snprintf((char *)b + 148, 8, "%06o", sum);
}

static void make_tar_header(unsigned char *b, const char *name, char type, const char *size_octal)
{
	memset(b, 0, 512);
	strcpy((char *)b, name);
	memcpy(b + 100, "0000644", 7);
	memcpy(b + 124, size_octal, strlen(size_octal));
	memcpy(b + 136, "00000000000", 11);
	b[156] = (unsigned char)type;
	memcpy(b + 257, "ustar\0" "00", 8);
	seal_tar_header(b);
}

static void test_tar_header(void)
{
	unsigned char b[512];
	struct tar_entry e;
	char why[128];

	make_tar_header(b, "etc/passwd", '0', "00000000012");
	ok(tar_parse_header(b, &e, why, sizeof why) == 1, "a ustar header parses");
	is_str(e.path, "etc/passwd", "its name");
	ok(e.size == 10 && e.mode == 0644 && e.type == '0', "its size, mode and type");
	free(e.path);
	free(e.link);
	b[0] = 'E';
	ok(tar_parse_header(b, &e, why, sizeof why) < 0, "a bad checksum is refused: %s", why);
	memset(b, 0, sizeof b);
	ok(tar_parse_header(b, &e, why, sizeof why) == 0, "an all-zero block ends the archive");
	make_tar_header(b, "big", '0', "");
	b[124] = 0x80;
	memset(b + 125, 0, 11);
	b[135] = 0x01;
	seal_tar_header(b);
	ok(tar_parse_header(b, &e, why, sizeof why) == 1 && e.size == 1, "base-256 sizes are read");
	free(e.path);
	free(e.link);
}

static void test_clean_path(void)
{
	char out[64];

	ok(unpack_clean_path("./usr//lib/./x", out, sizeof out) == 0 && strcmp(out, "usr/lib/x") == 0,
	   "'.' and empty parts go");
	ok(unpack_clean_path("/etc/passwd", out, sizeof out) == 0 && strcmp(out, "etc/passwd") == 0,
	   "a leading '/' goes");
	ok(unpack_clean_path("a/../../etc", out, sizeof out) < 0, "'..' is refused");
	ok(unpack_clean_path("./", out, sizeof out) == 0 && out[0] == '\0', "'./' is the root");
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void test_sif(void)
{
	static unsigned char t[128 + 2 * SIF_DESCRIPTOR_SIZE];
	unsigned char *d = t + 128;
	struct sif_partition part;
	char why[128];

	memcpy(t, "#!/usr/bin/env run-singularity\n", 31);
	memcpy(t + 32, "SIF_MAGIC", 10);
	put64(t + 88, 2);      /* descriptors */
	put64(t + 96, 128);    /* where they start */
	ok(sif_is_sif(t, sizeof t), "the magic is recognised");
	ok(sif_table_size(t, sizeof t, why, sizeof why) == sizeof t,
	   "the table size covers the descriptors");
	ok(sif_find_squashfs(t, sizeof t, 1 << 20, &part, why, sizeof why) < 0,
	   "no partition descriptor: refused (%s)", why);
	/* descriptor 2: used squashfs primary system partition at 4096 */
	d += SIF_DESCRIPTOR_SIZE;
	d[0] = 0x04; d[1] = 0x40; d[4] = 1;
	put64(d + 17, 4096);
	put64(d + 25, 8192);
	d[201] = 1;  /* squashfs */
	d[205] = 2;  /* primary system */
	ok(sif_find_squashfs(t, sizeof t, 1 << 20, &part, why, sizeof why) == 0 &&
	   part.offset == 4096 && part.size == 8192, "the squashfs partition is found");
	ok(sif_find_squashfs(t, sizeof t, 8000, &part, why, sizeof why) < 0,
	   "a partition past the end of the file is refused: %s", why);
	d[201] = 5;
	ok(sif_find_squashfs(t, sizeof t, 1 << 20, &part, why, sizeof why) < 0 &&
	   strstr(why, "encrypted") != NULL, "an encrypted partition is named as such");
	put64(t + 88, 100000);
	ok(sif_table_size(t, sizeof t, why, sizeof why) == 0, "an absurd descriptor count is refused");
	ok(sif_find_squashfs(t, 100, 1 << 20, &part, why, sizeof why) < 0, "a cut header is refused");
}

int main(void)
{
	test_json();
	test_json_write();
	test_image_config();
	test_tar_header();
	test_clean_path();
	test_sif();
	return tap_done();
}
