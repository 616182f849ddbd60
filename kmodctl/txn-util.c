/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>

#include "kmodctl.h"
#include "log.h"
#include "strv.h"

int txn_kernel(char **ret)
{
	_cleanup_free_ char *kver = NULL;
	int r;

	if (arg_kernel) {
		kver = strdup(arg_kernel);
		if (!kver)
			return log_oom();
		*ret = TAKE_PTR(kver);
		return 0;
	}
	r = kernel_release_default(arg_root, &kver);
	if (r == -ENOTUNIQ)
		return log_error_errno(
			r,
			"Several kernels under %s/lib/modules; choose one with --kernel.",
			arg_root);
	if (r < 0)
		return log_error_errno(
			r,
			"No kernel module tree under %s/lib/modules: %m; install a "
			"kernel or pass --root/--kernel.",
			streq(arg_root, "/") ? "" : arg_root);
	*ret = TAKE_PTR(kver);
	return 0;
}

void txn_print_recovery(const TxnReport *rep)
{
	if (rep->recovered)
		log_notice("Recovered an interrupted transaction: %s.",
			   strna(rep->recovery_action));
}

int txn_log_error(const TxnReport *rep, int r)
{
	if (r == -EWOULDBLOCK) {
		log_error("Another kmodctl or kmodd is changing %s (%s/var/lib/kmodd/lock is held); "
			  "wait for it to finish and retry.",
			  arg_root, streq(arg_root, "/") ? "" : arg_root);
		return EXIT_LOCKED;
	}
	if (rep->error_message)
		log_error_errno(r, "%s: %s", strna(rep->error_path), rep->error_message);
	else if (rep->error_path)
		log_error_errno(r, "%s: %m", rep->error_path);
	else
		log_error_errno(r, "Transaction failed: %m");
	return EXIT_FAILURE;
}

bool txn_confirm(const char *question)
{
	char line[64];

	if (!isatty(STDIN_FILENO))
		return true;
	printf("%s [y/N] ", question);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

char *txn_command_line(const char *verb, int argc, char *argv[])
{
	_cleanup_strv_free_ char **l = NULL;

	if (strv_extend(&l, verb) < 0)
		return NULL;
	for (int i = 1; i < argc; i++)
		if (strv_extend(&l, argv[i]) < 0)
			return NULL;
	return strv_join(l, " ");
}
