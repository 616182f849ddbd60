/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>

#include "kmodctl.h"
#include "log.h"

const char *arg_root = "/";
const char *arg_kernel = NULL;
const char *arg_symvers = NULL;
bool arg_json = false;
bool arg_dry_run = false;
bool arg_yes = false;

typedef struct Verb {
	const char *name;
	int (*run)(int argc, char *argv[]);
	const char *summary;
} Verb;

static const Verb verbs[] = {
	{ "modules", verb_modules, "list the modules of a kernel's tree" },
	{ "info", verb_info, "show one module: modinfo, exported and required symbols" },
	{ "depmod", verb_depmod, "update the module indexes incrementally, byte-identical to depmod" },
	{ "repo", verb_repo, "add, remove, list and refresh KMP repositories" },
	{ "remove", verb_remove, "remove installed KMPs and the packages that require them" },
	{ "list", verb_list, "list installed KMPs (--installed) or what repositories offer" },
	{ "history", verb_history, "show the transactions: installs, removals, recoveries" },
	{ "why", verb_why, "say why a KMP is installed and what requires it" },
	{ "verify", verb_verify, "check installed files, pending transactions and indexes" },
	{ "recover", verb_recover, "finish or roll back an interrupted transaction" },
	{ "audit", verb_audit, "tell whether each installed module would load on a kernel (KABI), and more" },
	{ "kernel", verb_kernel, "add or remove a kernel: weak-updates links for compatible KMP modules" },
	{ "search", verb_search, "search the repositories' packages by name, module or summary" },
	{ "what-provides", verb_what_provides, "which packages provide a capability or serve a modalias" },
	{ "install", verb_install, "install the KMPs of a module, package or device modalias" },
	{ "ensure", verb_ensure, "install every KMP of a set (policies), e.g. netfilter" },
	{ "scan", verb_scan, "install what serves every device without a driver under /sys" },
	{ "status", verb_status, "show the state of the running kmodd" },
	{ "daemon", verb_daemon, "ask the running kmodd: status, scan, refresh, monitor, handle" },
	{ "watchdog", verb_watchdog, "list the watchdog blacklist, allow or deny one watchdog" },
};

const char *program_name(void)
{
	return "kmodctl";
}

static void help(void)
{
	printf("Usage: kmodctl [OPTIONS] VERB [VERB OPTIONS]\n\n"
	       "Manage the kernel modules of a host or an image.\n\n"
	       "Verbs:\n");
	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		printf("  %-10s %s\n", verbs[i].name, verbs[i].summary);
	printf("\nOptions (before or after the verb):\n"
	       "  --root DIR      operate on the system image under DIR (default /)\n"
	       "  --kernel KVER   kernel release (default: the running one; with --root, the\n"
	       "                  only one under DIR/lib/modules)\n"
	       "  --symvers FILE  the kernel's Module.symvers (default: found beside the kernel)\n"
	       "  --json          machine-readable output\n"
	       "  --verbose       debug messages\n"
	       "  --dry-run       show what would be done, change nothing\n"
	       "  -y, --yes       do not ask for confirmation\n"
	       "  -h, --help      this help; 'kmodctl VERB --help' for a verb\n"
	       "  --version       print the version\n\n"
	       "Exit status: 0 success, 1 failure, 2 usage error, 3 nothing provides what was\n"
	       "asked, 4 the request cannot be satisfied, 5 another writer holds the lock,\n"
	       "6 verification found differences.\n");
}

int parse_common_option(int c, const char *value)
{
	switch (c) {
	case ARG_COMMON_ROOT:
		arg_root = value;
		return 1;
	case ARG_COMMON_KERNEL:
		arg_kernel = value;
		return 1;
	case ARG_COMMON_SYMVERS:
		arg_symvers = value;
		return 1;
	case ARG_COMMON_JSON:
		arg_json = true;
		return 1;
	case ARG_COMMON_VERBOSE:
		log_set_max_level(LOG_DEBUG);
		return 1;
	case ARG_COMMON_DRY_RUN:
		arg_dry_run = true;
		return 1;
	case 'y':
		arg_yes = true;
		return 1;
	}
	return 0;
}

int open_tree(ModTreeFlags flags, ModTree **ret)
{
	_cleanup_free_ char *kver = NULL, *bad = NULL;
	int r;

	if (!arg_kernel) {
		r = kernel_release_default(arg_root, &kver);
		if (r == -ENOTUNIQ)
			return log_error_errno(r, "Several kernels under %s/lib/modules; choose one with --kernel.",
					       arg_root);
		if (r < 0)
			return log_error_errno(r, "No kernel module tree under %s/lib/modules: %m; "
						  "install a kernel or pass --root/--kernel.",
					       streq(arg_root, "/") ? "" : arg_root);
	}

	r = modtree_open(arg_root, arg_kernel ?: kver, flags, ret, &bad);
	if (r < 0 && bad && endswith(bad, "modules.dep"))
		return log_error_errno(r, "%s: cannot read: %m; run 'depmod -b %s %s' first.", bad,
				       arg_root, arg_kernel ?: kver);
	if (r < 0 && bad)
		return log_error_errno(r, "Kernel module tree %s: %m; install the kernel or pass the "
					  "right --root/--kernel.",
				       bad);
	if (r < 0)
		return log_error_errno(r, "Failed to open the module tree: %m");
	return 0;
}

int load_symvers(ModTree *t)
{
	unsigned line = 0;
	int r;

	r = modtree_load_symvers(t, arg_symvers, &line);
	if (r == -EBADMSG && line > 0)
		return log_error_errno(r, "%s:%u: malformed Module.symvers line; expected "
					  "'0xCRC<TAB>SYMBOL<TAB>MODULE<TAB>EXPORT_TYPE'.",
				       t->error_path, line);
	if (r == -EBADMSG)
		return log_error_errno(r, "%s: not a Module.symvers file (binary data).",
				       t->error_path);
	if (r < 0)
		return log_error_errno(r, "%s: cannot read Module.symvers: %m; fix the file or pass "
					  "--symvers.",
				       strna(t->error_path));
	return 0;
}

int log_tree_error(ModTree *t, int r)
{
	if (r == -ENOEXEC)
		return log_error_errno(r, "%s: not a valid kernel module (truncated, or not ELF); "
					  "remove or replace the file.",
				       strna(t->error_path));
	return log_error_errno(r, "%s: %m", strna(t->error_path));
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	int c;

	log_set_program(program_name());

	/* '+': stop at the verb; the verb parses the rest, common options included */
	while ((c = getopt_long(argc, argv, "+hy", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case 'V':
			printf("kmodctl %s\n", PACKAGE_VERSION);
			return 0;
		case '?':
			return EXIT_USAGE;
		}
	}

	if (optind >= argc) {
		help();
		return EXIT_USAGE;
	}

	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		if (streq(argv[optind], verbs[i].name)) {
			int r;

			argc -= optind;
			argv += optind;
			optind = 0;
			r = verbs[i].run(argc, argv);
			return r < 0 ? EXIT_FAILURE : r;
		}

	log_error("Unknown verb '%s'; see 'kmodctl --help'.", argv[optind]);
	return EXIT_USAGE;
}
