/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kmodctl.h"
#include "log.h"

int verb_kernel(int argc, char *argv[])
{
	log_error("kmodctl kernel: not available.");
	return EXIT_FAILURE;
}
