/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmodctl watchdog list|allow NAME|deny NAME */
#include <json-c/json.h>

#include "blacklist.h"
#include "fileio.h"
#include "kmodctl.h"
#include "log.h"
#include "strv.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] watchdog list [--json]\n"
	       "       kmodctl [--root DIR] watchdog allow NAME\n"
	       "       kmodctl [--root DIR] watchdog deny NAME\n\n"
	       "Watchdog drivers are never loaded automatically: a watchdog nobody pets reboots\n"
	       "the machine. The list comes from each installed kernel's module tree (everything\n"
	       "under drivers/watchdog/, and watchdog drivers elsewhere such as ipmi_watchdog) and\n"
	       "is written to /etc/modprobe.d/%s. One watchdog may be allowed;\n"
	       "allowing another one denies the first again. The choice is kept in\n"
	       "/etc/kmodd/policies/%s. A running kmodd looks at the devices again.\n",
	       BLACKLIST_MODPROBE_FILE, BLACKLIST_POLICY_FILE);
}

static const char *root_prefix(void)
{
	return streq(arg_root, "/") ? "" : arg_root;
}

static int write_lists(const BlacklistPolicy *p)
{
	_cleanup_free_ char *run = path_join(arg_root, "run/modprobe.d", BLACKLIST_MODPROBE_FILE);
	size_t n = 0;
	int r;

	r = blacklist_write(arg_root, "etc/modprobe.d", p, &n);
	if (r < 0)
		return log_error_errno(r, "%s/etc/modprobe.d/%s: cannot write: %m; run as root.",
				       root_prefix(), BLACKLIST_MODPROBE_FILE);
	/* kmodd keeps a copy in /run; keep it the same */
	if (run && access(run, F_OK) == 0) {
		r = blacklist_write(arg_root, "run/modprobe.d", p, NULL);
		if (r < 0)
			log_warning_errno(r, "%s: cannot write: %m, ignoring", run);
	}
	printf("%s/etc/modprobe.d/%s: %zu watchdog modules blacklisted%s%s\n", root_prefix(),
	       BLACKLIST_MODPROBE_FILE, n, p->allow ? ", allowed: " : "", strempty(p->allow));
	return 0;
}

static int list(const BlacklistPolicy *p)
{
	_cleanup_strv_free_ char **kernels = NULL;
	json_object *o = NULL, *ks = NULL;
	int r;

	r = blacklist_kernels(arg_root, &kernels);
	if (r < 0)
		return log_error_errno(r, "%s/lib/modules: cannot read: %m", root_prefix()),
		       EXIT_FAILURE;
	if (arg_json) {
		o = json_object_new_object();
		ks = json_object_new_object();
		json_object_object_add(o, "allowed", p->allow ? json_object_new_string(p->allow) : NULL);
		json_object_object_add(o, "policy", p->file ? json_object_new_string(p->file) : NULL);
	} else
		printf("Allowed: %s\n", p->allow ?: "none");
	STRV_FOREACH(k, kernels) {
		_cleanup_strv_free_ char **mods = NULL;
		json_object *a = NULL;

		r = blacklist_watchdog_modules(arg_root, *k, p, &mods);
		if (r < 0) {
			log_warning_errno(r, "%s/lib/modules/%s: cannot read: %m, ignoring",
					  root_prefix(), *k);
			continue;
		}
		if (arg_json)
			a = json_object_new_array();
		else
			printf("%s: %zu watchdog modules\n", *k, strv_length(mods));
		STRV_FOREACH(m, mods) {
			bool allowed = p->allow && streq(p->allow, *m);

			if (a) {
				json_object *e = json_object_new_object();

				json_object_object_add(e, "name", json_object_new_string(*m));
				json_object_object_add(e, "allowed", json_object_new_boolean(allowed));
				json_object_array_add(a, e);
			} else
				printf("  %-24s %s\n", *m, allowed ? "allowed" : "blacklisted");
		}
		if (a)
			json_object_object_add(ks, *k, a);
	}
	if (o) {
		json_object_object_add(o, "kernels", ks);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
									  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	return 0;
}

static bool is_watchdog(const BlacklistPolicy *p, const char *name)
{
	_cleanup_strv_free_ char **kernels = NULL;
	BlacklistPolicy none = { .paths = p->paths, .modules = p->modules };

	if (blacklist_kernels(arg_root, &kernels) < 0)
		return false;
	STRV_FOREACH(k, kernels) {
		_cleanup_strv_free_ char **mods = NULL;

		if (blacklist_watchdog_modules(arg_root, *k, p, &mods) >= 0 &&
		    blacklist_contains(mods, &none, name))
			return true;
	}
	return false;
}

int verb_watchdog(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{},
	};
	_cleanup_strv_free_ char **warnings = NULL;
	_cleanup_free_ char *name = NULL, *path = NULL;
	BlacklistPolicy p = {};
	const char *cmd;
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
	if (optind >= argc) {
		log_error("Name a command: list, allow NAME or deny NAME; see 'kmodctl watchdog --help'.");
		return EXIT_USAGE;
	}
	cmd = argv[optind++];
	if (streq(cmd, "list") ? optind != argc
	    : streq(cmd, "allow") || streq(cmd, "deny") ? optind + 1 != argc
							: true) {
		log_error("Usage: kmodctl watchdog list|allow NAME|deny NAME.");
		return EXIT_USAGE;
	}
	r = blacklist_policy_load(arg_root, &p, &warnings);
	if (r < 0)
		return log_error_errno(r, "Cannot read the watchdog policy: %m"), EXIT_FAILURE;
	STRV_FOREACH(w, warnings)
		log_warning("%s", *w);

	if (streq(cmd, "list")) {
		r = list(&p);
		blacklist_policy_done(&p);
		return r;
	}

	name = strdup(argv[optind]);
	if (!name) {
		blacklist_policy_done(&p);
		return log_oom(), EXIT_FAILURE;
	}
	module_name_normalize(name);
	if (!is_watchdog(&p, name)) {
		log_error("'%s' is not a watchdog module of any kernel under %s/lib/modules; see "
			  "'kmodctl watchdog list'.",
			  name, root_prefix());
		blacklist_policy_done(&p);
		return EXIT_FAILURE;
	}
	if (streq(cmd, "allow")) {
		if (p.allow && !streq(p.allow, name))
			printf("%s is denied again: only one watchdog may be allowed.\n", p.allow);
		r = blacklist_policy_set_allow(arg_root, &p, name, &path);
		if (r >= 0) {
			free(p.allow);
			p.allow = strdup(name);
		}
	} else {
		if (!p.allow || !streq(p.allow, name)) {
			printf("%s is not allowed; nothing to do.\n", name);
			blacklist_policy_done(&p);
			return 0;
		}
		r = blacklist_policy_set_allow(arg_root, &p, NULL, &path);
		if (r >= 0) {
			free(p.allow);
			p.allow = NULL;
		}
	}
	if (r < 0) {
		log_error_errno(r, "%s/etc/kmodd/policies/%s: cannot write: %m; run as root.",
				root_prefix(), BLACKLIST_POLICY_FILE);
		blacklist_policy_done(&p);
		return EXIT_FAILURE;
	}
	r = write_lists(&p);
	blacklist_policy_done(&p);
	if (r < 0)
		return EXIT_FAILURE;
	if (streq(cmd, "allow") && daemon_request_scan() >= 0)
		printf("kmodd looks at the devices again.\n");
	return 0;
}
