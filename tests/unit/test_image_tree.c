/* The merged tree of a build: OCI layer semantics, whiteouts, links. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/convert/image_tree.h"
#include "tests/unit/tap.h"

static struct tree t;
static capsula_error err;
static uint64_t entry_number;

static struct tree_node *find(const char *path)
{
	struct tree_node *n = t.root;
	char copy[256], *part, *save;

	snprintf(copy, sizeof copy, "%s", path);
	for (part = strtok_r(copy, "/", &save); part && n; part = strtok_r(NULL, "/", &save)) {
		struct tree_node *c = n->children;

		while (c != NULL && strcmp(c->name, part) != 0)
			c = c->next;
		n = c;
	}
	return n;
}

static int add(const char *path, mode_t mode, const char *symlink, const char *hardlink)
{
	struct tree_entry e = {.path = path, .mode = mode, .symlink = symlink,
	                       .hardlink = hardlink, .size = S_ISREG(mode) ? 1 : 0,
	                       .entry = ++entry_number};
	struct tree_inode *data;

	return tree_apply(&t, &e, &data, &err);
}

static void layer(unsigned n)
{
	t.layer = n;
	entry_number = 0;
}

static mode_t mode_of(const char *path)
{
	struct tree_node *n = find(path);

	return n ? n->inode->mode : 0;
}

static void test_replacement(void)
{
	tree_init(&t, true, &err);
	layer(0);
	add("etc/", S_IFDIR | 0755, NULL, NULL);
	add("etc/issue.net", S_IFREG | 0644, NULL, NULL);
	add("etc/alt", S_IFLNK | 0777, "issue.net", NULL);
	add("bin/tool", S_IFREG | 0444, NULL, NULL);
	layer(1);
	add("etc/.wh.issue.net", S_IFREG | 0644, NULL, NULL);
	add("etc/issue.net/", S_IFDIR | 0700, NULL, NULL);
	add("etc/issue.net/inside", S_IFREG | 0600, NULL, NULL);
	add("etc/alt/", S_IFDIR | 0755, NULL, NULL);
	add("bin/tool", S_IFREG | 0755, NULL, NULL);
	ok(S_ISDIR(mode_of("etc/issue.net")) && (mode_of("etc/issue.net") & 07777) == 0700,
	   "a later layer turns a file into a directory (with its mode)");
	ok(find("etc/issue.net/inside") != NULL, "and what it puts inside is there");
	ok(S_ISDIR(mode_of("etc/alt")), "a later layer turns a symbolic link into a directory");
	ok((mode_of("bin/tool") & 07777) == 0755, "a rewritten file has the later layer's mode");
	ok(find("bin/tool")->inode->layer == 1 && find("bin/tool")->inode->entry == 5,
	   "and its data comes from the later layer's entry");
	tree_free(&t);
}

static void test_whiteouts(void)
{
	tree_init(&t, true, &err);
	layer(0);
	add("a/old", S_IFREG | 0644, NULL, NULL);
	add("a/sub/deep", S_IFREG | 0644, NULL, NULL);
	add("doomed", S_IFREG | 0644, NULL, NULL);
	add("d/x", S_IFREG | 0644, NULL, NULL);
	layer(1);
	add("a/new", S_IFREG | 0644, NULL, NULL);     /* before the marker */
	add("a/.wh..wh..opq", S_IFREG | 0644, NULL, NULL);
	add("a/later", S_IFREG | 0644, NULL, NULL);
	add(".wh.doomed", S_IFREG | 0644, NULL, NULL);
	add("d/y", S_IFREG | 0644, NULL, NULL);
	add("d/.wh.y", S_IFREG | 0644, NULL, NULL);   /* hides lower layers only */
	ok(find("a/old") == NULL && find("a/sub") == NULL,
	   "an opaque directory hides what lower layers put in it");
	ok(find("a/new") != NULL && find("a/later") != NULL,
	   "and keeps this layer's files, before and after the marker");
	ok(find("doomed") == NULL, "a whiteout removes a lower layer's file");
	ok(find("d/y") != NULL && find("d/x") != NULL, "but not this layer's own");
	ok(find("a/.wh..wh..opq") == NULL && find(".wh.doomed") == NULL,
	   "no whiteout file is left in the tree");
	tree_free(&t);

	tree_init(&t, false, &err);
	layer(0);
	add(".wh.kept", S_IFREG | 0644, NULL, NULL);
	ok(find(".wh.kept") != NULL, "a root file system tarball keeps .wh. names as files");
	tree_free(&t);
}

static void test_links(void)
{
	struct tree_inode *first;

	tree_init(&t, true, &err);
	layer(0);
	add("usr/lib/libx.so", S_IFREG | 0644, NULL, NULL);
	add("lib", S_IFLNK | 0777, "usr/lib", NULL);
	add("lib/liby.so", S_IFREG | 0644, NULL, NULL);
	add("abs", S_IFLNK | 0777, "/usr/../../../usr", NULL);
	add("abs/z", S_IFREG | 0644, NULL, NULL);
	add("bin/a", S_IFREG | 0755, NULL, NULL);
	add("bin/b", S_IFREG, NULL, "bin/a");
	ok(find("usr/lib/liby.so") != NULL && S_ISLNK(mode_of("lib")),
	   "a member under a symbolic link lands where the link points, inside the image");
	ok(find("usr/z") != NULL, "an absolute link and '..' stop at the image's root");
	first = find("bin/a")->inode;
	ok(find("bin/b")->inode == first && first->nlink == 2, "a hard link shares the inode");
	layer(1);
	add("bin/a", S_IFREG | 0700, NULL, NULL);
	ok(find("bin/b")->inode == first && first->nlink == 1 && find("bin/a")->inode != first,
	   "replacing one name leaves the other with the old file");
	ok(add("bin/c", S_IFREG, NULL, "bin/missing") < 0, "a hard link to nothing is refused: %s",
	   err.message);
	ok(add("bin/d", S_IFREG, NULL, "usr") < 0, "a hard link to a directory is refused");
	ok(add("../escape", S_IFREG | 0644, NULL, NULL) < 0 && strstr(err.message, "leaves the image"),
	   "a member path with '..' is refused: %s", err.message);
	add("loop1", S_IFLNK | 0777, "loop2", NULL);
	add("loop2", S_IFLNK | 0777, "loop1", NULL);
	ok(add("loop1/x", S_IFREG | 0644, NULL, NULL) < 0, "a symbolic link loop is refused");
	tree_free(&t);
}

static void test_clean_path(void)
{
	char out[64];

	ok(tree_clean_path("./usr//lib/./x", out, sizeof out) == 0 && strcmp(out, "usr/lib/x") == 0,
	   "'.' and empty parts go");
	ok(tree_clean_path("/etc/passwd", out, sizeof out) == 0 && strcmp(out, "etc/passwd") == 0,
	   "a leading '/' goes");
	ok(tree_clean_path("a/../../etc", out, sizeof out) < 0, "'..' is refused");
	ok(tree_clean_path("./", out, sizeof out) == 0 && out[0] == '\0', "'./' is the root");
	ok(tree_clean_path("a\nb/\xff", out, sizeof out) == 0 && strcmp(out, "a\nb/\xff") == 0,
	   "names are kept byte for byte");
}

int main(void)
{
	test_replacement();
	test_whiteouts();
	test_links();
	test_clean_path();
	return tap_done();
}
