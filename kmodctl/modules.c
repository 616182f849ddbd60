/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] modules [--json]\n\n"
	       "List every module (.ko, .ko.xz, .ko.zst, .ko.gz) under /lib/modules/KVER, read\n"
	       "through libkmod: name and path, or with --json an array of module objects\n"
	       "(schema in README.md).\n");
}

int verb_modules(int argc, char *argv[])
{
	static const struct option options[] = { COMMON_LONG_OPTIONS, {} };
	_cleanup_modtree_free_ ModTree *t = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		if (c == 'h') {
			help();
			return 0;
		}
		return EXIT_USAGE;
	}
	if (optind < argc) {
		log_error("Unexpected argument '%s'; see 'kmodctl modules --help'.", argv[optind]);
		return EXIT_USAGE;
	}

	r = open_tree(MODTREE_REQUIRE_INDEX, &t);
	if (r < 0)
		return r;
	r = load_symvers(t);
	if (r < 0)
		return r;
	r = modtree_load_modules(t);
	if (r < 0)
		return log_tree_error(t, r);

	if (arg_json) {
		/* streamed object by object: the whole tree as one json-c object is large */
		fputs("[", stdout);
		for (size_t i = 0; i < t->n_modules; i++) {
			_cleanup_json_put_ struct json_object *o = NULL;

			r = module_to_json(t->modules[i], NULL, 0, &o);
			if (r < 0)
				return log_oom();
			fputs(i ? ",\n" : "\n", stdout);
			fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
									JSON_C_TO_STRING_NOSLASHESCAPE),
			      stdout);
		}
		fputs("\n]\n", stdout);
	} else {
		for (size_t i = 0; i < t->n_modules; i++)
			printf("%-28s %s\n", t->modules[i]->name, t->modules[i]->path);
		if (isatty(STDOUT_FILENO))
			printf("\n%zu modules in %s\n", t->n_modules, t->dir);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		return log_error_errno(-EIO, "Failed to write the module list to standard output.");
	return 0;
}
