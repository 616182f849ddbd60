/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ftw.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "db.h"
#include "depmod.h"
#include "fetch.h"
#include "fileio.h"
#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"
#include "strv.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] [--kernel KVER] verify [--json]\n\n"
	       "Check that the installed KMPs' files are on disk with the sha256 the database\n"
	       "recorded, that no transaction is pending and no temporary file is left, and that\n"
	       "the module indexes equal a full build. Exit status 6 when anything differs.\n");
}

static char **leftovers = NULL;

static int walk_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *b = path + ftw->base;

	if (startswith(b, ".kmodd-txn.") || startswith(b, ".kmodd-tmp."))
		if (strv_extend(&leftovers, path) < 0)
			return -1;
	return 0;
}

static int add_diff(char ***diffs, const char *fmt, ...) _printf_(2, 3);
static int add_diff(char ***diffs, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return log_oom();
	return strv_consume(diffs, s);
}

int verb_verify(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{},
	};
	_cleanup_(db_closep) Db *db = NULL;
	_cleanup_strv_free_ char **diffs = NULL, **kvers = NULL;
	_cleanup_free_ char *state = NULL, *journal = NULL, *kdefault = NULL;
	DbPackage *l = NULL;
	size_t n = 0, n_files = 0;
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
		log_error("Unexpected argument '%s'; see 'kmodctl verify --help'.",
			  argv[optind]);
		return EXIT_USAGE;
	}

	state = kmodd_path_state(arg_root);
	journal = state ? path_join(state, "journal") : NULL;
	if (!journal)
		return log_oom();
	if (access(journal, F_OK) >= 0)
		add_diff(&diffs,
			 "%s: an interrupted transaction is pending; run 'kmodctl recover'",
			 journal);

	r = db_open(arg_root, false, &db);
	if (r >= 0)
		r = db_list_packages(db, arg_kernel, &l, &n);
	if (r < 0 && r != -ENOENT) {
		log_error_errno(r, "%s/var/lib/kmodd/kmodd.db: cannot read: %m",
				streq(arg_root, "/") ? "" : arg_root);
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < n; i++) {
		if (!strv_contains(kvers, l[i].kver) && strv_extend(&kvers, l[i].kver) < 0)
			return log_oom();
		for (size_t j = 0; j < l[i].n_files; j++) {
			_cleanup_free_ char *p = path_join(arg_root, l[i].files[j].path);
			char sum[65];
			struct stat st;

			n_files++;
			if (!p)
				return log_oom();
			if (lstat(p, &st) < 0) {
				add_diff(&diffs, "%s: missing (package %s)", p,
					 l[i].ref.name);
				continue;
			}
			if (!S_ISREG(st.st_mode)) {
				add_diff(&diffs, "%s: not a regular file (package %s)", p,
					 l[i].ref.name);
				continue;
			}
			r = sha256_file(p, sum);
			if (r < 0)
				add_diff(&diffs, "%s: cannot read: %s", p, strerror(-r));
			else if (!streq(sum, l[i].files[j].sha256) ||
				 (uint64_t)st.st_size != l[i].files[j].size)
				add_diff(&diffs,
					 "%s: content differs from package %s (sha256 %s, "
					 "recorded %s)",
					 p, l[i].ref.name, sum, l[i].files[j].sha256);
		}
	}
	if (arg_kernel && !strv_contains(kvers, arg_kernel) &&
	    strv_extend(&kvers, arg_kernel) < 0)
		return log_oom();
	if (!arg_kernel && kernel_release_default(arg_root, &kdefault) >= 0 &&
	    !strv_contains(kvers, kdefault) && strv_extend(&kvers, kdefault) < 0)
		return log_oom();

	STRV_FOREACH(k, kvers) {
		_cleanup_(depmod_report_done) DepmodReport rep = {};
		_cleanup_free_ char *moddir = path_join(arg_root, "lib/modules", *k);

		if (!moddir)
			return log_oom();
		leftovers = strv_free(leftovers);
		(void)nftw(moddir, walk_cb, 16, FTW_PHYS);
		STRV_FOREACH(t, leftovers)
			add_diff(&diffs,
				 "%s: temporary file left behind; run 'kmodctl recover'",
				 *t);
		leftovers = strv_free(leftovers);

		r = depmod_verify(arg_root, *k, &rep);
		if (r < 0) {
			add_diff(&diffs, "%s: cannot verify the indexes: %s", moddir,
				 rep.error_message ?: strerror(-r));
			continue;
		}
		STRV_FOREACH(d, rep.differences)
			add_diff(&diffs, "%s: %s; run 'kmodctl depmod --full'", moddir,
				 *d);
	}

	if (arg_json) {
		_cleanup_json_put_ json_object *o = json_object_new_object();
		json_object *a = json_object_new_array();

		STRV_FOREACH(d, diffs)
			json_object_array_add(a, json_object_new_string(*d));
		json_object_object_add(o, "clean", json_object_new_boolean(!diffs));
		json_object_object_add(o, "packages", json_object_new_int64((int64_t)n));
		json_object_object_add(o, "files",
				       json_object_new_int64((int64_t)n_files));
		json_object_object_add(o, "differences", a);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	} else {
		STRV_FOREACH(d, diffs)
			printf("%s\n", *d);
		printf("%zu package%s, %zu file%s, indexes of %zu kernel%s: %s\n", n,
		       n == 1 ? "" : "s", n_files, n_files == 1 ? "" : "s",
		       strv_length(kvers), strv_length(kvers) == 1 ? "" : "s",
		       diffs ? "differences found" : "clean");
	}
	db_packages_free(l, n);
	return diffs ? EXIT_DIFFERENCES : 0;
}
