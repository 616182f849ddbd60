/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <json-c/json.h>
#include <time.h>

#include "db.h"
#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"
#include "strv.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] history [--json]\n\n"
	       "Every transaction: when, what was asked, the result, packages added (+) and\n"
	       "removed (-); recoveries of interrupted ones too.\n");
}

int verb_history(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{},
	};
	_cleanup_(db_closep) Db *db = NULL;
	DbHistory *h = NULL;
	size_t n = 0;
	int c, r;

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
	r = db_open(arg_root, false, &db);
	if (r < 0 && r != -ENOENT)
		return log_error_errno(r, "%s/var/lib/kmodd/kmodd.db: cannot open: %m",
				       streq(arg_root, "/") ? "" : arg_root),
		       EXIT_FAILURE;
	if (db) {
		r = db_history_list(db, &h, &n);
		if (r < 0)
			return log_error_errno(
				       r, "%s/var/lib/kmodd/kmodd.db: cannot read: %m",
				       streq(arg_root, "/") ? "" : arg_root),
			       EXIT_FAILURE;
	}
	if (arg_json) {
		_cleanup_json_put_ json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_new_object(),
				    *p = json_object_new_array();

			json_object_object_add(o, "id", json_object_new_int64(h[i].id));
			json_object_object_add(o, "time",
					       json_object_new_int64(h[i].time));
			json_object_object_add(o, "action",
					       json_object_new_string(h[i].action));
			json_object_object_add(o, "result",
					       json_object_new_string(h[i].result));
			json_object_object_add(o, "command",
					       h[i].command ? json_object_new_string(
								      h[i].command) :
							      NULL);
			STRV_FOREACH(s, h[i].packages)
				json_object_array_add(p, json_object_new_string(*s));
			json_object_object_add(o, "packages", p);
			json_object_array_add(a, o);
		}
		printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY));
	} else {
		if (n == 0)
			printf("No transactions.\n");
		for (size_t i = 0; i < n; i++) {
			_cleanup_free_ char *pk = strv_join(h[i].packages, " ");
			char when[32];
			time_t t = (time_t)h[i].time;
			struct tm tm;

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
				 gmtime_r(&t, &tm));
			printf("%4" PRIi64 " %s UTC  %-8s %-12s %s%s%s\n", h[i].id, when,
			       h[i].action, h[i].result, strempty(pk),
			       h[i].command ? "  # " : "", strempty(h[i].command));
		}
	}
	db_history_free(h, n);
	return 0;
}
