/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>

#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"
#include "strv.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] remove PKG|MODULE... [--force]\n"
	       "                                                [--dry-run] [-y]\n\n"
	       "Remove installed KMPs, by package or module name. Packages that require them\n"
	       "are removed too. Their modules are unloaded first; a module in use refuses the\n"
	       "removal unless --force.\n\n"
	       "  --force     unload and remove even modules in use\n"
	       "  --dry-run   show what would be removed, change nothing\n"
	       "  -y, --yes   do not ask for confirmation\n"
	       "  --json      print the result as JSON\n");
}

int verb_remove(int argc, char *argv[])
{
	enum {
		ARG_FORCE = ARG_VERB_BASE,
	};
	/* --dry-run and -y/--yes are common options (arg_dry_run, arg_yes) */
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "force", no_argument, NULL, ARG_FORCE },
		{},
	};
	_cleanup_(txn_report_done) TxnReport plan = {}, rep = {};
	_cleanup_free_ char *kver = NULL, *command = NULL;
	_cleanup_strv_free_ char **names = NULL;
	bool force = false, dry_run, yes;
	TxnOptions o = {};
	int c, r;

	while ((c = getopt_long(argc, argv, "hy", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_FORCE:
			force = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	/* --dry-run and -y are common options too */
	dry_run = arg_dry_run;
	yes = arg_yes;
	for (int i = optind; i < argc; i++)
		if (strv_extend(&names, argv[i]) < 0)
			return log_oom();
	if (!names) {
		log_error(
			"Name the packages or modules to remove; see 'kmodctl remove --help'.");
		return EXIT_USAGE;
	}
	r = txn_kernel(&kver);
	if (r < 0)
		return EXIT_FAILURE;
	command = txn_command_line("remove", argc, argv);
	o = (TxnOptions){ .force = force, .command = command };

	if (!dry_run && !yes && !arg_json && isatty(STDIN_FILENO)) {
		o.dry_run = true;
		r = transaction_remove(arg_root, kver, names, &o, &plan);
		if (r < 0)
			return r == -ENOENT ? (txn_log_error(&plan, r), EXIT_NO_MATCH) :
					      txn_log_error(&plan, r);
		STRV_FOREACH(s, plan.removed)
			printf("  remove %s\n", *s);
		if (!txn_confirm("Remove these packages?")) {
			log_info("Nothing was changed.");
			return EXIT_FAILURE;
		}
		o.dry_run = false;
	}
	o.dry_run = dry_run;
	r = transaction_remove(arg_root, kver, names, &o, &rep);
	txn_print_recovery(&rep);
	if (r < 0) {
		int e = txn_log_error(&rep, r);
		return r == -ENOENT ? EXIT_NO_MATCH : e;
	}
	if (arg_json) {
		_cleanup_json_put_ json_object *j = json_object_new_object();
		json_object *a = json_object_new_array();

		STRV_FOREACH(s, rep.removed)
			json_object_array_add(a, json_object_new_string(*s));
		json_object_object_add(j, "removed", a);
		json_object_object_add(j, "dry_run", json_object_new_boolean(dry_run));
		json_object_object_add(j, "recovered",
				       json_object_new_boolean(rep.recovered));
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
		return 0;
	}
	STRV_FOREACH(s, rep.removed)
		printf("%s %s\n", dry_run ? "Would remove" : "Removed", *s);
	return 0;
}
