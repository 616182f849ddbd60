/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmodctl install, ensure and scan: from a need to installed and loaded modules. */
#include <dirent.h>
#include <ftw.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "fileio.h"
#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"
#include "policy.h"
#include "resolve.h"
#include "strv.h"

static const char *const need_kind_table[_NEED_KIND_MAX] = {
	[NEED_MODALIAS] = "modalias",
	[NEED_MODULE] = "module",
	[NEED_CAPABILITY] = "capability",
	[NEED_PACKAGE] = "package",
};

int open_resolver(Resolver **ret, char **ret_kver)
{
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_free_ char *kver = NULL;
	int k;

	k = txn_kernel(&kver);
	if (k < 0)
		return k;
	k = resolver_new(arg_root, kver, &r);
	if (k == -ENOENT)
		return log_error_errno(
			k,
			"%s/lib/modules/%s/modules.dep: cannot read: %m; install the "
			"kernel or run 'depmod -b %s %s'.",
			streq(arg_root, "/") ? "" : arg_root, kver, arg_root, kver);
	if (k < 0)
		return log_error_errno(
			k,
			"Failed to load the repositories and the installed state "
			"under %s: %m",
			arg_root);
	STRV_FOREACH(w, resolver_warnings(r))
		log_warning("%s, ignoring.", *w);
	STRV_FOREACH(m, resolver_missing_repos(r))
		log_warning(
			"Repository '%s' has no metadata yet; run 'kmodctl repo refresh', "
			"ignoring.",
			*m);
	*ret = TAKE_PTR(r);
	if (ret_kver)
		*ret_kver = TAKE_PTR(kver);
	return 0;
}

static json_object *ref_to_json(const PackageRef *p)
{
	_cleanup_free_ char *nevra = package_ref_nevra(p);
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "evr", json_object_new_string(strempty(p->evr)));
	json_object_object_add(o, "arch", json_object_new_string(strempty(p->arch)));
	json_object_object_add(o, "nevra", json_object_new_string(strempty(nevra)));
	json_object_object_add(o, "repository",
			       p->repo_id ? json_object_new_string(p->repo_id) : NULL);
	json_object_object_add(o, "reason",
			       json_object_new_string(
				       strempty(install_reason_to_string(p->reason))));
	json_object_object_add(o, "download_size",
			       json_object_new_int64((int64_t)p->download_size));
	json_object_object_add(o, "url", p->url ? json_object_new_string(p->url) : NULL);
	return o;
}

static json_object *strv_to_json(char *const *l)
{
	json_object *a = json_object_new_array();

	STRV_FOREACH(s, l)
		json_object_array_add(a, json_object_new_string(*s));
	return a;
}

static void log_problems(const ResolveResult *res, const char *what)
{
	if (!res->problems)
		log_error("Cannot resolve %s.", what);
	STRV_FOREACH(p, res->problems)
		log_error("Cannot resolve %s: %s.", what, *p);
}

static void print_plan(const ResolveResult *res, const char *kver, bool dry_run)
{
	uint64_t total = 0;

	if (res->n_install == 0)
		return;
	for (size_t i = 0; i < res->n_install; i++)
		total += res->install[i].download_size;
	printf("%s %zu package%s for %s (%.1f MiB to download):\n",
	       dry_run ? "Would install" : "Installing", res->n_install,
	       res->n_install == 1 ? "" : "s", kver, (double)total / (1024.0 * 1024.0));
	for (size_t i = 0; i < res->n_install; i++) {
		_cleanup_free_ char *nevra = package_ref_nevra(&res->install[i]);

		printf("  %-48s %-12s %s\n", strna(nevra), strna(res->install[i].repo_id),
		       strempty(install_reason_to_string(res->install[i].reason)));
	}
}

static void progress(void *userdata, const char *what, uint64_t now, uint64_t total)
{
	if (total > 0)
		fprintf(stderr, "\r%-60.60s %3u%%", what, (unsigned)(now * 100 / total));
	else
		fprintf(stderr, "\r%-60.60s %8llu KiB", what,
			(unsigned long long)(now / 1024));
	if (total > 0 && now >= total)
		fputc('\n', stderr);
}

/* Resolves needs, shows the plan, asks, runs the transaction, loads. Returns an exit status. */
int install_needs(Resolver *r, const char *kver, int kind, char *const *needs, int reason,
		  const char *device, const char *command, bool load)
{
	_cleanup_(resolve_result_done) ResolveResult res = {};
	_cleanup_(txn_report_done) TxnReport rep = {};
	_cleanup_free_ char *what = NULL;
	TxnOptions o = {};
	int k, status = 0;

	what = strv_join((char **)needs, ", ");
	if (!what)
		return log_oom(), EXIT_FAILURE;
	k = resolver_solve(r, kind, needs, reason, device, &res);
	if (k == -ENOENT || k == -EDEADLK) {
		if (arg_json) {
			_cleanup_json_put_ json_object *j = json_object_new_object();

			json_object_object_add(j, "kernel", json_object_new_string(kver));
			json_object_object_add(j, "kind",
					       json_object_new_string(
						       need_kind_table[kind]));
			json_object_object_add(j, "needs", strv_to_json(needs));
			json_object_object_add(j, "result",
					       json_object_new_string(
						       k == -ENOENT ? "no-match" :
								      "unsatisfiable"));
			json_object_object_add(j, "problems", strv_to_json(res.problems));
			printf("%s\n",
			       json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
		}
		log_problems(&res, what);
		if (k == -ENOENT)
			log_info("Nothing was changed; 'kmodctl search' and 'kmodctl repo list' show "
				 "what the repositories offer.");
		return k == -ENOENT ? EXIT_NO_MATCH : EXIT_UNSATISFIABLE;
	}
	if (k < 0)
		return log_error_errno(k, "Failed to resolve %s: %m", what), EXIT_FAILURE;

	if (!arg_json) {
		if (res.n_install == 0 && strv_length((char **)needs) > 4)
			printf("Nothing to install: all %zu are there for kernel %s.\n",
			       strv_length((char **)needs), kver);
		else if (res.n_install == 0) {
			_cleanup_free_ char *mods = strv_join(res.modules, " ");

			printf("Nothing to install: %s %s served by kernel %s as it is%s%s.\n",
			       what, strv_length((char **)needs) > 1 ? "are" : "is", kver,
			       res.modules ? "; modules: " : "", strempty(mods));
		}
		print_plan(&res, kver, arg_dry_run);
	}

	if (res.n_install > 0 && !arg_dry_run) {
		if (!arg_yes && !arg_json && isatty(STDIN_FILENO) &&
		    !txn_confirm("Install?")) {
			log_info("Nothing was changed.");
			return EXIT_FAILURE;
		}
		o = (TxnOptions){ .load = load, .command = command };
		if (!arg_json && isatty(STDERR_FILENO))
			o.progress = progress;
		k = transaction_install(arg_root, kver, res.install, res.n_install,
					load ? res.modules : NULL, &o, &rep);
		txn_print_recovery(&rep);
		if (k < 0)
			return txn_log_error(&rep, k);
		STRV_FOREACH(f, rep.load_failed) {
			log_warning("Failed to load %s.", *f);
			status = EXIT_FAILURE;
		}
	}

	if (arg_json) {
		_cleanup_json_put_ json_object *j = json_object_new_object();
		json_object *a = json_object_new_array();

		for (size_t i = 0; i < res.n_install; i++)
			json_object_array_add(a, ref_to_json(&res.install[i]));
		json_object_object_add(j, "kernel", json_object_new_string(kver));
		json_object_object_add(j, "kind",
				       json_object_new_string(need_kind_table[kind]));
		json_object_object_add(j, "needs", strv_to_json(needs));
		json_object_object_add(j, "result",
				       json_object_new_string(res.n_install ?
								      "install" :
								      "nothing-to-do"));
		json_object_object_add(j, "dry_run", json_object_new_boolean(arg_dry_run));
		json_object_object_add(j, "install", a);
		json_object_object_add(j, "modules", strv_to_json(res.modules));
		json_object_object_add(j, "installed", strv_to_json(rep.installed));
		json_object_object_add(j, "loaded", strv_to_json(rep.loaded));
		json_object_object_add(j, "load_failed", strv_to_json(rep.load_failed));
		json_object_object_add(j, "recovered",
				       json_object_new_boolean(rep.recovered));
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
	} else if (!arg_dry_run && res.n_install > 0) {
		STRV_FOREACH(s, rep.installed)
			printf("Installed %s\n", *s);
		STRV_FOREACH(s, rep.loaded)
			printf("Loaded %s\n", *s);
	}
	return status;
}

static int parse_options(int argc, char *argv[], const struct option *options,
			 void (*help)(void), int (*handle)(int c, const char *value))
{
	int c;

	while ((c = getopt_long(argc, argv, "hy", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		if (c == 'h') {
			help();
			return 0;
		}
		if (handle && handle(c, optarg) > 0)
			continue;
		return -EINVAL;
	}
	return 1;
}

static const char *arg_modalias = NULL;

static void install_help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] install MODULE|PACKAGE... [--dry-run] [-y] [--json]\n"
	       "       kmodctl install --modalias MODALIAS [--dry-run] [-y] [--json]\n\n"
	       "Installs the KMPs that provide the modules (kmod(NAME.ko)) or packages named, or\n"
	       "every package whose modalias supplements match the device modalias, with what\n"
	       "they need and nothing else; then loads the modules.\n\n"
	       "  --modalias M   a device modalias, e.g. pci:v00008086d0000100Esv...\n"
	       "  --dry-run      show what would be installed, change nothing\n"
	       "  -y, --yes      do not ask for confirmation\n\n"
	       "Exit status: 0 done or nothing to do, 3 nothing provides it, 4 dependencies cannot\n"
	       "be satisfied, 5 another writer holds the lock, 1 other failures.\n");
}

enum { ARG_MODALIAS = ARG_VERB_BASE };

static int install_option(int c, const char *value)
{
	if (c != ARG_MODALIAS)
		return 0;
	arg_modalias = value;
	return 1;
}

int verb_install(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "modalias", required_argument, NULL, ARG_MODALIAS },
		{},
	};
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_free_ char *kver = NULL, *command = NULL;
	_cleanup_strv_free_ char **modules = NULL, **packages = NULL;
	int k;

	k = parse_options(argc, argv, options, install_help, install_option);
	if (k <= 0)
		return k < 0 ? EXIT_USAGE : 0;
	if (!arg_modalias && optind >= argc) {
		log_error(
			"Name a module or package, or pass --modalias; see 'kmodctl install --help'.");
		return EXIT_USAGE;
	}
	if (arg_modalias && optind < argc) {
		log_error(
			"--modalias takes no further arguments; see 'kmodctl install --help'.");
		return EXIT_USAGE;
	}
	if (arg_modalias && (isempty(arg_modalias) || strlen(arg_modalias) > 1024 ||
			     strpbrk(arg_modalias, " \t\n"))) {
		log_error("'%s' is not a device modalias (like pci:v00008086d0000100E...).",
			  arg_modalias);
		return EXIT_USAGE;
	}

	if (open_resolver(&r, &kver) < 0)
		return EXIT_FAILURE;
	command = txn_command_line("install", argc, argv);
	if (arg_modalias) {
		char *needs[] = { (char *)arg_modalias, NULL };

		return install_needs(r, kver, NEED_MODALIAS, needs, INSTALL_REASON_USER,
				     arg_modalias, command, true);
	}

	/* a package name when some package is called that, else a module name */
	for (int i = optind; i < argc; i++) {
		Queue q;
		bool is_package = false;

		queue_init(&q);
		if (strchr(argv[i], '(') || strchr(argv[i], ' ')) {
			queue_free(&q);
			log_error("'%s' is neither a module nor a package name; for a capability use "
				  "'kmodctl what-provides'.",
				  argv[i]);
			return EXIT_USAGE;
		}
		if (resolver_what_provides(r, argv[i], false, &q) >= 0)
			for (int j = 0; j < q.count; j++) {
				Pool *pool = resolver_pool(r);

				if (streq(pool_id2str(pool,
						      pool->solvables[q.elements[j]].name),
					  argv[i]))
					is_package = true;
			}
		queue_free(&q);
		if (strv_extend(is_package ? &packages : &modules, argv[i]) < 0)
			return log_oom(), EXIT_FAILURE;
	}
	if (packages && modules) {
		log_error("Install packages and modules in separate commands.");
		return EXIT_USAGE;
	}
	return install_needs(r, kver, packages ? NEED_PACKAGE : NEED_MODULE,
			     packages ?: modules, INSTALL_REASON_USER, NULL, command,
			     true);
}

/* A set is many wishes: members whose dependencies cannot be satisfied (a KMP built for
 * another kernel) are left out with a warning naming the problem, the rest goes ahead. */
static int drop_unsatisfiable(Resolver *r, char ***modules)
{
	_cleanup_(resolve_result_done) ResolveResult all = {};
	_cleanup_strv_free_ char **keep = NULL;
	int k;

	k = resolver_solve(r, NEED_MODULE, *modules, INSTALL_REASON_SET, NULL, &all);
	if (k != -EDEADLK)
		return 0; /* fine, or an error install_needs() reports */
	STRV_FOREACH(m, *modules) {
		_cleanup_(resolve_result_done) ResolveResult one = {};
		char *need[] = { *m, NULL };

		k = resolver_solve(r, NEED_MODULE, need, INSTALL_REASON_SET, NULL, &one);
		if (k == -EDEADLK || k == -ENOENT) {
			STRV_FOREACH(p, one.problems)
				log_warning("Leaving out %s: %s.", *m, *p);
			continue;
		}
		if (strv_extend(&keep, *m) < 0)
			return -ENOMEM;
	}
	strv_free(*modules);
	*modules = TAKE_PTR(keep);
	return 0;
}

static void ensure_help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] ensure SET... [--dry-run] [-y] [--json]\n"
	       "       kmodctl ensure --list\n\n"
	       "Installs every KMP that provides a module of the set: sets are policy files\n"
	       "NAME.set in /etc/kmodd/policies/sets/ (or /etc/kmodd/policies/), which override\n"
	       "those of /usr/lib/kmodd/policies/ by name. A second run does nothing.\n\n"
	       "  --list   the sets there are\n");
}

static bool arg_list = false;

static int ensure_option(int c, const char *value)
{
	if (c != ARG_VERB_BASE)
		return 0;
	arg_list = true;
	return 1;
}

static int list_sets(void)
{
	_cleanup_strv_free_ char **warnings = NULL;
	PolicySet **sets = NULL;
	size_t n = 0;
	int k;

	k = policy_sets_load(arg_root, &sets, &n, &warnings);
	if (k < 0)
		return log_error_errno(k, "Failed to read the policies under %s: %m",
				       arg_root);
	STRV_FOREACH(w, warnings)
		log_warning("%s", *w);
	if (arg_json) {
		_cleanup_json_put_ json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "name",
					       json_object_new_string(sets[i]->name));
			json_object_object_add(o, "description",
					       json_object_new_string(
						       strempty(sets[i]->description)));
			json_object_object_add(o, "file",
					       json_object_new_string(sets[i]->file));
			json_object_object_add(o, "modules",
					       strv_to_json(sets[i]->modules));
			json_object_object_add(o, "paths", strv_to_json(sets[i]->paths));
			json_object_array_add(a, o);
		}
		printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY));
	} else
		for (size_t i = 0; i < n; i++)
			printf("%-16s %s\n", sets[i]->name,
			       strempty(sets[i]->description));
	policy_sets_free(sets, n);
	return 0;
}

int verb_ensure(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "list", no_argument, NULL, ARG_VERB_BASE },
		{},
	};
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_free_ char *kver = NULL, *command = NULL, *requested = NULL;
	_cleanup_strv_free_ char **modules = NULL, **names = NULL;
	Pool *pool;
	Id p;
	int k;

	k = parse_options(argc, argv, options, ensure_help, ensure_option);
	if (k <= 0)
		return k < 0 ? EXIT_USAGE : 0;
	if (arg_list)
		return list_sets() < 0 ? EXIT_FAILURE : 0;
	if (optind >= argc) {
		log_error(
			"Name a set, e.g. 'kmodctl ensure netfilter'; 'kmodctl ensure --list' shows "
			"them.");
		return EXIT_USAGE;
	}
	if (open_resolver(&r, &kver) < 0)
		return EXIT_FAILURE;
	pool = resolver_pool(r);

	for (int i = optind; i < argc; i++) {
		_cleanup_policy_set_free_ PolicySet *set = NULL;
		_cleanup_strv_free_ char **warnings = NULL;
		unsigned matched = 0;

		k = policy_set_load(arg_root, argv[i], &set, &warnings);
		STRV_FOREACH(w, warnings)
			log_warning("%s", *w);
		if (k == -ENOENT || k == -EINVAL) {
			log_error("No set '%s' in %s/etc/kmodd/policies or %s/usr/lib/kmodd/policies; "
				  "'kmodctl ensure --list' shows the sets there are.",
				  argv[i], streq(arg_root, "/") ? "" : arg_root,
				  streq(arg_root, "/") ? "" : arg_root);
			return EXIT_NO_MATCH;
		}
		if (k < 0)
			return log_error_errno(k, "Failed to read set '%s': %m", argv[i]),
			       EXIT_FAILURE;

		/* every available package with a module of the set */
		FOR_POOL_SOLVABLES(p) {
			_cleanup_strv_free_ char **mods = NULL;
			_cleanup_free_ char *path = NULL;

			if (resolver_solvable_installed(r, p) ||
			    resolver_solvable_modules(r, p, &mods) < 0 || !mods)
				continue;
			if (set->paths)
				path = resolver_solvable_tree_path(r, p);
			STRV_FOREACH(m, mods)
				if (policy_set_matches(set, *m, path) ||
				    (path && policy_set_matches(set, NULL, path))) {
					matched++;
					if (!strv_contains(modules, *m) &&
					    strv_extend(&modules, *m) < 0)
						return log_oom(), EXIT_FAILURE;
				}
		}
		if (matched == 0) {
			log_error(
				"No repository offers a module of set '%s' (%s) for kernel %s.",
				set->name, set->file, kver);
			return EXIT_NO_MATCH;
		}
		{
			char *n = NULL;

			if (asprintf(&n, "set:%s", set->name) < 0 ||
			    strv_consume(&names, n) < 0)
				return log_oom(), EXIT_FAILURE;
		}
	}

	requested = strv_join(names, " ");
	command = txn_command_line("ensure", argc, argv);
	if (!requested || !command)
		return log_oom(), EXIT_FAILURE;
	strv_sort(modules);
	resolver_set_requested_by(r, requested);
	k = drop_unsatisfiable(r, &modules);
	if (k < 0)
		return log_oom(), EXIT_FAILURE;
	if (!modules) {
		log_error("No module of the set can be installed for kernel %s.", kver);
		return EXIT_UNSATISFIABLE;
	}
	/* installed, not loaded: a set says what may be needed, not what is */
	return install_needs(r, kver, NEED_MODULE, modules, INSTALL_REASON_SET, NULL,
			     command, false);
}

static void scan_help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] scan [--dry-run] [-y] [--json]\n\n"
	       "Finds every device under /sys with a modalias and no bound driver, and installs\n"
	       "and loads what serves it. Devices nothing serves are reported and skipped.\n");
}

static char **scan_found = NULL;
static const char *scan_sys = NULL;

static int scan_one(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	_cleanup_free_ char *alias = NULL, *driver = NULL, *data = NULL;
	size_t size = 0;
	struct stat st;

	if (type != FTW_D || ftw->level > 24)
		return 0;
	alias = path_join(fpath, "modalias");
	driver = path_join(fpath, "driver");
	if (!alias || !driver)
		return FTW_STOP;
	if (lstat(driver, &st) >= 0)
		return 0; /* bound */
	if (read_full_file(alias, 4096, &data, &size) < 0)
		return 0;
	data[strcspn(data, "\n")] = 0;
	if (isempty(data) || strpbrk(data, " \t") || strv_contains(scan_found, data))
		return 0;
	return strv_extend(&scan_found, data) < 0 ? FTW_STOP : 0;
}

int verb_scan(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{},
	};
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_free_ char *kver = NULL, *command = NULL, *sys = NULL;
	_cleanup_strv_free_ char **serve = NULL;
	int k;

	k = parse_options(argc, argv, options, scan_help, NULL);
	if (k <= 0)
		return k < 0 ? EXIT_USAGE : 0;
	if (optind < argc) {
		log_error("'kmodctl scan' takes no arguments.");
		return EXIT_USAGE;
	}
	sys = path_join(arg_root, "sys");
	if (!sys)
		return log_oom(), EXIT_FAILURE;
	scan_sys = sys;
	if (nftw(sys, scan_one, 32, FTW_PHYS | FTW_ACTIONRETVAL) < 0 && errno != ENOENT)
		return log_error_errno(negative_errno(), "Failed to walk %s: %m", sys),
		       EXIT_FAILURE;
	if (!scan_found) {
		if (arg_json)
			printf("{ \"devices\": [], \"result\": \"nothing-to-do\" }\n");
		else
			printf("No device without a driver under %s.\n", sys);
		return 0;
	}
	strv_sort(scan_found);
	if (open_resolver(&r, &kver) < 0)
		return EXIT_FAILURE;

	/* each device alone first: one that nothing serves must not block the others */
	STRV_FOREACH(m, scan_found) {
		_cleanup_(resolve_result_done) ResolveResult res = {};
		char *needs[] = { *m, NULL };

		k = resolver_solve(r, NEED_MODALIAS, needs, INSTALL_REASON_HOTPLUG, *m,
				   &res);
		if (k == -ENOENT || k == -EDEADLK) {
			STRV_FOREACH(p, res.problems)
				log_warning("Device %s: %s, ignoring.", *m, *p);
			continue;
		}
		if (k < 0)
			return log_error_errno(k, "Failed to resolve %s: %m", *m),
			       EXIT_FAILURE;
		if (strv_extend(&serve, *m) < 0)
			return log_oom(), EXIT_FAILURE;
	}
	if (!serve) {
		log_info("Nothing serves any of the %zu devices without a driver.",
			 strv_length(scan_found));
		scan_found = strv_free(scan_found);
		return EXIT_NO_MATCH;
	}
	scan_found = strv_free(scan_found);
	command = txn_command_line("scan", argc, argv);
	resolver_set_requested_by(r, "scan");
	return install_needs(r, kver, NEED_MODALIAS, serve, INSTALL_REASON_HOTPLUG,
			     strv_length(serve) == 1 ? serve[0] : NULL, command, true);
}
