/* Small parsers: /etc/subuid lines for --fakeroot, sizes with K, M, G and
 * T suffixes (--tmpfs-size, --limit-rate, --block-size), and text escaped
 * for the terminal. */
#include "config.h"

#include <string.h>

#include "common/text.h"
#include "runtime/plan/fakeroot_plan.h"
#include "tests/unit/tap.h"

static void test_subids(void)
{
	struct id_range r;
	const char *text = "# comment\nbob:100000:65536\nalice:165536:65536\n1001:300000:10\n";

	ok(subid_range_parse(text, "alice", 1000, &r) == 0 && r.start == 165536 && r.count == 65536,
	   "alice's range by name");
	ok(subid_range_parse(text, "carol", 1001, &r) == 0 && r.start == 300000 && r.count == 10,
	   "a range by uid");
	ok(subid_range_parse(text, "dave", 1002, &r) < 0 && r.count == 0, "no range: count 0");
	ok(subid_range_parse("ali:1:2\nalicex:3:4\n", "alice", 7, &r) < 0,
	   "names are matched whole, not by prefix");
	ok(subid_range_parse("alice:100000:65536", "alice", 7, &r) == 0 && r.start == 100000,
	   "a last line without its newline");
	ok(subid_range_parse("alice:0:10\n", "alice", 7, &r) < 0, "a range from 0 is refused");
	ok(subid_range_parse("alice:10:0\n", "alice", 7, &r) < 0, "an empty range is refused");
	ok(subid_range_parse("alice:4294967290:10\n", "alice", 7, &r) < 0,
	   "a range past uid 4294967294 is refused");
	ok(subid_range_parse("alice:x:10\nalice:5:6x\nalice:7:8\n", "alice", 7, &r) == 0 &&
	   r.start == 7, "malformed lines are passed over");
	ok(subid_range_parse("alice:1:2\n", NULL, 7, &r) < 0, "no name, no match by name");
}

static void test_byte_sizes(void)
{
	unsigned long long v;

	ok(parse_byte_size("4096", &v) == 0 && v == 4096, "plain bytes");
	ok(parse_byte_size("64K", &v) == 0 && v == 64ULL << 10, "K");
	ok(parse_byte_size("512m", &v) == 0 && v == 512ULL << 20, "m, lower case");
	ok(parse_byte_size("2G", &v) == 0 && v == 2ULL << 30, "G");
	ok(parse_byte_size("3T", &v) == 0 && v == 3ULL << 40, "T");
	ok(parse_byte_size("-1", &v) < 0, "negative refused");
	ok(parse_byte_size("", &v) < 0, "empty refused");
	ok(parse_byte_size("1Q", &v) < 0 && parse_byte_size("1KB", &v) < 0, "unknown suffixes refused");
	ok(parse_byte_size("99999999999999999999", &v) < 0, "overflow refused");
	ok(parse_byte_size("20000000T", &v) < 0, "overflow through the suffix refused");
}

static void test_escaped_text(void)
{
	char out[64];

	text_escape_controls("plain text, é and ✓", out, sizeof out);
	ok(strcmp(out, "plain text, é and ✓") == 0, "printable ASCII and UTF-8 pass as they are");
	text_escape_controls("a\033[2Jb\nc\x7f", out, sizeof out);
	ok(strcmp(out, "a\\x1b[2Jb\\x0ac\\x7f") == 0, "ESC, newline and DEL are escaped: %s", out);
	text_escape_controls("\xc2\x9b" "1m", out, sizeof out);
	ok(strcmp(out, "\\xc2\\x9b1m") == 0, "a C1 control in UTF-8 is escaped: %s", out);
	text_escape_controls("\xff\xc0\x80", out, sizeof out);
	ok(strcmp(out, "\\xff\\xc0\\x80") == 0, "bytes that are not UTF-8 are escaped: %s", out);
	text_escape_controls("\033\033\033", out, 6);
	ok(strcmp(out, "\\x1b") == 0, "an escape is never cut in half: %s", out);
}

int main(void)
{
	test_subids();
	test_byte_sizes();
	test_escaped_text();
	return tap_done();
}
