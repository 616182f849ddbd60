/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <malloc.h>
#include <time.h>

#include "depmod.h"
#include "kmodctl.h"
#include "log.h"
#include "strv.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] depmod [KVER] --add PATH... --remove NAME...\n"
	       "       kmodctl [--root DIR] depmod [KVER] --full | --verify | --recover\n\n"
	       "Update the module indexes of /lib/modules/KVER (modules.dep, .alias, .symbols,\n"
	       "their .bin tries, .softdep, .devname) exactly as depmod would write them.\n\n"
	       "  --add PATH      a module file now in the tree (absolute, or relative to the\n"
	       "                  module directory, e.g. updates/e1000.ko); repeatable, and\n"
	       "                  further plain arguments add more\n"
	       "  --remove NAME   a module whose file was deleted (name or path); repeatable\n"
	       "  --full          read the whole tree and rewrite every index\n"
	       "  --verify        compare the indexes with a full build; exit 1 when they differ\n"
	       "  --recover       only finish or discard an interrupted update\n\n"
	       "Every run first finishes an update a crash interrupted. When the indexes are\n"
	       "missing or do not match the tree, an update becomes a full build and says so.\n");
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int log_report_error(const DepmodReport *rep, int r)
{
	if (rep->error_message)
		return log_error_errno(r, "%s: %s", strna(rep->error_path),
				       rep->error_message);
	if (rep->error_path)
		return log_error_errno(r, "%s: %m", rep->error_path);
	return log_error_errno(r, "Failed to update the module indexes: %m");
}

int verb_depmod(int argc, char *argv[])
{
	enum {
		ARG_ADD = ARG_VERB_BASE,
		ARG_REMOVE,
		ARG_FULL,
		ARG_VERIFY,
		ARG_RECOVER,
	};
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "add", required_argument, NULL, ARG_ADD },
		{ "remove", required_argument, NULL, ARG_REMOVE },
		{ "full", no_argument, NULL, ARG_FULL },
		{ "verify", no_argument, NULL, ARG_VERIFY },
		{ "recover", no_argument, NULL, ARG_RECOVER },
		{},
	};
	_cleanup_strv_free_ char **add = NULL, **remove = NULL;
	_cleanup_free_ char *kver_default = NULL;
	_cleanup_(depmod_report_done) DepmodReport rep = {};
	const char *kver = NULL;
	bool full = false, verify = false, recover = false;
	char ***last_list = NULL;
	double start = now_ms();
	int c, r;

	/* '-': plain arguments arrive in order, so "--add a b" adds both */
	while ((c = getopt_long(argc, argv, "-h", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_ADD:
			if (strv_extend(&add, optarg) < 0)
				return log_oom();
			last_list = &add;
			break;
		case ARG_REMOVE:
			if (strv_extend(&remove, optarg) < 0)
				return log_oom();
			last_list = &remove;
			break;
		case ARG_FULL:
			full = true;
			last_list = NULL;
			break;
		case ARG_VERIFY:
			verify = true;
			last_list = NULL;
			break;
		case ARG_RECOVER:
			recover = true;
			last_list = NULL;
			break;
		case 1:
			if (last_list) {
				if (strv_extend(last_list, optarg) < 0)
					return log_oom();
			} else if (!kver && !arg_kernel)
				kver = optarg;
			else {
				log_error(
					"Unexpected argument '%s'; see 'kmodctl depmod --help'.",
					optarg);
				return EXIT_USAGE;
			}
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (full + verify + recover + !!(add || remove) != 1) {
		log_error(
			"Give exactly one of --add/--remove, --full, --verify or --recover; see "
			"'kmodctl depmod --help'.");
		return EXIT_USAGE;
	}
	if (!kver)
		kver = arg_kernel;
	if (!kver) {
		r = kernel_release_default(arg_root, &kver_default);
		if (r == -ENOTUNIQ)
			return log_error_errno(
				r, "Several kernels under %s/lib/modules; name one.",
				arg_root);
		if (r < 0)
			return log_error_errno(
				r, "No kernel module tree under %s/lib/modules: %m.",
				streq(arg_root, "/") ? "" : arg_root);
		kver = kver_default;
	}

	/* The update's threads fault pages in while the other allocates: every mmap, munmap or
	 * brk waits for all page faults in progress (and on a virtual machine a fresh huge page
	 * can take milliseconds to come). So this short-lived process takes its heap in one
	 * piece and keeps it: no large allocation of its own maps or unmaps memory. */
	(void)mallopt(M_MMAP_THRESHOLD, 256 << 20);
	(void)mallopt(M_TOP_PAD, 64 << 20);
	(void)mallopt(M_TRIM_THRESHOLD, 512 << 20);
	if (recover)
		r = depmod_recover(arg_root, kver, &rep);
	else if (verify)
		r = depmod_verify(arg_root, kver, &rep);
	else if (full)
		r = depmod_full(arg_root, kver, &rep);
	else
		r = depmod_update(arg_root, kver, add, remove, &rep);
	if (rep.recovered)
		log_notice("Finished an interrupted index update of %s.", kver);
	if (r < 0)
		return log_report_error(&rep, r);

	if (verify) {
		if (r == 0) {
			printf("Indexes of %s agree with the tree (%u modules).\n", kver,
			       rep.n_modules);
			return 0;
		}
		printf("Indexes of %s differ from a full build of the tree:\n", kver);
		STRV_FOREACH(l, rep.differences)
		printf("  %s\n", *l);
		printf("Run 'kmodctl depmod --full' to rewrite them.\n");
		return 1;
	}
	if (recover)
		return 0;
	if (rep.full_reason)
		log_notice("Rebuilt all indexes of %s: %s.", kver, rep.full_reason);
	log_info("Indexes of %s: %u modules, %u read, generation %lu, %.1f ms.", kver,
		 rep.n_modules, rep.n_read, rep.generation, now_ms() - start);
	return 0;
}
