/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmpbuild: a kernel's module tree into an rpm-md repository of KMPs. See kmpbuild/README.md. */
#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <dirent.h>
#include <zlib.h>

#include "fileio.h"
#include "kmodd-cleanup.h"
#include "kmp.h"
#include "log.h"
#include "modtree.h"
#include "rpmmd.h"
#include "strv.h"

#define ARCH "x86_64"
#define PKGDIR ARCH
#define MARKER ".kmpbuild"

static const char *arg_root = "/";
static const char *arg_kernel = NULL;
static const char *arg_flavour = NULL;
static const char *arg_symvers = NULL;
static bool arg_no_symvers = false;
static const char *arg_out = NULL;
static const char *arg_base = NULL;
static bool arg_kabi_in_name = false;
static const char *arg_sign_key = NULL;
static const char *arg_gpg_homedir = NULL;
static bool arg_force = false;
static unsigned arg_jobs = 0;
static const char *arg_version = NULL;
static const char *arg_release = NULL;
static bool arg_firmware = false;
static int arg_compress_level = 3;
static bool arg_quiet = false;

/* One module of modules.dep. */
typedef struct Item {
	char *path;	 /* relative to lib/modules/KVER */
	char *name;	 /* kernel's module name, '_' */
	char *pkgname;	 /* its KMP's name */
	size_t *deps;	 /* indexes of its modules.dep line */
	size_t n_deps;
	bool base;
	Module *module;	 /* read by a worker */
	RpmmdEntry entry;
	char *filename;	 /* package file name */
} Item;

typedef struct Build {
	char *root;
	char *kver;
	char *flavour;
	char *dir; /* <root>/lib/modules/<kver> */
	char *version;
	char *release;
	char *kabi; /* "6.1.0_54" */
	char *sourcerpm;
	uint32_t epoch;
	Item *items;
	size_t n_items;
	Hashmap *by_path;
	Hashmap *by_name;
	Symvers *symvers;
	int pkgdir_fd;

	/* worker state */
	atomic_size_t next;
	atomic_size_t done;
	atomic_bool failed;
	pthread_mutex_t lock;
	int error;
	char *error_msg;
} Build;

static void build_done(Build *b)
{
	for (size_t i = 0; i < b->n_items; i++) {
		Item *it = &b->items[i];

		free(it->path);
		free(it->name);
		free(it->pkgname);
		free(it->deps);
		module_free(it->module);
		rpmmd_entry_done(&it->entry);
		free(it->filename);
	}
	free(b->items);
	hashmap_free(b->by_path);
	hashmap_free(b->by_name);
	symvers_free(b->symvers);
	free(b->root);
	free(b->kver);
	free(b->flavour);
	free(b->dir);
	free(b->version);
	free(b->release);
	free(b->kabi);
	free(b->sourcerpm);
	free(b->error_msg);
	safe_close(b->pkgdir_fd);
	pthread_mutex_destroy(&b->lock);
}

/* Records the first failure of a worker; the others stop at their next module. */
_printf_(3, 4) static void build_fail(Build *b, int error, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&b->lock);
	if (!b->error_msg) {
		va_start(ap, fmt);
		if (vasprintf(&b->error_msg, fmt, ap) < 0)
			b->error_msg = NULL;
		va_end(ap);
		b->error = error;
	}
	pthread_mutex_unlock(&b->lock);
	atomic_store(&b->failed, true);
}

static int package_name(const Build *b, const char *stem, char **ret)
{
	*ret = kmp_package_name(stem, b->flavour, arg_kabi_in_name ? b->kabi : NULL);
	return *ret ? 0 : -ENOMEM;
}

static int parse_modules_dep(Build *b)
{
	_cleanup_free_ char *path = NULL, *data = NULL;
	size_t allocated = 0;
	char *line, *save = NULL;
	int r;

	path = path_join(b->dir, "modules.dep");
	if (!path)
		return log_oom();
	r = read_full_file(path, 0, &data, NULL);
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %s; run 'depmod -b %s %s' first.",
				       path, ERRNO_NAME(r), b->root, b->kver);

	b->by_path = hashmap_new(NULL, NULL);
	b->by_name = hashmap_new(NULL, NULL);
	if (!b->by_path || !b->by_name)
		return log_oom();

	/* first pass: the modules */
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		_cleanup_free_ char *stem = NULL;
		Item *it;

		if (!colon)
			continue;
		*colon = 0;
		if (!GREEDY_REALLOC(b->items, allocated, b->n_items + 1))
			return log_oom();
		it = &b->items[b->n_items];
		*it = (Item){};
		it->path = strdup(line);
		it->name = module_name_from_path(line);
		stem = kmp_module_stem(line);
		if (!it->path || !it->name || !stem)
			return log_oom();
		if (package_name(b, stem, &it->pkgname) < 0)
			return log_oom();
		b->n_items++;
	}
	for (size_t i = 0; i < b->n_items; i++) {
		r = hashmap_put(b->by_path, b->items[i].path, (void *)(uintptr_t)(i + 1));
		if (r < 0 && r != -EEXIST)
			return log_oom();
		r = hashmap_put(b->by_name, b->items[i].name, (void *)(uintptr_t)(i + 1));
		if (r == -EEXIST)
			return log_error_errno(r, "%s: two modules are named '%s'; the tree is "
						  "ambiguous, remove one.", path, b->items[i].name);
		if (r < 0)
			return log_oom();
	}

	/* second pass, over a fresh copy (the first one tokenised the data): dependencies */
	free(data);
	data = NULL;
	r = read_full_file(path, 0, &data, NULL);
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %s", path, ERRNO_NAME(r));
	save = NULL;
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':'), *dep, *s2 = NULL;
		size_t idx, dep_allocated = 0;
		Item *it;

		if (!colon)
			continue;
		*colon = 0;
		idx = (uintptr_t)hashmap_get(b->by_path, line);
		if (idx == 0)
			continue;
		it = &b->items[idx - 1];
		for (dep = strtok_r(colon + 1, " \t", &s2); dep; dep = strtok_r(NULL, " \t", &s2)) {
			size_t d = (uintptr_t)hashmap_get(b->by_path, dep);

			if (d == 0)
				return log_error_errno(-ENOENT,
						       "%s: '%s' depends on '%s', which has no line "
						       "of its own; run depmod again.",
						       path, line, dep);
			if (!GREEDY_REALLOC(it->deps, dep_allocated, it->n_deps + 1))
				return log_oom();
			it->deps[it->n_deps++] = d - 1;
		}
	}
	if (b->n_items == 0)
		return log_error_errno(-ENOENT, "%s lists no modules; nothing to package.", path);
	return 0;
}

/* Marks a module and what modprobe would load with it: its modules.dep line and its
 * softdeps (from modprobe.d and modules.softdep, names or aliases resolved by libkmod), as
 * `modprobe --show-depends` does. */
static void mark_base(Build *b, struct kmod_ctx *ctx, size_t i)
{
	_cleanup_(kmod_module_unrefp) struct kmod_module *km = NULL;
	_cleanup_(kmod_module_unref_listp) struct kmod_list *pre = NULL, *post = NULL;
	Item *it = &b->items[i];
	struct kmod_list *l;

	if (it->base)
		return;
	it->base = true;
	for (size_t k = 0; k < it->n_deps; k++)
		mark_base(b, ctx, it->deps[k]);

	if (kmod_module_new_from_name(ctx, it->name, &km) < 0)
		return;
	if (kmod_module_get_softdeps(km, &pre, &post) < 0)
		return;
	for (int pass = 0; pass < 2; pass++)
		kmod_list_foreach(l, pass == 0 ? pre : post) {
			struct kmod_module *sm = kmod_module_get_module(l);
			size_t idx = (uintptr_t)hashmap_get(b->by_name, kmod_module_get_name(sm));

			kmod_module_unref(sm);
			if (idx > 0)
				mark_base(b, ctx, idx - 1);
		}
}

static int find_base_list(char **ret)
{
	static const char *const candidates[] = {
		PKGDATADIR "/base-modules.list",
		KMPBUILD_SOURCE_DIR "/base-modules.list",
	};

	if (arg_base) {
		*ret = strdup(arg_base);
		return *ret ? 0 : -ENOMEM;
	}
	for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
		if (access(candidates[i], R_OK) == 0) {
			*ret = strdup(candidates[i]);
			return *ret ? 0 : -ENOMEM;
		}
	return -ENOENT;
}

static int load_base(Build *b, struct kmod_ctx *ctx)
{
	_cleanup_free_ char *list = NULL, *data = NULL;
	char *line, *save = NULL;
	unsigned lineno = 0;
	int r;

	r = find_base_list(&list);
	if (r == -ENOENT)
		return log_error_errno(r, "No base module list found (looked in %s and %s); "
					  "pass --base LIST.",
				       PKGDATADIR, KMPBUILD_SOURCE_DIR);
	if (r < 0)
		return log_oom();
	r = read_full_file(list, 0, &data, NULL);
	if (r < 0)
		return log_error_errno(r, "Failed to read base module list %s: %s", list,
				       ERRNO_NAME(r));

	for (line = data; line; line = save) {
		_cleanup_free_ char *name = NULL;
		char *hash, *nl;
		size_t idx;

		nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = 0;
		lineno++;
		hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		line += strspn(line, " \t");
		line[strcspn(line, " \t\r")] = 0;
		if (!*line)
			continue;
		name = module_name_from_path(line);
		if (!name)
			return log_oom();
		idx = (uintptr_t)hashmap_get(b->by_name, name);
		if (idx == 0) {
			log_warning("%s:%u: module '%s' is not in %s/modules.dep (built in?), "
				    "ignoring.", list, lineno, line, b->dir);
			continue;
		}
		mark_base(b, ctx, idx - 1);
	}
	return 0;
}

/* The kernel package's version: --version/--release; else the "Debian X-Y" or "SUSE" style
 * version in the kernel's generated utsversion.h/compile.h (UTS_VERSION); else from the
 * release string itself: "6.1.0-54-amd64" -> 6.1.0 / 54, "5.3.18-59.5-default" -> 5.3.18 /
 * 59.5. */
static int uts_version_from_headers(const Build *b, char **ret_v, char **ret_r)
{
	static const char *const files[] = { "include/generated/utsversion.h",
					     "include/generated/compile.h" };
	_cleanup_free_ char *hdrdir = NULL;

	if (asprintf(&hdrdir, "%s/usr/src/linux-headers-%s", streq(b->root, "/") ? "" : b->root,
		     b->kver) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *p = NULL, *data = NULL;
		const char *s, *end;
		char *dash;

		p = path_join(hdrdir, files[i]);
		if (!p)
			return -ENOMEM;
		if (read_full_file(p, 1 << 20, &data, NULL) < 0)
			continue;
		s = strstr(data, "UTS_VERSION");
		if (!s)
			continue;
		s = strstr(s, "Debian ");
		if (!s)
			continue;
		s += strlen("Debian ");
		end = s + strcspn(s, " \"\n");
		if (end == s)
			continue;
		*ret_v = strndup(s, (size_t)(end - s));
		if (!*ret_v)
			return -ENOMEM;
		dash = strrchr(*ret_v, '-');
		if (dash) {
			*dash = 0;
			*ret_r = strdup(dash + 1);
		} else
			*ret_r = strdup("0");
		if (!*ret_r)
			return -ENOMEM;
		return 1;
	}
	return 0;
}

static bool rpm_version_ok(const char *s)
{
	if (isempty(s))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("._+~^", *s)))
			return false;
	return true;
}

static int find_version(Build *b)
{
	_cleanup_free_ char *v = NULL, *r = NULL;
	int k;

	k = uts_version_from_headers(b, &v, &r);
	if (k < 0)
		return log_oom();
	if (k == 0) {
		/* from the release: drop the flavour, split at the first '-' */
		_cleanup_free_ char *s = strdup(b->kver);
		char *dash;
		size_t fl = strlen(b->flavour), sl;

		if (!s)
			return log_oom();
		sl = strlen(s);
		if (sl > fl + 1 && streq(s + sl - fl, b->flavour) && s[sl - fl - 1] == '-')
			s[sl - fl - 1] = 0;
		dash = strchr(s, '-');
		if (dash) {
			*dash = 0;
			r = strdup(dash + 1);
			for (char *c = r; c && *c; c++)
				if (*c == '-')
					*c = '.';
		} else
			r = strdup("0");
		v = strdup(s);
		if (!v || !r)
			return log_oom();
	}
	if (arg_version) {
		free(v);
		v = strdup(arg_version);
	}
	if (arg_release) {
		free(r);
		r = strdup(arg_release);
	}
	if (!v || !r)
		return log_oom();
	if (!rpm_version_ok(v) || !rpm_version_ok(r))
		return log_error_errno(-EINVAL,
				       "Package version '%s' or release '%s' is not usable in rpm "
				       "(letters, digits and ._+~^ only); pass --version/--release.",
				       v, r);
	b->version = TAKE_PTR(v);
	b->release = TAKE_PTR(r);
	return 0;
}

static int find_epoch(Build *b)
{
	const char *e = getenv("SOURCE_DATE_EPOCH");
	static const char *const stamps[] = { "modules.order", "modules.builtin", "modules.dep" };

	if (e) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(e, &end, 10);
		if (errno != 0 || end == e || *end || v > UINT32_MAX)
			return log_error_errno(-EINVAL,
					       "SOURCE_DATE_EPOCH='%s' is not a number of seconds.",
					       e);
		b->epoch = (uint32_t)v;
		return 0;
	}
	/* not set: a time the tree itself carries, so two runs agree */
	for (size_t i = 0; i < ELEMENTSOF(stamps); i++) {
		_cleanup_free_ char *p = path_join(b->dir, stamps[i]);
		struct stat st;

		if (!p)
			return log_oom();
		if (stat(p, &st) == 0) {
			b->epoch = (uint32_t)st.st_mtime;
			return 0;
		}
	}
	b->epoch = 0;
	return 0;
}

static int add_common(const Build *b, KmpPackage *p)
{
	static const struct {
		const char *name, *evr;
	} rpmlib[] = {
		{ "rpmlib(CompressedFileNames)", "3.0.4-1" },
		{ "rpmlib(FileDigests)", "4.6.0-1" },
		{ "rpmlib(PayloadFilesHavePrefix)", "4.0-1" },
		{ "rpmlib(PayloadIsZstd)", "5.4.18-1" },
	};
	_cleanup_free_ char *evr = kmp_package_evr(p);
	int r;

	if (!evr)
		return -ENOMEM;
	p->buildtime = b->epoch;
	p->compress_level = arg_compress_level;
	if ((r = kmp_package_set(&p->buildhost, "kmpbuild")) < 0 ||
	    (r = kmp_package_set(&p->sourcerpm, b->sourcerpm)) < 0)
		return r;
	r = kmp_package_add_dep(p, KMP_DEP_PROVIDES, p->name, KMP_DEP_EQUAL, evr);
	if (r < 0)
		return r;
	/* the ISA-qualified name rpmbuild provides for arch packages */
	{
		_cleanup_free_ char *isa = NULL;

		if (asprintf(&isa, "%s(x86-64)", p->name) < 0)
			return -ENOMEM;
		r = kmp_package_add_dep(p, KMP_DEP_PROVIDES, isa, KMP_DEP_EQUAL, evr);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ELEMENTSOF(rpmlib); i++) {
		r = kmp_package_add_dep(p, KMP_DEP_REQUIRES, rpmlib[i].name,
					KMP_DEP_RPMLIB | KMP_DEP_LESS | KMP_DEP_EQUAL,
					rpmlib[i].evr);
		if (r < 0)
			return r;
	}
	return 0;
}

static int add_ksym(const Build *b, KmpPackage *p, KmpDepKind kind, const char *sym,
		    uint64_t crc)
{
	_cleanup_free_ char *n = NULL;
	char v[17];

	if (asprintf(&n, "ksym(%s:%s)", b->flavour, sym) < 0)
		return -ENOMEM;
	kmp_format_crc(crc, v);
	return kmp_package_add_dep(p, kind, n, KMP_DEP_EQUAL, v);
}

static int add_kmod(KmpPackage *p, KmpDepKind kind, const char *name)
{
	_cleanup_free_ char *n = NULL;

	if (asprintf(&n, "kmod(%s.ko)", name) < 0)
		return -ENOMEM;
	for (char *c = n + 5; *c; c++)
		if (*c == '-')
			*c = '_';
	return kmp_package_add_dep(p, kind, n, 0, NULL);
}

static bool exports_symbol(const Module *m, const char *sym)
{
	size_t lo = 0, hi = m->n_exports;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->exports[mid].symbol, sym);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int write_package(Build *b, KmpPackage *p, RpmmdEntry *ret_entry, char **ret_filename)
{
	_cleanup_free_ char *filename = NULL, *location = NULL;
	KmpWritten w;
	struct timespec ts[2];
	int r;

	filename = kmp_package_filename(p);
	if (!filename)
		return -ENOMEM;
	r = kmp_package_write(p, b->pkgdir_fd, filename, &w);
	if (r < 0)
		return r;
	/* the file time is part of the metadata (createrepo_c --update compares it) */
	ts[0] = ts[1] = (struct timespec){ .tv_sec = b->epoch };
	if (utimensat(b->pkgdir_fd, filename, ts, 0) < 0)
		return negative_errno();
	if (asprintf(&location, PKGDIR "/%s", filename) < 0)
		return -ENOMEM;
	r = rpmmd_format_package(p, &w, location, b->epoch, ret_entry);
	if (r < 0)
		return r;
	*ret_filename = TAKE_PTR(filename);
	return 0;
}

/* Where a module of the tree goes below updates/: its path without the top directory that
 * says where it came from ("kernel/drivers/x.ko", "updates/drivers/x.ko" -> "drivers/x.ko");
 * other trees ("extra/x.ko") keep theirs. */
static const char *updates_path(const char *path)
{
	return startswith(path, "kernel/") ?: startswith(path, "updates/") ?: path;
}

static int build_kmp(Build *b, Item *it)
{
	_cleanup_kmp_package_free_ KmpPackage *p = NULL;
	_cleanup_free_ char *src = NULL, *dst = NULL, *summary = NULL, *desc = NULL;
	const Module *m = it->module;
	int r;

	p = kmp_package_new(it->pkgname, b->version, b->release, ARCH);
	if (!p)
		return -ENOMEM;
	r = add_common(b, p);
	if (r < 0)
		return r;
	if (asprintf(&summary, "Kernel module %s for Linux %s", m->name, b->kver) < 0 ||
	    asprintf(&desc, "%s\n\nThe module %s of Linux %s, packaged as a KMP: it installs into "
			    "/lib/modules/%s/updates/.",
		     isempty(m->description) ? m->name : m->description, it->path, b->kver,
		     b->kver) < 0)
		return -ENOMEM;
	if ((r = kmp_package_set(&p->summary, summary)) < 0 ||
	    (r = kmp_package_set(&p->description, desc)) < 0 ||
	    (!isempty(m->license) && (r = kmp_package_set(&p->license, m->license)) < 0))
		return r;

	/* Provides */
	if (arg_kabi_in_name) {
		_cleanup_free_ char *stem = kmp_module_stem(it->path), *plain = NULL, *evr = NULL;

		evr = kmp_package_evr(p);
		plain = stem ? kmp_package_name(stem, b->flavour, NULL) : NULL;
		if (!evr || !plain)
			return -ENOMEM;
		r = kmp_package_add_dep(p, KMP_DEP_PROVIDES, plain, KMP_DEP_EQUAL, evr);
		if (r < 0)
			return r;
	}
	r = add_kmod(p, KMP_DEP_PROVIDES, m->name);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->n_exports; i++) {
		r = add_ksym(b, p, KMP_DEP_PROVIDES, m->exports[i].symbol, m->exports[i].crc);
		if (r < 0)
			return r;
	}

	/* Requires: every __versions symbol it does not export itself, plus the KMPs of its
	 * modules.dep line (the base package's modules through kmod()) */
	for (size_t i = 0; i < m->n_requires; i++) {
		if (exports_symbol(m, m->requires[i].symbol))
			continue;
		r = add_ksym(b, p, KMP_DEP_REQUIRES, m->requires[i].symbol, m->requires[i].crc);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < it->n_deps; i++) {
		const Item *d = &b->items[it->deps[i]];

		if (d->base)
			r = add_kmod(p, KMP_DEP_REQUIRES, d->name);
		else
			r = kmp_package_add_dep(p, KMP_DEP_REQUIRES, d->pkgname, 0, NULL);
		if (r < 0)
			return r;
	}
	if (arg_firmware)
		STRV_FOREACH(fw, m->firmware) {
			_cleanup_free_ char *n = NULL;

			if (asprintf(&n, "firmware(%s)", *fw) < 0)
				return -ENOMEM;
			r = kmp_package_add_dep(p, KMP_DEP_REQUIRES, n, 0, NULL);
			if (r < 0)
				return r;
		}

	/* Supplements: one modalias() per alias */
	STRV_FOREACH(a, m->aliases) {
		_cleanup_free_ char *n = NULL;

		if (asprintf(&n, "modalias(kernel-%s:%s)", b->flavour, *a) < 0)
			return -ENOMEM;
		r = kmp_package_add_dep(p, KMP_DEP_SUPPLEMENTS, n, 0, NULL);
		if (r < 0)
			return r;
	}

	/* Recommends: the modules of its softdeps */
	STRV_FOREACH(s, m->softdeps) {
		_cleanup_strv_free_ char **words = NULL;

		r = strv_split(*s, " \t", &words);
		if (r < 0)
			return r;
		STRV_FOREACH(w, words) {
			if (endswith(*w, ":"))
				continue;
			r = add_kmod(p, KMP_DEP_RECOMMENDS, *w);
			if (r < 0)
				return r;
		}
	}

	src = path_join(b->dir, it->path);
	if (asprintf(&dst, "/lib/modules/%s/updates/%s", b->kver,
		     updates_path(it->path)) < 0 || !src)
		return -ENOMEM;
	r = kmp_package_add_file(p, dst, src, b->epoch);
	if (r < 0)
		return r;

	return write_package(b, p, &it->entry, &it->filename);
}

typedef struct Worker {
	Build *b;
	pthread_t thread;
} Worker;

static void *worker_run(void *userdata)
{
	Worker *w = userdata;
	Build *b = w->b;
	_cleanup_modtree_free_ ModTree *t = NULL;
	_cleanup_free_ char *err = NULL;
	int r;

	r = modtree_open(b->root, b->kver, 0, &t, &err);
	if (r < 0) {
		build_fail(b, r, "Failed to open module tree %s: %s", err ?: b->dir,
			   ERRNO_NAME(r));
		return NULL;
	}

	for (;;) {
		size_t i = atomic_fetch_add(&b->next, 1);
		Item *it;
		const char *vm;

		if (i >= b->n_items || atomic_load(&b->failed))
			break;
		it = &b->items[i];

		r = modtree_read_module(t, it->path, &it->module);
		if (r == -ENOEXEC) {
			build_fail(b, r,
				   "%s/%s is not a valid kernel module (corrupt or truncated); "
				   "replace it or remove it and run depmod.",
				   b->dir, it->path);
			break;
		}
		if (r < 0) {
			build_fail(b, r, "Failed to read module %s/%s: %s", b->dir, it->path,
				   ERRNO_NAME(r));
			break;
		}
		vm = it->module->vermagic;
		if (isempty(vm)) {
			build_fail(b, -EBADMSG,
				   "%s/%s has no vermagic; it was not built for a kernel. Rebuild "
				   "it against %s or remove it and run depmod.",
				   b->dir, it->path, b->kver);
			break;
		}
		if (!startswith(vm, b->kver) || (vm[strlen(b->kver)] != ' ' &&
						   vm[strlen(b->kver)] != 0)) {
			build_fail(b, -EBADMSG,
				   "%s/%s was built for kernel '%.*s', not %s; rebuild it or "
				   "remove it and run depmod.",
				   b->dir, it->path, (int)strcspn(vm, " "), vm, b->kver);
			break;
		}

		if (!it->base) {
			r = build_kmp(b, it);
			if (r < 0) {
				build_fail(b, r, "Failed to write the package of %s/%s: %s",
					   b->dir, it->path, ERRNO_NAME(r));
				break;
			}
		}
		atomic_fetch_add(&b->done, 1);
	}
	return NULL;
}

/* vmlinux's exports: from Module.symvers, or (--no-symvers) every symbol some module needs
 * and no module exports, with the CRC the modules need. */
static int base_add_vmlinux(const Build *b, KmpPackage *p)
{
	_cleanup_hashmap_free_ Hashmap *exported = NULL, *seen = NULL;
	int r;

	if (b->symvers) {
		for (size_t i = 0; i < b->symvers->n_entries; i++) {
			const SymversEntry *e = &b->symvers->entries[i];

			if (!streq(e->module, "vmlinux"))
				continue;
			r = add_ksym(b, p, KMP_DEP_PROVIDES, e->symbol, e->crc);
			if (r < 0)
				return r;
		}
		return 0;
	}

	exported = hashmap_new(NULL, NULL);
	seen = hashmap_new(NULL, NULL);
	if (!exported || !seen)
		return -ENOMEM;
	for (size_t i = 0; i < b->n_items; i++) {
		const Module *m = b->items[i].module;

		for (size_t k = 0; k < m->n_exports; k++) {
			r = hashmap_put(exported, m->exports[k].symbol, (void *)1);
			if (r < 0 && r != -EEXIST)
				return r;
		}
	}
	for (size_t i = 0; i < b->n_items; i++) {
		const Module *m = b->items[i].module;

		for (size_t k = 0; k < m->n_requires; k++) {
			const SymbolCrc *sym = &m->requires[k];

			if (hashmap_contains(exported, sym->symbol))
				continue;
			r = hashmap_put(seen, sym->symbol, (void *)1);
			if (r == -EEXIST)
				continue;
			if (r < 0)
				return r;
			r = add_ksym(b, p, KMP_DEP_PROVIDES, sym->symbol, sym->crc);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int base_add_file(const Build *b, KmpPackage *p, const char *relpath)
{
	_cleanup_free_ char *src = NULL, *dst = NULL;
	int r;

	src = path_join(b->dir, relpath);
	if (!src || asprintf(&dst, "/lib/modules/%s/%s", b->kver, relpath) < 0)
		return log_oom();
	r = kmp_package_add_file(p, dst, src, b->epoch);
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %s", src, ERRNO_NAME(r));
	return 0;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static int build_base(Build *b, RpmmdEntry *ret_entry, char **ret_filename)
{
	_cleanup_kmp_package_free_ KmpPackage *p = NULL;
	_cleanup_free_ char *name = NULL, *summary = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	_cleanup_strv_free_ char **index_files = NULL;
	struct dirent *de;
	int r;

	if (asprintf(&name, "kernel-%s", b->flavour) < 0 ||
	    asprintf(&summary, "Linux %s base: vmlinux symbols and the base modules", b->kver) < 0)
		return log_oom();
	p = kmp_package_new(name, b->version, b->release, ARCH);
	if (!p || add_common(b, p) < 0 || kmp_package_set(&p->summary, summary) < 0 ||
	    kmp_package_set(&p->description,
			    "The kernel's exported symbols (ksym), its release (kernel-uname-r) and "
			    "the base set of modules every system boots with; kernel module "
			    "packages (KMPs) install on top.") < 0 ||
	    kmp_package_add_dep(p, KMP_DEP_PROVIDES, "kernel-uname-r", KMP_DEP_EQUAL, b->kver) < 0 ||
	    base_add_vmlinux(b, p) < 0)
		return log_oom();

	for (size_t i = 0; i < b->n_items; i++) {
		const Item *it = &b->items[i];

		if (!it->base)
			continue;
		if (add_kmod(p, KMP_DEP_PROVIDES, it->name) < 0)
			return log_oom();
		for (size_t k = 0; k < it->module->n_exports; k++)
			if (add_ksym(b, p, KMP_DEP_PROVIDES, it->module->exports[k].symbol,
				     it->module->exports[k].crc) < 0)
				return log_oom();
		r = base_add_file(b, p, it->path);
		if (r < 0)
			return r;
	}

	/* modules.builtin* and modules.order */
	d = opendir(b->dir);
	if (!d)
		return log_error_errno(negative_errno(), "Failed to open %s: %s", b->dir,
				       ERRNO_NAME(errno));
	while ((de = readdir(d)))
		if (startswith(de->d_name, "modules.builtin") || streq(de->d_name, "modules.order"))
			if (strv_extend(&index_files, de->d_name) < 0)
				return log_oom();
	STRV_FOREACH(f, index_files) {
		r = base_add_file(b, p, *f);
		if (r < 0)
			return r;
	}

	r = write_package(b, p, ret_entry, ret_filename);
	if (r < 0)
		return log_error_errno(r, "Failed to write the base package %s: %s", p->name,
				       ERRNO_NAME(r));
	return 0;
}

/* The output directory: ours (marker for the same kernel), empty/new, or refused. */
static int prepare_out(const Build *b)
{
	_cleanup_free_ char *repomd = NULL, *marker = NULL, *want = NULL, *have = NULL,
			    *pkgdir = NULL;
	int r;

	repomd = path_join(arg_out, "repodata/repomd.xml");
	marker = path_join(arg_out, MARKER);
	pkgdir = path_join(arg_out, PKGDIR);
	if (!repomd || !marker || !pkgdir)
		return log_oom();
	if (asprintf(&want, "kmpbuild-repository %s %s%s\n", b->kver, b->flavour,
		     arg_kabi_in_name ? " kabi-in-name" : "") < 0)
		return log_oom();

	if (access(repomd, F_OK) == 0) {
		r = read_full_file(marker, 4096, &have, NULL);
		if ((r < 0 || !streq(have, want)) && !arg_force)
			return log_error_errno(-EEXIST,
					       "%s already holds another repository (%s); choose "
					       "another --out directory or pass --force to "
					       "replace it.",
					       arg_out, r < 0 ? "not written by kmpbuild"
							      : "built for another kernel or flavour");
	}
	r = mkdir_p(pkgdir, 0755);
	if (r < 0)
		return log_error_errno(r, "Failed to create %s: %s", pkgdir, ERRNO_NAME(r));
	r = write_file_atomic(marker, want, strlen(want), 0644);
	if (r < 0)
		return log_error_errno(r, "Failed to write %s: %s", marker, ERRNO_NAME(r));
	return 0;
}

/* Removes package files of earlier builds that this one did not write. */
static void remove_stale_packages(Build *b, const char *base_filename)
{
	_cleanup_hashmap_free_ Hashmap *keep = hashmap_new(NULL, NULL);
	int fd;
	DIR *d;
	struct dirent *de;

	if (!keep)
		return;
	(void)hashmap_put(keep, base_filename, (void *)1);
	for (size_t i = 0; i < b->n_items; i++)
		if (b->items[i].filename)
			(void)hashmap_put(keep, b->items[i].filename, (void *)1);
	fd = openat(b->pkgdir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)))
		if ((endswith(de->d_name, ".rpm") || endswith(de->d_name, ".tmp")) &&
		    !hashmap_contains(keep, de->d_name))
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static int sign_repomd(const Build *b)
{
	_cleanup_free_ char *repomd = NULL, *asc = NULL;
	const char *argv[16];
	int n = 0, status;
	pid_t pid;

	repomd = path_join(arg_out, "repodata/repomd.xml");
	asc = path_join(arg_out, "repodata/repomd.xml.asc");
	if (!repomd || !asc)
		return log_oom();
	argv[n++] = "gpg";
	argv[n++] = "--batch";
	argv[n++] = "--yes";
	argv[n++] = "--quiet";
	if (arg_gpg_homedir) {
		argv[n++] = "--homedir";
		argv[n++] = arg_gpg_homedir;
	}
	argv[n++] = "--local-user";
	argv[n++] = arg_sign_key;
	argv[n++] = "--armor";
	argv[n++] = "--detach-sign";
	argv[n++] = "--output";
	argv[n++] = asc;
	argv[n++] = repomd;
	argv[n] = NULL;

	pid = fork();
	if (pid < 0)
		return log_error_errno(negative_errno(), "Failed to fork gpg: %s", ERRNO_NAME(errno));
	if (pid == 0) {
		execvp("gpg", (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return log_error_errno(negative_errno(), "Failed to wait for gpg: %s", ERRNO_NAME(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return log_error_errno(-EIO,
				       "gpg failed to sign %s with key '%s'; check --sign-key and "
				       "--gpg-homedir (gpg --list-secret-keys).",
				       repomd, arg_sign_key);
	return 0;
}

static void progress(const Build *b, bool final)
{
	size_t done = atomic_load(&b->done);

	fprintf(stderr, "\rkmpbuild: %zu/%zu modules%s", done, b->n_items,
		final ? "\n" : "");
	fflush(stderr);
}

static void help(void)
{
	printf("Usage: kmpbuild --out REPO [OPTIONS]\n"
	       "Turns a kernel's module tree into an rpm-md repository of kernel module\n"
	       "packages (KMPs): one per module, plus a base package kernel-FLAVOUR.\n\n"
	       "  --root DIR          image root holding lib/modules/KVER (default /)\n"
	       "  --kernel KVER       kernel release (default: the only one under --root)\n"
	       "  --flavour F         flavour (default: part of KVER after the last '-')\n"
	       "  --symvers FILE      Module.symvers (default: found beside the tree)\n"
	       "  --no-symvers        without Module.symvers: vmlinux exports are taken from\n"
	       "                      the modules' __versions\n"
	       "  --out REPO          repository directory to write\n"
	       "  --base LIST         base module list (default: the shipped one)\n"
	       "  --kabi-in-name      put the kernel ABI in package names\n"
	       "  --version V         package version (default: the kernel's)\n"
	       "  --release R         package release (default: the kernel's)\n"
	       "  --firmware-requires add Requires: firmware(FILE)\n"
	       "  --sign-key KEY      sign repodata/repomd.xml with gpg (repomd.xml.asc)\n"
	       "  --gpg-homedir DIR   gpg home directory for --sign-key\n"
	       "  --compress-level N  zstd level of package payloads (default 3)\n"
	       "  --force             replace a repository kmpbuild did not write here\n"
	       "  -j, --jobs N        parallel workers (default: online CPUs)\n"
	       "  -q, --quiet         no progress line\n"
	       "  -h, --help          this help\n");
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end || v < min || v > max)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

static int parse_argv(int argc, char *argv[])
{
	enum {
		ARG_ROOT = 0x100,
		ARG_KERNEL,
		ARG_FLAVOUR,
		ARG_SYMVERS,
		ARG_NO_SYMVERS,
		ARG_OUT,
		ARG_BASE,
		ARG_KABI,
		ARG_SIGN_KEY,
		ARG_GPG_HOMEDIR,
		ARG_FORCE,
		ARG_VERSION,
		ARG_RELEASE,
		ARG_FIRMWARE,
		ARG_COMPRESS,
	};
	static const struct option options[] = {
		{ "root", required_argument, NULL, ARG_ROOT },
		{ "kernel", required_argument, NULL, ARG_KERNEL },
		{ "flavour", required_argument, NULL, ARG_FLAVOUR },
		{ "symvers", required_argument, NULL, ARG_SYMVERS },
		{ "no-symvers", no_argument, NULL, ARG_NO_SYMVERS },
		{ "out", required_argument, NULL, ARG_OUT },
		{ "base", required_argument, NULL, ARG_BASE },
		{ "kabi-in-name", no_argument, NULL, ARG_KABI },
		{ "sign-key", required_argument, NULL, ARG_SIGN_KEY },
		{ "gpg-homedir", required_argument, NULL, ARG_GPG_HOMEDIR },
		{ "force", no_argument, NULL, ARG_FORCE },
		{ "version", required_argument, NULL, ARG_VERSION },
		{ "release", required_argument, NULL, ARG_RELEASE },
		{ "firmware-requires", no_argument, NULL, ARG_FIRMWARE },
		{ "compress-level", required_argument, NULL, ARG_COMPRESS },
		{ "jobs", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	unsigned u;
	int c;

	while ((c = getopt_long(argc, argv, "hqj:", options, NULL)) >= 0)
		switch (c) {
		case ARG_ROOT:
			arg_root = optarg;
			break;
		case ARG_KERNEL:
			arg_kernel = optarg;
			break;
		case ARG_FLAVOUR:
			arg_flavour = optarg;
			break;
		case ARG_SYMVERS:
			arg_symvers = optarg;
			break;
		case ARG_NO_SYMVERS:
			arg_no_symvers = true;
			break;
		case ARG_OUT:
			arg_out = optarg;
			break;
		case ARG_BASE:
			arg_base = optarg;
			break;
		case ARG_KABI:
			arg_kabi_in_name = true;
			break;
		case ARG_SIGN_KEY:
			arg_sign_key = optarg;
			break;
		case ARG_GPG_HOMEDIR:
			arg_gpg_homedir = optarg;
			break;
		case ARG_FORCE:
			arg_force = true;
			break;
		case ARG_VERSION:
			arg_version = optarg;
			break;
		case ARG_RELEASE:
			arg_release = optarg;
			break;
		case ARG_FIRMWARE:
			arg_firmware = true;
			break;
		case ARG_COMPRESS:
			if (parse_uint(optarg, 1, 19, &u) < 0)
				return log_error_errno(-EINVAL, "--compress-level: '%s' is not "
								"1..19.", optarg);
			arg_compress_level = (int)u;
			break;
		case 'j':
			if (parse_uint(optarg, 1, 256, &arg_jobs) < 0)
				return log_error_errno(-EINVAL, "--jobs: '%s' is not 1..256.",
						       optarg);
			break;
		case 'q':
			arg_quiet = true;
			break;
		case 'h':
			help();
			return 0;
		case '?':
			return -EINVAL;
		default:
			return -EINVAL;
		}
	if (optind < argc)
		return log_error_errno(-EINVAL, "Unexpected argument '%s'; see --help.",
				       argv[optind]);
	if (!arg_out)
		return log_error_errno(-EINVAL, "No output directory; pass --out REPO.");
	if (arg_symvers && arg_no_symvers)
		return log_error_errno(-EINVAL, "--symvers and --no-symvers exclude each other.");
	if (arg_flavour && (isempty(arg_flavour) || strpbrk(arg_flavour, " \t:()/")))
		return log_error_errno(-EINVAL, "--flavour '%s' is not a usable name.",
				       arg_flavour);
	return 1;
}

static int run(int argc, char *argv[])
{
	_cleanup_(build_done) Build b = { .pkgdir_fd = -EBADF };
	_cleanup_modtree_free_ ModTree *t = NULL;
	_cleanup_free_ char *err = NULL, *kver = NULL, *base_filename = NULL, *pkgdir = NULL;
	_cleanup_free_ RpmmdEntry *entries = NULL;
	_cleanup_free_ Worker *workers = NULL;
	RpmmdEntry base_entry = {};
	unsigned bad_line = 0, n_workers;
	size_t n_entries = 0, n_kmps = 0;
	struct timespec t0, t1;
	bool tty;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_init(&b.lock, NULL);
	r = parse_argv(argc, argv);
	if (r <= 0)
		return r;

	if (!arg_kernel) {
		r = kernel_release_default(arg_root, &kver);
		if (r == -ENOTUNIQ)
			return log_error_errno(r, "%s/lib/modules holds several kernels; pass "
						  "--kernel KVER.",
					       streq(arg_root, "/") ? "" : arg_root);
		if (r < 0)
			return log_error_errno(r, "No kernel found under %s/lib/modules: %s; pass "
						  "--root/--kernel.",
					       streq(arg_root, "/") ? "" : arg_root, ERRNO_NAME(r));
		arg_kernel = kver;
	}

	r = modtree_open(arg_root, arg_kernel, MODTREE_REQUIRE_INDEX, &t, &err);
	if (r < 0)
		return log_error_errno(r, "Failed to open the module tree of %s (%s): %s; check "
					  "--root/--kernel, and run depmod when modules.dep is "
					  "missing.",
				       arg_kernel, strna(err), ERRNO_NAME(r));

	b.root = strdup(arg_root);
	b.kver = strdup(arg_kernel);
	b.flavour = arg_flavour ? strdup(arg_flavour) : kernel_flavour(arg_kernel);
	b.dir = strdup(t->dir);
	if (!b.root || !b.kver || !b.flavour || !b.dir)
		return log_oom();
	b.kabi = kmp_kabi_from_release(b.kver, b.flavour);
	if (!b.kabi)
		return log_oom();

	if (!arg_no_symvers) {
		r = modtree_load_symvers(t, arg_symvers, &bad_line);
		if (r == -EBADMSG)
			return log_error_errno(r, "%s:%u: malformed Module.symvers line; pass a "
						  "good --symvers FILE.",
					       strna(t->error_path), bad_line);
		if (r < 0)
			return log_error_errno(r, "Failed to read %s: %s; pass --symvers FILE.",
					       strna(t->error_path ?: arg_symvers), ERRNO_NAME(r));
		if (!t->symvers)
			return log_error_errno(-ENOENT,
					       "No Module.symvers found for %s (looked in %s/build, "
					       "%s/usr/src/linux-headers-%s, %s/boot/symvers-%s.gz); "
					       "pass --symvers FILE, or --no-symvers to take vmlinux's "
					       "exports from what the modules require.",
					       b.kver, b.dir, streq(b.root, "/") ? "" : b.root, b.kver,
					       streq(b.root, "/") ? "" : b.root, b.kver);
		b.symvers = TAKE_PTR(t->symvers);
	}

	r = find_version(&b);
	if (r < 0)
		return r;
	if (asprintf(&b.sourcerpm, "kernel-%s-%s-%s.src.rpm", b.flavour, b.version,
		     b.release) < 0)
		return log_oom();
	r = find_epoch(&b);
	if (r < 0)
		return r;
	r = parse_modules_dep(&b);
	if (r < 0)
		return r;
	r = load_base(&b, t->ctx);
	if (r < 0)
		return r;

	r = kmp_init();
	if (r < 0)
		return log_error_errno(r, "Failed to initialise librpm: %s", ERRNO_NAME(r));
	r = prepare_out(&b);
	if (r < 0)
		return r;
	pkgdir = path_join(arg_out, PKGDIR);
	if (!pkgdir)
		return log_oom();
	b.pkgdir_fd = open(pkgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b.pkgdir_fd < 0)
		return log_error_errno(negative_errno(), "Failed to open %s: %s", pkgdir, ERRNO_NAME(errno));

	/* the workers: one libkmod context each */
	n_workers = arg_jobs;
	if (n_workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		n_workers = n > 0 ? (unsigned)n : 1;
	}
	if (n_workers > b.n_items)
		n_workers = (unsigned)b.n_items;
	workers = calloc(n_workers, sizeof(Worker));
	if (!workers)
		return log_oom();
	tty = !arg_quiet && isatty(STDERR_FILENO);
	for (unsigned i = 0; i < n_workers; i++) {
		workers[i].b = &b;
		r = -pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]);
		if (r < 0) {
			build_fail(&b, r, "Failed to start a worker thread: %s", ERRNO_NAME(r));
			n_workers = i;
			break;
		}
	}
	if (tty)
		while (atomic_load(&b.done) < b.n_items && !atomic_load(&b.failed) &&
		       atomic_load(&b.next) < b.n_items + n_workers) {
			progress(&b, false);
			nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
		}
	for (unsigned i = 0; i < n_workers; i++)
		pthread_join(workers[i].thread, NULL);
	if (tty)
		progress(&b, true);
	if (b.error_msg)
		return log_error_errno(b.error ?: -EIO, "%s", b.error_msg);

	r = build_base(&b, &base_entry, &base_filename);
	if (r < 0)
		return r;

	entries = calloc(b.n_items + 1, sizeof(RpmmdEntry));
	if (!entries) {
		rpmmd_entry_done(&base_entry);
		return log_oom();
	}
	entries[n_entries++] = base_entry;
	for (size_t i = 0; i < b.n_items; i++)
		if (!b.items[i].base) {
			entries[n_entries++] = b.items[i].entry;
			n_kmps++;
		}
	r = rpmmd_write(arg_out, entries, n_entries, b.epoch, 6, n_workers);
	rpmmd_entry_done(&base_entry);
	if (r < 0)
		return log_error_errno(r, "Failed to write the repository metadata under "
					  "%s/repodata: %s",
				       arg_out, ERRNO_NAME(r));
	remove_stale_packages(&b, base_filename);

	if (arg_sign_key) {
		r = sign_repomd(&b);
		if (r < 0)
			return r;
	}

	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!arg_quiet)
		log_info("Wrote %zu KMPs and %s to %s in %.1f s (%zu base modules).", n_kmps,
			 base_filename, arg_out,
			 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
			 b.n_items - n_kmps);
	return 0;
}

int main(int argc, char *argv[])
{
	log_set_program("kmpbuild");
	return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
