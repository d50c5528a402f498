#include "config.h"

#include "runtime/config/bindspec.h"
#include "tests/unit/tap.h"

static int parse(const char *spec, struct bind_list *list)
{
	capsula_error err = {0};

	bind_list_free(list);
	return bindspec_parse(spec, list, &err);
}

static void expect_error(const char *spec, const char *fragment)
{
	struct bind_list list = {0};
	capsula_error err = {0};

	ok(bindspec_parse(spec, &list, &err) < 0 && strstr(err.message, fragment) != NULL,
	   "'%s' is refused with '%s' (%s)", spec, fragment, err.message);
	ok(strstr(err.message, "-B SRC[:DST[:ro|rw]]") != NULL, "'%s': the message shows the form", spec);
	bind_list_free(&list);
}

int main(void)
{
	struct bind_list list = {0};

	ok(parse("/data", &list) == 0 && list.count == 1, "a bare source parses");
	is_str(list.items[0].source, "/data", "source kept");
	is_str(list.items[0].destination, "/data", "destination defaults to the source");
	ok(list.items[0].flags == 0, "read-write by default");

	ok(parse("/scratch/u:/work:ro", &list) == 0 && list.count == 1, "SRC:DST:ro parses");
	is_str(list.items[0].destination, "/work", "destination taken");
	ok(list.items[0].flags & BIND_READONLY, "ro sets read-only");

	ok(parse("rel/dir:/w:rw", &list) == 0 && !(list.items[0].flags & BIND_READONLY),
	   "rw is read-write; a relative source is accepted here");

	ok(parse("/a,/b:/c:ro,/d", &list) == 0 && list.count == 3, "comma lists give three binds");
	is_str(list.items[1].source, "/b", "second source");
	is_str(list.items[2].destination, "/d", "third destination");
	ok(list.items[1].flags == BIND_READONLY && list.items[2].flags == 0,
	   "options apply per item");

	expect_error("", "empty bind");
	expect_error("/a:/b:rx", "unknown option 'rx'");
	expect_error("/a:b", "not an absolute path");
	expect_error("/a:/b:ro:x", "too many");
	expect_error(":/b", "empty source");
	expect_error("/a:", "empty destination");
	expect_error("/a,,/b", "empty item");
	expect_error(",/a", "empty item");
	expect_error("/a,", "empty item");

	bind_list_free(&list);
	return tap_done();
}
