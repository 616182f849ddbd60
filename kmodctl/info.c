/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] info MODULE [--json]\n\n"
	       "Show what modinfo shows for MODULE (a module name, or a path to a .ko file),\n"
	       "plus its exported symbols and the symbols it requires (__versions), with CRCs\n"
	       "and, from the kernel's Module.symvers, who provides each.\n");
}

static void print_human(const ModTree *t, const Module *m)
{
	char crc[19];

	printf("%-16s %s/%s\n", "filename:", t->dir, m->path);
	for (size_t i = 0; i < m->n_info; i++) {
		char key[64];

		/* modinfo prints the signature as an indented hex block; keep it on its lines */
		snprintf(key, sizeof(key), "%s:", m->info[i].key);
		printf("%-16s %s\n", key, m->info[i].value);
	}
	printf("%-16s %zu\n", "exports:", m->n_exports);
	for (size_t i = 0; i < m->n_exports; i++) {
		crc_format(m->exports[i].crc, crc);
		printf("  %s  %s\n", crc, m->exports[i].symbol);
	}
	printf("%-16s %zu\n", "requires:", m->n_requires);
	for (size_t i = 0; i < m->n_requires; i++) {
		const SymversEntry *e = symvers_get(t->symvers, m->requires[i].symbol);

		crc_format(m->requires[i].crc, crc);
		if (!t->symvers)
			printf("  %s  %s\n", crc, m->requires[i].symbol);
		else if (!e)
			printf("  %s  %-40s (not exported by this kernel)\n", crc,
			       m->requires[i].symbol);
		else if (e->crc != m->requires[i].crc)
			printf("  %s  %-40s %s, CRC differs: kernel has 0x%08x\n", crc,
			       m->requires[i].symbol, e->module, e->crc);
		else
			printf("  %s  %-40s %s\n", crc, m->requires[i].symbol, e->module);
	}
}

int verb_info(int argc, char *argv[])
{
	static const struct option options[] = { COMMON_LONG_OPTIONS, {} };
	_cleanup_modtree_free_ ModTree *t = NULL;
	_cleanup_module_free_ Module *m = NULL;
	_cleanup_free_ char *rel = NULL;
	const char *what;
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
	if (optind + 1 != argc) {
		log_error("Expected exactly one MODULE; see 'kmodctl info --help'.");
		return EXIT_USAGE;
	}
	what = argv[optind];

	r = open_tree(0, &t);
	if (r < 0)
		return r;
	r = load_symvers(t);
	if (r < 0)
		return r;

	if (strchr(what, '/')) {
		_cleanup_free_ char *abs = NULL;

		abs = realpath(what, NULL);
		if (!abs)
			return log_error_errno(negative_errno(), "%s: %m", what);
		r = modtree_read_module(t, abs, &m);
	} else {
		r = modtree_find_path(t, what, &rel);
		if (r == -ENOENT)
			return log_error_errno(r, "Module '%s' not found in %s/modules.dep; check the "
						  "name or run depmod.",
					       what, t->dir);
		if (r < 0)
			return log_error_errno(r, "Failed to look up module '%s' in %s: %m", what,
					       t->dir);
		r = modtree_read_module(t, rel, &m);
	}
	if (r < 0)
		return log_tree_error(t, r);

	if (arg_json) {
		_cleanup_json_put_ struct json_object *o = NULL;

		r = module_to_json(m, t->symvers, MODULE_JSON_INFO, &o);
		if (r < 0)
			return log_oom();
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	} else
		print_human(t, m);
	return 0;
}
