/* The parsers of untrusted image formats capsula has itself: image
 * configs (through jansson), JSON output, SIF headers. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/json_out.h"
#include "runtime/image/image_config.h"
#include "runtime/image/sif.h"
#include "tests/unit/tap.h"

static void test_json_text(void)
{
	json_t *v = json_text("q\"b\\\n\x01\xff\xc3\xa9");
	char *out = json_dumps(v, JSON_ENCODE_ANY);

	is_str(out, "\"q\\\"b\\\\\\n\\u0001\xef\xbf\xbd\xc3\xa9\"",
	       "strings are escaped; bytes that are not UTF-8 become U+FFFD");
	free(out);
	json_decref(v);
}

static void test_image_config(void)
{
	struct image_config c, back;
	char why[128];
	const char *text = "{\"config\": {\"Env\": [\"A=1\", \"B=two words\"], "
	                   "\"Entrypoint\": [\"/bin/sh\", \"-c\"], \"Cmd\": null, "
	                   "\"WorkingDir\": \"/w\", \"Labels\": {\"k\": \"v\"}}}";
	json_t *document;
	char *written;
	size_t size;

	ok(image_config_parse(text, strlen(text), &c, why, sizeof why) == 0, "a config parses");
	ok(c.env.count == 2 && strcmp(c.env.items[1], "B=two words") == 0, "Env is read");
	ok(c.entrypoint.count == 2 && c.cmd.count == 0, "Entrypoint is read, a null Cmd is empty");
	is_str(c.workdir, "/w", "WorkingDir is read");
	ok(c.label_keys.count == 1 && strcmp(c.label_values.items[0], "v") == 0, "Labels are read");
	document = image_config_to_json(&c);
	written = json_dumps(document, 0);
	json_decref(document);
	size = written ? strlen(written) : 0;
	ok(image_config_parse(written, size, &back, why, sizeof why) == 0 &&
	   back.env.count == 2 && strcmp(back.workdir, "/w") == 0 && back.label_keys.count == 1,
	   "what capsula writes reads back the same");
	image_config_free(&back);
	image_config_free(&c);
	free(written);
	ok(image_config_parse("{\"config\": {\"Env\": \"A=1\"}}", 26, &c, why, sizeof why) < 0,
	   "an Env that is not a list is refused: %s", why);
	ok(image_config_parse("[]", 2, &c, why, sizeof why) < 0, "a config that is not an object is refused");
	ok(image_config_parse("{\n\"config\" 1}", 13, &c, why, sizeof why) < 0 &&
	   strncmp(why, "line 2:", 7) == 0, "a syntax error names its line: %s", why);
	ok(image_config_parse("{\"config\": {\"Env\": [\"a\\u0000b\"]}}", 33, &c, why,
	                      sizeof why) < 0, "NUL inside a string is refused: %s", why);
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
	test_json_text();
	test_image_config();
	test_sif();
	return tap_done();
}
