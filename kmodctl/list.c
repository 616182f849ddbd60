/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>
#include <time.h>

#include "db.h"
#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"
#include "strv.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] list --installed [--json]\n"
	       "       kmodctl [--root DIR] list [--json]\n\n"
	       "  --installed  the installed KMPs of every kernel (of --kernel only, when given):\n"
	       "               name, version, kernel, reason, what asked for it\n"
	       "  (without)    what the repositories offer\n");
}

/* Replaced by the verb file that lists repository packages. */
__attribute__((weak)) int list_available(int argc, char *argv[])
{
	log_error("Listing repository packages is not available in this build; use "
		  "'kmodctl list --installed'.");
	return EXIT_FAILURE;
}

json_object *db_package_to_json(const DbPackage *p);

json_object *db_package_to_json(const DbPackage *p)
{
	json_object *o = json_object_new_object(), *files = json_object_new_array();

	json_object_object_add(o, "name", json_object_new_string(p->ref.name));
	json_object_object_add(o, "evr", json_object_new_string(p->ref.evr));
	json_object_object_add(o, "arch", json_object_new_string(p->ref.arch));
	json_object_object_add(o, "kernel", json_object_new_string(p->kver));
	json_object_object_add(o, "repository",
			       p->ref.repo_id ? json_object_new_string(p->ref.repo_id) :
						NULL);
	json_object_object_add(o, "reason",
			       json_object_new_string(
				       install_reason_to_string(p->ref.reason)));
	json_object_object_add(o, "requested_by",
			       p->ref.requested_by ?
				       json_object_new_string(p->ref.requested_by) :
				       NULL);
	json_object_object_add(o, "device",
			       p->ref.device ? json_object_new_string(p->ref.device) :
					       NULL);
	json_object_object_add(o, "install_time", json_object_new_int64(p->install_time));
	for (size_t i = 0; i < p->n_files; i++)
		json_object_array_add(files, json_object_new_string(p->files[i].path));
	json_object_object_add(o, "files", files);
	return o;
}

static int list_installed(void)
{
	_cleanup_(db_closep) Db *db = NULL;
	DbPackage *l = NULL;
	size_t n = 0;
	int r;

	r = db_open(arg_root, false, &db);
	if (r < 0 && r != -ENOENT)
		return log_error_errno(r,
				       "%s/var/lib/kmodd/kmodd.db: cannot open: %m; run "
				       "'kmodctl verify'.",
				       streq(arg_root, "/") ? "" : arg_root);
	if (db) {
		r = db_list_packages(db, arg_kernel, &l, &n);
		if (r < 0)
			return log_error_errno(
				r, "%s/var/lib/kmodd/kmodd.db: cannot read: %m",
				streq(arg_root, "/") ? "" : arg_root);
	}
	if (arg_json) {
		_cleanup_json_put_ json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, db_package_to_json(&l[i]));
		printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY));
	} else {
		if (n == 0)
			printf("No KMP is installed.\n");
		else
			printf("%-32s %-14s %-18s %-10s %s\n", "PACKAGE", "VERSION",
			       "KERNEL", "REASON", "REQUESTED BY");
		for (size_t i = 0; i < n; i++)
			printf("%-32s %-14s %-18s %-10s %s\n", l[i].ref.name,
			       l[i].ref.evr, l[i].kver,
			       install_reason_to_string(l[i].ref.reason),
			       strempty(l[i].ref.requested_by));
	}
	db_packages_free(l, n);
	return 0;
}

int verb_list(int argc, char *argv[])
{
	enum { ARG_INSTALLED = ARG_VERB_BASE };
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "installed", no_argument, NULL, ARG_INSTALLED },
		{},
	};
	bool installed = false;
	int c;

	/* options the installed listing does not know are the available listing's */
	for (int i = 1; i < argc; i++)
		if (streq(argv[i], "--installed"))
			installed = true;
	if (!installed)
		return list_available(argc, argv);

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_INSTALLED:
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		log_error("Unexpected argument '%s'; see 'kmodctl list --help'.",
			  argv[optind]);
		return EXIT_USAGE;
	}
	return list_installed() < 0 ? EXIT_FAILURE : 0;
}
