/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kmodctl.h"
#include "log.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] recover\n\n"
	       "Finish or roll back a transaction that was interrupted (crash, power loss), so\n"
	       "the module tree, its indexes and the installed database agree again. Every\n"
	       "writing command does this first.\n");
}

int verb_recover(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{},
	};
	_cleanup_(txn_report_done) TxnReport rep = {};
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
	if (optind < argc) {
		log_error("Unexpected argument '%s'; see 'kmodctl recover --help'.",
			  argv[optind]);
		return EXIT_USAGE;
	}
	r = transaction_recover(arg_root, arg_kernel, &rep);
	if (r < 0)
		return txn_log_error(&rep, r);
	if (r == 0)
		printf("No interrupted transaction.\n");
	else
		printf("Recovered: %s.\n", strna(rep.recovery_action));
	return 0;
}
