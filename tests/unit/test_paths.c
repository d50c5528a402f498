#include "config.h"

#include "runtime/config/paths.h"
#include "tests/unit/tap.h"

int main(void)
{
	ok(path_is_under("/a/b", "/a"), "/a/b is under /a");
	ok(path_is_under("/a", "/a"), "/a is under itself");
	ok(path_is_under("/a/b", "/a/"), "a trailing slash on the directory is ignored");
	ok(!path_is_under("/ab", "/a"), "/ab is not under /a");
	ok(!path_is_under("/", "/a"), "/ is not under /a");
	ok(path_is_under("/anything", "/"), "everything is under /");

	ok(path_is_system("/"), "/ is a system path");
	ok(path_is_system("/usr/local/src"), "below /usr is system");
	ok(path_is_system("/etc"), "/etc is system");
	ok(path_is_system("/home") && path_is_system("/tmp"), "/home and /tmp themselves are system");
	ok(!path_is_system("/home/alice/run"), "a directory in a home is not");
	ok(!path_is_system("/scratch/job1"), "a scratch directory is not");
	ok(!path_is_system("/usrdata"), "/usrdata is not /usr");
	ok(!path_is_system("/var/tmp/job"), "below /var is not, only /var itself");
	return tap_done();
}
