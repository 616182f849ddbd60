/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>

#include "db.h"
#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"
#include "strv.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] why PKG|MODULE [--json]\n\n"
	       "Why an installed KMP is there: the reason (user, hotplug, set, dependency), what\n"
	       "was asked for, the device that needed it, and the installed packages that\n"
	       "require it.\n");
}

json_object *db_package_to_json(const DbPackage *p);

static int find(DbPackage *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(l[i].ref.name, name))
			return (int)i;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < l[i].n_files; j++) {
			const char *b = strrchr(l[i].files[j].path, '/');
			size_t k = strlen(name);
			bool same = true;

			b = b ? b + 1 : l[i].files[j].path;
			for (size_t x = 0; x < k && same; x++)
				same = b[x] == name[x] ||
				       ((b[x] == '-' || b[x] == '_') &&
					(name[x] == '-' || name[x] == '_'));
			if (same && startswith(b + k, ".ko"))
				return (int)i;
		}
	return -ENOENT;
}

int verb_why(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{},
	};
	_cleanup_(db_closep) Db *db = NULL;
	_cleanup_strv_free_ char **required_by = NULL;
	DbPackage *l = NULL;
	size_t n = 0;
	int c, r, k;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		log_error(
			"Name one installed package or module; see 'kmodctl why --help'.");
		return EXIT_USAGE;
	}
	r = db_open(arg_root, false, &db);
	if (r >= 0)
		r = db_list_packages(db, arg_kernel, &l, &n);
	if (r < 0 && r != -ENOENT)
		return log_error_errno(r, "%s/var/lib/kmodd/kmodd.db: cannot read: %m",
				       streq(arg_root, "/") ? "" : arg_root),
		       EXIT_FAILURE;
	k = find(l, n, argv[optind]);
	if (k < 0) {
		log_error("'%s' is not an installed package or module of a KMP; see 'kmodctl list "
			  "--installed'.",
			  argv[optind]);
		db_packages_free(l, n);
		return EXIT_NO_MATCH;
	}
	for (size_t i = 0; i < n; i++) {
		if ((int)i == k || !streq(l[i].kver, l[k].kver))
			continue;
		STRV_FOREACH(req, l[i].ref.requires)
			if (!startswith(*req, "rpmlib(") &&
			    package_satisfies(&l[k].ref, *req)) {
				if (strv_extend(&required_by, l[i].ref.name) < 0)
					return log_oom();
				break;
			}
	}
	if (arg_json) {
		_cleanup_json_put_ json_object *o = db_package_to_json(&l[k]);
		json_object *a = json_object_new_array();

		STRV_FOREACH(s, required_by)
			json_object_array_add(a, json_object_new_string(*s));
		json_object_object_add(o, "required_by", a);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	} else {
		_cleanup_free_ char *nevra = package_ref_nevra(&l[k].ref);
		_cleanup_free_ char *rb = strv_join(required_by, ", ");
		const char *reason = install_reason_to_string(l[k].ref.reason);

		printf("%s (kernel %s)\n", strna(nevra), l[k].kver);
		printf("  reason:       %s\n", reason);
		printf("  requested by: %s\n", strna(l[k].ref.requested_by));
		printf("  device:       %s\n", strna(l[k].ref.device));
		printf("  required by:  %s\n", required_by ? rb : "-");
	}
	db_packages_free(l, n);
	return 0;
}
