/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmodctl: the verbs that must start fast run here, in a binary that needs libc alone
 * ('kmodctl depmod' runs for every package a KMP installs); every other verb runs in
 * kmodctl-full, which links rpm, libsolv, libcurl and sqlite, and is exec'd with the same
 * arguments (the process, its pid and its exit status stay the same). */
#include <limits.h>
#include <unistd.h>

#include "kmodctl.h"
#include "log.h"
#include "verbs.h"

/* kmodctl-full beside this binary (a build tree, or both in one directory), else in
 * LIBEXECDIR/kmodd. One that is beside but cannot run is an error, not a reason to run
 * another build's. Returns only on failure. */
static int run_full(char *argv[])
{
	static const char installed[] = LIBEXECDIR "/kmodd/kmodctl-full";
	char self[PATH_MAX], beside[PATH_MAX + 16] = "";
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(beside, sizeof(beside), "%s/kmodctl-full", self);
			execv(beside, argv);
			if (errno != ENOENT) {
				log_error_errno(-errno, "Cannot run %s: %m.", beside);
				return EXIT_FAILURE;
			}
		}
	}

	execv(installed, argv);
	if (beside[0])
		log_error_errno(-errno, "Cannot run %s (nor %s): %m; kmodd is not installed completely.",
				installed, beside);
	else
		log_error_errno(-errno, "Cannot run %s: %m; kmodd is not installed completely.",
				installed);
	return EXIT_FAILURE;
}

static int run_depmod(int argc, char *argv[])
{
	/* libkmod, loaded for compressed modules, parses module signatures with libcrypto,
	 * which would load the system's openssl.cnf first (a third of a millisecond); nothing
	 * of it is used here. A configuration the caller chose stays; kmodctl-full is not run
	 * from here. */
	(void)setenv("OPENSSL_CONF", "/dev/null", 0);
	return verb_depmod(argc, argv);
}

int main(int argc, char *argv[])
{
#define X(name, fn, summary) { name, NULL, summary },
	Verb verbs[] = { KMODCTL_VERBS(X) };
#undef X

	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		if (streq(verbs[i].name, "depmod"))
			verbs[i].run = run_depmod;
	return kmodctl_run(argc, argv, verbs, ELEMENTSOF(verbs), run_full);
}
