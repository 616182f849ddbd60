/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <libkmod.h>

#include "audit.h"
#include "fileio.h"
#include "kmodd-cleanup.h"
#include "log.h"
#include "strv.h"

static const char *const source_table[_AUDIT_SOURCE_MAX] = {
	[AUDIT_SOURCE_TREE] = "tree",
	[AUDIT_SOURCE_WEAK_UPDATES] = "weak-updates",
	[AUDIT_SOURCE_CANDIDATE] = "candidate",
};

const char *audit_source_to_string(AuditSource s)
{
	return s >= 0 && s < _AUDIT_SOURCE_MAX ? source_table[s] : NULL;
}

static void audit_module_done(AuditModule *m)
{
	free(m->name);
	free(m->path);
	free(m->file);
	free(m->origin_kver);
	free(m->package);
	free(m->package_kver);
	free(m->taint);
	kabi_result_done(&m->kabi);
}

void audit_kernel_done(AuditKernel *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_modules; i++)
		audit_module_done(&a->modules[i]);
	free(a->modules);
	free(a->kver);
	free(a->symvers_path);
	free(a->vermagic);
	free(a->sig_key);
	strv_free(a->dangling);
	strv_free(a->warnings);
	kabi_kernel_free(a->kabi);
	modtree_free(a->tree);
	for (size_t i = 0; i < a->n_others; i++)
		modtree_free(a->others[i]);
	free(a->others);
	*a = (AuditKernel){};
}

bool audit_module_failed(const AuditModule *m)
{
	return !m->kabi.shadowed_by && m->kabi.verdict != KABI_OK;
}

int audit_list_kernels(const char *root, char ***ret)
{
	_cleanup_free_ char *dir = path_join(root, "lib/modules");
	_cleanup_strv_free_ char **l = NULL;
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = NULL;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		p = path_join(dir, de->d_name);
		if (!p) {
			r = -ENOMEM;
			break;
		}
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		r = strv_extend(&l, de->d_name);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r < 0)
		return r;
	strv_sort(l);
	*ret = TAKE_PTR(l);
	return 0;
}

static bool is_module_name(const char *n)
{
	return endswith(n, ".ko") || endswith(n, ".ko.xz") || endswith(n, ".ko.zst") ||
	       endswith(n, ".ko.gz");
}

/* Module files below dir/rel (relative paths, sorted); dangling symlinks into ret_dangling. */
static int walk_modules(int dfd, const char *rel, char ***ret, char ***ret_dangling)
{
	_cleanup_close_ int fd = -EBADF;
	DIR *d;
	struct dirent *de;
	int r = 0;

	fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : negative_errno();
	d = fdopendir(fd);
	if (!d)
		return negative_errno();
	TAKE_FD(fd);
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		sub = path_join(rel, de->d_name);
		if (!sub) {
			r = -ENOMEM;
			break;
		}
		if (fstatat(dfd, sub, &st, 0) < 0) {
			if (is_module_name(de->d_name) && ret_dangling &&
			    (r = strv_extend(ret_dangling, sub)) < 0)
				break;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			r = walk_modules(dfd, sub, ret, ret_dangling);
			if (r < 0)
				break;
			continue;
		}
		if (!S_ISREG(st.st_mode) || !is_module_name(de->d_name))
			continue;
		r = strv_consume(ret, TAKE_PTR(sub));
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int add_warning(char ***l, const char *fmt, ...) _printf_(2, 3);
static int add_warning(char ***l, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	return strv_consume(l, s);
}

static int read_line_file(const char *root, const char *rel, char **ret)
{
	_cleanup_free_ char *p = path_join(root, rel), *data = NULL;
	size_t n;
	int r;

	if (!p)
		return -ENOMEM;
	r = read_full_file(p, 4096, &data, &n);
	if (r < 0)
		return r;
	while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == ' '))
		data[--n] = 0;
	*ret = TAKE_PTR(data);
	return 0;
}

static bool kernel_running(const char *root, const char *kver)
{
	_cleanup_free_ char *rel = NULL;

	if (streq(root, "/")) {
		struct utsname u;
		return uname(&u) >= 0 && streq(u.release, kver);
	}
	/* an image: what its /proc says, when a test or a chroot provides one */
	return read_line_file(root, "proc/sys/kernel/osrelease", &rel) >= 0 &&
	       streq(rel, kver);
}

typedef struct Owner {
	char *name;
	char *kver;
} Owner;

static void owner_free(void *p)
{
	Owner *o = p;

	if (!o)
		return;
	free(o->name);
	free(o->kver);
	free(o);
}

/* file (relative to the root) -> Owner */
static int load_owners(const char *root, Hashmap **ret, bool *ret_database)
{
	_cleanup_(db_closep) Db *db = NULL;
	_cleanup_hashmap_free_ Hashmap *h = hashmap_new(free, owner_free);
	DbPackage *l = NULL;
	size_t n = 0;
	int r;

	if (!h)
		return -ENOMEM;
	*ret_database = false;
	r = db_open(root, false, &db);
	if (r == -ENOENT) {
		*ret = TAKE_PTR(h);
		return 0;
	}
	if (r < 0)
		return r;
	r = db_list_packages(db, NULL, &l, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++)
		for (size_t j = 0; j < l[i].n_files; j++) {
			Owner *o = calloc(1, sizeof(Owner));
			char *key = strdup(l[i].files[j].path);

			if (!o || !key || !(o->name = strdup(l[i].ref.name)) ||
			    (l[i].kver && !(o->kver = strdup(l[i].kver)))) {
				owner_free(o);
				free(key);
				r = -ENOMEM;
				break;
			}
			r = hashmap_put(h, key, o);
			if (r == -EEXIST) {
				owner_free(o);
				free(key);
				r = 0;
			} else if (r < 0) {
				owner_free(o);
				free(key);
			}
		}
	db_packages_free(l, n);
	if (r < 0)
		return r;
	*ret_database = true;
	*ret = TAKE_PTR(h);
	return 0;
}

static char *underscores(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p && *p; p++)
		if (*p == '-')
			*p = '_';
	return d;
}

static int load_blacklist(ModTree *t, char ***ret)
{
	struct kmod_config_iter *it = kmod_config_get_blacklists(t->ctx);
	_cleanup_strv_free_ char **l = NULL;
	int r = 0;

	if (!it) {
		*ret = NULL;
		return 0;
	}
	while (kmod_config_iter_next(it)) {
		char *n = underscores(kmod_config_iter_get_key(it));

		r = n ? strv_consume(&l, n) : -ENOMEM;
		if (r < 0)
			break;
	}
	kmod_config_iter_free_iter(it);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(l);
	return 0;
}

typedef struct Entry {
	const Module *module;
	char *path; /* relative to its tree */
	char *file; /* relative to the root */
	char *abs;
	char *origin;
	AuditSource source;
} Entry;

static void entries_free(Entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].path);
		free(e[i].file);
		free(e[i].abs);
		free(e[i].origin);
	}
	free(e);
}

static int entry_add(Entry **l, size_t *n, size_t *allocated, const char *root,
		     const Module *m, const char *kver, const char *file_kver,
		     const char *relfile, AuditSource source)
{
	Entry *e;

	if (!GREEDY_REALLOC(*l, *allocated, *n + 1))
		return -ENOMEM;
	e = &(*l)[*n];
	*e = (Entry){ .module = m, .source = source };
	e->path = strdup(m->path);
	e->file = path_join("lib/modules", file_kver, relfile);
	e->abs = e->file ? path_join(root, e->file) : NULL;
	e->origin = strdup(kver);
	if (!e->path || !e->file || !e->abs || !e->origin) {
		free(e->path);
		free(e->file);
		free(e->abs);
		free(e->origin);
		return -ENOMEM;
	}
	(*n)++;
	return 0;
}

/* The file a weak-updates link points at, relative to the root, when it is inside it. */
static char *link_target_rel(const char *root, const char *abs)
{
	_cleanup_free_ char *real = realpath(abs, NULL), *rroot = realpath(root, NULL);
	const char *rel;

	if (!real || !rroot)
		return NULL;
	if (streq(rroot, "/"))
		return strdup(real + 1);
	rel = startswith(real, rroot);
	if (!rel || rel[0] != '/')
		return NULL;
	return strdup(rel + 1);
}

/* The modules installed for another kernel: listed first, read by a worker thread while the
 * kernel's own tree is read (each tree has its own libkmod context). */
typedef struct OtherJob {
	ModTree *tree; /* owned by the AuditKernel's others[] */
	char *kver;
	char **files; /* relative to the tree */
	Module **read; /* per file, NULL when unreadable */
	int *errors;
} OtherJob;

static void other_jobs_free(OtherJob *j, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t f = 0; j[i].read && j[i].files && j[i].files[f]; f++)
			module_free(j[i].read[f]);
		free(j[i].read);
		free(j[i].errors);
		free(j[i].kver);
		strv_free(j[i].files);
	}
	free(j);
}

typedef struct OtherWork {
	OtherJob *jobs;
	size_t n;
} OtherWork;

static void *others_read(void *userdata)
{
	OtherWork *w = userdata;

	for (size_t i = 0; i < w->n; i++) {
		OtherJob *j = &w->jobs[i];

		for (size_t f = 0; j->files && j->files[f]; f++)
			j->errors[f] =
				modtree_read_module(j->tree, j->files[f], &j->read[f]);
	}
	return NULL;
}

static int others_prepare(const char *root, const char *kver, const char *exclude,
			  AuditKernel *a, OtherJob **ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **kvers = NULL;
	_cleanup_free_ char *flavour = kernel_flavour(kver);
	OtherJob *jobs = NULL;
	size_t n = 0;
	int r;

	if (!flavour)
		return -ENOMEM;
	r = audit_list_kernels(root, &kvers);
	if (r < 0)
		return r;
	jobs = calloc(strv_length(kvers) + 1, sizeof(OtherJob));
	if (!jobs)
		return -ENOMEM;
	STRV_FOREACH(k, kvers) {
		_cleanup_free_ char *fl = NULL;
		_cleanup_close_ int ofd = -EBADF;
		ModTree *ot = NULL, **others;
		OtherJob *j;
		size_t nf;

		if (streq(*k, kver) || streq_ptr(exclude, *k))
			continue;
		fl = kernel_flavour(*k);
		if (!fl) {
			r = -ENOMEM;
			goto fail;
		}
		if (!streq(fl, flavour))
			continue;
		r = modtree_open(root, *k, 0, &ot, NULL);
		if (r < 0) {
			r = add_warning(&a->warnings,
					"lib/modules/%s: cannot open the tree: %s", *k,
					ERRNO_NAME(-r));
			if (r < 0)
				goto fail;
			continue;
		}
		others = realloc(a->others, (a->n_others + 1) * sizeof(ModTree *));
		if (!others) {
			modtree_free(ot);
			r = -ENOMEM;
			goto fail;
		}
		a->others = others;
		a->others[a->n_others++] = ot;

		j = &jobs[n++];
		j->tree = ot;
		j->kver = strdup(*k);
		if (!j->kver) {
			r = -ENOMEM;
			goto fail;
		}
		ofd = open(ot->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ofd >= 0) {
			r = walk_modules(ofd, "updates", &j->files, NULL);
			if (r >= 0)
				r = walk_modules(ofd, "extra", &j->files, NULL);
			if (r < 0)
				goto fail;
		}
		strv_sort(j->files);
		nf = strv_length(j->files);
		j->read = calloc(nf + 1, sizeof(Module *));
		j->errors = calloc(nf + 1, sizeof(int));
		ot->modules = calloc(nf + 1, sizeof(Module *));
		if (!j->read || !j->errors || !ot->modules) {
			r = -ENOMEM;
			goto fail;
		}
	}
	*ret = jobs;
	*ret_n = n;
	return 0;
fail:
	other_jobs_free(jobs, n);
	return r;
}

int audit_kernel(const char *root, const char *kver, const AuditOptions *o,
		 AuditKernel *ret, char **ret_error_path)
{
	_cleanup_(audit_kernel_done) AuditKernel a = {};
	_cleanup_hashmap_free_ Hashmap *owners = NULL, *seen = NULL;
	_cleanup_strv_free_ char **blacklist = NULL;
	_cleanup_free_ char *tainted = NULL;
	_cleanup_free_ const Module **mods = NULL;
	_cleanup_free_ char **paths = NULL;
	KabiResult *res = NULL;
	Entry *ent = NULL;
	size_t n_ent = 0, alloc_ent = 0, n_jobs = 0;
	OtherJob *jobs = NULL;
	OtherWork work = {};
	pthread_t worker;
	bool started = false;
	_cleanup_close_ int dfd = -EBADF;
	unsigned bad_line = 0;
	int r;

	a.kver = strdup(kver);
	seen = hashmap_new(free, NULL);
	if (!a.kver || !seen)
		return -ENOMEM;

	r = modtree_open(root, kver, 0, &a.tree, ret_error_path);
	if (r < 0)
		return r;

	r = others_prepare(root, kver, o ? o->exclude_kver : NULL, &a, &jobs, &n_jobs);
	if (r < 0)
		return r;
	work = (OtherWork){ jobs, n_jobs };
	if (n_jobs > 0) {
		r = -pthread_create(&worker, NULL, others_read, &work);
		if (r < 0)
			others_read(&work); /* no thread: read them here */
		else
			started = true;
	}

	r = modtree_load_modules(a.tree);
	if (r < 0)
		goto tree_error;
	r = modtree_load_symvers(a.tree, o ? o->symvers : NULL, &bad_line);
	if (r < 0)
		goto tree_error;
	if (a.tree->symvers && !(a.symvers_path = strdup(a.tree->symvers->path))) {
		r = -ENOMEM;
		goto finish;
	}

	r = kabi_kernel_new(a.tree, &a.kabi);
	if (r < 0)
		goto finish;
	if (kabi_kernel_vermagic(a.kabi) &&
	    !(a.vermagic = strdup(kabi_kernel_vermagic(a.kabi)))) {
		r = -ENOMEM;
		goto finish;
	}
	for (size_t i = 0; i < a.tree->n_modules; i++)
		if (a.tree->modules[i]->intree && a.tree->modules[i]->sig_key) {
			a.sig_key = strdup(a.tree->modules[i]->sig_key);
			if (!a.sig_key) {
				r = -ENOMEM;
				goto finish;
			}
			break;
		}

	/* the kernel's own tree, and its weak-updates links */
	for (size_t i = 0; i < a.tree->n_modules; i++) {
		const Module *m = a.tree->modules[i];
		bool weak = startswith(m->path, "weak-updates/");
		_cleanup_free_ char *target = NULL;

		if (!weak && !(o && o->own_tree))
			continue;
		if (weak) {
			_cleanup_free_ char *abs = path_join(a.tree->dir, m->path);

			if (!abs) {
				r = -ENOMEM;
				goto finish;
			}
			target = link_target_rel(root, abs);
		}
		r = entry_add(&ent, &n_ent, &alloc_ent, root, m, kver, kver, m->path,
			      weak ? AUDIT_SOURCE_WEAK_UPDATES : AUDIT_SOURCE_TREE);
		if (r < 0)
			goto finish;
		if (target) {
			char *key = strdup(target);
			const char *kv = startswith(target, "lib/modules/");

			/* built for the kernel whose tree holds the target */
			if (kv && strchr(kv, '/')) {
				char *origin = strndup(kv, strchr(kv, '/') - kv);

				if (!origin) {
					free(key);
					r = -ENOMEM;
					goto finish;
				}
				free(ent[n_ent - 1].origin);
				ent[n_ent - 1].origin = origin;
			}
			free(ent[n_ent - 1].file);
			ent[n_ent - 1].file = TAKE_PTR(target);
			r = key ? hashmap_put(seen, key, NULL) : -ENOMEM;
			if (r == -EEXIST) {
				free(key);
				r = 0;
			}
			if (r < 0) {
				free(key);
				goto finish;
			}
		}
	}

	dfd = open(a.tree->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = negative_errno();
		goto finish;
	}
	{
		_cleanup_strv_free_ char **ignored = NULL;
		r = walk_modules(dfd, "weak-updates", &ignored, &a.dangling);
		if (r < 0)
			goto finish;
		strv_sort(a.dangling);
	}

	/* the modules installed for the other kernels of the flavour */
	if (started) {
		pthread_join(worker, NULL);
		started = false;
	}
	for (size_t i = 0; i < n_jobs; i++) {
		OtherJob *j = &jobs[i];

		for (size_t f = 0; j->files && j->files[f]; f++) {
			_cleanup_free_ char *rel =
				path_join("lib/modules", j->kver, j->files[f]);
			Module *m = TAKE_PTR(j->read[f]);

			if (!rel) {
				module_free(m);
				r = -ENOMEM;
				goto finish;
			}
			if (j->errors[f] < 0) {
				r = add_warning(&a.warnings,
						"%s: not a readable module (%s), skipped",
						rel, ERRNO_NAME(-j->errors[f]));
				if (r < 0)
					goto finish;
				continue;
			}
			if (hashmap_contains(seen, rel)) {
				module_free(m); /* linked into weak-updates already */
				continue;
			}
			j->tree->modules[j->tree->n_modules++] = m;
			r = entry_add(&ent, &n_ent, &alloc_ent, root, m, j->kver, j->kver,
				      j->files[f], AUDIT_SOURCE_CANDIDATE);
			if (r < 0)
				goto finish;
		}
	}

	/* decide */
	mods = calloc(n_ent + 1, sizeof(Module *));
	paths = calloc(n_ent + 1, sizeof(char *));
	if (!mods || !paths) {
		r = -ENOMEM;
		goto finish;
	}
	for (size_t i = 0; i < n_ent; i++) {
		mods[i] = ent[i].module;
		paths[i] = ent[i].abs;
	}
	r = kabi_check(a.kabi, mods, paths, n_ent, &res);
	if (r < 0)
		goto finish;

	r = load_owners(root, &owners, &a.database);
	if (r < 0) {
		/* no packages then; say why */
		r = add_warning(&a.warnings,
				"installed database: %s, no package ownership shown",
				ERRNO_NAME(-r));
		if (r < 0)
			goto finish;
	}
	r = load_blacklist(a.tree, &blacklist);
	if (r < 0)
		goto finish;

	a.running = kernel_running(root, kver);
	a.tainted = -1;
	if (a.running && read_line_file(root, "proc/sys/kernel/tainted", &tainted) >= 0) {
		char *end;
		long v;

		errno = 0;
		v = strtol(tainted, &end, 10);
		if (errno == 0 && end != tainted && *end == 0 && v >= 0)
			a.tainted = v;
	}

	a.modules = calloc(n_ent + 1, sizeof(AuditModule));
	if (!a.modules) {
		r = -ENOMEM;
		goto finish;
	}
	for (size_t i = 0; i < n_ent; i++) {
		AuditModule *am = &a.modules[a.n_modules++];
		const Module *m = ent[i].module;
		const Owner *ow = owners ? hashmap_get(owners, ent[i].file) : NULL;

		am->module = m;
		am->source = ent[i].source;
		am->kabi = res[i];
		res[i] = (KabiResult){};
		am->name = strdup(m->name);
		am->path = TAKE_PTR(ent[i].path);
		am->file = TAKE_PTR(ent[i].file);
		am->origin_kver = TAKE_PTR(ent[i].origin);
		if (!am->name) {
			r = -ENOMEM;
			goto finish;
		}
		if (ow && (!(am->package = strdup(ow->name)) ||
			   (ow->kver && !(am->package_kver = strdup(ow->kver))))) {
			r = -ENOMEM;
			goto finish;
		}
		am->kernel_key = a.sig_key && m->sig_key && streq(a.sig_key, m->sig_key);
		am->blacklisted = strv_contains(blacklist, m->name);
		if (a.running && am->source != AUDIT_SOURCE_CANDIDATE) {
			_cleanup_free_ char *rel = path_join("sys/module", m->name),
					    *abs = rel ? path_join(root, rel) : NULL,
					    *trel = rel ? path_join(rel, "taint") : NULL;
			const Module *chosen = kabi_kernel_module(a.kabi, m->name);

			if (!abs || !trel) {
				r = -ENOMEM;
				goto finish;
			}
			/* the loaded module is the one modprobe picks for that name */
			if ((chosen == m || am->source == AUDIT_SOURCE_WEAK_UPDATES) &&
			    access(abs, F_OK) >= 0) {
				am->loaded = true;
				(void)read_line_file(root, trel, &am->taint);
			}
		}
	}
	r = 0;

	*ret = a;
	a = (AuditKernel){};
finish:
	if (started)
		pthread_join(worker, NULL);
	other_jobs_free(jobs, n_jobs);
	kabi_results_free(res, n_ent);
	entries_free(ent, n_ent);
	return r;

tree_error:
	if (ret_error_path && a.tree->error_path)
		*ret_error_path = strdup(a.tree->error_path);
	goto finish;
}
