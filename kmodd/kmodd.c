/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmodd: installs and loads the driver a new device needs, from KMP repositories. */
#include <getopt.h>
#include <sys/utsname.h>

#include "log.h"
#include "manager.h"
#include "modtree.h"

static const char *arg_root = "/";
static const char *arg_kernel = NULL;
static bool arg_no_udev = false;

static void help(void)
{
	printf("Usage: kmodd [OPTIONS]\n\n"
	       "Install and load the kernel module a new device needs, from KMP repositories.\n\n"
	       "  --root DIR      serve the system image under DIR (default /): its /sys, module\n"
	       "                  tree, configuration, database and control socket\n"
	       "  --kernel KVER   kernel release (default: the running one; with --root, the only\n"
	       "                  one under DIR/lib/modules)\n"
	       "  --no-udev       do not listen to uevents (scans and control calls only)\n"
	       "  --verbose       debug messages\n"
	       "  -h, --help      this help\n"
	       "  --version       print the version\n\n"
	       "Settings: /etc/kmodd/kmodd.conf and kmodd.conf.d/; control: Varlink interface\n"
	       "io.kmodd.Manager on /run/kmodd/io.kmodd ('kmodctl status').\n");
}

static int parse_argv(int argc, char *argv[])
{
	enum { ARG_ROOT = 0x100, ARG_KERNEL, ARG_NO_UDEV, ARG_VERBOSE, ARG_VERSION };
	static const struct option options[] = {
		{ "root", required_argument, NULL, ARG_ROOT },
		{ "kernel", required_argument, NULL, ARG_KERNEL },
		{ "no-udev", no_argument, NULL, ARG_NO_UDEV },
		{ "verbose", no_argument, NULL, ARG_VERBOSE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
		switch (c) {
		case ARG_ROOT:
			arg_root = optarg;
			break;
		case ARG_KERNEL:
			arg_kernel = optarg;
			break;
		case ARG_NO_UDEV:
			arg_no_udev = true;
			break;
		case ARG_VERBOSE:
			log_set_max_level(LOG_DEBUG);
			break;
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("kmodd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			return -EINVAL;
		}
	if (optind < argc) {
		log_error("Unexpected argument '%s'; see 'kmodd --help'.", argv[optind]);
		return -EINVAL;
	}
	return 1;
}

int main(int argc, char *argv[])
{
	_cleanup_(manager_freep) Manager *m = NULL;
	_cleanup_free_ char *kver = NULL;
	int r;

	log_set_program("kmodd");
	r = parse_argv(argc, argv);
	if (r <= 0)
		return r < 0 ? 2 : 0;

	if (!arg_kernel) {
		if (streq(arg_root, "/")) {
			struct utsname u;

			if (uname(&u) < 0)
				return log_error_errno(negative_errno(), "uname: %m"), 1;
			kver = strdup(u.release);
			if (!kver)
				return log_oom(), 1;
		} else {
			r = kernel_release_default(arg_root, &kver);
			if (r < 0) {
				log_error_errno(r, "No single kernel under %s/lib/modules (%m); pass "
						   "--kernel.",
						arg_root);
				return 1;
			}
		}
	}

	r = manager_new(arg_root, arg_kernel ?: kver, &m);
	if (r < 0)
		return 1;
	m->no_udev = arg_no_udev;
	r = manager_start(m);
	if (r < 0)
		return 1;
	r = manager_run(m);
	if (r < 0) {
		log_error_errno(r, "Event loop failed: %m");
		return 1;
	}
	return 0;
}
