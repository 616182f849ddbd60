/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "depmod.h"
#include "fileio.h"
#include "kmodctl.h"
#include "log.h"
#include "package.h"
#include "resolve.h"
#include "strv.h"
#include "transaction.h"

/* weak-updates/ must come before the kernel's own modules and after its updates/ and extra/,
 * as SUSE orders them; kabi.c decides with the same order. */
#define WEAK_UPDATES_CONF "etc/depmod.d/00-kmodd-weak-updates.conf"
#define WEAK_UPDATES_SEARCH "search updates extra weak-updates built-in\n"

static bool arg_no_install = false;

enum {
	ARG_NO_INSTALL = ARG_VERB_BASE,
};

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] kernel add KVER [--no-install]\n"
	       "       kmodctl [--root DIR] kernel remove KVER\n\n"
	       "add: for every KMP module installed for another kernel of KVER's flavour, link it\n"
	       "into /lib/modules/KVER/weak-updates/ when KVER would load it (the modversions\n"
	       "check, decided for all such modules as one group); for the others, install the\n"
	       "same KMP built for KVER from the repositories (unless --no-install), else report\n"
	       "it. Links that are no longer compatible, and dangling ones, are removed. The\n"
	       "indexes of KVER are updated incrementally.\n"
	       "remove: remove KVER's weak-updates links and, in the other kernels, the links\n"
	       "into KVER's tree (then their groups are checked again).\n");
}

/* The writer lock the transactions take (<root>/var/lib/kmodd/lock): links and indexes
 * change under it. Returns the fd, or EXIT_LOCKED's negative when another writer has it. */
static int take_writer_lock(void)
{
	_cleanup_free_ char *dir = kmodd_path_state(arg_root), *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	path = dir ? path_join(dir, "lock") : NULL;
	if (!path)
		return log_oom();
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return log_error_errno(r, "%s: cannot create: %m", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return log_error_errno(errno, "%s: cannot open the lock: %m", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			log_error("Another kmodctl or kmodd is changing %s (%s is held); wait for it "
				  "to finish and retry.",
				  arg_root, path);
			return -EWOULDBLOCK;
		}
		return log_error_errno(errno, "%s: cannot lock: %m", path);
	}
	return TAKE_FD(fd);
}

static char *relative_target(const char *link_rel, const char *target_rel)
{
	/* both relative to the root; the link's directory has as many components as '/' */
	_cleanup_free_ char *up = NULL;
	size_t n = 0;
	char *s;

	for (const char *p = link_rel; *p; p++)
		if (*p == '/')
			n++;
	up = calloc(n * 3 + 1, 1);
	if (!up)
		return NULL;
	for (size_t i = 0; i < n; i++)
		strcat(up, "../");
	if (asprintf(&s, "%s%s", up, target_rel) < 0)
		return NULL;
	return s;
}

static int ensure_depmod_conf(bool *ret_changed)
{
	_cleanup_free_ char *p = path_join(arg_root, WEAK_UPDATES_CONF), *dir = NULL,
			    *old = NULL;
	int r;

	*ret_changed = false;
	if (!p)
		return log_oom();
	if (read_full_file(p, 4096, &old, NULL) >= 0 && streq(old, WEAK_UPDATES_SEARCH))
		return 0;
	dir = path_join(arg_root, "etc/depmod.d");
	if (!dir)
		return log_oom();
	r = mkdir_p(dir, 0755);
	if (r >= 0)
		r = write_file_atomic(p, WEAK_UPDATES_SEARCH, strlen(WEAK_UPDATES_SEARCH),
				      0644);
	if (r < 0)
		return log_error_errno(
			r, "%s: cannot write: %m; check that the root is writable.", p);
	*ret_changed = true;
	return 0;
}

static int update_indexes(const char *kver, char **added, char **removed, bool full)
{
	_cleanup_(depmod_report_done) DepmodReport rep = {};
	_cleanup_free_ char *dep =
		path_join(arg_root, "lib/modules", kver, "modules.dep");
	int r;

	if (!dep)
		return log_oom();
	if (!full && !added && !removed)
		return 0;
	if (full || access(dep, F_OK) < 0)
		r = depmod_full(arg_root, kver, &rep);
	else
		r = depmod_update(arg_root, kver, added, removed, &rep);
	if (r < 0)
		return log_error_errno(
			r,
			"%s: cannot update the module indexes: %s; run 'kmodctl "
			"depmod --full'.",
			strna(rep.error_path), rep.error_message ?: strerror(-r));
	return 0;
}

/* Removes empty directories below <moddir>/weak-updates, the top one included. */
static void prune_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;

		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		sub = path_join(dir, de->d_name);
		if (sub)
			prune_empty(sub);
	}
	closedir(d);
	(void)rmdir(dir);
}

static int try_replacements(const char *kver, char **packages, unsigned *ret_installed,
			    char ***ret_unresolved)
{
	_cleanup_(resolver_freep) Resolver *res = NULL;
	_cleanup_(txn_report_done) TxnReport rep = {};
	PackageRef *install = NULL;
	size_t n_install = 0;
	TxnOptions o = { .command = "kernel add" };
	int r;

	*ret_installed = 0;
	r = resolver_new(arg_root, kver, &res);
	if (r < 0) {
		STRV_FOREACH(p, packages) {
			char *s;
			if (asprintf(&s,
				     "%s: no repository to take a build for %s from (%s)",
				     *p, kver, strerror(-r)) < 0 ||
			    strv_consume(ret_unresolved, s) < 0)
				return log_oom();
		}
		return 0;
	}
	STRV_FOREACH(p, packages) {
		_cleanup_(resolve_result_done) ResolveResult rr = {};
		char *const one[] = { *p, NULL };
		PackageRef *grown;

		r = resolver_solve(res, NEED_PACKAGE, one, INSTALL_REASON_DEPENDENCY,
				   NULL, &rr);
		if (r < 0 || rr.n_install == 0) {
			_cleanup_free_ char *why = strv_join(rr.problems, "; ");
			char *s;

			if (asprintf(&s, "%s: no build for %s in the repositories%s%s", *p,
				     kver, isempty(why) ? "" : ": ", strempty(why)) < 0 ||
			    strv_consume(ret_unresolved, s) < 0)
				return log_oom();
			continue;
		}
		grown = realloc(install, (n_install + rr.n_install) * sizeof(PackageRef));
		if (!grown)
			return log_oom();
		install = grown;
		for (size_t i = 0; i < rr.n_install; i++) {
			bool dup = false;

			for (size_t j = 0; j < n_install; j++)
				dup = dup ||
				      (streq(install[j].name, rr.install[i].name) &&
				       streq(install[j].evr, rr.install[i].evr));
			if (dup)
				continue;
			r = package_ref_copy(&rr.install[i], &install[n_install]);
			if (r < 0)
				return log_oom();
			n_install++;
		}
	}
	if (n_install == 0)
		return 0;
	r = transaction_install(arg_root, kver, install, n_install, NULL, &o, &rep);
	for (size_t i = 0; i < n_install; i++)
		package_ref_done(&install[i]);
	free(install);
	if (r < 0) {
		(void)txn_log_error(&rep, r);
		return -EIO;
	}
	STRV_FOREACH(p, rep.installed)
		printf("  installed %s (built for %s)\n", *p, kver);
	*ret_installed = strv_length(rep.installed);
	return 0;
}

/* Brings KVER's weak-updates/ in line with what it would load. */
static int kernel_sync(const char *kver, const char *exclude_kver, bool install,
		       int lock_fd)
{
	_cleanup_close_ int own_lock = -EBADF;
	_cleanup_(audit_kernel_done) AuditKernel a = {};
	_cleanup_strv_free_ char **added = NULL, **removed = NULL, **replace = NULL,
				 **unresolved = NULL;
	_cleanup_free_ char *bad = NULL,
			    *moddir = path_join(arg_root, "lib/modules", kver);
	AuditOptions ao = { .symvers = arg_symvers, .exclude_kver = exclude_kver };
	unsigned linked = 0, kept = 0, shadowed = 0, installed = 0;
	bool conf_changed = false;
	int r;

	if (!moddir)
		return log_oom();
	if (lock_fd < 0) {
		lock_fd = own_lock = take_writer_lock();
		if (lock_fd < 0)
			return lock_fd;
	}
	r = ensure_depmod_conf(&conf_changed);
	if (r < 0)
		return r;
	r = audit_kernel(arg_root, kver, &ao, &a, &bad);
	if (r < 0)
		return log_error_errno(r,
				       "Cannot check the modules for kernel %s%s%s: %m",
				       kver, bad ? ": " : "", strempty(bad));
	if (!a.symvers_path)
		log_warning(
			"Kernel %s has no Module.symvers: symbols of vmlinux cannot be verified, "
			"so no module that needs them is linked; install its headers or pass "
			"--symvers.",
			kver);

	STRV_FOREACH(d, a.dangling) {
		_cleanup_free_ char *p = path_join(moddir, *d);

		if (!p)
			return log_oom();
		if (unlink(p) < 0 && errno != ENOENT)
			return log_error_errno(errno, "%s: cannot remove: %m", p);
		printf("  removed dangling link %s\n", *d);
		if (strv_extend(&removed, *d) < 0)
			return log_oom();
	}

	for (size_t i = 0; i < a.n_modules; i++) {
		const AuditModule *m = &a.modules[i];
		bool ok = m->kabi.verdict == KABI_OK && !m->kabi.shadowed_by;

		if (m->source == AUDIT_SOURCE_WEAK_UPDATES) {
			_cleanup_free_ char *p = path_join(moddir, m->path);

			if (!p)
				return log_oom();
			if (ok) {
				kept++;
				continue;
			}
			if (m->kabi.verdict == KABI_UNKNOWN && !m->kabi.shadowed_by &&
			    !a.symvers_path) {
				/* not proven wrong: keep what was proven with Module.symvers before */
				printf("  kept link %s: cannot be verified without Module.symvers\n",
				       m->path);
				kept++;
				continue;
			}
			if (unlink(p) < 0)
				return log_error_errno(errno, "%s: cannot remove: %m", p);
			printf("  removed link %s: %s\n", m->path,
			       m->kabi.shadowed_by ?
				       "the kernel has its own build" :
				       kabi_verdict_to_string(m->kabi.verdict));
			if (strv_extend(&removed, m->path) < 0)
				return log_oom();
			if (!m->kabi.shadowed_by && m->package &&
			    !strv_contains(replace, m->package) &&
			    strv_extend(&replace, m->package) < 0)
				return log_oom();
			continue;
		}
		if (m->source != AUDIT_SOURCE_CANDIDATE)
			continue;
		if (m->kabi.shadowed_by) {
			shadowed++;
			continue;
		}
		if (ok) {
			const char *below = strchr(m->path, '/');
			_cleanup_free_ char *rel = NULL, *link_rel = NULL, *abs = NULL,
					    *dir = NULL, *target = NULL;

			rel = path_join("weak-updates", below ? below + 1 : m->path);
			link_rel = rel ? path_join("lib/modules", kver, rel) : NULL;
			abs = link_rel ? path_join(arg_root, link_rel) : NULL;
			target = link_rel ? relative_target(link_rel, m->file) : NULL;
			if (!abs || !target)
				return log_oom();
			dir = strdup(abs);
			if (!dir)
				return log_oom();
			*strrchr(dir, '/') = 0;
			r = mkdir_p(dir, 0755);
			if (r < 0)
				return log_error_errno(r, "%s: cannot create: %m", dir);
			(void)unlink(abs);
			if (symlink(target, abs) < 0)
				return log_error_errno(errno, "%s: cannot link: %m", abs);
			printf("  linked %s -> %s\n", rel, m->file);
			if (strv_extend(&added, rel) < 0)
				return log_oom();
			linked++;
			continue;
		}
		if (m->package) {
			if (!strv_contains(replace, m->package) &&
			    strv_extend(&replace, m->package) < 0)
				return log_oom();
		} else {
			char *s;
			_cleanup_free_ char *why =
				m->kabi.n_problems > 0 ?
					kabi_problem_describe(&m->kabi.problems[0]) :
					NULL;

			if (asprintf(&s,
				     "%s (%s, built for %s, not owned by any package): %s%s%s",
				     m->name, m->file, m->origin_kver,
				     kabi_verdict_to_string(m->kabi.verdict),
				     why ? ": " : "", strempty(why)) < 0 ||
			    strv_consume(&unresolved, s) < 0)
				return log_oom();
		}
	}

	/* weak-updates/ gets rid of its empty directories */
	if (removed) {
		_cleanup_free_ char *w = path_join(moddir, "weak-updates");
		if (w)
			prune_empty(w);
	}

	r = update_indexes(kver, added, removed, conf_changed);
	if (r < 0)
		return r;
	own_lock = safe_close(own_lock); /* the transaction takes it itself */

	if (replace && install) {
		r = try_replacements(kver, replace, &installed, &unresolved);
		if (r < 0)
			return r;
	} else
		STRV_FOREACH(p, replace) {
			char *s;
			if (asprintf(&s, "%s: incompatible with %s%s", *p, kver,
				     install ? "" : " (--no-install: not looked up)") <
				    0 ||
			    strv_consume(&unresolved, s) < 0)
				return log_oom();
		}

	STRV_FOREACH(u, unresolved)
		printf("  not available for %s: %s\n", kver, *u);
	printf("Kernel %s: %u linked, %u kept, %zu removed, %u installed from repositories, "
	       "%u with the kernel's own build, %zu not available.\n",
	       kver, linked, kept, strv_length(removed), installed, shadowed,
	       strv_length(unresolved));
	return 0;
}

/* Links below <moddir>/weak-updates (relative to it) that point into lib/modules/<into>/,
 * or every link when into is NULL. */
static int find_links(const char *moddir, const char *rel, const char *into, char ***ret)
{
	_cleanup_free_ char *dir = path_join(moddir, rel);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL, *abs = NULL, *pat = NULL;
		char buf[4096];
		ssize_t k;

		if (de->d_name[0] == '.')
			continue;
		sub = path_join(rel, de->d_name);
		abs = sub ? path_join(moddir, sub) : NULL;
		if (!abs) {
			r = -ENOMEM;
			break;
		}
		if (de->d_type == DT_DIR) {
			r = find_links(moddir, sub, into, ret);
			if (r < 0)
				break;
			continue;
		}
		if (de->d_type != DT_LNK)
			continue;
		k = readlink(abs, buf, sizeof(buf) - 1);
		if (k < 0)
			continue;
		buf[k] = 0;
		if (into) {
			if (asprintf(&pat, "lib/modules/%s/", into) < 0) {
				r = -ENOMEM;
				break;
			}
			if (!strstr(buf, pat))
				continue;
		}
		r = strv_extend(ret, sub);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int kernel_remove(const char *kver)
{
	_cleanup_close_ int lock = -EBADF;
	_cleanup_strv_free_ char **kvers = NULL, **own = NULL;
	_cleanup_free_ char *moddir = path_join(arg_root, "lib/modules", kver),
			    *flavour = NULL;
	int r;

	if (!moddir)
		return log_oom();
	flavour = kernel_flavour(kver);
	if (!flavour)
		return log_oom();
	lock = take_writer_lock();
	if (lock < 0)
		return lock;

	r = find_links(moddir, "weak-updates", NULL, &own);
	if (r < 0)
		return log_error_errno(r, "%s/weak-updates: cannot read: %m", moddir);
	STRV_FOREACH(l, own) {
		_cleanup_free_ char *p = path_join(moddir, *l);

		if (!p)
			return log_oom();
		if (unlink(p) < 0 && errno != ENOENT)
			return log_error_errno(errno, "%s: cannot remove: %m", p);
	}
	{
		_cleanup_free_ char *w = path_join(moddir, "weak-updates");
		if (w)
			prune_empty(w);
	}
	printf("Kernel %s: %zu weak-updates links removed.\n", kver, strv_length(own));
	if (own) {
		_cleanup_free_ char *dep = path_join(moddir, "modules.dep");
		if (dep && access(dep, F_OK) >= 0) {
			r = update_indexes(kver, NULL, own, false);
			if (r < 0)
				return r;
		}
	}

	/* the other kernels lose their links into this one, and check their groups again */
	r = audit_list_kernels(arg_root, &kvers);
	if (r < 0)
		return log_error_errno(r, "%s/lib/modules: cannot read: %m", arg_root);
	STRV_FOREACH(k, kvers) {
		_cleanup_strv_free_ char **links = NULL;
		_cleanup_free_ char *dir = NULL, *fl = kernel_flavour(*k);

		if (streq(*k, kver) || !fl || !streq(fl, flavour))
			continue;
		dir = path_join(arg_root, "lib/modules", *k);
		if (!dir)
			return log_oom();
		r = find_links(dir, "weak-updates", kver, &links);
		if (r < 0)
			return log_error_errno(r, "%s/weak-updates: cannot read: %m", dir);
		STRV_FOREACH(l, links) {
			_cleanup_free_ char *p = path_join(dir, *l);

			if (!p)
				return log_oom();
			if (unlink(p) < 0 && errno != ENOENT)
				return log_error_errno(errno, "%s: cannot remove: %m", p);
			printf("  %s: removed link %s into %s\n", *k, *l, kver);
		}
		if (!links)
			continue;
		r = update_indexes(*k, NULL, links, false);
		if (r < 0)
			return r;
		r = kernel_sync(*k, kver, false, lock);
		if (r < 0)
			return r;
	}
	return 0;
}

int verb_kernel(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "no-install", no_argument, NULL, ARG_NO_INSTALL },
		{},
	};
	const char *action, *kver;
	_cleanup_free_ char *moddir = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_NO_INSTALL:
			arg_no_install = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		log_error(
			"Expected 'add KVER' or 'remove KVER'; see 'kmodctl kernel --help'.");
		return EXIT_USAGE;
	}
	action = argv[optind];
	kver = argv[optind + 1];
	if (!streq(action, "add") && !streq(action, "remove")) {
		log_error("Unknown action '%s'; expected add or remove.", action);
		return EXIT_USAGE;
	}
	moddir = path_join(arg_root, "lib/modules", kver);
	if (!moddir)
		return log_oom();

	if (streq(action, "add")) {
		if (access(moddir, F_OK) < 0)
			return log_error_errno(errno, "%s: %m; install kernel %s first.",
					       moddir, kver);
		r = kernel_sync(kver, NULL, !arg_no_install, -EBADF);
	} else
		r = kernel_remove(kver);
	if (r == -EWOULDBLOCK)
		return EXIT_LOCKED;
	return r < 0 ? EXIT_FAILURE : 0;
}
