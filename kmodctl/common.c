/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>

#include "kmodctl-common.h"
#include "log.h"
#include "verbs.h"

const char *arg_root = "/";
const char *arg_kernel = NULL;
const char *arg_symvers = NULL;
bool arg_json = false;
bool arg_dry_run = false;
bool arg_yes = false;

const char *program_name(void)
{
	return "kmodctl";
}

static void help(void)
{
	printf("Usage: kmodctl [OPTIONS] VERB [VERB OPTIONS]\n\n"
	       "Manage the kernel modules of a host or an image.\n\n"
	       "Verbs:\n");
#define X(name, fn, summary) printf("  %-10s %s\n", name, summary);
	KMODCTL_VERBS(X)
#undef X
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

int kmodctl_run(int argc, char *argv[], const Verb *verbs, size_t n_verbs,
		int (*other)(char *argv[]))
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	char **original = argv;
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

	for (size_t i = 0; i < n_verbs; i++)
		if (streq(argv[optind], verbs[i].name)) {
			int r;

			if (!verbs[i].run)
				return other(original);
			argc -= optind;
			argv += optind;
			optind = 0;
			r = verbs[i].run(argc, argv);
			return r < 0 ? EXIT_FAILURE : r;
		}

	log_error("Unknown verb '%s'; see 'kmodctl --help'.", argv[optind]);
	return EXIT_USAGE;
}
