#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json_out.h"
#include "runtime/doctor/checks.h"
#include "runtime/doctor/doctor.h"
#include "runtime/image/image_config.h"

static const char doctor_usage[] =
	"Usage: capsula doctor [--json] [--image IMAGE]\n"
	"Check that this node can run capsula containers, and MPI over RDMA in\n"
	"them: user namespaces, /dev/fuse and the kernel's FUSE, the site\n"
	"configuration, the locked-memory limit, /dev/infiniband and the HCAs\n"
	"libibverbs sees, and what --nv and --rocm would bind (GPU devices,\n"
	"driver libraries, programs). With --image, compare the host's Open MPI and PMIx\n"
	"with the image's and look for the verbs providers the HCAs need.\n"
	"\n"
	"  --json          one JSON object instead of text\n"
	"  --image IMAGE   also check IMAGE against this node\n"
	"  -h, --help      this text\n"
	"\n"
	"Exit status: 0 when the node can run containers (warnings allowed),\n"
	"1 when it cannot, 125 on bad usage.\n";

static const char *const status_names[] = {
	[CHECK_OK] = "ok", [CHECK_INFO] = "info", [CHECK_WARN] = "warn", [CHECK_FAIL] = "FAIL",
};

static void print_text(const struct check_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		const struct check *c = &list->items[i];

		printf("%-5s %-22s %s\n", status_names[c->status], c->name, c->detail);
		if (c->fix[0] != '\0')
			printf("%-5s %-22s fix: %s\n", "", "", c->fix);
	}
}

static int print_json(const struct check_list *list, bool can_run)
{
	json_t *checks = json_array();

	for (size_t i = 0; checks != NULL && i < list->count; i++) {
		const struct check *c = &list->items[i];
		const char *status = c->status == CHECK_FAIL ? "fail" : status_names[c->status];

		if (json_array_append_new(checks, json_pack("{s:o,s:s,s:o,s:o}",
		        "name", json_text(c->name), "status", status, "detail", json_text(c->detail),
		        "fix", c->fix[0] != '\0' ? json_text(c->fix) : json_null())) < 0) {
			json_decref(checks);
			checks = NULL;
		}
	}
	return json_print(json_pack("{s:b,s:o}", "can_run_containers", can_run, "checks", checks),
	                  stdout);
}

int doctor_main(int argc, char **argv)
{
	struct check_list list = {0};
	struct strvec drivers = {0};
	const char *image = NULL;
	bool json = false, can_run = true;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--image") == 0 && i + 1 < argc) {
			image = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(doctor_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "capsula: unexpected argument '%s'; see 'capsula doctor --help'\n",
			        argv[i]);
			return 125;
		}
	}
	check_kernel(&list);
	check_user_namespaces(&list);
	check_fuse(&list);
	check_site_config(&list);
	check_memlock(&list);
	check_rdma_devices(&list, &drivers);
	check_gpus(&list);
	if (image != NULL)
		check_image_stack(&list, image, &drivers);
	for (size_t i = 0; i < list.count; i++)
		can_run = can_run && list.items[i].status != CHECK_FAIL;
	if (json && print_json(&list, can_run) < 0) {
		capsula_error err;

		fail(&err, errno, NULL, "standard output");
		error_print(&err);
		can_run = false;
	}
	if (!json)
		print_text(&list);
	strvec_free(&drivers);
	free(list.items);
	return can_run ? 0 : 1;
}
