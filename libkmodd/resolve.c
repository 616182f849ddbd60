/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <solv/knownid.h>
#include <solv/dataiterator.h>
#include <solv/pool.h>
#include <solv/poolarch.h>
#include <solv/repo.h>
#include <solv/repo_rpmmd.h>
#include <solv/repo_solv.h>
#include <solv/repo_write.h>
#include <solv/repodata.h>
#include <solv/solv_xfopen.h>
#include <solv/solver.h>
#include <solv/testcase.h>
#include <solv/transaction.h>

#include "db.h"
#include "fileio.h"
#include "hashmap.h"
#include "kmp.h"
#include "log.h"
#include "modtree.h"
#include "repo.h"
#include "resolve.h"
#include "strv.h"
#include "symvers.h"

/* One modalias pattern of an available package, for the alias index. */
typedef struct AliasEntry {
	const char *pattern; /* pool string */
	size_t prefix_len; /* length of the literal prefix (up to the first wildcard) */
	Id p; /* the solvable */
	Id ns; /* the namespace:modalias(P) rel, 0 for a Red Hat provides */
	Id and_; /* the "kernel-F & namespace:modalias(P)" rel, or 0 */
	uint64_t hash; /* FNV-1a of the literal prefix */
	uint32_t next; /* next entry of the same bucket + 1, 0 at the end */
} AliasEntry;

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* A repository added through resolver_add_repo_file(): where its packages are. */
typedef struct FileRepo {
	char *id;
	char *baseurl;
} FileRepo;

struct Resolver {
	char *root;
	char *kver;
	char *flavour;
	Pool *pool;
	Repo *system;
	Id kernel_name; /* kernel-<flavour> */
	Id kernel_p; /* the system solvable */
	Hashmap *tree; /* module name -> (void*)1: modules (and built-ins) of the tree */
	struct kmod_ctx *kctx;

	RepoConfig *configs;
	size_t n_configs;
	char **missing; /* repositories never refreshed */
	char **warnings; /* "no Module.symvers", database trouble */
	FileRepo *file_repos;
	size_t n_file_repos;

	AliasEntry *aliases;
	size_t n_aliases;
	uint32_t *alias_buckets; /* first entry + 1 per bucket of literal-prefix hashes */
	size_t n_alias_buckets; /* a power of two */
	bool prepared;

	char *requested_by;
	char *const *current; /* the modaliases the namespace callback answers for */
	Queue matched; /* alias entries matching the modalias of the last solve */
};

void resolve_result_done(ResolveResult *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_install; i++)
		package_ref_done(&r->install[i]);
	free(r->install);
	strv_free(r->modules);
	strv_free(r->problems);
	*r = (ResolveResult){};
}

Resolver *resolver_free(Resolver *r)
{
	if (!r)
		return NULL;
	if (r->pool)
		pool_free(r->pool);
	queue_free(&r->matched);
	if (r->configs)
		repo_configs_free(r->configs, r->n_configs);
	for (size_t i = 0; i < r->n_file_repos; i++) {
		free(r->file_repos[i].id);
		free(r->file_repos[i].baseurl);
	}
	free(r->file_repos);
	hashmap_free(r->tree);
	if (r->kctx)
		kmod_unref(r->kctx);
	strv_free(r->missing);
	strv_free(r->warnings);
	free(r->aliases);
	free(r->alias_buckets);
	free(r->requested_by);
	free(r->root);
	free(r->kver);
	free(r->flavour);
	free(r);
	return NULL;
}

Pool *resolver_pool(Resolver *r)
{
	return r->pool;
}

const char *resolver_kver(const Resolver *r)
{
	return r->kver;
}

char *const *resolver_missing_repos(const Resolver *r)
{
	return r->missing;
}

char *const *resolver_warnings(const Resolver *r)
{
	return r->warnings;
}

/* libsolv's answer for namespace:modalias(pattern): true only for the modalias being
 * resolved, so no other hardware's supplements ever count. */
static Id namespace_callback(Pool *pool, void *data, Id name, Id evr)
{
	Resolver *r = data;

	if (name != NAMESPACE_MODALIAS)
		return 0;
	STRV_FOREACH(m, r->current)
		if (fnmatch(pool_id2str(pool, evr), *m, 0) == 0)
			return SYSTEMSOLVABLE;
	return 0;
}

static char *normalize_module_name(const char *s)
{
	char *n = strdup(s);

	for (char *c = n; c && *c; c++)
		if (*c == '-')
			*c = '_';
	return n;
}

static int tree_add(Resolver *r, const char *path)
{
	_cleanup_free_ char *name = module_name_from_path(path);
	int k;

	if (!name)
		return -ENOMEM;
	k = hashmap_put(r->tree, name, (void *)1);
	if (k == -EEXIST)
		return 0;
	if (k < 0)
		return k;
	TAKE_PTR(name);
	return 0;
}

/* modules.dep (and modules.builtin) of the tree: the module names it has. */
static int tree_load(Resolver *r, const char *file, bool required)
{
	_cleanup_free_ char *path = NULL, *data = NULL;
	char *line, *save = NULL;
	int k;

	path = path_join(r->root, "lib/modules", r->kver, file);
	if (!path)
		return -ENOMEM;
	k = read_full_file(path, 0, &data, NULL);
	if (k == -ENOENT && !required)
		return 0;
	if (k < 0)
		return k;
	for (line = strtok_r(data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');

		if (colon)
			*colon = 0;
		if (isempty(line))
			continue;
		k = tree_add(r, line);
		if (k < 0)
			return k;
	}
	return 0;
}

static Id dep_with_evr(Pool *pool, const char *name, const char *evr)
{
	Id n = pool_str2id(pool, name, 1);

	if (!evr)
		return n;
	return pool_rel2id(pool, n, pool_str2id(pool, evr, 1), REL_EQ, 1);
}

static void add_ksym(Resolver *r, Solvable *s, const char *sym, uint32_t crc)
{
	_cleanup_free_ char *name = NULL;
	char v[17];

	if (asprintf(&name, "ksym(%s:%s)", r->flavour, sym) < 0)
		return;
	kmp_format_crc(crc, v);
	s->provides =
		repo_addid_dep(r->system, s->provides, dep_with_evr(r->pool, name, v), 0);
}

/* The kernel's solvable is cached as <root>/var/cache/kmodd/system/<kver>-<key>.solv, the key
 * hashing what it is made of (modules.dep, modules.builtin, Module.symvers: path, size,
 * mtime), so a warm start reads no Module.symvers. A cache that cannot be written is no
 * error. */
#define SYSTEM_CACHE_FORMAT "kmodd-system-1"

static void hash_file(uint64_t *h, const char *path)
{
	struct stat st;
	char buf[128];
	int n;

	n = stat(path, &st) < 0 ?
		    snprintf(buf, sizeof(buf), "%s:absent;", path) :
		    snprintf(buf, sizeof(buf), "%s:%lld:%lld.%ld;", path,
			     (long long)st.st_size, (long long)st.st_mtim.tv_sec,
			     st.st_mtim.tv_nsec);
	for (int i = 0; i < n && i < (int)sizeof(buf); i++) {
		*h ^= (unsigned char)buf[i];
		*h *= 0x100000001b3ULL;
	}
}

static char *system_cache_path(Resolver *r, const char *svpath)
{
	_cleanup_free_ char *cache = NULL, *dep = NULL, *builtin = NULL, *name = NULL;
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *parts[] = { SYSTEM_CACHE_FORMAT, r->kver, r->flavour };

	for (size_t i = 0; i < ELEMENTSOF(parts); i++)
		for (const char *c = parts[i]; *c; c++) {
			h ^= (unsigned char)*c;
			h *= 0x100000001b3ULL;
		}
	dep = path_join(r->root, "lib/modules", r->kver, "modules.dep");
	builtin = path_join(r->root, "lib/modules", r->kver, "modules.builtin");
	cache = kmodd_path_cache(r->root);
	if (!dep || !builtin || !cache)
		return NULL;
	hash_file(&h, dep);
	hash_file(&h, builtin);
	hash_file(&h, svpath ?: "-");
	if (asprintf(&name, "system/%s-%016llx.solv", r->kver, (unsigned long long)h) < 0)
		return NULL;
	return path_join(cache, name);
}

static int system_cache_load(Resolver *r, const char *path)
{
	_cleanup_fclose_ FILE *f = NULL;
	Solvable *s;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (repo_add_solv(r->system, f, 0) != 0 || r->system->nsolvables != 1) {
		log_debug("%s: %s, rebuilding", path, pool_errstr(r->pool));
		repo_empty(r->system, 1);
		return -EBADMSG;
	}
	r->kernel_p = r->system->start;
	s = r->pool->solvables + r->kernel_p;
	if (s->name != r->kernel_name) {
		repo_empty(r->system, 1);
		return -EBADMSG;
	}
	return 0;
}

static void system_cache_save(Resolver *r, const char *path)
{
	_cleanup_free_ char *dir = NULL, *tmp = NULL, *prefix = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	const char *slash = strrchr(path, '/');
	DIR *d;
	struct dirent *de;

	dir = strndup(path, (size_t)(slash - path));
	if (!dir || asprintf(&tmp, "%s.%d.tmp", path, (int)getpid()) < 0 ||
	    asprintf(&prefix, "%s-", r->kver) < 0)
		return;
	if (mkdir_p(dir, 0755) < 0)
		return;
	f = fopen(tmp, "wxe");
	if (!f)
		return;
	if (repo_write(r->system, f) != 0 || fflush(f) != 0 || ferror(f)) {
		(void)unlink(tmp);
		return;
	}
	if (rename(tmp, path) < 0) {
		(void)unlink(tmp);
		return;
	}
	/* older generations of this kernel's cache */
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (startswith(de->d_name, prefix) && endswith(de->d_name, ".solv") &&
		    !streq(de->d_name, slash + 1))
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

/* The kernel being served: kernel-<flavour> with kernel-uname-r, kmod() for every module
 * of its tree and ksym() for vmlinux's exports and those of the modules it has. */
static int add_kernel(Resolver *r)
{
	_cleanup_(symvers_freep) Symvers *sv = NULL;
	_cleanup_free_ char *svpath = NULL, *evr = NULL, *name = NULL, *cache = NULL;
	const char *dash;
	Solvable *s;
	const char *mod;
	void *v;
	int k;

	k = tree_load(r, "modules.dep", true);
	if (k < 0)
		return k;
	k = tree_load(r, "modules.builtin", false);
	if (k < 0)
		return k;

	if (asprintf(&name, "kernel-%s", r->flavour) < 0)
		return -ENOMEM;
	/* version-release from the kernel release: "6.1.0-54-amd64" -> "6.1.0-54.amd64" */
	dash = strchr(r->kver, '-');
	if (dash) {
		evr = strdup(r->kver);
		if (!evr)
			return -ENOMEM;
		for (char *c = evr + (dash - r->kver) + 1; *c; c++)
			if (*c == '-')
				*c = '.';
	} else if (asprintf(&evr, "%s-0", r->kver) < 0)
		return -ENOMEM;

	r->kernel_name = pool_str2id(r->pool, name, 1);

	k = symvers_find(r->root, r->kver, &svpath);
	if (k < 0) {
		free(svpath);
		svpath = NULL;
	}
	cache = system_cache_path(r, svpath);
	if (cache && system_cache_load(r, cache) >= 0)
		return 0;

	r->kernel_p = repo_add_solvable(r->system);
	s = r->pool->solvables + r->kernel_p;
	s->name = r->kernel_name;
	s->evr = pool_str2id(r->pool, evr, 1);
	s->arch = ARCH_NOARCH;
	s->provides = repo_addid_dep(r->system, s->provides,
				     pool_rel2id(r->pool, s->name, s->evr, REL_EQ, 1), 0);
	s->provides = repo_addid_dep(r->system, s->provides,
				     dep_with_evr(r->pool, "kernel-uname-r", r->kver), 0);

	HASHMAP_FOREACH_KEY(v, mod, r->tree) {
		_cleanup_free_ char *cap = NULL;

		if (asprintf(&cap, "kmod(%s.ko)", mod) < 0)
			return -ENOMEM;
		s->provides = repo_addid_dep(r->system, s->provides,
					     pool_str2id(r->pool, cap, 1), 0);
	}

	k = svpath ? symvers_load(svpath, &sv, NULL) : -ENOENT;
	if (k < 0) {
		_cleanup_free_ char *w = NULL;

		if (asprintf(&w,
			     "no readable Module.symvers for kernel %s (%s): KMPs needing "
			     "kernel symbols cannot be resolved; install the kernel's headers",
			     r->kver, svpath ?: "not found") >= 0)
			(void)strv_consume(&r->warnings, TAKE_PTR(w));
		return 0;
	}
	for (size_t i = 0; i < sv->n_entries; i++) {
		const SymversEntry *e = &sv->entries[i];

		if (!streq(e->module, "vmlinux")) {
			_cleanup_free_ char *mname = module_name_from_path(e->module);

			if (!mname)
				return -ENOMEM;
			if (!hashmap_contains(r->tree, mname))
				continue;
		}
		add_ksym(r, s, e->symbol, e->crc);
	}
	if (cache)
		system_cache_save(r, cache);
	return 0;
}

static Offset add_deps_text(Resolver *r, Offset off, char *const *deps, Id marker)
{
	STRV_FOREACH(d, deps) {
		Id id = testcase_str2dep(r->pool, *d);

		if (id)
			off = repo_addid_dep(r->system, off, id, marker);
	}
	return off;
}

/* Installed KMPs of this kernel from the database; none when there is no database. */
static int add_installed(Resolver *r)
{
	_cleanup_db_close_ Db *db = NULL;
	DbPackage *pkgs = NULL;
	size_t n = 0;
	int k;

	k = db_open(r->root, false, &db);
	if (k == -ENOENT)
		return 0;
	if (k < 0)
		return k;
	k = db_list_packages(db, r->kver, &pkgs, &n);
	if (k < 0)
		return k;
	for (size_t i = 0; i < n; i++) {
		const PackageRef *ref = &pkgs[i].ref;
		Id p = repo_add_solvable(r->system);
		Solvable *s = r->pool->solvables + p;

		s->name = pool_str2id(r->pool, ref->name, 1);
		s->evr = pool_str2id(r->pool, strempty(ref->evr), 1);
		s->arch = pool_str2id(r->pool, ref->arch ?: "noarch", 1);
		s->provides =
			repo_addid_dep(r->system, s->provides,
				       pool_rel2id(r->pool, s->name, s->evr, REL_EQ, 1),
				       0);
		s->provides = add_deps_text(r, s->provides, ref->provides, 0);
		s->requires = add_deps_text(r, s->requires, ref->requires, 0);
	}
	db_packages_free(pkgs, n);
	return 0;
}

int resolver_new_bare(const char *root, const char *kver, Resolver **ret)
{
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_free_ char *dir = NULL, *c0 = NULL, *c1 = NULL, *c2 = NULL, *c3 = NULL;
	struct utsname u;
	int k;

	if (!root || !kver || isempty(kver) || strchr(kver, '/'))
		return -EINVAL;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->root = strdup(root);
	r->kver = strdup(kver);
	r->flavour = kernel_flavour(kver);
	queue_init(&r->matched);
	r->tree = hashmap_new(free, NULL);
	if (!r->root || !r->kver || !r->flavour || !r->tree)
		return -ENOMEM;

	r->pool = pool_create();
	if (!r->pool)
		return -ENOMEM;
	/* rpm semantics (Debian's libsolv defaults to deb version rules) */
	if (pool_setdisttype(r->pool, DISTTYPE_RPM) < 0)
		return -EOPNOTSUPP;
	pool_setarch(r->pool, uname(&u) >= 0 ? u.machine : "x86_64");
	pool_setnamespacecallback(r->pool, namespace_callback, r);
	r->system = repo_create(r->pool, "@System");
	pool_set_installed(r->pool, r->system);

	k = add_kernel(r);
	if (k < 0)
		return k;
	k = add_installed(r);
	if (k < 0) {
		_cleanup_free_ char *w = NULL;

		if (asprintf(&w,
			     "the installed-package database under %s cannot be read (%s); "
			     "installed KMPs are not taken into account",
			     root, ERRNO_NAME(k)) >= 0)
			(void)strv_consume(&r->warnings, TAKE_PTR(w));
	}

	/* modprobe.d of the root, not of the host */
	dir = path_join(root, "lib/modules", kver);
	c0 = path_join(root, "etc/modprobe.d");
	c1 = path_join(root, "run/modprobe.d");
	c2 = path_join(root, "usr/lib/modprobe.d");
	c3 = path_join(root, "lib/modprobe.d");
	if (!dir || !c0 || !c1 || !c2 || !c3)
		return -ENOMEM;
	{
		const char *configs[] = { c0, c1, c2, c3, NULL };

		r->kctx = kmod_new(dir, configs);
	}
	if (r->kctx) {
		kmod_set_log_priority(r->kctx, LOG_ERR);
		(void)kmod_load_resources(r->kctx);
	}

	*ret = TAKE_PTR(r);
	return 0;
}

int resolver_add_repo_file(Resolver *r, const char *id, const char *path,
			   const char *baseurl)
{
	_cleanup_fclose_ FILE *f = NULL;
	FileRepo *fr;
	Repo *repo;
	int k;

	if (r->prepared)
		return -EBUSY;
	f = solv_xfopen(path, "r");
	if (!f)
		return errno > 0 ? -errno : -EIO;
	repo = repo_create(r->pool, id);
	if (endswith(path, ".solv"))
		k = repo_add_solv(repo, f, 0);
	else
		k = repo_add_rpmmd(repo, f, NULL, 0);
	if (k != 0) {
		log_debug("%s: %s", path, pool_errstr(r->pool));
		repo_free(repo, 1);
		return -EBADMSG;
	}
	fr = reallocarray(r->file_repos, r->n_file_repos + 1, sizeof(FileRepo));
	if (!fr)
		return -ENOMEM;
	r->file_repos = fr;
	fr = &r->file_repos[r->n_file_repos];
	*fr = (FileRepo){ .id = strdup(id), .baseurl = baseurl ? strdup(baseurl) : NULL };
	if (!fr->id)
		return -ENOMEM;
	repo->appdata = NULL;
	repo->subpriority =
		-(int)r->n_file_repos - 1; /* marks a file repository: index = -sub-1 */
	r->n_file_repos++;
	return 0;
}

static int add_configured_repos(Resolver *r)
{
	_cleanup_strv_free_ char **warnings = NULL;
	int k;

	k = repo_configs_load(r->root, &r->configs, &r->n_configs, &warnings);
	if (k == -ENOENT)
		return 0;
	if (k < 0)
		return k;
	STRV_FOREACH(w, warnings)
		(void)strv_extend(&r->warnings, *w);
	return repo_add_cached_to_pool(r->root, r->pool, r->configs, r->n_configs,
				       &r->missing);
}

/* Length of the literal part of an fnmatch pattern. */
static size_t literal_prefix(const char *p)
{
	return strcspn(p, "*?[\\");
}

/* The pattern of a modalias dependency, or NULL: "kernel-F & namespace:modalias(P)" as
 * libsolv rewrites SUSE's modalias(kernel-F:P) (for our flavour only), namespace:modalias(P)
 * as it rewrites modalias(P), and Red Hat's Provides: modalias(P). */
static const char *modalias_pattern(Resolver *r, Id dep)
{
	Pool *pool = r->pool;
	Reldep *rd;

	if (!ISRELDEP(dep))
		return NULL;
	rd = GETRELDEP(pool, dep);
	if (rd->flags == REL_AND && rd->name == r->kernel_name && ISRELDEP(rd->evr))
		return modalias_pattern(r, rd->evr);
	if (rd->flags == REL_NAMESPACE && rd->name == NAMESPACE_MODALIAS &&
	    !ISRELDEP(rd->evr))
		return pool_id2str(pool, rd->evr);
	return NULL;
}

static int alias_push(AliasEntry **a, size_t *allocated, size_t *n, const char *pattern,
		      Id p, Id ns, Id and_)
{
	if (!GREEDY_REALLOC(*a, *allocated, *n + 1))
		return -ENOMEM;
	size_t l = literal_prefix(pattern);
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < l; i++) {
		h ^= (unsigned char)pattern[i];
		h *= FNV_PRIME;
	}
	(*a)[(*n)++] = (AliasEntry){ .pattern = pattern,
				     .prefix_len = l,
				     .p = p,
				     .ns = ns,
				     .and_ = and_,
				     .hash = h };
	return 0;
}

/* The alias index: every modalias pattern of every available package, hashed by its
 * literal prefix, so a lookup tries only the patterns whose prefix the modalias starts with. */
static int build_alias_index(Resolver *r)
{
	Pool *pool = r->pool;
	AliasEntry *a = NULL;
	uint32_t *buckets = NULL;
	size_t allocated = 0, n = 0, nb;
	Solvable *s;
	Id p;

	FOR_POOL_SOLVABLES(p) {
		s = pool->solvables + p;
		if (s->repo == r->system)
			continue;
		if (s->supplements)
			for (Id *dp = s->repo->idarraydata + s->supplements; *dp; dp++) {
				const char *pat = modalias_pattern(r, *dp);
				Reldep *rd;

				if (!pat)
					continue;
				rd = GETRELDEP(pool, *dp);
				if (rd->flags == REL_AND &&
				    alias_push(&a, &allocated, &n, pat, p, rd->evr, *dp) <
					    0)
					goto oom;
				if (rd->flags != REL_AND &&
				    alias_push(&a, &allocated, &n, pat, p, *dp, 0) < 0)
					goto oom;
			}
		if (s->provides)
			for (Id *dp = s->repo->idarraydata + s->provides; *dp; dp++) {
				const char *str, *pat;
				size_t len;
				Id id;

				if (ISRELDEP(*dp))
					continue;
				str = pool_id2str(pool, *dp);
				pat = startswith(str, "modalias(");
				if (!pat || !endswith(pat, ")"))
					continue;
				/* Red Hat: modalias(P); the pattern without ')' interned */
				len = strlen(pat) - 1;
				id = pool_strn2id(pool, pat, (unsigned)len, 1);
				if (alias_push(&a, &allocated, &n, pool_id2str(pool, id),
					       p, 0, 0) < 0)
					goto oom;
			}
	}
	nb = 64;
	while (nb < 2 * n)
		nb *= 2;
	buckets = calloc(nb, sizeof(uint32_t));
	if (!buckets)
		goto oom;
	/* chained in reverse, so each bucket lists its entries in pool order */
	for (size_t i = n; i-- > 0;) {
		size_t b = a[i].hash & (nb - 1);

		a[i].next = buckets[b];
		buckets[b] = (uint32_t)(i + 1);
	}
	free(r->aliases);
	free(r->alias_buckets);
	r->aliases = a;
	r->n_aliases = n;
	r->alias_buckets = buckets;
	r->n_alias_buckets = nb;
	return 0;
oom:
	free(a);
	return -ENOMEM;
}

/* libsolv caches namespace answers in whatprovides_rel, and evaluates the supplements of
 * every package in each solve (rules for weak dependencies). pool_flush_namespaceproviders()
 * clears answers one at a time, each time scanning every rel: about a second per solve on a
 * 4,000-KMP repository. Only the answers for patterns that matched the previous modalias or
 * match the next one can change, and the alias index knows both sets, so those are cleared
 * alone: every other cached answer ("no match") stays true. */
static void flush_namespace_answers(Resolver *r, const Queue *next)
{
	Pool *pool = r->pool;
	const Queue *sets[] = { &r->matched, next };

	if (!pool->whatprovides_rel)
		return;
	for (size_t k = 0; k < ELEMENTSOF(sets); k++)
		for (int i = 0; i < sets[k]->count; i++) {
			const AliasEntry *e = &r->aliases[sets[k]->elements[i]];

			if (e->ns)
				pool->whatprovides_rel[GETRELID(e->ns)] = 0;
			if (e->and_)
				pool->whatprovides_rel[GETRELID(e->and_)] = 0;
		}
}

int resolver_prepare(Resolver *r)
{
	int k;

	if (r->prepared)
		return 0;
	pool_addfileprovides(r->pool);
	pool_createwhatprovides(r->pool);
	k = build_alias_index(r);
	if (k < 0)
		return k;
	r->prepared = true;
	return 0;
}

int resolver_new(const char *root, const char *kver, Resolver **ret)
{
	_cleanup_resolver_free_ Resolver *r = NULL;
	int k;

	k = resolver_new_bare(root, kver, &r);
	if (k < 0)
		return k;
	k = add_configured_repos(r);
	if (k < 0)
		return k;
	k = resolver_prepare(r);
	if (k < 0)
		return k;
	*ret = TAKE_PTR(r);
	return 0;
}

/* Solvables whose modalias patterns match m, each once, in q; the matching index entries
 * appended to entries when given. */
static void alias_lookup(Resolver *r, const char *m, Queue *q, Queue *entries)
{
	size_t len = strlen(m);

	uint64_t h = FNV_OFFSET;

	queue_empty(q);
	if (r->n_aliases == 0)
		return;
	/* every prefix of m, hashed as it grows: the patterns whose literal prefix it is */
	for (size_t l = 0; l <= len; l++) {
		for (uint32_t e = r->alias_buckets[h & (r->n_alias_buckets - 1)]; e;
		     e = r->aliases[e - 1].next) {
			const AliasEntry *a = &r->aliases[e - 1];

			if (a->hash != h || a->prefix_len != l ||
			    memcmp(a->pattern, m, l) != 0 ||
			    fnmatch(a->pattern, m, 0) != 0)
				continue;
			queue_pushunique(q, a->p);
			if (entries)
				queue_push(entries, (Id)(e - 1));
		}
		if (l < len) {
			h ^= (unsigned char)m[l];
			h *= FNV_PRIME;
		}
	}
}

/* The module names a solvable provides: kmod(<name>.ko). */
static int solvable_modules(Pool *pool, Solvable *s, char ***ret)
{
	_cleanup_strv_free_ char **l = NULL;

	if (s->provides)
		for (Id *dp = s->repo->idarraydata + s->provides; *dp; dp++) {
			const char *str, *a;

			if (ISRELDEP(*dp))
				continue;
			str = pool_id2str(pool, *dp);
			a = startswith(str, "kmod(");
			if (!a || !endswith(a, ".ko)"))
				continue;
			if (strv_consume(&l, strndup(a, strlen(a) - 4)) < 0)
				return -ENOMEM;
		}
	*ret = TAKE_PTR(l);
	return 0;
}

static bool provided_by_installed(Resolver *r, Id dep)
{
	Pool *pool = r->pool;
	Id p, pp;

	FOR_PROVIDES(p, pp, dep)
		if (pool->solvables[p].repo == r->system)
			return true;
	return false;
}

static bool provided_by_available(Resolver *r, Id dep)
{
	Pool *pool = r->pool;
	Id p, pp;

	FOR_PROVIDES(p, pp, dep)
		if (pool->solvables[p].repo != r->system && p != SYSTEMSOLVABLE)
			return true;
	return false;
}

static Id kmod_dep(Resolver *r, const char *module, bool create)
{
	_cleanup_free_ char *n = normalize_module_name(module), *cap = NULL;

	if (!n || asprintf(&cap, "kmod(%s.ko)", n) < 0)
		return 0;
	return pool_str2id(r->pool, cap, create);
}

bool resolver_module_installed(Resolver *r, const char *module)
{
	_cleanup_free_ char *n = normalize_module_name(module);

	return n && hashmap_contains(r->tree, n);
}

static int problem_push(char ***problems, const char *fmt, ...) _printf_(2, 3);
static int problem_push(char ***problems, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int k;

	va_start(ap, fmt);
	k = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (k < 0)
		return -ENOMEM;
	return strv_consume(problems, s);
}

/* Modules of the tree that serve a modalias (libkmod's lookup in the tree's indexes, the
 * way modprobe finds them); built-in ones count as served with nothing to load. */
static int tree_lookup_modalias(Resolver *r, const char *m, char ***modules, bool *ret_any)
{
	struct kmod_list *list = NULL, *l;
	int k;

	*ret_any = false;
	if (!r->kctx)
		return 0;
	k = kmod_module_new_from_lookup(r->kctx, m, &list);
	if (k < 0)
		return 0;
	kmod_list_foreach(l, list) {
		struct kmod_module *mod = kmod_module_get_module(l);
		const char *path = kmod_module_get_path(mod);
		const char *name = kmod_module_get_name(mod);

		*ret_any = true;
		if (path && !strv_contains(*modules, name) &&
		    strv_extend(modules, name) < 0) {
			kmod_module_unref(mod);
			kmod_module_unref_list(list);
			return -ENOMEM;
		}
		kmod_module_unref(mod);
	}
	kmod_module_unref_list(list);
	return 0;
}

static char *dep_to_string(Resolver *r, Id dep)
{
	Pool *pool = r->pool;

	if (ISRELDEP(dep)) {
		Reldep *rd = GETRELDEP(pool, dep);
		const char *pat = modalias_pattern(r, dep);
		char *s;

		if (pat && rd->flags == REL_AND) {
			if (asprintf(&s, "modalias(%s:%s)", pool_id2str(pool, rd->name),
				     pat) < 0)
				return NULL;
			return s;
		}
		if (pat) {
			if (asprintf(&s, "modalias(%s)", pat) < 0)
				return NULL;
			return s;
		}
	}
	return strdup(testcase_dep2str(pool, dep));
}

static int deps_to_strv(Resolver *r, Solvable *s, Offset off, char ***ret)
{
	_cleanup_strv_free_ char **l = NULL;

	if (off)
		for (Id *dp = s->repo->idarraydata + off; *dp; dp++) {
			if (*dp == SOLVABLE_PREREQMARKER || *dp == SOLVABLE_FILEMARKER)
				continue;
			if (strv_consume(&l, dep_to_string(r, *dp)) < 0)
				return -ENOMEM;
		}
	*ret = TAKE_PTR(l);
	return 0;
}

static const char *repo_id_of(Resolver *r, Repo *repo, const char **ret_baseurl)
{
	*ret_baseurl = NULL;
	if (repo->subpriority < 0 && !repo->appdata) {
		size_t i = (size_t)(-repo->subpriority - 1);

		if (i < r->n_file_repos) {
			*ret_baseurl = r->file_repos[i].baseurl;
			return r->file_repos[i].id;
		}
	}
	if (repo->appdata)
		return ((RepoConfig *)repo->appdata)->id;
	return repo->name;
}

static int make_ref(Resolver *r, Id p, InstallReason reason, const char *device,
		    const char *requested_by, PackageRef *ret)
{
	Pool *pool = r->pool;
	Solvable *s = pool->solvables + p;
	PackageRef ref = { .reason = reason };
	const char *baseurl, *id, *chk, *loc;
	Id type = 0;
	int k;

	id = repo_id_of(r, s->repo, &baseurl);
	ref.name = strdup(pool_id2str(pool, s->name));
	ref.evr = strdup(pool_id2str(pool, s->evr));
	ref.arch = strdup(pool_id2str(pool, s->arch));
	ref.repo_id = id ? strdup(id) : NULL;
	if (!ref.name || !ref.evr || !ref.arch)
		goto oom;
	loc = solvable_lookup_location(s, NULL);
	if (s->repo->appdata)
		ref.url = repo_solvable_url(pool, p);
	else if (baseurl && loc && asprintf(&ref.url, "%s/%s", baseurl, loc) < 0)
		goto oom;
	chk = solvable_lookup_checksum(s, SOLVABLE_CHECKSUM, &type);
	if (chk && type == REPOKEY_TYPE_SHA256 && !(ref.checksum = strdup(chk)))
		goto oom;
	ref.download_size = solvable_lookup_num(s, SOLVABLE_DOWNLOADSIZE, 0);
	if ((k = deps_to_strv(r, s, s->provides, &ref.provides)) < 0 ||
	    (k = deps_to_strv(r, s, s->requires, &ref.requires)) < 0 ||
	    (k = deps_to_strv(r, s, s->supplements, &ref.supplements)) < 0 ||
	    (k = deps_to_strv(r, s, s->recommends, &ref.recommends)) < 0)
		goto oom;
	if ((device && !(ref.device = strdup(device))) ||
	    (requested_by && !(ref.requested_by = strdup(requested_by))))
		goto oom;
	*ret = ref;
	return 0;
oom:
	package_ref_done(&ref);
	return -ENOMEM;
}

/* What the kernel being served provides for a dependency's name ("ksym(amd64:x)"): the
 * version it provides, or NULL. */
static const char *kernel_version_of(Resolver *r, Id dep)
{
	Pool *pool = r->pool;
	Solvable *k = pool->solvables + r->kernel_p;
	Id name = dep;

	if (ISRELDEP(dep))
		name = GETRELDEP(pool, dep)->name;
	if (!k->provides)
		return NULL;
	for (Id *pp = k->repo->idarraydata + k->provides; *pp; pp++) {
		Reldep *rd;

		if (!ISRELDEP(*pp))
			continue;
		rd = GETRELDEP(pool, *pp);
		if (rd->name == name && rd->flags == REL_EQ)
			return pool_id2str(pool, rd->evr);
	}
	return NULL;
}

/* A problem of the solver in plain words. */
static int describe_problem(Resolver *r, Solver *solv, Id problem, char ***problems)
{
	Pool *pool = r->pool;
	Queue rules;
	int k = 0, n = 0;

	queue_init(&rules);
	solver_findallproblemrules(solv, problem, &rules);
	for (int i = 0; i < rules.count; i++) {
		Id source, target, dep;
		SolverRuleinfo type =
			solver_ruleinfo(solv, rules.elements[i], &source, &target, &dep);
		const char *what, *who, *has;

		if (type != SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP &&
		    type != SOLVER_RULE_PKG_REQUIRES)
			continue;
		what = pool_dep2str(pool, dep);
		who = pool_solvid2str(pool, source);
		if (startswith(what, "ksym(")) {
			has = kernel_version_of(r, dep);
			k = problem_push(
				problems,
				"no repository offers %s needed by %s for kernel %s (%s%s%s)",
				what, who, r->kver,
				has ? "the kernel exports it with CRC " :
				      "the kernel does not "
				      "export it",
				strempty(has),
				has ? ": a KMP built for another kernel" : "");
		} else
			k = problem_push(problems, "no %s offers %s needed by %s",
					 type == SOLVER_RULE_PKG_REQUIRES ?
						 "installable package" :
						 "repository",
					 what, who);
		n++;
		if (k < 0)
			break;
	}
	if (k >= 0 && n == 0)
		k = problem_push(problems, "%s", solver_problem2str(solv, problem));
	queue_free(&rules);
	return k < 0 ? k : 0;
}

/* KMODD_SOLVER_TESTCASE=DIR: every solve is written there as a libsolv testcase (the whole
 * pool, the job, the result), to replay with testsolv. */
static void dump_testcase(Solver *solv)
{
	const char *dir = secure_getenv("KMODD_SOLVER_TESTCASE");

	if (isempty(dir))
		return;
	if (!testcase_write(solv, dir,
			    TESTCASE_RESULT_TRANSACTION | TESTCASE_RESULT_PROBLEMS, NULL,
			    NULL))
		log_debug("Failed to write a solver testcase to %s: %s", dir,
			  pool_errstr(solv->pool));
}

static int add_alias_recommends(Resolver *r, Solver *solv, const char *kmod_arg,
				Queue *job)
{
	_cleanup_strv_free_ char **tree_mods = NULL;
	_cleanup_free_ char *alias = strndup(kmod_arg, strlen(kmod_arg) - 4);
	bool any_tree = false;
	Queue c;
	int added = 0, k;

	if (!alias)
		return -ENOMEM;
	k = tree_lookup_modalias(r, alias, &tree_mods, &any_tree);
	if (k < 0)
		return k;
	if (any_tree)
		return 0;
	queue_init(&c);
	alias_lookup(r, alias, &c, NULL);
	for (int i = 0; i < c.count; i++) {
		Id p = c.elements[i];
		bool queued = false;

		if (solver_get_decisionlevel(solv, p) > 0)
			continue;
		for (int j = 0; j + 1 < job->count; j += 2)
			if (job->elements[j + 1] == p &&
			    (job->elements[j] & SOLVER_SELECTMASK) == SOLVER_SOLVABLE)
				queued = true;
		if (queued)
			continue;
		queue_push2(job, SOLVER_INSTALL | SOLVER_SOLVABLE | SOLVER_WEAK, p);
		added++;
	}
	queue_free(&c);
	return added;
}

static int add_recommends(Resolver *r, Solver *solv, Transaction *t, Queue *job,
			  Queue *asked)
{
	Pool *pool = r->pool;
	int added = 0, k;

	for (int i = 0; i < t->steps.count; i++) {
		Id p = t->steps.elements[i];
		Solvable *s = pool->solvables + p;

		if (!s->recommends)
			continue;
		for (Id *dp = s->repo->idarraydata + s->recommends; *dp; dp++) {
			Id q, qq;
			bool done = false;

			/* a softdep on an alias ("pre: platform:idma64") as kmod(platform:idma64.ko):
			 * the packages that serve the alias, as modprobe resolves it */
			if (!ISRELDEP(*dp)) {
				const char *a =
					startswith(pool_id2str(pool, *dp), "kmod(");

				if (a && strchr(a, ':') && endswith(a, ".ko)")) {
					k = add_alias_recommends(r, solv, a, job);
					if (k < 0)
						return k;
					added += k;
					continue;
				}
			}
			FOR_PROVIDES(q, qq, *dp)
				if (solver_get_decisionlevel(solv, q) > 0) {
					done = true;
					break;
				}
			if (done || !provided_by_available(r, *dp))
				continue;
			for (int a = 0; a < asked->count; a++)
				if (asked->elements[a] == *dp)
					done = true;
			if (done)
				continue;
			queue_push(asked, *dp);
			queue_push2(job,
				    SOLVER_INSTALL | SOLVER_SOLVABLE_PROVIDES |
					    SOLVER_WEAK,
				    *dp);
			added++;
		}
	}
	return added;
}

int resolver_solve(Resolver *r, NeedKind kind, char *const *needs, InstallReason reason,
		   const char *device, ResolveResult *ret)
{
	_cleanup_(resolve_result_done) ResolveResult res = {};
	_cleanup_free_ char *joined = NULL;
	Pool *pool = r->pool;
	Queue job, cand, explicit_p, next;
	Queue asked;
	Solver *solv = NULL;
	Transaction *t = NULL;
	bool missing = false;
	int k = 0;

	if (!r->prepared) {
		k = resolver_prepare(r);
		if (k < 0)
			return k;
	}
	if (kind < 0 || kind >= _NEED_KIND_MAX || strv_length(needs) == 0)
		return -EINVAL;
	joined = r->requested_by ? strdup(r->requested_by) : strv_join(needs, " ");
	if (!joined)
		return -ENOMEM;

	queue_init(&job);
	queue_init(&cand);
	queue_init(&explicit_p);
	queue_init(&next);
	queue_init(&asked);

	/* the kernel stays as it is: never replaced by a repository's base package */
	queue_push2(&job, SOLVER_LOCK | SOLVER_SOLVABLE_NAME, r->kernel_name);

	STRV_FOREACH(need, needs) {
		switch (kind) {
		case NEED_MODALIAS: {
			bool any_tree = false;

			k = tree_lookup_modalias(r, *need, &res.modules, &any_tree);
			if (k < 0)
				goto finish;
			alias_lookup(r, *need, &cand, &next);
			for (int i = 0; i < cand.count; i++) {
				Id p = cand.elements[i];
				_cleanup_strv_free_ char **mods = NULL;
				bool all_installed = true;

				k = solvable_modules(pool, pool->solvables + p, &mods);
				if (k < 0)
					goto finish;
				STRV_FOREACH(m, mods)
					if (!hashmap_contains(r->tree, *m) &&
					    !provided_by_installed(r,
								   kmod_dep(r, *m, true)))
						all_installed = false;
				if (all_installed && mods)
					continue; /* served by what the tree has */
				queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE, p);
				queue_pushunique(&explicit_p, p);
				STRV_FOREACH(m, mods)
					if (!strv_contains(res.modules, *m) &&
					    strv_extend(&res.modules, *m) < 0) {
						k = -ENOMEM;
						goto finish;
					}
			}
			if (cand.count == 0 && !any_tree) {
				k = problem_push(&res.problems,
						 "nothing provides modalias %s: no "
						 "module of kernel %s and no package "
						 "of the enabled repositories matches it",
						 *need, r->kver);
				if (k < 0)
					goto finish;
				missing = true;
			}
			break;
		}
		case NEED_MODULE: {
			_cleanup_free_ char *n = normalize_module_name(*need);
			Id dep;

			if (!n) {
				k = -ENOMEM;
				goto finish;
			}
			if (endswith(n, ".ko"))
				n[strlen(n) - 3] = 0;
			dep = kmod_dep(r, n, true);
			if (!strv_contains(res.modules, n) &&
			    strv_extend(&res.modules, n) < 0) {
				k = -ENOMEM;
				goto finish;
			}
			if (hashmap_contains(r->tree, n) || provided_by_installed(r, dep))
				break;
			if (!provided_by_available(r, dep)) {
				k = problem_push(&res.problems,
						 "no repository offers module %s "
						 "(kmod(%s.ko)) for kernel %s",
						 n, n, r->kver);
				if (k < 0)
					goto finish;
				missing = true;
				break;
			}
			queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE_PROVIDES, dep);
			break;
		}
		case NEED_CAPABILITY: {
			Id dep = testcase_str2dep(pool, *need);

			if (!dep) {
				k = -EINVAL;
				goto finish;
			}
			if (provided_by_installed(r, dep))
				break;
			if (!provided_by_available(r, dep)) {
				k = problem_push(&res.problems,
						 "no repository offers %s for kernel %s",
						 *need, r->kver);
				if (k < 0)
					goto finish;
				missing = true;
				break;
			}
			queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE_PROVIDES, dep);
			break;
		}
		case NEED_PACKAGE: {
			Id name = pool_str2id(pool, *need, 0);
			Id p, pp;
			bool inst = false, avail = false;

			if (name)
				FOR_PROVIDES(p, pp, name) {
					if (pool->solvables[p].name != name)
						continue;
					if (pool->solvables[p].repo == r->system)
						inst = true;
					else
						avail = true;
				}
			if (inst)
				break;
			if (!avail) {
				k = problem_push(&res.problems,
						 "no repository offers a package named "
						 "%s",
						 *need);
				if (k < 0)
					goto finish;
				missing = true;
				break;
			}
			queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE_NAME, name);
			break;
		}
		case _NEED_KIND_MAX:
		case _NEED_KIND_INVALID:
			k = -EINVAL;
			goto finish;
		}
	}

	if (missing) {
		k = -ENOENT;
		goto finish;
	}

	flush_namespace_answers(r, &next);
	queue_free(&r->matched);
	r->matched = next;
	queue_init(&next);
	r->current = kind == NEED_MODALIAS ? needs : NULL;

	if (job.count > 2) {
		for (int round = 0; round < 16; round++) {
			int nproblems;

			if (solv)
				solver_free(solv);
			if (t) {
				transaction_free(t);
				t = NULL;
			}
			solv = solver_create(pool);
			solver_set_flag(solv, SOLVER_FLAG_IGNORE_RECOMMENDED, 1);
			nproblems = solver_solve(solv, &job);
			dump_testcase(solv);
			if (nproblems != 0) {
				for (Id pr = 1; pr <= nproblems; pr++) {
					k = describe_problem(r, solv, pr, &res.problems);
					if (k < 0)
						goto finish;
				}
				k = -EDEADLK;
				goto finish;
			}
			t = solver_create_transaction(solv);
			k = add_recommends(r, solv, t, &job, &asked);
			if (k < 0)
				goto finish;
			if (k == 0)
				break;
		}
		transaction_order(t, 0);

		/* which packages the jobs named: the rest came in as dependencies */
		for (int i = 0; i < job.count; i += 2) {
			Id how = job.elements[i] & SOLVER_SELECTMASK;
			Id what = job.elements[i + 1], p, pp;

			if ((job.elements[i] & SOLVER_JOBMASK) != SOLVER_INSTALL ||
			    (job.elements[i] & SOLVER_WEAK))
				continue;
			if (how == SOLVER_SOLVABLE)
				queue_pushunique(&explicit_p, what);
			else
				FOR_JOB_SELECT(p, pp, how, what)
					if (solver_get_decisionlevel(solv, p) > 0)
						queue_pushunique(&explicit_p, p);
		}

		res.install = calloc(t->steps.count ?: 1, sizeof(PackageRef));
		if (!res.install) {
			k = -ENOMEM;
			goto finish;
		}
		for (int i = 0; i < t->steps.count; i++) {
			Id p = t->steps.elements[i];
			Id type = transaction_type(t, p, SOLVER_TRANSACTION_SHOW_ACTIVE);
			bool expl = false;

			if (type != SOLVER_TRANSACTION_INSTALL)
				continue;
			for (int e = 0; e < explicit_p.count; e++)
				if (explicit_p.elements[e] == p)
					expl = true;
			k = make_ref(r, p, expl ? reason : INSTALL_REASON_DEPENDENCY,
				     device, joined, &res.install[res.n_install]);
			if (k < 0)
				goto finish;
			res.n_install++;
			if (expl && kind != NEED_MODALIAS) {
				_cleanup_strv_free_ char **mods = NULL;

				k = solvable_modules(pool, pool->solvables + p, &mods);
				if (k < 0)
					goto finish;
				STRV_FOREACH(m, mods)
					if (!strv_contains(res.modules, *m) &&
					    strv_extend(&res.modules, *m) < 0) {
						k = -ENOMEM;
						goto finish;
					}
			}
		}
	}
	res.already = res.n_install == 0;
	*ret = res;
	res = (ResolveResult){};
	k = 0;
finish:
	r->current = NULL;
	if (t)
		transaction_free(t);
	if (solv)
		solver_free(solv);
	queue_free(&job);
	queue_free(&cand);
	queue_free(&explicit_p);
	queue_free(&next);
	queue_free(&asked);
	if (k < 0 && ret && (k == -ENOENT || k == -EDEADLK)) {
		/* the problems travel with the error */
		*ret = (ResolveResult){ .problems = TAKE_PTR(res.problems) };
	}
	return k;
}

int resolver_what_provides(Resolver *r, const char *what, bool modalias, Queue *ret)
{
	Pool *pool = r->pool;
	int k;

	if (!r->prepared) {
		k = resolver_prepare(r);
		if (k < 0)
			return k;
	}
	queue_empty(ret);
	if (modalias) {
		alias_lookup(r, what, ret, NULL);
		return 0;
	} else {
		Id dep = testcase_str2dep(pool, what), p, pp;

		if (!dep)
			return -EINVAL;
		FOR_PROVIDES(p, pp, dep)
			if (p != SYSTEMSOLVABLE)
				queue_push(ret, p);
	}
	return 0;
}

int resolver_solvable_ref(Resolver *r, Id p, PackageRef *ret)
{
	return make_ref(r, p, INSTALL_REASON_USER, NULL, NULL, ret);
}

bool resolver_solvable_installed(Resolver *r, Id p)
{
	return r->pool->solvables[p].repo == r->system;
}

int resolver_solvable_modules(Resolver *r, Id p, char ***ret)
{
	return solvable_modules(r->pool, r->pool->solvables + p, ret);
}

int resolver_available_modules(Resolver *r, char ***ret)
{
	_cleanup_strv_free_ char **l = NULL;
	Pool *pool = r->pool;
	Id p;

	FOR_POOL_SOLVABLES(p) {
		_cleanup_strv_free_ char **mods = NULL;
		Solvable *s = pool->solvables + p;

		if (s->repo == r->system)
			continue;
		if (solvable_modules(pool, s, &mods) < 0)
			return -ENOMEM;
		STRV_FOREACH(m, mods)
			if (strv_extend(&l, *m) < 0)
				return -ENOMEM;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

int resolver_set_requested_by(Resolver *r, const char *requested_by)
{
	char *s = NULL;

	if (requested_by && !(s = strdup(requested_by)))
		return -ENOMEM;
	free(r->requested_by);
	r->requested_by = s;
	return 0;
}

/* The module path of a repository package inside the kernel tree ("kernel/net/..."): from
 * its file list when the metadata has one, else from the description kmpbuild writes. */
char *resolver_solvable_tree_path(Resolver *r, Id p)
{
	Pool *pool = r->pool;
	Solvable *s = pool->solvables + p;
	_cleanup_free_ char *prefix = NULL;
	const char *d, *m, *end;
	Dataiterator di;
	char *ret = NULL;

	if (asprintf(&prefix, "/lib/modules/%s/", r->kver) < 0)
		return NULL;
	dataiterator_init(&di, pool, s->repo, p, SOLVABLE_FILELIST, NULL, 0);
	while (dataiterator_step(&di)) {
		const char *f = di.kv.str, *rest;
		_cleanup_free_ char *full = NULL;

		if (di.key->type == REPOKEY_TYPE_DIRSTRARRAY) {
			full = strdup(repodata_dir2str(di.data, di.kv.id, di.kv.str));
			f = full;
		}
		rest = f ? startswith(f, prefix) : NULL;
		if (rest && (endswith(rest, ".ko") || strstr(rest, ".ko."))) {
			ret = strdup(rest);
			break;
		}
	}
	dataiterator_free(&di);
	if (ret)
		return ret;
	d = solvable_lookup_str(s, SOLVABLE_DESCRIPTION);
	m = d ? strstr(d, "The module ") : NULL;
	if (!m)
		return NULL;
	m += strlen("The module ");
	end = strchr(m, ' ');
	if (!end || !strstr(m, ".ko") || strstr(m, ".ko") > end)
		return NULL;
	return strndup(m, (size_t)(end - m));
}
