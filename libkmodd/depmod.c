/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <libkmod.h>

#include "depmod.h"
#include "fileio.h"
#include "hashmap.h"
#include "kmodd-cleanup.h"
#include "kmodindex.h"
#include "log.h"
#include "modelf.h"
#include "strv.h"

#define CACHE_NAME ".kmodd-depmod.cache"
#define JOURNAL_NAME ".kmodd-depmod.journal"
#define JOURNAL_MAGIC "kmodd-depmod-journal 2"
#define JOURNAL_SIZE 4096
#define SPARE_PREFIX ".kmodd-spare."
/* version 1 published through temporaries and a journal that existed only during the publish;
 * recovery still finishes such a publish */
#define JOURNAL_NEW ".kmodd-depmod.journal.new"
#define TMP_PREFIX ".kmodd-tmp."
#define JOURNAL_MAGIC_V1 "kmodd-depmod-journal 1"

/* The compressions Debian's kmod 30 depmod indexes (built without zlib). */
static const char *const kmod_exts[] = { ".ko", ".ko.xz", ".ko.zst", NULL };

/* Publish order: what a lookup reaches first (aliases) is replaced last. */
enum {
	F_DEP,
	F_DEP_BIN,
	F_SYMBOLS,
	F_SYMBOLS_BIN,
	F_SOFTDEP,
	F_DEVNAME,
	F_BUILTIN_BIN,
	F_BUILTIN_ALIAS_BIN,
	F_CACHE,
	F_ALIAS,
	F_ALIAS_BIN,
	F_MAX,
};

static const char *const file_names[F_MAX] = {
	[F_DEP] = "modules.dep",
	[F_DEP_BIN] = "modules.dep.bin",
	[F_SYMBOLS] = "modules.symbols",
	[F_SYMBOLS_BIN] = "modules.symbols.bin",
	[F_SOFTDEP] = "modules.softdep",
	[F_DEVNAME] = "modules.devname",
	[F_BUILTIN_BIN] = "modules.builtin.bin",
	[F_BUILTIN_ALIAS_BIN] = "modules.builtin.alias.bin",
	[F_CACHE] = CACHE_NAME,
	[F_ALIAS] = "modules.alias",
	[F_ALIAS_BIN] = "modules.alias.bin",
};

/* Text indexes whose identity the cache records. */
/* Files whose identity the cache records: when they all match, they are the files this
 * generation wrote, and nothing needs to read or check them beyond the text it parses. */
static const int fingerprinted[] = { F_DEP,	F_DEP_BIN, F_ALIAS,	  F_ALIAS_BIN,
				     F_SOFTDEP, F_SYMBOLS, F_SYMBOLS_BIN, F_DEVNAME };

static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* Strings owned elsewhere: by the Depmod (kept buffers), never freed one by one. */
typedef struct StrList {
	const char **v;
	size_t n, alloc;
} StrList;

static int strlist_add(StrList *l, const char *s)
{
	if (!GREEDY_REALLOC(l->v, l->alloc, l->n + 1))
		return -ENOMEM;
	l->v[l->n++] = s;
	return 0;
}

#define STRLIST_FOREACH(s, l) for (const char *const *s = (l).v; s < (l).v + (l).n; s++)

typedef struct Mod {
	char *name;
	char *path; /* relative to the module directory */
	StrList aliases;
	StrList softdeps;
	uint32_t *exports;
	size_t n_exports;
	uint32_t *needs; /* in the order libkmod lists the module's dependency symbols */
	size_t n_needs;

	/* computed */
	int sort_idx;
	uint32_t bucket;
	unsigned idx;
	struct Mod **deps;
	size_t n_deps, alloc_deps;
	unsigned users;
	int dep_sort_idx;
	unsigned stamp;
	unsigned mark;

	/* where this generation writes its lines: modules.dep, .alias and .devname offsets */
	size_t dep_off, dep_len;
	size_t alias_off, alias_len;
	size_t devname_off, devname_len;
	/* the previous generation's lines, verbatim, when the module did not change (fast
	 * path): they are copied instead of being generated from the aliases */
	const char *old_dep;
	size_t old_dep_len;
	const uint32_t *old_deps; /* the previous generation's dependencies (its indexes) */
	size_t n_old_deps;
	const char *old_alias;
	size_t old_alias_len;
	const char *old_devname;
	size_t old_devname_len;
	bool has_old_lines;
} Mod;

typedef enum SearchType {
	SEARCH_PATH,
	SEARCH_BUILTIN,
	SEARCH_EXTERNAL,
} SearchType;

typedef struct Search {
	SearchType type;
	char *path;
} Search;

typedef struct Config {
	Search *searches; /* highest priority last, as depmod numbers them */
	size_t n_searches;
	char **overrides; /* "subdir/modname", most recent first */
	char **excludes;
} Config;

typedef struct Cand {
	char *path; /* the winner, as depmod picks it */
	char **all; /* every file providing the name */
} Cand;

typedef struct DirStamp {
	char *path; /* relative, ending in '/'; "" for the module directory */
	struct timespec mtime;
} DirStamp;

typedef struct Prev Prev;

typedef struct Depmod {
	char *root, *kver, *dir;
	Config cfg;
	struct kmod_ctx *ctx;
	uint32_t *sym_slots; /* open addressing: id + 1, 0 for empty */
	bool slots_mapped; /* sym_slots points into the mapped cache (private, writable) */
	void *cache_map;
	size_t cache_map_size;
	size_t n_slots; /* a power of two, at least twice n_syms */
	char **syms;
	size_t n_syms, alloc_syms;
	Hashmap *mods; /* name -> Mod (owned) */
	Mod **array;
	size_t n_array;
	Hashmap *tree; /* name -> Cand (owned): what the tree holds */
	DirStamp *dirs; /* every directory the tree view covers, stat'ed before listing */
	size_t n_dirs, alloc_dirs;
	DirStamp *cached_dirs; /* the same, from the cache */
	size_t n_cached_dirs;
	char **cached_shadowed; /* module files the cache knows that lost to another */
	char **keep; /* buffers the modules' strings point into */
	size_t n_keep, alloc_keep;
	unsigned long generation;
	size_t prev_size[F_MAX]; /* sizes of the previous generation, to size the buffers */
	size_t prev_strs_size; /* and of the cache's string pool */
	/* the previous cache's symbols: their names lead its string pool, in id order */
	const uint32_t *cache_syms;
	const char *cache_strs;
	uint32_t cache_n_syms;
	size_t prev_cache_size; /* and of the cache */
	uint32_t *sorted; /* n_sorted symbol ids in depmod's hash order, from the cache */
	bool sorted_mapped;
	size_t n_sorted;
	uint32_t *hash_order; /* every symbol id in that order, from sym_hash_order() */
	uint64_t config_hash; /* of depmod.d's search, override and exclude lines */
	const Prev *prev; /* a fast update's previous generation */
	int32_t *old_owner; /* each symbol's owner there (its index), -1 for none */
	Mod **deps_block; /* the dependencies taken from the previous generation, all of them */
	struct Worker *worker; /* a fast update's, for the work beside the main thread */
	DepmodReport *rep;
} Depmod;

/* A job beside the calling thread: on the update's worker when there is one, else on a thread
 * of its own, else (no thread) at once (job_start(), job_wait()). */
struct Worker;
typedef struct Job {
	struct Worker *w;
	unsigned n; /* its number on the worker, 0: not there */
	pthread_t thread;
	bool threaded;
} Job;

/* A job that whoever waits for it runs itself when nothing has taken it yet: a worker that is
 * late (a virtual CPU being woken) delays nothing (task_start(), task_finish()). */
typedef struct Task {
	void *(*fn)(void *);
	void *arg;
	int state; /* TASK_NONE, TASK_QUEUED, TASK_RUNNING, TASK_DONE: atomic */
	Job job;
} Task;

typedef struct Output {
	KBuf buf[F_MAX];
	bool present[F_MAX];
	/* files written to their spares as soon as they were built (each by the thread that
	 * built it), their descriptors for the sync, and their identity */
	bool flushed[F_MAX];
	bool spare[F_MAX]; /* this update wrote to the spare */
	bool fresh[F_MAX]; /* the spare is a new directory entry */
	int fd[F_MAX];
	int err[F_MAX];
	struct stat st[F_MAX];
	bool keep[F_MAX]; /* the file in place is this generation's as it is */
	int dfd;
	bool have_dfd;
	bool publish; /* the indexes built are published (not a --verify build) */
	void *region; /* the buffers' room (output_room) */
	size_t region_size;
	/* with a worker, the cache has room of its own and is built beside modules.symbols,
	 * once modules.alias is done (the worker takes its jobs in order) */
	Depmod *d;
	int cache_early_r;
	/* modules.alias, .softdep, .devname and modules.alias.bin, beside the main thread */
	Task alias_task;
	int alias_r;
	double alias_ms;
	Task build_task, cache_task; /* the cache built early; finished and written */
} Output;

static void output_flush(Depmod *d, Output *o, int f);

/* The previous generation, for a fast update: its files (mapped), and its modules in its
 * order; dropped[i] says old module i was removed or replaced. */
struct Prev {
	const char *data[F_MAX];
	size_t size[F_MAX];
	Mod *mods;
	const bool *dropped;
	size_t n;
};

void depmod_report_done(DepmodReport *r)
{
	free(r->full_reason);
	strv_free(r->differences);
	free(r->error_path);
	free(r->error_message);
	*r = (DepmodReport){};
}

_printf_(4, 5) static int report_error(DepmodReport *rep, int error, const char *path,
				       const char *fmt, ...)
{
	va_list ap;

	if (!rep)
		return error;
	free(rep->error_path);
	free(rep->error_message);
	rep->error_path = path ? strdup(path) : NULL;
	rep->error_message = NULL;
	va_start(ap, fmt);
	if (vasprintf(&rep->error_message, fmt, ap) < 0)
		rep->error_message = NULL;
	va_end(ap);
	log_debug("depmod: %s: %s", strna(path), strna(rep->error_message));
	return error;
}

static void mod_free(void *p)
{
	Mod *m = p;

	if (!m)
		return;
	free(m->name);
	free(m->path);
	free(m->aliases.v);
	free(m->softdeps.v);
	free(m->exports);
	free(m->needs);
	if (m->alloc_deps > 0) /* else in Depmod.deps_block */
		free(m->deps);
	free(m);
}

static void cand_free(void *p)
{
	Cand *c = p;

	if (!c)
		return;
	free(c->path);
	strv_free(c->all);
	free(c);
}

static void config_done(Config *c)
{
	for (size_t i = 0; i < c->n_searches; i++)
		free(c->searches[i].path);
	free(c->searches);
	strv_free(c->overrides);
	strv_free(c->excludes);
	*c = (Config){};
}

static void kmodlib_unref(struct kmod_ctx *ctx);

static Depmod *depmod_free(Depmod *d)
{
	if (!d)
		return NULL;
	hashmap_free(d->mods);
	hashmap_free(d->tree);
	if (!d->slots_mapped)
		free(d->sym_slots);
	if (d->cache_map)
		munmap(d->cache_map, d->cache_map_size);
	free(d->hash_order);
	if (!d->sorted_mapped)
		free(d->sorted);
	free(d->old_owner);
	free(d->deps_block);
	free(d->syms);
	for (size_t i = 0; i < d->n_dirs; i++)
		free(d->dirs[i].path);
	free(d->dirs);
	for (size_t i = 0; i < d->n_cached_dirs; i++)
		free(d->cached_dirs[i].path);
	free(d->cached_dirs);
	strv_free(d->cached_shadowed);
	for (size_t i = 0; i < d->n_keep; i++)
		free(d->keep[i]);
	free(d->keep);
	free(d->array);
	kmodlib_unref(d->ctx);
	config_done(&d->cfg);
	free(d->root);
	free(d->kver);
	free(d->dir);
	free(d);
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Depmod *, depmod_free);

static void output_done(Output *o)
{
	for (int i = 0; i < F_MAX; i++) {
		kbuf_done(&o->buf[i]);
		if (o->flushed[i] && o->fd[i] >= 0)
			safe_close(o->fd[i]);
	}
	if (o->have_dfd)
		safe_close(o->dfd);
	if (o->region)
		munmap(o->region, o->region_size);
}

static size_t max_size(size_t a, size_t b)
{
	return a > b ? a : b;
}

/* Room for each file about its previous size, in one region: growing megabytes by doubling
 * copies them, and every fresh page is cleared (a huge page at a time), so the buffers are
 * packed together, and a buffer whose file is written out passes its room on: modules.alias
 * to modules.alias.bin (the alias thread builds one after the other), modules.dep.bin to
 * modules.symbols.bin, and the whole region to the cache, built once every index is written
 * (output_pass, output_pass_all). */
static int output_room(Depmod *d, Output *o)
{
	static const int order[] = { F_ALIAS, F_DEP, F_DEP_BIN, F_SYMBOLS, F_SOFTDEP, F_DEVNAME,
				     F_BUILTIN_BIN, F_BUILTIN_ALIAS_BIN };
	size_t cap[F_MAX] = {}, total = 0;
	char *p;

	bool own_cache = o->publish && d->worker && d->prev_cache_size > 0;

	_Static_assert(ELEMENTSOF(order) == F_MAX - 3, "every file but the three that wait");
	for (int f = 0; f < F_MAX; f++) {
		size_t was = f == F_CACHE ? d->prev_cache_size : d->prev_size[f];

		if (was > 0)
			cap[f] = (was + was / 32 + 65536 + 63) & ~(size_t)63;
	}
	cap[F_ALIAS] = max_size(cap[F_ALIAS], cap[F_ALIAS_BIN]);
	cap[F_DEP_BIN] = max_size(cap[F_DEP_BIN], cap[F_SYMBOLS_BIN]);
	for (size_t i = 0; i < ELEMENTSOF(order); i++)
		if (o->buf[order[i]].allocated == 0)
			total += cap[order[i]];
	if (total == 0)
		return 0;
	if (kbuf_region(own_cache ? total + cap[F_CACHE] : max_size(total, cap[F_CACHE]),
			&o->region, &o->region_size) < 0)
		return -ENOMEM;
	if (own_cache && o->buf[F_CACHE].allocated == 0)
		o->buf[F_CACHE] = (KBuf){ .data = (char *)o->region + total,
					  .allocated = o->region_size - total,
					  .borrowed = true };
	p = o->region;
	for (size_t i = 0; i < ELEMENTSOF(order); i++) {
		int f = order[i];

		if (cap[f] > 0 && o->buf[f].allocated == 0) {
			o->buf[f] = (KBuf){ .data = p, .allocated = cap[f], .borrowed = true };
			p += cap[f];
		}
	}
	return 0;
}

/* Gives to's buffer the room of from's, whose file is written out: from's bytes are needed
 * no more, only their number (for the journal). */
static void output_pass(Output *o, int from, int to)
{
	KBuf *a = &o->buf[from], *b = &o->buf[to];

	if (!o->flushed[from] || !a->borrowed || b->size > 0 || b->allocated > 0)
		return;
	*b = (KBuf){ .data = a->data, .allocated = a->allocated, .borrowed = true };
	b->data[0] = 0;
	*a = (KBuf){ .size = a->size };
}

/* Gives the cache the whole region: every index is written out (publish). */
static void output_pass_all(Output *o)
{
	if (!o->region || o->buf[F_CACHE].allocated > 0)
		return;
	for (int f = 0; f < F_MAX; f++)
		if (o->buf[f].borrowed)
			o->buf[f] = (KBuf){ .size = o->buf[f].size };
	o->buf[F_CACHE] = (KBuf){ .data = o->region, .allocated = o->region_size, .borrowed = true };
	o->buf[F_CACHE].data[0] = 0;
}

static void phase(const char *what)
{
	static struct timespec last;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (what && last.tv_sec)
		log_debug("depmod: %s: %.2f ms", what,
			  (double)(now.tv_sec - last.tv_sec) * 1e3 +
				  (double)(now.tv_nsec - last.tv_nsec) / 1e6);
	last = now;
}

/* ---- names and hashing, as kmod computes them ---- */

static bool has_kmod_ext(const char *name)
{
	size_t l = strlen(name);

	for (const char *const *e = kmod_exts; *e; e++) {
		size_t el = strlen(*e);
		if (l > el && streq(name + l - el, *e))
			return true;
	}
	return false;
}

/* kmod's path_to_modname(): the basename up to the first '.', '-' as '_'. */
static char *modname_from_path(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t l;
	char *n;

	base = base ? base + 1 : path;
	l = strcspn(base, ".");
	n = strndup(base, l);
	if (!n)
		return NULL;
	for (char *p = n; *p; p++)
		if (*p == '-')
			*p = '_';
	return n;
}

/* kmod's shared/hash.c hash function; its tables iterate by bucket, then by key. */
static uint32_t hash_superfast(const char *key, unsigned len)
{
	unsigned tmp, hash = len, rem = len & 3;

	len /= 4;
	for (; len > 0; len--) {
		uint16_t a, b;

		memcpy(&a, key, 2);
		memcpy(&b, key + 2, 2);
		hash += a;
		tmp = ((unsigned)b << 11) ^ hash;
		hash = (hash << 16) ^ tmp;
		key += 4;
		hash += hash >> 11;
	}
	switch (rem) {
	case 3: {
		uint16_t a;

		memcpy(&a, key, 2);
		hash += a;
		hash ^= hash << 16;
		hash ^= (unsigned)((signed char)key[2] << 18);
		hash += hash >> 11;
		break;
	}
	case 2: {
		uint16_t a;

		memcpy(&a, key, 2);
		hash += a;
		hash ^= hash << 11;
		hash += hash >> 17;
		break;
	}
	case 1:
		hash += (unsigned)(signed char)*key;
		hash ^= hash << 10;
		hash += hash >> 1;
		break;
	}
	hash ^= hash << 3;
	hash += hash >> 5;
	hash ^= hash << 4;
	hash += hash >> 17;
	hash ^= hash << 25;
	hash += hash >> 6;
	return hash;
}

/* Takes ownership of a buffer that strings of the model point into. */
static int keep(Depmod *d, char *buf)
{
	if (!GREEDY_REALLOC(d->keep, d->alloc_keep, d->n_keep + 1)) {
		free(buf);
		return -ENOMEM;
	}
	d->keep[d->n_keep++] = buf;
	return 0;
}

static const char *keep_strdup(Depmod *d, const char *s)
{
	char *c = strdup(s);

	return c && keep(d, c) >= 0 ? c : NULL;
}

/* ---- symbols ---- */

static uint32_t sym_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The slot of name: its id + 1, or 0 where it would go. */
static uint32_t *sym_slot(const Depmod *d, const char *name)
{
	size_t mask = d->n_slots - 1, i = sym_hash(name) & mask;

	for (;; i = (i + 1) & mask) {
		uint32_t *slot = &d->sym_slots[i];

		if (*slot == 0 || streq(d->syms[*slot - 1], name))
			return slot;
	}
}

static int sym_lookup(const Depmod *d, const char *name, uint32_t *ret)
{
	uint32_t *slot;

	if (d->n_slots == 0)
		return 0;
	slot = sym_slot(d, name);
	if (*slot == 0)
		return 0;
	*ret = *slot - 1;
	return 1;
}

static int sym_grow(Depmod *d)
{
	size_t n = d->n_slots ? d->n_slots * 2 : 65536;
	uint32_t *old = d->sym_slots;

	d->sym_slots = calloc(n, sizeof(uint32_t));
	if (!d->sym_slots) {
		d->sym_slots = old;
		return -ENOMEM;
	}
	d->n_slots = n;
	for (size_t i = 0; i < d->n_syms; i++)
		*sym_slot(d, d->syms[i]) = (uint32_t)i + 1;
	if (!d->slots_mapped)
		free(old);
	d->slots_mapped = false;
	return 0;
}

/* name must stay valid as long as d (a kept buffer); copy says it must be copied first. */
static int sym_intern_full(Depmod *d, const char *name, bool copy, uint32_t *ret)
{
	uint32_t *slot;
	int r;

	if (sym_lookup(d, name, ret))
		return 0;
	if ((d->n_syms + 1) * 2 > d->n_slots && (r = sym_grow(d)) < 0)
		return r;
	if (!GREEDY_REALLOC(d->syms, d->alloc_syms, d->n_syms + 1))
		return -ENOMEM;
	if (copy && !(name = keep_strdup(d, name)))
		return -ENOMEM;
	slot = sym_slot(d, name);
	d->syms[d->n_syms] = (char *)name;
	*slot = (uint32_t)++d->n_syms;
	*ret = *slot - 1;
	return 0;
}

static int sym_intern(Depmod *d, const char *name, uint32_t *ret)
{
	return sym_intern_full(d, name, true, ret);
}

static int ids_append(uint32_t **ids, size_t *n, size_t *alloc, uint32_t id)
{
	if (!GREEDY_REALLOC(*ids, *alloc, *n + 1))
		return -ENOMEM;
	(*ids)[(*n)++] = id;
	return 0;
}

/* ---- configuration: depmod.d under the root ---- */

static bool kernel_matches(const char *kver, const char *pattern)
{
	regex_t re;
	int status;

	if (streq(pattern, "*"))
		return true;
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	status = regexec(&re, kver, 0, NULL, 0);
	regfree(&re);
	return status == 0;
}

static int config_add_search(Config *c, const char *word)
{
	Search *s;

	/* depmod prepends; the first listed ends up with the highest number */
	s = realloc(c->searches, (c->n_searches + 1) * sizeof(Search));
	if (!s)
		return -ENOMEM;
	c->searches = s;
	memmove(s + 1, s, c->n_searches * sizeof(Search));
	s[0] = (Search){ SEARCH_PATH, NULL };
	if (streq(word, "built-in"))
		s[0].type = SEARCH_BUILTIN;
	else if (streq(word, "external"))
		s[0].type = SEARCH_EXTERNAL;
	else if (!(s[0].path = strdup(word))) {
		memmove(s, s + 1, c->n_searches * sizeof(Search));
		return -ENOMEM;
	}
	c->n_searches++;
	return 0;
}

static int config_parse_file(Config *c, const char *path, const char *kver)
{
	_cleanup_free_ char *data = NULL;
	char *line, *next;
	int r;

	r = read_full_file(path, 1024 * 1024, &data, NULL);
	if (r < 0)
		return r;
	for (line = data; line && *line; line = next) {
		char *save = NULL, *cmd;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (line[0] == '#')
			continue;
		cmd = strtok_r(line, "\t ", &save);
		if (!cmd)
			continue;
		if (streq(cmd, "search")) {
			const char *w;
			while ((w = strtok_r(NULL, "\t ", &save)))
				if ((r = config_add_search(c, w)) < 0)
					return r;
		} else if (streq(cmd, "override")) {
			const char *mod = strtok_r(NULL, "\t ", &save);
			const char *ver = strtok_r(NULL, "\t ", &save);
			const char *sub = strtok_r(NULL, "\t ", &save);
			char *o;

			if (!mod || !ver || !sub || !kernel_matches(kver, ver))
				continue;
			if (asprintf(&o, "%s/%s", sub, mod) < 0)
				return -ENOMEM;
			/* depmod checks the most recent override first */
			r = strv_consume(&c->overrides, o);
			if (r < 0)
				return r;
			memmove(c->overrides + 1, c->overrides,
				(strv_length(c->overrides) - 1) * sizeof(char *));
			c->overrides[0] = o;
		} else if (streq(cmd, "exclude")) {
			const char *w;
			while ((w = strtok_r(NULL, "\t ", &save)))
				if ((r = strv_extend(&c->excludes, w)) < 0)
					return r;
		} else
			log_debug("depmod: %s: '%s' not supported, ignoring", path, cmd);
	}
	return 0;
}

static int config_load(Config *c, const char *root, const char *kver)
{
	static const char *const dirs[] = { "etc/depmod.d", "run/depmod.d",
					    "usr/local/lib/depmod.d", "lib/depmod.d" };
	_cleanup_strv_free_ char **names = NULL, **paths = NULL;
	int r;

	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		_cleanup_free_ char *dir = path_join(root, dirs[i]);
		DIR *dp;
		struct dirent *de;

		if (!dir)
			return -ENOMEM;
		dp = opendir(dir);
		if (!dp)
			continue;
		while ((de = readdir(dp))) {
			size_t l = strlen(de->d_name);
			char *p;

			if (de->d_name[0] == '.' || l < 6 ||
			    !endswith(de->d_name, ".conf"))
				continue;
			if (strv_contains(names, de->d_name))
				continue; /* the first directory wins */
			p = path_join(dir, de->d_name);
			if (!p || strv_extend(&names, de->d_name) < 0 ||
			    strv_consume(&paths, p) < 0) {
				closedir(dp);
				return -ENOMEM;
			}
		}
		closedir(dp);
	}
	/* sorted by file name */
	for (size_t i = 0; names && names[i]; i++)
		for (size_t j = i + 1; names[j]; j++)
			if (strcmp(names[j], names[i]) < 0) {
				char *t = names[i];
				names[i] = names[j];
				names[j] = t;
				t = paths[i];
				paths[i] = paths[j];
				paths[j] = t;
			}
	STRV_FOREACH(p, paths)
	{
		r = config_parse_file(c, *p, kver);
		if (r < 0)
			log_debug("depmod: %s: %s, ignoring", *p, ERRNO_NAME(-r));
	}
	if (c->n_searches == 0)
		return config_add_search(c, "updates");
	return 0;
}

/* depmod's priority of a file, for telling equal-priority collisions apart: an override
 * beats everything, then the search list, unlisted directories taking built-in's place. */
static int config_priority(const Config *c, const char *rel)
{
	const char *base = strrchr(rel, '/');
	size_t baselen = base ? (size_t)(base - rel) + 1 : 0;
	size_t len = baselen + strcspn(rel + baselen, ".");
	int bprio = -1, prio = -1;

	STRV_FOREACH(o, c->overrides)
	if (strlen(*o) == len && strncmp(*o, rel, len) == 0)
		return INT_MAX;
	for (size_t i = 0; i < c->n_searches; i++) {
		const Search *s = &c->searches[i];
		size_t sl;

		if (s->type == SEARCH_BUILTIN) {
			bprio = (int)i;
			continue;
		}
		if (s->type != SEARCH_PATH)
			continue;
		sl = strlen(s->path);
		if (len > sl && rel[sl] == '/' && memcmp(s->path, rel, sl) == 0)
			prio = (int)i;
	}
	return prio < 0 ? bprio : prio;
}

/* depmod_module_is_higher_priority(), on paths relative to the module directory: true when the
 * module already found (old) stays. */
static bool config_old_wins(const Config *c, const char *oldrel, const char *newrel)
{
	const char *ob = strrchr(oldrel, '/'), *nb = strrchr(newrel, '/');
	size_t obl = ob ? (size_t)(ob - oldrel) + 1 : 0,
	       nbl = nb ? (size_t)(nb - newrel) + 1 : 0;
	size_t oldlen = obl + strcspn(oldrel + obl, ".");
	size_t newlen = nbl + strcspn(newrel + nbl, ".");
	int bprio = -1, oldprio = -1, newprio = -1;

	STRV_FOREACH(o, c->overrides)
	{
		size_t l = strlen(*o);
		if (newlen == l && memcmp(*o, newrel, l) == 0)
			return false;
		if (oldlen == l && memcmp(*o, oldrel, l) == 0)
			return true;
	}
	for (size_t i = 0; i < c->n_searches; i++) {
		const Search *s = &c->searches[i];
		size_t sl;

		if (s->type == SEARCH_BUILTIN) {
			bprio = (int)i;
			continue;
		}
		if (s->type != SEARCH_PATH)
			continue;
		sl = strlen(s->path);
		if (newlen > sl && newrel[sl] == '/' && memcmp(s->path, newrel, sl) == 0)
			newprio = (int)i;
		else if (oldlen > sl && oldrel[sl] == '/' &&
			 memcmp(s->path, oldrel, sl) == 0)
			oldprio = (int)i;
	}
	if (newprio < 0)
		newprio = bprio;
	if (oldprio < 0)
		oldprio = bprio;
	return newprio <= oldprio;
}

/* ---- the tree, walked as depmod walks it ---- */

static bool excluded(const Config *c, const char *name)
{
	if (streq(name, ".") || streq(name, "..") || streq(name, "build") ||
	    streq(name, "source"))
		return true;
	return strv_contains(c->excludes, name);
}

/* Adds a module file; with ordered, the winner follows depmod's walk (an equal-priority
 * newcomer may win, as in depmod), else winners are picked afterwards by tree_pick(). */
static int tree_add(Depmod *d, const char *rel, bool ordered)
{
	_cleanup_free_ char *name = modname_from_path(rel);
	Cand *c;
	int r;

	if (!name)
		return -ENOMEM;
	c = hashmap_get(d->tree, name);
	if (!c) {
		c = calloc(1, sizeof(Cand));
		if (!c || !(c->path = strdup(rel))) {
			cand_free(c);
			return -ENOMEM;
		}
		r = hashmap_put(d->tree, name, c);
		if (r < 0) {
			cand_free(c);
			return r;
		}
		name = NULL;
	} else if (ordered && !config_old_wins(&d->cfg, c->path, rel)) {
		char *p = strdup(rel);
		if (!p)
			return -ENOMEM;
		free(c->path);
		c->path = p;
	}
	return strv_extend(&c->all, rel);
}

/* Records a directory's mtime for the next update. Timestamps are as coarse as the kernel's
 * clock tick: a directory changed in the last seconds could change again with the same
 * mtime, so such a one is recorded as 0 and listed again next time. */
static int dir_stamp(Depmod *d, const char *rel, const struct timespec *mtime)
{
	struct timespec now, t = *mtime;
	char *p = strdup(rel);

	if (!p || !GREEDY_REALLOC(d->dirs, d->alloc_dirs, d->n_dirs + 1)) {
		free(p);
		return -ENOMEM;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (t.tv_sec >= now.tv_sec - 2)
		t = (struct timespec){};
	d->dirs[d->n_dirs++] = (DirStamp){ p, t };
	return 0;
}

/* Lists a directory (taking dfd) and everything below it, except the subdirectories in skip. */
static int tree_walk_dir(Depmod *d, int dfd, const char *prefix, const Hashmap *skip)
{
	_cleanup_(closedirp) DIR *dp = NULL;
	struct dirent *de;
	struct stat st;
	int r;

	/* stat before listing: a later change shows as a newer mtime */
	if (fstat(dfd, &st) < 0 || (r = dir_stamp(d, prefix, &st.st_mtim)) < 0) {
		safe_close(dfd);
		return -ENOMEM;
	}
	dp = fdopendir(dfd);
	if (!dp) {
		safe_close(dfd);
		return negative_errno();
	}
	while ((de = readdir(dp))) {
		const char *name = de->d_name;
		_cleanup_free_ char *rel = NULL;
		bool is_dir;

		if (excluded(&d->cfg, name))
			continue;
		if (de->d_type == DT_REG)
			is_dir = false;
		else if (de->d_type == DT_DIR)
			is_dir = true;
		else {
			if (fstatat(dirfd(dp), name, &st, 0) < 0)
				continue;
			if (S_ISREG(st.st_mode))
				is_dir = false;
			else if (S_ISDIR(st.st_mode))
				is_dir = true;
			else
				continue;
		}
		if (!is_dir && !has_kmod_ext(name))
			continue;
		if (asprintf(&rel, "%s%s%s", prefix, name, is_dir ? "/" : "") < 0)
			return -ENOMEM;
		if (is_dir) {
			int fd;

			if (skip && hashmap_contains(skip, rel))
				continue;
			fd = openat(dirfd(dp), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				continue;
			r = tree_walk_dir(d, fd, rel, skip);
		} else
			r = tree_add(d, rel, !skip);
		if (r == -ENOMEM)
			return r;
	}
	return 0;
}

static void tree_reset(Depmod *d)
{
	hashmap_free(d->tree);
	d->tree = NULL;
	for (size_t i = 0; i < d->n_dirs; i++)
		free(d->dirs[i].path);
	d->n_dirs = 0;
}

/* The whole tree, walked as depmod walks it. */
static int tree_walk(Depmod *d)
{
	int fd;

	tree_reset(d);
	d->tree = hashmap_new(free, cand_free);
	if (!d->tree)
		return -ENOMEM;
	fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	return tree_walk_dir(d, fd, "", NULL);
}

static char *dir_of(const char *rel)
{
	const char *slash = strrchr(rel, '/');

	return strndup(rel, slash ? (size_t)(slash - rel) + 1 : 0);
}

/* The tree from the cache: directories whose mtime did not change keep the files the cache
 * lists for them, the others are listed again. Returns 1 when done, 0 when two files of
 * one module have the same priority (then only depmod's walk order decides: walk it all). */
static int tree_from_cache(Depmod *d, char **indexed_paths)
{
	_cleanup_hashmap_free_ Hashmap *known = hashmap_new(NULL, NULL);
	_cleanup_close_ int dfd = -EBADF;
	const char *name;
	Cand *c;
	int r;

	tree_reset(d);
	d->tree = hashmap_new(free, cand_free);
	if (!d->tree || !known)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_cached_dirs; i++) {
		r = hashmap_put(known, d->cached_dirs[i].path, &d->cached_dirs[i]);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();

	/* mark each cached directory: unchanged (mtime.tv_nsec >= 0 kept) or not (-1) */
	for (size_t i = 0; i < d->n_cached_dirs; i++) {
		DirStamp *ds = &d->cached_dirs[i];
		struct stat st;

		if (fstatat(dfd, ds->path[0] ? ds->path : ".", &st, 0) < 0 ||
		    !S_ISDIR(st.st_mode)) {
			ds->mtime.tv_nsec = -1; /* gone */
			continue;
		}
		if (ds->mtime.tv_sec != 0 && st.st_mtim.tv_sec == ds->mtime.tv_sec &&
		    st.st_mtim.tv_nsec == ds->mtime.tv_nsec) {
			r = dir_stamp(d, ds->path, &st.st_mtim);
			if (r < 0)
				return r;
			continue;
		}
		ds->mtime.tv_nsec = -1;
		{
			int fd = openat(dfd, ds->path[0] ? ds->path : ".",
					O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				continue;
			log_debug("depmod: %s/%s changed, listing it again", d->dir,
				  ds->path);
			r = tree_walk_dir(d, fd, ds->path, known);
			if (r < 0)
				return r;
		}
	}

	for (int pass = 0; pass < 2; pass++) {
		char **list = pass == 0 ? indexed_paths : d->cached_shadowed;

		STRV_FOREACH(f, list)
		{
			_cleanup_free_ char *dir = dir_of(*f);
			DirStamp *ds;

			if (!dir)
				return -ENOMEM;
			ds = hashmap_get(known, dir);
			if (!ds || ds->mtime.tv_nsec < 0)
				continue; /* listed again, or gone */
			r = tree_add(d, *f, false);
			if (r < 0)
				return r;
		}
	}

	/* winners by priority */
	HASHMAP_FOREACH_KEY(c, name, d->tree)
	{
		const char *best = NULL;
		int best_prio = INT_MIN;
		bool tie = false;

		STRV_FOREACH(f, c->all)
		{
			int p = config_priority(&d->cfg, *f);

			if (!best || p > best_prio) {
				best = *f;
				best_prio = p;
				tie = false;
			} else if (p == best_prio)
				tie = true;
		}
		if (tie) {
			log_debug("depmod: several files provide '%s' at the same priority",
				  name);
			return 0;
		}
		if (!streq(c->path, best)) {
			char *p = strdup(best);
			if (!p)
				return -ENOMEM;
			free(c->path);
			c->path = p;
		}
	}
	return 1;
}

/* ---- reading modules ---- */

/* libkmod, for the files modelf does not read (compressed modules, files that are not ELF
 * as it expects them): loaded when first needed, so that 'kmodctl depmod' on uncompressed
 * modules does not load it, nor the libcrypto, liblzma and libzstd it brings. */
typedef struct KmodLib {
	typeof(kmod_new) *new_;
	typeof(kmod_unref) *unref;
	typeof(kmod_set_log_fn) *set_log_fn;
	typeof(kmod_module_new_from_path) *module_new_from_path;
	typeof(kmod_module_unref) *module_unref;
	typeof(kmod_module_get_info) *get_info;
	typeof(kmod_module_info_get_key) *info_get_key;
	typeof(kmod_module_info_get_value) *info_get_value;
	typeof(kmod_module_info_free_list) *info_free_list;
	typeof(kmod_module_get_symbols) *get_symbols;
	typeof(kmod_module_symbol_get_symbol) *symbol_get_symbol;
	typeof(kmod_module_symbols_free_list) *symbols_free_list;
	typeof(kmod_module_get_dependency_symbols) *get_dependency_symbols;
	typeof(kmod_module_dependency_symbol_get_symbol) *dependency_symbol_get_symbol;
	typeof(kmod_module_dependency_symbols_free_list) *dependency_symbols_free_list;
	typeof(kmod_list_next) *list_next;
} KmodLib;

static KmodLib kmodlib;
static const char *kmodlib_error;
static pthread_once_t kmodlib_once = PTHREAD_ONCE_INIT;

static void kmodlib_load(void)
{
	static const char *const names[] = {
		"kmod_new",
		"kmod_unref",
		"kmod_set_log_fn",
		"kmod_module_new_from_path",
		"kmod_module_unref",
		"kmod_module_get_info",
		"kmod_module_info_get_key",
		"kmod_module_info_get_value",
		"kmod_module_info_free_list",
		"kmod_module_get_symbols",
		"kmod_module_symbol_get_symbol",
		"kmod_module_symbols_free_list",
		"kmod_module_get_dependency_symbols",
		"kmod_module_dependency_symbol_get_symbol",
		"kmod_module_dependency_symbols_free_list",
		"kmod_list_next",
	};
	void *fns[ELEMENTSOF(names)];
	void *h = dlopen("libkmod.so.2", RTLD_NOW | RTLD_LOCAL);

	_Static_assert(sizeof(KmodLib) == sizeof(fns), "one name for each function");
	if (!h) {
		kmodlib_error = dlerror();
		return;
	}
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (!(fns[i] = dlsym(h, names[i]))) {
			kmodlib_error = dlerror();
			return;
		}
	memcpy(&kmodlib, fns, sizeof(kmodlib));
}

static void kmod_log_debug(void *data, int priority, const char *file, int line,
			   const char *fn, const char *format, va_list args)
{
	_cleanup_free_ char *s = NULL;

	if (vasprintf(&s, format, args) >= 0)
		log_debug("libkmod: %s", s);
}

static void kmodlib_unref(struct kmod_ctx *ctx)
{
	if (ctx)
		kmodlib.unref(ctx);
}

static int kmodlib_ctx(Depmod *d)
{
	const char *null_config = NULL;

	if (d->ctx)
		return 0;
	(void)pthread_once(&kmodlib_once, kmodlib_load);
	if (!kmodlib.new_)
		return log_error_errno(-ELIBACC, "Cannot load libkmod (%s).",
				       kmodlib_error ?: "unknown error");
	d->ctx = kmodlib.new_(d->dir, &null_config);
	if (!d->ctx)
		return -ENOMEM;
	kmodlib.set_log_fn(d->ctx, kmod_log_debug, NULL);
	return 0;
}

#define kmodlib_foreach(l, list) for (l = list; l; l = kmodlib.list_next(list, l))

/* Interns the symbol name and appends its id to ids. */
static int ids_append_symbol(Depmod *d, uint32_t **ids, size_t *n, size_t *alloc, const char *name)
{
	uint32_t id;
	int r = sym_intern(d, name, &id);

	return r < 0 ? r : ids_append(ids, n, alloc, id);
}

/* m's aliases, softdeps, exports and needs, through libkmod. */
static int mod_read_kmod(Depmod *d, Mod *m, const char *abs, bool strict)
{
	struct kmod_module *km = NULL;
	struct kmod_list *info = NULL, *syms = NULL, *deps = NULL, *l;
	size_t alloc = 0;
	int r;

	r = kmodlib_ctx(d);
	if (r < 0)
		return r;
	r = kmodlib.module_new_from_path(d->ctx, abs, &km);
	if (r < 0)
		return report_error(d->rep, r, abs, "cannot open the module: %s",
				    ERRNO_NAME(-r));

	r = kmodlib.get_info(km, &info);
	if (r < 0 && strict) {
		r = report_error(d->rep, -ENOEXEC, abs,
				 "not a kernel module (no ELF .modinfo section readable)");
		goto finish;
	}
	r = 0;
	kmodlib_foreach(l, info) {
		const char *key = kmodlib.info_get_key(l);
		const char *value = kmodlib.info_get_value(l);
		StrList *list;
		const char *copy;

		if (streq(key, "alias"))
			list = &m->aliases;
		else if (streq(key, "softdep"))
			list = &m->softdeps;
		else
			continue;
		copy = keep_strdup(d, value);
		if (!copy || (r = strlist_add(list, copy)) < 0) {
			r = -ENOMEM;
			goto finish;
		}
	}

	if (kmodlib.get_symbols(km, &syms) >= 0)
		kmodlib_foreach(l, syms) {
			r = ids_append_symbol(d, &m->exports, &m->n_exports, &alloc,
					      kmodlib.symbol_get_symbol(l));
			if (r < 0)
				goto finish;
		}

	alloc = 0;
	if (kmodlib.get_dependency_symbols(km, &deps) >= 0)
		kmodlib_foreach(l, deps) {
			r = ids_append_symbol(d, &m->needs, &m->n_needs, &alloc,
					      kmodlib.dependency_symbol_get_symbol(l));
			if (r < 0)
				goto finish;
		}
	r = 0;
finish:
	if (deps)
		kmodlib.dependency_symbols_free_list(deps);
	if (syms)
		kmodlib.symbols_free_list(syms);
	if (info)
		kmodlib.info_free_list(info);
	kmodlib.module_unref(km);
	return r;
}

typedef struct ModRead {
	Depmod *d;
	Mod *m;
	size_t alloc;
} ModRead;

static int read_info(const char *key, size_t key_len, const char *value, void *u)
{
	ModRead *x = u;
	StrList *list;
	const char *copy;

	if (key_len == 5 && memcmp(key, "alias", 5) == 0)
		list = &x->m->aliases;
	else if (key_len == 7 && memcmp(key, "softdep", 7) == 0)
		list = &x->m->softdeps;
	else
		return 0;
	copy = keep_strdup(x->d, value);
	if (!copy || strlist_add(list, copy) < 0)
		return -ENOMEM;
	return 0;
}

static int read_export(const char *name, void *u)
{
	ModRead *x = u;

	return ids_append_symbol(x->d, &x->m->exports, &x->m->n_exports, &x->alloc, name) < 0 ?
		       -ENOMEM :
		       0;
}

static int read_need(const char *name, uint64_t crc, char bind, void *u)
{
	ModRead *x = u;

	return ids_append_symbol(x->d, &x->m->needs, &x->m->n_needs, &x->alloc, name) < 0 ?
		       -ENOMEM :
		       0;
}

/* m's aliases, softdeps, exports and needs: what libkmod lists, read by modelf, or by
 * libkmod itself for what modelf does not read. A list libkmod fails to give is empty. */
static int mod_read(Depmod *d, Mod *m, bool strict)
{
	_cleanup_modelf_close_ ModElf *e = NULL;
	_cleanup_free_ char *abs = path_join(d->dir, m->path);
	ModRead x = { d, m, 0 };
	int r;

	if (!abs)
		return -ENOMEM;
	if (modelf_open(AT_FDCWD, abs, &e) < 0) {
		r = mod_read_kmod(d, m, abs, strict);
		if (r < 0)
			return r;
	} else {
		r = modelf_modinfo(e, read_info, &x);
		if (r == -ENOMEM)
			return r;
		r = modelf_exports(e, read_export, &x);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			m->n_exports = 0;
		x.alloc = 0;
		r = modelf_needs(e, read_need, &x);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			m->n_needs = 0;
	}
	if (d->rep)
		d->rep->n_read++;
	return r;
}

static int mod_new(const char *name, const char *path, Mod **ret)
{
	Mod *m = calloc(1, sizeof(Mod));

	if (!m)
		return -ENOMEM;
	m->name = strdup(name);
	m->path = strdup(path);
	if (!m->name || !m->path) {
		mod_free(m);
		return -ENOMEM;
	}
	*ret = m;
	return 0;
}

static uint64_t config_hash(const Config *c);

static int depmod_new(const char *root, const char *kver, DepmodReport *rep, Depmod **ret)
{
	_cleanup_(depmod_freep) Depmod *d = NULL;
	int r;

	d = calloc(1, sizeof(Depmod));
	if (!d)
		return -ENOMEM;
	d->rep = rep;
	d->root = strdup(root);
	d->kver = strdup(kver);
	d->dir = path_join(root, "lib/modules", kver);

	d->mods = hashmap_new(NULL, mod_free);
	if (!d->root || !d->kver || !d->dir || !d->mods)
		return -ENOMEM;
	if (access(d->dir, F_OK) < 0)
		return report_error(rep, negative_errno(), d->dir, "no module directory");
	r = config_load(&d->cfg, root, kver);
	if (r < 0)
		return r;
	d->config_hash = config_hash(&d->cfg);
	*ret = TAKE_PTR(d);
	return 0;
}

static int mods_put(Depmod *d, Mod *m)
{
	int r = hashmap_put(d->mods, m->name, m);

	if (r < 0)
		mod_free(m);
	return r;
}

/* Every winner of the tree, read in full. */
static int model_from_tree(Depmod *d)
{
	const char *name;
	Cand *c;
	int r;

	HASHMAP_FOREACH_KEY(c, name, d->tree)
	{
		Mod *m;

		r = mod_new(name, c->path, &m);
		if (r < 0)
			return r;
		r = mod_read(d, m, false);
		if (r < 0) {
			mod_free(m);
			return r;
		}
		r = mods_put(d, m);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- computing the indexes ---- */

static int sort_cmp(const void *a, const void *b)
{
	const Mod *x = *(Mod *const *)a, *y = *(Mod *const *)b;

	if (x->sort_idx != y->sort_idx)
		return x->sort_idx < y->sort_idx ? -1 : 1;
	/* depmod fills its array from its name hash and sorts stably: bucket, then name */
	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int dep_cmp(const void *a, const void *b)
{
	const Mod *x = *(Mod *const *)a, *y = *(Mod *const *)b;

	return x->dep_sort_idx - y->dep_sort_idx;
}

/* modules.order: the module array follows it; modules it does not list come after, in
 * depmod's hash order. A last line without '\n' makes depmod skip the ordering altogether. */
static int order_modules(Depmod *d)
{
	_cleanup_free_ char *path = path_join(d->dir, "modules.order"), *data = NULL;
	_cleanup_hashmap_free_ Hashmap *by_uncrel = NULL;
	const char *name;
	size_t n = 0, size = 0, total;
	bool sorted = false;
	Mod *m;
	int r;

	if (!path)
		return -ENOMEM;
	free(d->array);
	d->array = calloc(hashmap_size(d->mods) + 1, sizeof(Mod *));
	by_uncrel = hashmap_new(free, NULL);
	if (!d->array || !by_uncrel)
		return -ENOMEM;

	HASHMAP_FOREACH_KEY(m, name, d->mods)
	{
		const char *base = strrchr(m->path, '/');
		size_t bl = base ? (size_t)(base - m->path) + 1 : 0;
		size_t ul = bl + strlen(m->name) + 3;
		char *u = strndup(m->path, ul);

		if (!u)
			return -ENOMEM;
		r = hashmap_put(by_uncrel, u, m);
		if (r < 0) {
			free(u);
			if (r != -EEXIST)
				return r;
		}
		m->sort_idx = 1;
		m->bucket = hash_superfast(m->name, (unsigned)strlen(m->name)) & 511;
		d->array[n++] = m;
	}
	d->n_array = n;

	r = read_full_file(path, 0, &data, &size);
	if (r >= 0 && (size == 0 || data[size - 1] == '\n')) {
		size_t lines = 0;

		for (size_t i = 0; i < size; i++)
			lines += data[i] == '\n';
		total = lines + 1;
		size_t idx = 0;
		for (char *line = data, *next; line < data + size; line = next) {
			next = strchr(line, '\n');
			*next++ = 0;
			idx++;
			m = hashmap_get(by_uncrel, line);
			if (m)
				m->sort_idx = (int)idx - (int)total;
		}
		sorted = true;
	}
	if (!sorted)
		HASHMAP_FOREACH_KEY(m, name, d->mods)
	m->sort_idx = 1;
	qsort(d->array, n, sizeof(Mod *), sort_cmp);
	for (size_t i = 0; i < n; i++)
		d->array[i]->idx = (unsigned)i;
	return 0;
}

static const int32_t *prev_owners(Depmod *d);

/* m's direct dependencies, in the order it needs their symbols (depmod's topological sort
 * walks them in that order). mark is a number no other module uses for this. */
static int deps_from_needs(Depmod *d, Mod *m, Mod **owner, const uint8_t *dot, unsigned mark)
{
	m->n_deps = 0;
	if (m->alloc_deps == 0)
		m->deps = NULL; /* none, or in Depmod.deps_block */
	for (size_t j = 0; j < m->n_needs; j++) {
		uint32_t id = m->needs[j];
		Mod *o;

		/* ".name" (function descriptors) stands for name */
		if (dot[id] && !sym_lookup(d, d->syms[id] + 1, &id))
			continue;
		o = owner[id];
		/* o->mark says o is already one of m's dependencies */
		if (!o || o->mark == mark)
			continue;
		o->mark = mark;
		if (!GREEDY_REALLOC(m->deps, m->alloc_deps, m->n_deps + 1))
			return -ENOMEM;
		m->deps[m->n_deps++] = o;
	}
	return 0;
}

/* A fast update: the previous generation's dependencies of a module that stays hold when
 * none of the symbols it needs changed hands; they are taken from the cache. */
static int deps_from_prev(Depmod *d, Mod **owner, const uint8_t *dot, bool *ret_done)
{
	const Prev *P = d->prev;
	_cleanup_free_ uint8_t *moved = calloc(d->n_syms + 1, 1);
	const int32_t *old_owner;
	size_t n_block = 0;
	Mod **at;
	bool any = false;
	int r;

	*ret_done = false;
	old_owner = prev_owners(d);
	if (!moved || !old_owner)
		return -ENOMEM;
	/* the dependencies taken as they were go to one block, not one allocation each */
	for (size_t i = 0; i < d->n_array; i++)
		n_block += d->array[i]->n_old_deps;
	free(d->deps_block);
	d->deps_block = at = malloc((n_block + 1) * sizeof(Mod *));
	if (!at)
		return -ENOMEM;
	for (size_t id = 0; id < d->n_syms; id++) {
		const Mod *was = old_owner[id] >= 0 ? &P->mods[old_owner[id]] : NULL;

		if (was != owner[id]) {
			moved[id] = 1;
			any = true;
		}
	}
	for (size_t i = 0; i < d->n_array; i++) {
		Mod *m = d->array[i];
		bool again = !m->has_old_lines || !m->old_deps;

		for (size_t j = 0; !again && any && j < m->n_needs; j++) {
			uint32_t id = m->needs[j];

			if (dot[id] && !sym_lookup(d, d->syms[id] + 1, &id))
				continue;
			again = moved[id];
		}
		for (size_t j = 0; !again && j < m->n_old_deps; j++)
			again = m->old_deps[j] >= P->n || P->dropped[m->old_deps[j]];
		if (again) {
			r = deps_from_needs(d, m, owner, dot, (unsigned)i + 1);
			if (r < 0)
				return r;
			continue;
		}
		if (m->alloc_deps == 0)
			m->deps = at;
		else if (!GREEDY_REALLOC(m->deps, m->alloc_deps, m->n_old_deps))
			return -ENOMEM;
		for (size_t j = 0; j < m->n_old_deps; j++)
			m->deps[j] = &P->mods[m->old_deps[j]];
		m->n_deps = m->n_old_deps;
		if (m->alloc_deps == 0)
			at += m->n_old_deps;
	}
	*ret_done = true;
	return 0;
}

static int compute_deps(Depmod *d)
{
	_cleanup_free_ Mod **owner = calloc(d->n_syms + 1, sizeof(Mod *));
	_cleanup_free_ uint8_t *dot = calloc(d->n_syms + 1, 1);
	_cleanup_free_ unsigned *users = NULL, *stack = NULL;
	size_t n = d->n_array, n_roots = 0, n_sorted = 0;
	bool done = false;
	int r;

	if (!owner || !dot)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_syms; i++)
		dot[i] = d->syms[i][0] == '.';
	for (size_t i = 0; i < n; i++) {
		Mod *m = d->array[i];

		m->n_deps = 0;
		m->users = 0;
		m->mark = 0;
		m->dep_sort_idx = INT32_MAX;
		for (size_t j = 0; j < m->n_exports; j++)
			owner[m->exports[j]] = m;
	}
	if (d->prev) {
		r = deps_from_prev(d, owner, dot, &done);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n && !done; i++) {
		r = deps_from_needs(d, d->array[i], owner, dot, (unsigned)i + 1);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < d->array[i]->n_deps; k++)
			d->array[i]->deps[k]->users++;

	/* depmod's topological sort: roots in array order on a stack */
	users = calloc(n + 1, sizeof(unsigned));
	stack = calloc(n + 1, sizeof(unsigned));
	if (!users || !stack)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		users[i] = d->array[i]->users;
		if (users[i] == 0)
			stack[n_roots++] = (unsigned)i;
	}
	while (n_roots > 0) {
		Mod *src = d->array[stack[--n_roots]];

		src->dep_sort_idx = (int)n_sorted++;
		for (size_t k = 0; k < src->n_deps; k++) {
			unsigned di = src->deps[k]->idx;

			if (--users[di] == 0)
				stack[n_roots++] = di;
		}
	}
	if (n_sorted < n) {
		for (size_t i = 0; i < n; i++)
			if (users[i] > 0)
				return report_error(d->rep, -ELOOP, d->array[i]->path,
						    "module is part of a dependency cycle");
		return -ELOOP;
	}
	/* m->deps stay in the order of m's needs: the cache keeps them so */
	return 0;
}

static int dep_sort_cmp(const void *a, const void *b)
{
	return dep_cmp(a, b);
}

/* m's dependencies, direct and indirect, in depmod's order (by dep_sort_idx); list and
 * stack hold n_array entries. */
static size_t closure(Mod *m, unsigned stamp, Mod **list, Mod **stack)
{
	size_t n = 0, sp = 0;

	for (Mod *x = m;;) {
		for (size_t k = 0; k < x->n_deps; k++) {
			Mod *dep = x->deps[k];

			if (dep->stamp == stamp)
				continue;
			dep->stamp = stamp;
			list[n++] = dep;
			stack[sp++] = dep;
		}
		if (sp == 0)
			break;
		x = stack[--sp];
	}
	if (n > 16)
		qsort(list, n, sizeof(Mod *), dep_sort_cmp);
	else
		for (size_t i = 1; i < n; i++) {
			Mod *v = list[i];
			size_t j = i;

			for (; j > 0 && list[j - 1]->dep_sort_idx > v->dep_sort_idx; j--)
				list[j] = list[j - 1];
			list[j] = v;
		}
	return n;
}

/* modules.dep, and each module's line in it (m->dep_off, m->dep_len). */
static int write_dep_text(Depmod *d, Output *o)
{
	_cleanup_free_ Mod **list = calloc(d->n_array + 1, sizeof(Mod *));
	_cleanup_free_ Mod **stack = calloc(d->n_array + 1, sizeof(Mod *));
	_cleanup_free_ size_t *path_len = malloc((d->n_array + 1) * sizeof(size_t));
	KBuf *t = &o->buf[F_DEP];

	if (!list || !stack || !path_len)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_array; i++) {
		d->array[i]->stamp = 0;
		path_len[i] = strlen(d->array[i]->path);
	}
	for (size_t i = 0; i < d->n_array; i++) {
		Mod *m = d->array[i];
		size_t n = closure(m, (unsigned)i + 1, list, stack), len, pl;
		char *w;

		len = path_len[i] + 2;
		for (size_t j = 0; j < n; j++)
			len += path_len[list[j]->idx] + 1;
		if (kbuf_reserve(t, len) < 0)
			return -ENOMEM;
		m->dep_off = t->size;
		w = t->data + t->size;
		pl = path_len[i];
		memcpy(w, m->path, pl);
		w += pl;
		*w++ = ':';
		for (size_t j = 0; j < n; j++) {
			*w++ = ' ';
			pl = path_len[list[j]->idx];
			memcpy(w, list[j]->path, pl);
			w += pl;
		}
		*w++ = '\n';
		t->size = (size_t)(w - t->data);
		t->data[t->size] = 0;
		m->dep_len = t->size - m->dep_off;
	}
	o->present[F_DEP] = true;
	return 0;
}

static int write_dep_bin_patch(Depmod *d, Output *o);

/* Adds m's modules.dep line (without the newline) to idx, keyed by m's name. */
static int add_dep_line(KmodIndex *idx, const KBuf *t, const Mod *m, char **line,
			size_t *line_size)
{
	if (m->dep_len > *line_size) {
		free(*line);
		*line_size = m->dep_len * 2;
		*line = malloc(*line_size);
		if (!*line)
			return -ENOMEM;
	}
	memcpy(*line, t->data + m->dep_off, m->dep_len - 1);
	(*line)[m->dep_len - 1] = 0;
	return kmod_index_add(idx, m->name, *line, m->idx);
}


/* modules.dep.bin: each module's line (without the newline), keyed by its name. */
static int write_dep_bin(Depmod *d, Output *o)
{
	_cleanup_kmod_index_free_ KmodIndex *idx = NULL;
	_cleanup_free_ char *line = NULL;
	size_t line_size = 0;
	const KBuf *t = &o->buf[F_DEP];

	if (d->prev)
		return write_dep_bin_patch(d, o);
	idx = kmod_index_new();
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_array; i++) {
		int r = add_dep_line(idx, t, d->array[i], &line, &line_size);

		if (r < 0)
			return r;
	}
	o->present[F_DEP_BIN] = true;
	return kmod_index_write(idx, &o->buf[F_DEP_BIN]);
}

/* Appends the pieces, NULL-terminated. */
static int kbuf_cat(KBuf *b, ...)
{
	va_list ap;
	const char *p;
	int r = 0;

	va_start(ap, b);
	while (r >= 0 && (p = va_arg(ap, const char *)))
		r = kbuf_put(b, p, strlen(p));
	va_end(ap);
	return r;
}

/* A module's line in modules.devname ("name devname:X cMAJ:MIN"), from its aliases. */
static int put_devname(const Mod *m, KBuf *dv)
{
	const char *devname = NULL;
	char type = 0;
	unsigned major = 0, minor = 0;

	STRLIST_FOREACH(a, m->aliases)
	{
		unsigned maj, min;
		const char *v;

		if ((v = startswith(*a, "devname:")))
			devname = v;
		else if ((*a)[0] == 'c' && startswith(*a, "char-major-") &&
			 sscanf(*a, "char-major-%u-%u", &maj, &min) == 2) {
			type = 'c';
			major = maj;
			minor = min;
		} else if ((*a)[0] == 'b' && startswith(*a, "block-major-") &&
			   sscanf(*a, "block-major-%u-%u", &maj, &min) == 2) {
			type = 'b';
			major = maj;
			minor = min;
		}
		if (type && devname)
			break;
	}
	if (!devname || !type)
		return 0;
	return kbuf_printf(dv, "%s %s %c%u:%u\n", m->name, devname, type, major, minor);
}

/* modules.alias, .softdep and .devname. A module's lines are its own: a module that did
 * not change copies the previous generation's. Each module's place is recorded for the
 * cache. */
static int write_alias_text(Depmod *d, Output *o)
{
	static const char devname_header[] = "# Device nodes to trigger on-demand module loading.\n";
	KBuf *t = &o->buf[F_ALIAS], *s = &o->buf[F_SOFTDEP], *dv = &o->buf[F_DEVNAME];
	int r;

	r = kbuf_puts(t, "# Aliases extracted from modules themselves.\n");
	if (r >= 0)
		r = kbuf_puts(s,
			      "# Soft dependencies extracted from modules themselves.\n");
	/* the header comes first, but only when some module has a line */
	if (r >= 0)
		r = kbuf_puts(dv, devname_header);
	for (size_t i = 0; i < d->n_array && r >= 0; i++) {
		Mod *m = d->array[i];

		m->alias_off = t->size;
		if (m->has_old_lines)
			r = kbuf_put(t, m->old_alias, m->old_alias_len);
		else
			STRLIST_FOREACH(a, m->aliases)
			{
				r = kbuf_cat(t, "alias ", *a, " ", m->name, "\n", NULL);
				if (r < 0)
					return r;
			}
		m->alias_len = t->size - m->alias_off;
		STRLIST_FOREACH(a, m->softdeps)
		{
			r = kbuf_cat(s, "softdep ", m->name, " ", *a, "\n", NULL);
			if (r < 0)
				return r;
		}
		m->devname_off = dv->size;
		if (r >= 0)
			r = m->has_old_lines ? kbuf_put(dv, m->old_devname, m->old_devname_len) :
					       put_devname(m, dv);
		m->devname_len = dv->size - m->devname_off;
	}
	if (r < 0)
		return r;
	if (dv->size == strlen(devname_header))
		dv->size = 0;
	o->present[F_ALIAS] = o->present[F_SOFTDEP] = o->present[F_DEVNAME] = true;
	return 0;
}

/* Adds m's aliases, normalised, to idx. */
static int add_aliases(KmodIndex *idx, const Mod *m, char **norm, size_t *norm_size)
{
	STRLIST_FOREACH(a, m->aliases)
	{
		size_t l = strlen(*a) + 1;
		int r;

		if (l > *norm_size) {
			free(*norm);
			*norm_size = l * 2;
			*norm = malloc(*norm_size);
			if (!*norm)
				return -ENOMEM;
		}
		if (l <= PATH_MAX && kmod_alias_normalize(*a, *norm) >= 0) {
			r = kmod_index_add(idx, *norm, m->name, m->idx);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int write_alias_bin_patch(Depmod *d, Output *o);

/* modules.alias.bin, from every module's aliases. */
static int write_alias_bin(Depmod *d, Output *o)
{
	_cleanup_kmod_index_free_ KmodIndex *idx = NULL;
	_cleanup_free_ char *norm = NULL;
	size_t norm_size = 0;
	int r;

	if (d->prev)
		return write_alias_bin_patch(d, o);
	idx = kmod_index_new();
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_array; i++) {
		r = add_aliases(idx, d->array[i], &norm, &norm_size);
		if (r < 0)
			return r;
	}
	o->present[F_ALIAS_BIN] = true;
	return kmod_index_write(idx, &o->buf[F_ALIAS_BIN]);
}

typedef struct SymKey {
	uint32_t bucket;
	uint32_t id;
	const char *name;
} SymKey;

static int symkey_cmp(const void *a, const void *b)
{
	const SymKey *x = a, *y = b;

	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return strcmp(x->name, y->name);
}

static uint32_t sym_bucket(const char *name)
{
	return hash_superfast(name, (unsigned)strlen(name)) & 2047;
}

/* Every symbol id in the order depmod's symbol hash iterates (2048 buckets, then name): the
 * ones the cache brought are in that order already (d->sorted), the others are sorted and
 * merged in. */
static int sym_hash_order(Depmod *d)
{
	size_t n = d->n_syms, old = d->n_sorted, n_new = 0, i = 0, j = 0, k = 0;
	_cleanup_free_ SymKey *nw = NULL;
	_cleanup_free_ uint8_t *known = NULL;
	uint32_t *out = calloc(n + 1, sizeof(uint32_t));
	SymKey cur = {};

	if (!out)
		return -ENOMEM;
	if (old == n) {
		/* no new symbol */
		if (n > 0)
			memcpy(out, d->sorted, n * sizeof(uint32_t));
		free(d->hash_order);
		d->hash_order = out;
		return 0;
	}
	known = calloc(n + 1, 1);
	if (!known) {
		free(out);
		return -ENOMEM;
	}
	for (size_t x = 0; x < old; x++)
		known[d->sorted[x]] = 1;
	nw = calloc(n - old + 1, sizeof(SymKey));
	if (!nw) {
		free(out);
		return -ENOMEM;
	}
	for (size_t x = 0; x < n; x++)
		if (!known[x])
			nw[n_new++] = (SymKey){ sym_bucket(d->syms[x]), (uint32_t)x, d->syms[x] };
	qsort(nw, n_new, sizeof(SymKey), symkey_cmp);
	/* each new one goes where a binary search over the old order puts it */
	for (; j < n_new; j++) {
		size_t lo = i, hi = old;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			cur = (SymKey){ sym_bucket(d->syms[d->sorted[mid]]), d->sorted[mid],
					d->syms[d->sorted[mid]] };
			if (symkey_cmp(&cur, &nw[j]) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo > i)
			memcpy(out + k, d->sorted + i, (lo - i) * sizeof(uint32_t));
		k += lo - i;
		i = lo;
		out[k++] = nw[j].id;
	}
	if (old > i)
		memcpy(out + k, d->sorted + i, (old - i) * sizeof(uint32_t));
	free(d->hash_order);
	d->hash_order = out;
	return 0;
}

/* The module owning each symbol: the last exporter in the module order, as in depmod. */
static Mod **symbol_owners(Depmod *d)
{
	Mod **owner = calloc(d->n_syms + 1, sizeof(Mod *));

	if (!owner)
		return NULL;
	for (size_t i = 0; i < d->n_array; i++)
		for (size_t j = 0; j < d->array[i]->n_exports; j++)
			owner[d->array[i]->exports[j]] = d->array[i];
	return owner;
}

static int write_symbols_text(Depmod *d, Output *o, Mod **owner)
{
	KBuf *t = &o->buf[F_SYMBOLS];
	int r;

	r = kbuf_puts(t, "# Aliases for symbols, used by symbol_request().\n");
	for (size_t i = 0; i < d->n_syms && r >= 0; i++) {
		uint32_t id = d->hash_order[i];
		const Mod *m = owner[id];

		if (m)
			r = kbuf_cat(t, "alias symbol:", d->syms[id], " ", m->name, "\n", NULL);
	}
	if (r < 0)
		return r;
	o->present[F_SYMBOLS] = true;
	return 0;
}

static int symbol_key(const char *name, char **key, size_t *key_size)
{
	size_t l = strlen(name) + sizeof("symbol:");

	if (l > *key_size) {
		free(*key);
		*key_size = l * 2;
		*key = malloc(*key_size);
		if (!*key)
			return -ENOMEM;
	}
	memcpy(*key, "symbol:", 7);
	memcpy(*key + 7, name, l - 7);
	return 0;
}

static int write_symbols_bin(Depmod *d, Output *o, Mod **owner)
{
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	_cleanup_free_ char *key = NULL;
	size_t key_size = 0;
	int r = 0;

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_syms && r >= 0; i++) {
		uint32_t id = d->hash_order[i];
		const Mod *m = owner[id];

		if (!m)
			continue;
		r = symbol_key(d->syms[id], &key, &key_size);
		if (r >= 0)
			r = kmod_index_add(idx, key, m->name, m->idx);
	}
	if (r < 0)
		return r;
	o->present[F_SYMBOLS_BIN] = true;
	return kmod_index_write(idx, &o->buf[F_SYMBOLS_BIN]);
}

static int write_symbols_bin_patch(Depmod *d, Output *o, Mod **owner, const int32_t *old_owner);
static const int32_t *prev_owners(Depmod *d);
static bool symbol_owners_same(const Depmod *d, Mod **owner, const int32_t *old_owner);
static bool symbol_owners_stay(const Depmod *d, Mod **owner, const int32_t *old_owner);

static int write_symbols(Depmod *d, Output *o)
{
	_cleanup_free_ Mod **owner = symbol_owners(d);
	const int32_t *old_owner;
	int r;

	if (!owner)
		return -ENOMEM;
	if (!d->prev) {
		r = write_symbols_text(d, o, owner);
		return r < 0 ? r : write_symbols_bin(d, o, owner);
	}
	old_owner = prev_owners(d);
	if (!old_owner)
		return -ENOMEM;
	/* the text names each symbol's owner: when no symbol changed hands (an updated module
	 * exporting what its predecessor did), the file stays as it is */
	if (symbol_owners_same(d, owner, old_owner))
		o->keep[F_SYMBOLS] = true;
	else {
		r = write_symbols_text(d, o, owner);
		if (r < 0)
			return r;
	}
	/* nor does modules.symbols.bin when, besides, every owner is the same module at the same
	 * place in the order (its priority): a module added after the others, exporting nothing
	 * that was not exported already */
	if (o->keep[F_SYMBOLS] && symbol_owners_stay(d, owner, old_owner)) {
		o->keep[F_SYMBOLS_BIN] = true;
		return 0;
	}
	return write_symbols_bin_patch(d, o, owner, old_owner);
}

/* ---- a fast update's .bin files: the previous ones, patched ---- */

static uint32_t *prev_remap(const Depmod *d, const bool *also_drop)
{
	const Prev *P = d->prev;
	uint32_t *remap = calloc(P->n + 1, sizeof(uint32_t));

	if (!remap)
		return NULL;
	for (size_t i = 0; i < P->n; i++)
		remap[i] = P->dropped[i] || (also_drop && also_drop[i]) ? KMOD_INDEX_DROP :
									  P->mods[i].idx;
	return remap;
}

/* A corrupt previous file: the fast update gives way to the general one. */
static int patch_result(int r)
{
	return r == -EBADMSG ? -ESTALE : r;
}

/* The previous generation's index f, patched into o->buf[f]: priorities through remap (none
 * given to kmod_index_patch() when none changes, so that untouched subtrees are copied as
 * bytes) and the entries of add inserted. */
static int patch_prev(Depmod *d, Output *o, int f, const uint32_t *remap, KmodIndex *add)
{
	const Prev *P = d->prev;
	const uint32_t *arg = NULL;

	for (size_t i = 0; i < P->n && !arg; i++)
		if (remap[i] != i)
			arg = remap;
	o->present[f] = true;
	return patch_result(kmod_index_patch(P->data[f], P->size[f], arg, P->n, add, &o->buf[f]));
}

static int write_alias_bin_patch(Depmod *d, Output *o)
{
	_cleanup_kmod_index_free_ KmodIndex *add = kmod_index_new();
	_cleanup_free_ uint32_t *remap = prev_remap(d, NULL);
	_cleanup_free_ char *norm = NULL;
	size_t norm_size = 0;
	int r;

	if (!add || !remap)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_array; i++)
		if (!d->array[i]->has_old_lines) {
			r = add_aliases(add, d->array[i], &norm, &norm_size);
			if (r < 0)
				return r;
		}
	return patch_prev(d, o, F_ALIAS_BIN, remap, add);
}

static int write_dep_bin_patch(Depmod *d, Output *o)
{
	const Prev *P = d->prev;
	const KBuf *t = &o->buf[F_DEP];
	_cleanup_kmod_index_free_ KmodIndex *add = kmod_index_new();
	_cleanup_free_ bool *changed = calloc(P->n + 1, sizeof(bool));
	_cleanup_free_ uint32_t *remap = NULL;
	_cleanup_free_ char *line = NULL;
	size_t line_size = 0;
	int r;

	if (!add || !changed)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_array; i++) {
		Mod *m = d->array[i];
		bool same = m->has_old_lines && m->old_dep_len == m->dep_len &&
			    memcmp(m->old_dep, t->data + m->dep_off, m->dep_len) == 0;

		if (same)
			continue;
		if (m->has_old_lines)
			changed[m - P->mods] = true;
		r = add_dep_line(add, t, m, &line, &line_size);
		if (r < 0)
			return r;
	}
	remap = prev_remap(d, changed);
	if (!remap)
		return -ENOMEM;
	return patch_prev(d, o, F_DEP_BIN, remap, add);
}

/* Each symbol's owner in the previous generation (its index there), -1 for none. */
static const int32_t *prev_owners(Depmod *d)
{
	const Prev *P = d->prev;
	int32_t *old_owner;

	if (d->old_owner)
		return d->old_owner;
	old_owner = malloc((d->n_syms + 1) * sizeof(int32_t));
	if (!old_owner)
		return NULL;
	for (size_t i = 0; i < d->n_syms; i++)
		old_owner[i] = -1;
	for (size_t i = 0; i < P->n; i++)
		for (size_t j = 0; j < P->mods[i].n_exports; j++)
			old_owner[P->mods[i].exports[j]] = (int32_t)i;
	return d->old_owner = old_owner;
}

static bool symbol_owners_same(const Depmod *d, Mod **owner, const int32_t *old_owner)
{
	const Prev *P = d->prev;

	for (size_t id = 0; id < d->n_syms; id++) {
		const Mod *was = old_owner[id] >= 0 ? &P->mods[old_owner[id]] : NULL;

		if (!was != !owner[id] || (was && was != owner[id] && !streq(was->name, owner[id]->name)))
			return false;
	}
	return true;
}

static bool symbol_owners_stay(const Depmod *d, Mod **owner, const int32_t *old_owner)
{
	const Prev *P = d->prev;

	for (size_t id = 0; id < d->n_syms; id++) {
		int32_t oi = old_owner[id];

		if (oi < 0) {
			if (owner[id])
				return false;
			continue;
		}
		if (owner[id] != &P->mods[oi] || P->dropped[oi] || owner[id]->idx != (unsigned)oi)
			return false;
	}
	return true;
}

static int write_symbols_bin_patch(Depmod *d, Output *o, Mod **owner, const int32_t *old_owner)
{
	const Prev *P = d->prev;
	_cleanup_kmod_index_free_ KmodIndex *add = kmod_index_new();
	_cleanup_free_ uint32_t *remap = prev_remap(d, NULL);
	_cleanup_free_ char *key = NULL;
	size_t key_size = 0;
	int r;

	if (!add || !remap)
		return -ENOMEM;
	for (size_t k = 0; k < d->n_syms; k++) {
		uint32_t id = d->hash_order[k];
		int32_t oi = old_owner[id];
		const Mod *m = owner[id];

		if (oi >= 0 && !P->dropped[oi] && m != &P->mods[oi])
			/* a symbol moved between two modules that stay: its old value cannot
			 * be dropped alone */
			return write_symbols_bin(d, o, owner);
		if (!m || (oi >= 0 && m == &P->mods[oi]))
			continue;
		r = symbol_key(d->syms[id], &key, &key_size);
		if (r >= 0)
			r = kmod_index_add(add, key, m->name, m->idx);
		if (r < 0)
			return r;
	}
	return patch_prev(d, o, F_SYMBOLS_BIN, remap, add);
}

/* modules.builtin.bin and modules.builtin.alias.bin, from modules.builtin and
 * modules.builtin.modinfo; empty files when those are missing, as depmod writes them. */
static int write_builtin(Depmod *d, Output *o)
{
	_cleanup_free_ char *p1 = path_join(d->dir, "modules.builtin");
	_cleanup_free_ char *p2 = path_join(d->dir, "modules.builtin.modinfo");
	_cleanup_free_ char *data = NULL;
	size_t size = 0;
	int r;

	if (!p1 || !p2)
		return -ENOMEM;
	o->present[F_BUILTIN_BIN] = o->present[F_BUILTIN_ALIAS_BIN] = true;

	r = read_full_file(p1, 0, &data, &size);
	if (r >= 0) {
		_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();

		if (!idx)
			return -ENOMEM;
		for (char *line = data, *next; line < data + size; line = next) {
			char *base,
				*nl = memchr(line, '\n', (size_t)(data + size - line));
			size_t l;

			next = nl ? nl + 1 : data + size;
			if (nl)
				*nl = 0;
			if (!isalpha((unsigned char)line[0]))
				continue;
			base = strrchr(line, '/');
			base = base ? base + 1 : line;
			l = strcspn(base, ".");
			if (nl && !strchr(base, '.'))
				base[l++] =
					'\n'; /* depmod keeps the newline when there is no '.' */
			base[l] = 0;
			for (char *c = base; *c; c++)
				if (*c == '-')
					*c = '_';
			r = kmod_index_add(idx, base, "", 0);
			if (r < 0)
				return r;
		}
		r = kmod_index_write(idx, &o->buf[F_BUILTIN_BIN]);
		if (r < 0)
			return r;
	}

	free(data);
	data = NULL;
	r = read_full_file(p2, 0, &data, &size);
	if (r >= 0) {
		_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
		size_t pos = 0;

		if (!idx)
			return -ENOMEM;
		/* records "modname.key=value\0" */
		while (pos < size) {
			const char *mod, *key, *val;
			size_t ml, kl, vl;
			char end;

			mod = data + pos;
			for (ml = 0; pos < size && data[pos] != '.' && data[pos] != 0;
			     pos++, ml++)
				;
			end = pos < size ? data[pos] : 0;
			pos++;
			if (end != '.' || ml == 0)
				continue;
			key = data + pos;
			for (kl = 0; pos < size && data[pos] != '=' && data[pos] != 0;
			     pos++, kl++)
				;
			end = pos < size ? data[pos] : 0;
			pos++;
			if (end != '=' || kl != 5 || memcmp(key, "alias", 5) != 0) {
				if (end != 0)
					while (pos < size && data[pos] != 0)
						pos++;
				if (end != 0)
					pos++;
				continue;
			}
			val = data + pos;
			for (vl = 0; pos < size && data[pos] != 0; pos++, vl++)
				;
			end = pos < size ? 0 : 1;
			pos++;
			if (end != 0 || vl == 0)
				continue;
			{
				_cleanup_free_ char *m = strndup(mod, ml),
						    *v = strndup(val, vl);
				_cleanup_free_ char *norm = malloc(vl + 1);

				if (!m || !v || !norm)
					return -ENOMEM;
				if (kmod_alias_normalize(v, norm) < 0)
					continue;
				r = kmod_index_add(idx, norm, m, 0);
				if (r < 0)
					return r;
			}
		}
		r = kmod_index_write(idx, &o->buf[F_BUILTIN_ALIAS_BIN]);
		if (r < 0)
			return r;
	}
	return 0;
}



static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- work beside the calling thread ---- */

/* A thread that stays for a whole update and takes its jobs in the order they were handed
 * over. Between jobs it waits spinning for a while (yielding, then sleeping), and so does the
 * thread that waits for a job to finish: on a machine whose idle CPU must be woken (a virtual
 * one especially), a thread created or woken for each job starts late. */
#define WORKER_JOBS 4

typedef struct Worker {
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned posted, finished; /* jobs handed over and done: atomic, and under lock for
				    * whoever sleeps */
	struct {
		void *(*fn)(void *); /* NULL: stop */
		void *arg;
	} jobs[WORKER_JOBS];
} Worker;

#define SPIN_MS 2.0

/* Until *v reaches at (with past: at or beyond; else: anything but at), spinning up to
 * SPIN_MS, then sleeping on w->cond. */
static bool worker_reached(const unsigned *v, unsigned at, bool past)
{
	unsigned now = __atomic_load_n(v, __ATOMIC_ACQUIRE);

	return past ? (int)(now - at) >= 0 : now != at;
}

static void worker_await(Worker *w, const unsigned *v, unsigned at, bool past)
{
	double until = 0;

	for (unsigned i = 0; !worker_reached(v, at, past); i++) {
		if ((i & 63) == 63) {
			double t = mono_ms();

			if (until == 0)
				until = t + SPIN_MS;
			else if (t > until)
				break;
			/* whatever else wants this CPU runs first */
			sched_yield();
		}
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
	pthread_mutex_lock(&w->lock);
	while (!worker_reached(v, at, past))
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static void worker_signal(Worker *w, unsigned *v, unsigned value)
{
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(v, value, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *p)
{
	Worker *w = p;

	for (unsigned seen = 0;; seen++) {
		void *(*fn)(void *);

		worker_await(w, &w->posted, seen, false);
		fn = w->jobs[seen % WORKER_JOBS].fn;
		if (!fn)
			return NULL;
		fn(w->jobs[seen % WORKER_JOBS].arg);
		worker_signal(w, &w->finished, seen + 1);
	}
}

/* The worker runs on the CPUs the caller is not on now: left to itself, the scheduler of a
 * virtual machine tends to pack both threads on one virtual CPU for milliseconds. */
static void worker_start(Worker *w)
{
	cpu_set_t others;
	int here = sched_getcpu();

	*w = (Worker){ .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	w->running = pthread_create(&w->thread, NULL, worker_main, w) == 0;
	if (w->running && here >= 0 && here < CPU_SETSIZE &&
	    sched_getaffinity(0, sizeof(others), &others) == 0) {
		CPU_CLR(here, &others);
		if (CPU_COUNT(&others) > 0)
			(void)pthread_setaffinity_np(w->thread, sizeof(others), &others);
	}
}

/* Hands a job over; returns its number, which worker_wait() takes. */
static unsigned worker_post(Worker *w, void *(*fn)(void *), void *arg)
{
	unsigned n = w->posted;

	/* a free slot: the job WORKER_JOBS back is done */
	worker_await(w, &w->finished, n - WORKER_JOBS + 1, true);
	w->jobs[n % WORKER_JOBS].fn = fn;
	w->jobs[n % WORKER_JOBS].arg = arg;
	worker_signal(w, &w->posted, n + 1);
	return n + 1;
}

static void worker_wait(Worker *w, unsigned job)
{
	worker_await(w, &w->finished, job, true);
}

static void worker_stop(Worker *w)
{
	if (!w->running)
		return;
	(void)worker_post(w, NULL, NULL);
	pthread_join(w->thread, NULL);
	w->running = false;
}


static void job_start(Job *j, Worker *w, void *(*fn)(void *), void *arg)
{
	*j = (Job){};
	if (w && w->running) {
		j->w = w;
		j->n = worker_post(w, fn, arg);
		return;
	}
	j->threaded = pthread_create(&j->thread, NULL, fn, arg) == 0;
	if (!j->threaded)
		fn(arg);
}

static void job_wait(Job *j)
{
	if (j->n)
		worker_wait(j->w, j->n);
	else if (j->threaded)
		pthread_join(j->thread, NULL);
	j->n = 0;
	j->threaded = false;
}

/* TASK_NONE: never started (a zeroed Task), nothing to wait for */
enum { TASK_NONE, TASK_QUEUED, TASK_RUNNING, TASK_DONE };

static void *task_run(void *p)
{
	Task *t = p;
	int queued = TASK_QUEUED;

	/* the task's state is looked at before anything it points to: whoever comes second
	 * leaves it */
	if (!__atomic_compare_exchange_n(&t->state, &queued, TASK_RUNNING, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return NULL;
	t->fn(t->arg);
	if (t->job.w)
		worker_signal(t->job.w, (unsigned *)&t->state, TASK_DONE);
	else
		__atomic_store_n(&t->state, TASK_DONE, __ATOMIC_RELEASE);
	return NULL;
}

static void task_start(Task *t, Worker *w, void *(*fn)(void *), void *arg)
{
	t->fn = fn;
	t->arg = arg;
	t->state = TASK_QUEUED;
	job_start(&t->job, w, task_run, t);
}

/* Waits for the task, running it here when nothing has taken it yet. */
static void task_finish(Task *t)
{
	if (__atomic_load_n(&t->state, __ATOMIC_ACQUIRE) == TASK_NONE)
		return;
	(void)task_run(t);
	if (t->job.n)
		worker_await(t->job.w, (const unsigned *)&t->state, TASK_DONE, true);
	else if (t->job.threaded) {
		pthread_join(t->job.thread, NULL);
		t->job.threaded = false;
	}
}

/* The cache built early, on the worker: after modules.alias (its lines' places), beside
 * modules.symbols; finished and written by cache_job() in publish. */
static int state_build(Depmod *d, KBuf *out);

static void *cache_build_job(void *p)
{
	Output *o = p;

	/* after modules.alias, wherever that ran */
	task_finish(&o->alias_task);
	o->cache_early_r = state_build(o->d, &o->buf[F_CACHE]);
	return NULL;
}

static void *alias_job(void *p)
{
	Output *o = p;
	Depmod *d = o->d;
	double t = mono_ms();

	/* a failed write is recorded in o->err; publish() reports it */
	o->alias_r = write_alias_text(d, o);
	if (o->alias_r < 0)
		goto finish;
	output_flush(d, o, F_ALIAS);
	output_flush(d, o, F_SOFTDEP);
	output_flush(d, o, F_DEVNAME);
	output_pass(o, F_ALIAS, F_ALIAS_BIN);
	o->alias_r = write_alias_bin(d, o);
	if (o->alias_r >= 0)
		output_flush(d, o, F_ALIAS_BIN);
finish:
	o->alias_ms = mono_ms() - t;
	return NULL;
}

static void drop_spares(Output *o, int dfd);

/* Builds the indexes, two threads, each writing what it built to its spare at once. */
static int write_outputs(Depmod *d, Output *o)
{
	double t0 = mono_ms(), t1, t2;
	int r;

	/* only what will be published goes to spares (not a --verify build) */
	if (o->publish && !o->have_dfd) {
		o->dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		o->have_dfd = o->dfd >= 0;
	}
	/* modules.alias and its .bin on the worker (or a thread), modules.dep and .symbols
	 * beside them; the cache is built next on the worker, or while the commit waits for the
	 * disk (publish) */
	o->d = d;
	task_start(&o->alias_task, d->worker, alias_job, o);
	r = write_dep_text(d, o);
	if (r >= 0)
		output_flush(d, o, F_DEP);
	/* every module's place in modules.dep is known: the cache can be built next */
	if (r >= 0 && o->publish && d->worker && o->buf[F_CACHE].allocated > 0 &&
	    o->buf[F_CACHE].size == 0) {
		task_start(&o->build_task, d->worker, cache_build_job, o);
	}
	if (r >= 0)
		r = write_dep_bin(d, o);
	if (r >= 0)
		output_flush(d, o, F_DEP_BIN);
	output_pass(o, F_DEP_BIN, F_SYMBOLS_BIN);
	t1 = mono_ms();
	if (r >= 0)
		r = write_symbols(d, o);
	if (r >= 0) {
		output_flush(d, o, F_SYMBOLS);
		output_flush(d, o, F_SYMBOLS_BIN);
	}
	t2 = mono_ms();
	task_finish(&o->alias_task);
	log_debug("depmod: modules.dep %.2f ms, modules.symbols %.2f ms, modules.alias %.2f ms "
		  "(beside them)",
		  t1 - t0, t2 - t1, o->alias_ms);
	if (r >= 0)
		r = o->alias_r;
	if (r < 0 && o->have_dfd) {
		/* nothing is published: what was written to spares goes */
		for (int f = 0; f < F_MAX; f++)
			if (o->flushed[f]) {
				o->fd[f] = safe_close(o->fd[f]);
				o->flushed[f] = false;
			}
		drop_spares(o, o->dfd);
	}
	return r;
}

static int compute(Depmod *d, Output *o, bool builtin)
{
	int r;

	r = order_modules(d);
	if (r < 0)
		return r;
	phase("order");
	if (output_room(d, o) < 0)
		return -ENOMEM;
	r = compute_deps(d);
	if (r < 0)
		return r;
	r = sym_hash_order(d);
	if (r < 0)
		return r;
	phase("dependencies");
	r = write_outputs(d, o);
	if (r < 0)
		return r;
	phase("modules.dep, .symbols, .alias");
	if (builtin) {
		r = write_builtin(d, o);
		if (r < 0)
			return r;
	}
	if (d->rep)
		d->rep->n_modules = (unsigned)d->n_array;
	return 0;
}

/* ---- the cache ----
 *
 * A binary file, read whole: a header (identity of the index files and modules.order it
 * belongs to, a checksum of the rest), then arrays of u32/i32 and a string pool. Symbol ids
 * are stable from one generation to the next (new ones are appended, the open-addressing
 * table is stored as it is), so an update neither sorts nor hashes the symbols it already
 * knows. Unused symbols are dropped when they are more than a quarter of all. */

#define STATE_MAGIC "kmodd-depmod-6\n"
#define STATE_ENDIAN 0x01020304u

typedef struct StateFile {
	uint64_t ino;
	int64_t size, sec, nsec;
} StateFile;

typedef struct StateHeader {
	char magic[16];
	uint32_t endian, header_size;
	uint64_t generation;
	uint64_t size; /* of the whole file */
	uint64_t checksum; /* of everything after the header */
	uint64_t config_hash;
	StateFile files[ELEMENTSOF(fingerprinted)];
	StateFile order; /* modules.order; all zero when it is missing */
	uint32_t n_syms, n_slots, n_mods, n_ids, n_dirs, n_shadowed, strs_size;
	uint32_t off_syms, off_sorted, off_slots, off_mods, off_ids, off_dirs, off_shadowed,
		off_strs;
} StateHeader;

typedef struct StateMod {
	uint32_t name, path; /* string offsets */
	int32_t sort_idx;
	uint32_t bucket;
	uint32_t exports, n_exports, needs, n_needs; /* ranges of the id array */
	uint32_t softdeps, n_softdeps; /* a range of the id array holding string offsets */
	uint32_t deps, n_deps; /* a range of the id array: direct dependencies (module indexes),
				* in the order the module needs them */
	uint32_t dep_off, dep_len; /* the module's line in modules.dep */
	uint32_t alias_off, alias_len; /* its lines in modules.alias */
	uint32_t devname_off, devname_len; /* its line in modules.devname */
} StateMod;

typedef struct StateDir {
	uint32_t path, pad;
	int64_t sec, nsec;
} StateDir;

typedef struct State {
	const StateHeader *h;
	const uint32_t *syms, *sorted, *slots, *ids, *shadowed;
	const StateMod *mods;
	const StateDir *dirs;
	const char *strs;
} State;

/* A checksum for a torn or damaged cache: eight 64-bit lanes over 64-byte blocks, each word
 * adding itself and the product of the two halves of itself mixed with a key and the block's
 * place; the lanes and the tail folded at the end. SSE2 where there is SSE2, the same sums
 * word by word elsewhere. */
static const uint64_t state_keys[8] = {
	0xbe4ba423396cfeb8ull, 0x1cad21f72c81017cull, 0xdb979083e96dd4deull,
	0x1f67b3b7a4a44072ull, 0x78e5c0cc4ee679cbull, 0x2172ffcc7dd05a82ull,
	0x8e2443f7744608b8ull, 0x4c263a81e69035e0ull,
};

static uint64_t state_checksum(const void *data, size_t n)
{
	const uint64_t k = 0x9E3779B97F4A7C15ull;
	const unsigned char *p = data;
	uint64_t lanes[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, r = n;
	size_t i = 0;

#if defined(__SSE2__)
	{
		__m128i key[4], acc[4], ctr = _mm_setzero_si128(), one = _mm_set1_epi64x(1);

		for (int l = 0; l < 4; l++) {
			key[l] = _mm_loadu_si128((const __m128i *)state_keys + l);
			acc[l] = _mm_loadu_si128((const __m128i *)lanes + l);
		}
		for (; i + 64 <= n; i += 64, ctr = _mm_add_epi64(ctr, one))
			for (int l = 0; l < 4; l++) {
				__m128i w = _mm_loadu_si128((const __m128i *)(p + i) + l);
				__m128i x = _mm_xor_si128(w, _mm_add_epi64(key[l], ctr));

				acc[l] = _mm_add_epi64(
					acc[l],
					_mm_add_epi64(w, _mm_mul_epu32(x, _mm_srli_epi64(x, 32))));
			}
		for (int l = 0; l < 4; l++)
			_mm_storeu_si128((__m128i *)lanes + l, acc[l]);
	}
#else
	for (uint64_t block = 0; i + 64 <= n; i += 64, block++)
		for (int l = 0; l < 8; l++) {
			uint64_t w, x;

			memcpy(&w, p + i + 8 * l, 8);
			x = w ^ (state_keys[l] + block);
			lanes[l] += w + (x & 0xffffffffu) * (x >> 32);
		}
#endif
	for (int l = 0; l < 8; l++) {
		r = (r ^ lanes[l]) * k;
		r ^= r >> 29;
	}
	for (; i < n; i++)
		r = (r ^ p[i]) * 0x100000001B3ull;
	return r;
}

static uint64_t config_hash(const Config *c)
{
	KBuf b = {};
	uint64_t h;

	for (size_t i = 0; i < c->n_searches; i++)
		(void)kbuf_printf(&b, "search %d %s\n", (int)c->searches[i].type,
				  strempty(c->searches[i].path));
	STRV_FOREACH(o, c->overrides)
	(void)kbuf_printf(&b, "override %s\n", *o);
	STRV_FOREACH(e, c->excludes)
	(void)kbuf_printf(&b, "exclude %s\n", *e);
	h = state_checksum(b.data ?: "", b.size);
	kbuf_done(&b);
	return h;
}

static void state_file_set(StateFile *f, const struct stat *st)
{
	*f = (StateFile){ (uint64_t)st->st_ino, (int64_t)st->st_size,
			  (int64_t)st->st_mtim.tv_sec, (int64_t)st->st_mtim.tv_nsec };
}

static bool state_file_matches(const StateFile *f, const struct stat *st)
{
	StateFile now;

	state_file_set(&now, st);
	return memcmp(f, &now, sizeof(now)) == 0;
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Appends s to the string pool at the end of out, which starts at base. */
static int strs_add(KBuf *out, size_t base, const char *s, uint32_t *ret)
{
	size_t len = strlen(s) + 1;

	if (out->size - base > UINT32_MAX - len)
		return -EFBIG;
	*ret = (uint32_t)(out->size - base);
	return kbuf_put(out, s, len);
}

static void slots_fill(uint32_t *slots, size_t n_slots, char *const *names, size_t n)
{
	size_t mask = n_slots - 1;

	for (size_t id = 0; id < n; id++)
		for (size_t i = sym_hash(names[id]) & mask;; i = (i + 1) & mask)
			if (slots[i] == 0) {
				slots[i] = (uint32_t)id + 1;
				break;
			}
}

#define AT(type, off, i) (((type *)(out->data + (off)))[i])

/* The cache of this generation, laid out in place: fixed-size arrays first, the string
 * pool last. The header's identity of the index files and its checksum come last, from
 * state_finish(), once the files are written. */
static int state_build(Depmod *d, KBuf *out)
{
	_cleanup_free_ uint32_t *remap = calloc(d->n_syms + 1, sizeof(uint32_t));
	_cleanup_free_ char **names = NULL;
	_cleanup_strv_free_ char **shadowed = NULL;
	size_t n_used = 0, n_ids = 0, n_slots = d->n_slots, n_out, n_shadowed, off, strs, k;
	bool compact;
	StateHeader h = {};
	int r = 0;

	if (!remap)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_array; i++) {
		Mod *m = d->array[i];

		for (size_t j = 0; j < m->n_exports; j++)
			remap[m->exports[j]] = 1;
		for (size_t j = 0; j < m->n_needs; j++)
			remap[m->needs[j]] = 1;
		n_ids += m->n_exports + m->n_needs + m->softdeps.n + m->n_deps;
	}
	for (size_t i = 0; i < d->n_syms; i++)
		n_used += remap[i];
	/* unused symbols are kept (ids stay, nothing is rehashed) until they are many */
	compact = (d->n_syms - n_used) * 4 > d->n_syms || !d->sym_slots;
	n_out = compact ? n_used : d->n_syms;
	names = calloc(n_out + 1, sizeof(char *));
	if (!names)
		return -ENOMEM;
	k = 0;
	if (compact) {
		/* numbered in hash order */
		for (size_t i = 0; i < d->n_syms; i++) {
			uint32_t id = d->hash_order[i];

			if (remap[id]) {
				remap[id] = (uint32_t)k;
				names[k++] = d->syms[id];
			}
		}
		n_slots = 65536;
		while ((n_out + 1) * 2 > n_slots)
			n_slots *= 2;
	} else
		for (size_t i = 0; i < d->n_syms; i++) {
			remap[i] = (uint32_t)i;
			names[i] = d->syms[i];
		}

	if (d->tree) {
		const char *name;
		Cand *c;

		HASHMAP_FOREACH_KEY(c, name, d->tree)
		STRV_FOREACH(f, c->all)
		if (!streq(*f, c->path) && strv_extend(&shadowed, *f) < 0)
			return -ENOMEM;
	} else
		STRV_FOREACH(f, d->cached_shadowed)
	if (strv_extend(&shadowed, *f) < 0)
		return -ENOMEM;
	n_shadowed = strv_length(shadowed);
	if (n_out > UINT32_MAX / 2 || n_ids > UINT32_MAX || d->n_array > UINT32_MAX)
		return -EFBIG;

	/* the layout */
	off = align8(sizeof(StateHeader));
	h.off_syms = (uint32_t)off;
	off = align8(off + 4 * n_out);
	h.off_sorted = (uint32_t)off;
	off = align8(off + 4 * n_out);
	h.off_slots = (uint32_t)off;
	off = align8(off + 4 * n_slots);
	h.off_mods = (uint32_t)off;
	off = align8(off + sizeof(StateMod) * d->n_array);
	h.off_ids = (uint32_t)off;
	off = align8(off + 4 * n_ids);
	h.off_dirs = (uint32_t)off;
	off = align8(off + sizeof(StateDir) * d->n_dirs);
	h.off_shadowed = (uint32_t)off;
	off = align8(off + 4 * n_shadowed);
	h.off_strs = (uint32_t)off;
	strs = off;
	if (off > UINT32_MAX)
		return -EFBIG;
	r = kbuf_reserve(out, off + d->prev_strs_size + 65536);
	if (r < 0)
		return r;
	memset(out->data, 0, off);
	out->size = off;

	k = 0;
	if (!compact && d->cache_syms && d->cache_n_syms > 0 && d->cache_n_syms <= n_out) {
		/* the symbols the previous cache had keep their ids and their names lead the
		 * pool: both are copied whole */
		uint32_t last = d->cache_syms[d->cache_n_syms - 1];

		k = d->cache_n_syms;
		memcpy(&AT(uint32_t, h.off_syms, 0), d->cache_syms, 4 * k);
		r = kbuf_put(out, d->cache_strs, last + strlen(d->cache_strs + last) + 1);
	}
	for (size_t i = k; i < n_out && r >= 0; i++)
		r = strs_add(out, strs, names[i], &AT(uint32_t, h.off_syms, i));
	if (r < 0)
		return r;
	if (compact) {
		for (size_t i = 0; i < n_out; i++)
			AT(uint32_t, h.off_sorted, i) = (uint32_t)i;
		slots_fill(&AT(uint32_t, h.off_slots, 0), n_slots, names, n_out);
	} else {
		memcpy(&AT(uint32_t, h.off_sorted, 0), d->hash_order, 4 * n_out);
		memcpy(&AT(uint32_t, h.off_slots, 0), d->sym_slots, 4 * n_slots);
	}

	k = 0;
	for (size_t i = 0; i < d->n_array && r >= 0; i++) {
		Mod *m = d->array[i];
		uint32_t name, path;
		StateMod *sm;
		uint32_t *ids;

		r = strs_add(out, strs, m->name, &name);
		if (r >= 0)
			r = strs_add(out, strs, m->path, &path);
		if (r < 0)
			break;
		if (m->alias_off + m->alias_len > UINT32_MAX ||
		    m->dep_off + m->dep_len > UINT32_MAX ||
		    m->devname_off + m->devname_len > UINT32_MAX)
			return -EFBIG;
		sm = &AT(StateMod, h.off_mods, i);
		*sm = (StateMod){
			.name = name,
			.path = path,
			.sort_idx = m->sort_idx,
			.bucket = m->bucket,
			.exports = (uint32_t)k,
			.n_exports = (uint32_t)m->n_exports,
			.needs = (uint32_t)(k + m->n_exports),
			.n_needs = (uint32_t)m->n_needs,
			.softdeps = (uint32_t)(k + m->n_exports + m->n_needs),
			.n_softdeps = (uint32_t)m->softdeps.n,
			.deps = (uint32_t)(k + m->n_exports + m->n_needs + m->softdeps.n),
			.n_deps = (uint32_t)m->n_deps,
			.dep_off = (uint32_t)m->dep_off,
			.dep_len = (uint32_t)m->dep_len,
			.alias_off = (uint32_t)m->alias_off,
			.alias_len = (uint32_t)m->alias_len,
			.devname_off = (uint32_t)m->devname_off,
			.devname_len = (uint32_t)m->devname_len,
		};
		ids = &AT(uint32_t, h.off_ids, k);
		if (compact) {
			for (size_t j = 0; j < m->n_exports; j++)
				*ids++ = remap[m->exports[j]];
			for (size_t j = 0; j < m->n_needs; j++)
				*ids++ = remap[m->needs[j]];
		} else {
			if (m->n_exports)
				memcpy(ids, m->exports, 4 * m->n_exports);
			if (m->n_needs)
				memcpy(ids + m->n_exports, m->needs, 4 * m->n_needs);
		}
		k += m->n_exports + m->n_needs;
		for (size_t j = 0; j < m->softdeps.n && r >= 0; j++) {
			uint32_t so = 0;

			r = strs_add(out, strs, m->softdeps.v[j], &so);
			AT(uint32_t, h.off_ids, k++) = so;
		}
		for (size_t j = 0; j < m->n_deps; j++)
			AT(uint32_t, h.off_ids, k++) = m->deps[j]->idx;
	}
	for (size_t i = 0; i < d->n_dirs && r >= 0; i++) {
		uint32_t po = 0;

		r = strs_add(out, strs, d->dirs[i].path, &po);
		AT(StateDir, h.off_dirs, i) = (StateDir){
			.path = po,
			.sec = (int64_t)d->dirs[i].mtime.tv_sec,
			.nsec = (int64_t)d->dirs[i].mtime.tv_nsec,
		};
	}
	for (size_t i = 0; i < n_shadowed && r >= 0; i++)
		r = strs_add(out, strs, shadowed[i], &AT(uint32_t, h.off_shadowed, i));
	if (r < 0)
		return r;
	if (out->size - strs > UINT32_MAX)
		return -EFBIG;

	memcpy(h.magic, STATE_MAGIC, sizeof(h.magic));
	h.endian = STATE_ENDIAN;
	h.header_size = sizeof(StateHeader);
	h.config_hash = d->config_hash;
	h.n_syms = (uint32_t)n_out;
	h.n_slots = (uint32_t)n_slots;
	h.n_mods = (uint32_t)d->n_array;
	h.n_ids = (uint32_t)n_ids;
	h.n_dirs = (uint32_t)d->n_dirs;
	h.n_shadowed = (uint32_t)n_shadowed;
	h.strs_size = (uint32_t)(out->size - strs);
	h.size = out->size;
	memcpy(out->data, &h, sizeof(h));
	return 0;
}

static int state_finish(Depmod *d, const struct stat fp[F_MAX], KBuf *out)
{
	StateHeader h;
	struct stat st;

	if (out->size < sizeof(h))
		return -EINVAL;
	memcpy(&h, out->data, sizeof(h));
	h.generation = d->generation;
	for (size_t i = 0; i < ELEMENTSOF(fingerprinted); i++)
		state_file_set(&h.files[i], &fp[fingerprinted[i]]);
	{
		_cleanup_free_ char *op = path_join(d->dir, "modules.order");

		if (op && stat(op, &st) >= 0)
			state_file_set(&h.order, &st);
	}
	h.checksum = state_checksum(out->data + sizeof(h), out->size - sizeof(h));
	memcpy(out->data, &h, sizeof(h));
	return 0;
}

#undef AT

static bool state_range(const StateHeader *h, uint32_t off, size_t n, size_t size)
{
	return off % 4 == 0 && off >= sizeof(StateHeader) && off <= h->size &&
	       n <= (h->size - off) / size;
}

/* The cache mapped, its header, ranges, directories and the identity of the files it belongs
 * to checked: 1, or 0 when it cannot be used. Its checksum and the references of its modules
 * and symbols are checked by state_refs_ok(); until then only its directories are read. */
static int state_map(Depmod *d, State *ret)
{
	_cleanup_free_ char *path = path_join(d->dir, CACHE_NAME);
	_cleanup_close_ int dfd = -EBADF;
	const StateHeader *h;
	char *data = NULL;
	size_t size;
	State S;
	struct stat st;

	if (!path)
		return -ENOMEM;
	{
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(StateHeader))
			return 0;
		size = (size_t)st.st_size;
		/* private and writable: the symbol table is used in place */
		data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		if (data == MAP_FAILED)
			return 0;
		d->cache_map = data;
		d->cache_map_size = size;
	}
	h = (const StateHeader *)data;
	if (size < sizeof(StateHeader) || memcmp(h->magic, STATE_MAGIC, sizeof(h->magic)) != 0 ||
	    h->endian != STATE_ENDIAN || h->header_size != sizeof(StateHeader) ||
	    h->size != size)
		return 0;
	/* the generation counts on even when the rest is stale */
	d->generation = h->generation;
	if (!state_range(h, h->off_syms, h->n_syms, 4) ||
	    !state_range(h, h->off_sorted, h->n_syms, 4) ||
	    !state_range(h, h->off_slots, h->n_slots, 4) ||
	    !state_range(h, h->off_mods, h->n_mods, sizeof(StateMod)) ||
	    !state_range(h, h->off_ids, h->n_ids, 4) ||
	    !state_range(h, h->off_dirs, h->n_dirs, sizeof(StateDir)) ||
	    !state_range(h, h->off_shadowed, h->n_shadowed, 4) ||
	    !state_range(h, h->off_strs, h->strs_size, 1) || h->strs_size == 0 ||
	    data[h->off_strs + h->strs_size - 1] != 0 || h->n_slots < 2 ||
	    (h->n_slots & (h->n_slots - 1)) || h->n_syms * 2ull > h->n_slots)
		return 0;
	S = (State){
		.h = h,
		.syms = (const uint32_t *)(data + h->off_syms),
		.sorted = (const uint32_t *)(data + h->off_sorted),
		.slots = (const uint32_t *)(data + h->off_slots),
		.mods = (const StateMod *)(data + h->off_mods),
		.ids = (const uint32_t *)(data + h->off_ids),
		.dirs = (const StateDir *)(data + h->off_dirs),
		.shadowed = (const uint32_t *)(data + h->off_shadowed),
		.strs = data + h->off_strs,
	};
	for (uint32_t i = 0; i < h->n_dirs; i++)
		if (S.dirs[i].path >= h->strs_size)
			return 0;
	if (h->config_hash != d->config_hash) {
		log_debug("depmod: depmod.d changed since the cache was written");
		return 0;
	}

	dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(fingerprinted); i++) {
		if (fstatat(dfd, file_names[fingerprinted[i]], &st, 0) < 0 ||
		    !state_file_matches(&h->files[i], &st)) {
			log_debug("depmod: %s/%s changed since the cache was written", d->dir,
				  file_names[fingerprinted[i]]);
			return 0;
		}
		d->prev_size[fingerprinted[i]] = (size_t)st.st_size;
	}
	if (fstatat(dfd, "modules.order", &st, 0) < 0)
		st = (struct stat){};
	if (!state_file_matches(&h->order, &st) &&
	    !(st.st_ino == 0 && h->order.ino == 0)) {
		log_debug("depmod: modules.order changed since the cache was written");
		return 0;
	}
	d->prev_strs_size = h->strs_size;
	d->prev_cache_size = h->size;
	*ret = S;
	return 1;
}

/* The cache's checksum right, and every reference of its symbols and modules in range. */
static bool state_refs_ok(const State *ret)
{
	const StateHeader *h = ret->h;
	const State S = *ret;

	if (h->checksum != state_checksum((const char *)h + sizeof(StateHeader),
					  h->size - sizeof(StateHeader))) {
		log_debug("depmod: the cache's checksum does not match");
		return false;
	}
	for (uint32_t i = 0; i < h->n_syms; i++)
		if (S.syms[i] >= h->strs_size || S.sorted[i] >= h->n_syms)
			return false;
	for (uint32_t i = 0; i < h->n_slots; i++)
		if (S.slots[i] > h->n_syms)
			return false;
	for (uint32_t i = 0; i < h->n_mods; i++) {
		const StateMod *m = &S.mods[i];

		if (m->name >= h->strs_size || m->path >= h->strs_size ||
		    m->exports > h->n_ids || m->n_exports > h->n_ids - m->exports ||
		    m->needs > h->n_ids || m->n_needs > h->n_ids - m->needs ||
		    m->softdeps > h->n_ids || m->n_softdeps > h->n_ids - m->softdeps ||
		    m->devname_len > 0x10000 || m->devname_off > UINT32_MAX - m->devname_len ||
		    m->alias_off > UINT32_MAX - m->alias_len ||
		    m->dep_off > UINT32_MAX - m->dep_len)
			return false;
		for (uint32_t j = 0; j < m->n_exports; j++)
			if (S.ids[m->exports + j] >= h->n_syms)
				return false;
		for (uint32_t j = 0; j < m->n_needs; j++)
			if (S.ids[m->needs + j] >= h->n_syms)
				return false;
		for (uint32_t j = 0; j < m->n_softdeps; j++)
			if (S.ids[m->softdeps + j] >= h->strs_size)
				return false;
		if (m->deps > h->n_ids || m->n_deps > h->n_ids - m->deps)
			return false;
		for (uint32_t j = 0; j < m->n_deps; j++)
			if (S.ids[m->deps + j] >= h->n_mods)
				return false;
	}
	for (uint32_t i = 0; i < h->n_shadowed; i++)
		if (S.shadowed[i] >= h->strs_size)
			return false;
	return true;
}

/* The symbols, as they were: their table used in place. */
static int state_take(Depmod *d, const State *ret)
{
	const StateHeader *h = ret->h;
	const State S = *ret;

	d->syms = calloc(h->n_syms + 1, sizeof(char *));
	if (!d->syms)
		return -ENOMEM;
	for (uint32_t i = 0; i < h->n_syms; i++)
		d->syms[i] = (char *)S.strs + S.syms[i];
	d->sym_slots = (uint32_t *)S.slots;
	d->slots_mapped = true;
	d->sorted = (uint32_t *)S.sorted;
	d->sorted_mapped = true;
	d->n_syms = d->alloc_syms = h->n_syms;
	d->n_slots = h->n_slots;
	d->cache_syms = S.syms;
	d->cache_strs = S.strs;
	d->cache_n_syms = h->n_syms;
	d->n_sorted = h->n_syms;
	return 1;
}

/* Reads and checks the cache into *ret (pointing into a kept buffer); 0 when there is
 * none or it does not belong to the index files in place. */
static int state_open(Depmod *d, State *ret)
{
	int r = state_map(d, ret);

	if (r <= 0)
		return r;
	if (!state_refs_ok(ret))
		return 0;
	return state_take(d, ret);
}

static int ids_copy(const State *S, uint32_t at, uint32_t n, uint32_t **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = n;
	if (n == 0)
		return 0;
	*ret = malloc(sizeof(uint32_t) * n);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, S->ids + at, sizeof(uint32_t) * n);
	return 0;
}

/* Loads the cache when it belongs to the text indexes in place: returns 1 and fills
 * path -> Mod (exports, needs) in *ret, 0 when there is none or it is stale. */
static int cache_load(Depmod *d, Hashmap **ret)
{
	_cleanup_hashmap_free_ Hashmap *by_path = NULL;
	State S;
	int r;

	r = state_open(d, &S);
	if (r <= 0)
		return r;
	d->cached_dirs = calloc(S.h->n_dirs + 1, sizeof(DirStamp));
	if (!d->cached_dirs)
		return -ENOMEM;
	for (uint32_t i = 0; i < S.h->n_dirs; i++) {
		d->cached_dirs[i].path = strdup(S.strs + S.dirs[i].path);
		if (!d->cached_dirs[i].path)
			return -ENOMEM;
		d->cached_dirs[i].mtime =
			(struct timespec){ (time_t)S.dirs[i].sec, (long)S.dirs[i].nsec };
		d->n_cached_dirs = i + 1;
	}
	for (uint32_t i = 0; i < S.h->n_shadowed; i++)
		if (strv_extend(&d->cached_shadowed, S.strs + S.shadowed[i]) < 0)
			return -ENOMEM;
	by_path = hashmap_new(NULL, mod_free);
	if (!by_path)
		return -ENOMEM;
	for (uint32_t i = 0; i < S.h->n_mods; i++) {
		const StateMod *sm = &S.mods[i];
		Mod *m = calloc(1, sizeof(Mod));

		if (!m || !(m->path = strdup(S.strs + sm->path)) ||
		    ids_copy(&S, sm->exports, sm->n_exports, &m->exports, &m->n_exports) < 0 ||
		    ids_copy(&S, sm->needs, sm->n_needs, &m->needs, &m->n_needs) < 0) {
			mod_free(m);
			return -ENOMEM;
		}
		r = hashmap_put(by_path, m->path, m);
		if (r < 0) {
			mod_free(m);
			return r == -EEXIST ? 0 : r;
		}
	}
	*ret = TAKE_PTR(by_path);
	return 1;
}

static char *next_line(char **p, char *end)
{
	char *l = *p, *nl;

	if (l >= end)
		return NULL;
	nl = memchr(l, '\n', (size_t)(end - l));
	if (!nl)
		return NULL;
	*nl = 0;
	*p = nl + 1;
	return l;
}

/* ---- the old generation, from its text indexes and the cache ---- */

static int read_index_file(Depmod *d, const char *name, char **ret, size_t *ret_size)
{
	_cleanup_free_ char *p = path_join(d->dir, name);

	if (!p)
		return -ENOMEM;
	return read_full_file(p, 0, ret, ret_size);
}

/* Returns 1 when the old generation was loaded, 0 with *ret_reason when it cannot be. */
static int model_from_indexes(Depmod *d, char **ret_reason)
{
	_cleanup_hashmap_free_ Hashmap *cache = NULL;
	char *alias = NULL, *softdep = NULL;
	size_t alias_size, softdep_size;
	const char *path;
	char *p, *end, *l;
	Mod *c;
	int r;

	if (access(d->dir, F_OK) < 0 ||
	    read_index_file(d, "modules.alias", &alias, &alias_size) < 0 ||
	    read_index_file(d, "modules.softdep", &softdep, &softdep_size) < 0) {
		free(alias);
		free(softdep);
		*ret_reason = strdup("the text indexes are missing");
		return 0;
	}
	phase("load: read alias, softdep");
	r = cache_load(d, &cache);
	phase("load: cache");
	if (r <= 0) {
		free(alias);
		free(softdep);
	}
	if (r < 0)
		return r;
	if (r == 0) {
		*ret_reason =
			strdup("no kmodd symbol cache matches the indexes (written by "
			       "depmod or another tool)");
		return 0;
	}

	/* modules.dep is the file the cache was written with (same inode, size, mtime): its
	 * module list is the cache's */
	{
		_cleanup_free_ Mod **all = calloc(hashmap_size(cache) + 1, sizeof(Mod *));
		size_t n = 0;

		if (!all) {
			free(alias);
			free(softdep);
			return -ENOMEM;
		}
		HASHMAP_FOREACH_KEY(c, path, cache)
		all[n++] = c;
		for (size_t i = 0; i < n; i++) {
			hashmap_remove(cache, all[i]->path);
			all[i]->name = modname_from_path(all[i]->path);
			r = all[i]->name ? mods_put(d, all[i]) : -ENOMEM;
			if (!all[i]->name)
				mod_free(all[i]);
			if (r == -EEXIST) {
				for (size_t j = i + 1; j < n; j++)
					mod_free(all[j]);
				free(alias);
				free(softdep);
				goto bad;
			}
			if (r < 0) {
				for (size_t j = i + 1; j < n; j++)
					mod_free(all[j]);
				free(alias);
				free(softdep);
				return r;
			}
		}
	}

	phase("load: modules from cache");
	r = keep(d, alias);
	if (r < 0)
		return r;
	r = keep(d, softdep);
	if (r < 0)
		return r;
	p = alias;
	end = alias + alias_size;
	for (Mod *last = NULL, *m; (l = next_line(&p, end));) {
		char *sp;

		if (l[0] == '#')
			continue;
		if (!startswith(l, "alias ") || !(sp = strrchr(l + 6, ' ')))
			goto bad;
		*sp = 0;
		/* a module's aliases are on consecutive lines */
		m = last && streq(last->name, sp + 1) ? last :
							hashmap_get(d->mods, sp + 1);
		last = m;
		if (!m || strlist_add(&m->aliases, l + 6) < 0)
			goto bad;
	}
	for (p = softdep, end = softdep + softdep_size; (l = next_line(&p, end));) {
		char *sp;
		Mod *m;

		if (l[0] == '#')
			continue;
		if (!startswith(l, "softdep ") || !(sp = strchr(l + 8, ' ')))
			goto bad;
		*sp = 0;
		m = hashmap_get(d->mods, l + 8);
		if (!m || strlist_add(&m->softdeps, sp + 1) < 0)
			goto bad;
	}
	return 1;
bad:
	*ret_reason = strdup("the text indexes do not agree with the kmodd symbol cache");
	return 0;
}

/* The module names modules.dep lists; NULL when it cannot be read. */
static int dep_names(Depmod *d, char ***ret)
{
	_cleanup_free_ char *dep = NULL;
	_cleanup_strv_free_ char **names = NULL;
	size_t size;
	char *p, *l;

	if (read_index_file(d, "modules.dep", &dep, &size) < 0) {
		*ret = NULL;
		return 0;
	}
	for (p = dep; (l = next_line(&p, dep + size));) {
		char *colon = strchr(l, ':');
		int r;

		if (!colon)
			continue;
		*colon = 0;
		r = strv_consume(&names, modname_from_path(l));
		if (r < 0)
			return r;
	}
	if (!names && !(names = calloc(1, sizeof(char *))))
		return -ENOMEM;
	*ret = TAKE_PTR(names);
	return 0;
}

/* The .bin files must be sound before anything builds on them. */
static int check_bins(Depmod *d, bool only_builtin)
{
	static const int bins[] = { F_BUILTIN_BIN, F_BUILTIN_ALIAS_BIN, F_DEP_BIN,
				    F_ALIAS_BIN, F_SYMBOLS_BIN };

	for (size_t i = 0; i < (only_builtin ? 2 : ELEMENTSOF(bins)); i++) {
		_cleanup_free_ char *p = path_join(d->dir, file_names[bins[i]]),
				    *data = NULL;
		const char *why = NULL;
		size_t size;
		int r;

		if (!p)
			return -ENOMEM;
		r = read_full_file(p, 0, &data, &size);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return report_error(d->rep, r, p, "cannot read: %s",
					    ERRNO_NAME(-r));
		if (size == 0 &&
		    (bins[i] == F_BUILTIN_BIN || bins[i] == F_BUILTIN_ALIAS_BIN))
			continue; /* depmod writes them empty without modules.builtin* */
		r = kmod_index_check(data, size, &why);
		if (r < 0)
			return report_error(
				d->rep, -EBADMSG, p,
				"corrupt index (%s); rebuild it with 'kmodctl depmod "
				"--full'",
				strna(why));
	}
	return 0;
}

/* ---- publishing ---- */

static char *spare_name(int f)
{
	char *s;

	return asprintf(&s, SPARE_PREFIX "%s", file_names[f]) < 0 ? NULL : s;
}

static unsigned long step_delay_us(void)
{
	const char *e = getenv("KMODD_DEPMOD_STEP_DELAY_US");
	char *end;
	unsigned long v;

	if (!e)
		return 0;
	v = strtoul(e, &end, 10);
	return *end ? 0 : v;
}

static void step(void)
{
	/* a test aid: widen each publish step so kill -9 can land anywhere */
	static long delay = -1;

	if (delay < 0)
		delay = (long)step_delay_us();
	if (delay > 0)
		usleep((useconds_t)delay);
}

static int pwrite_all(int fd, const char *p, size_t n, off_t at)
{
	while (n > 0) {
		ssize_t k = pwrite(fd, p, n, at);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		p += k;
		n -= (size_t)k;
		at += k;
	}
	return 0;
}

/* Whether nothing but fd has the file open or mapped. A reader of the generation the file
 * once was (a long-lived libkmod context keeps the indexes mapped) must not see it change, and
 * a write lease is granted only when no other open file (a mapping keeps one) exists; it is
 * given back at once. Where leases are not supported the answer is no. A lease break in
 * between would signal SIGURG, which is ignored by default, not SIGIO, which terminates. */
static bool unused_elsewhere(int fd)
{
	if (fcntl(fd, F_SETSIG, SIGURG) < 0 || fcntl(fd, F_SETLEASE, F_WRLCK) < 0)
		return false;
	(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	return true;
}

/* Opens the file the new generation of index f goes to: its spare, which is the file the
 * generation before last published, written over in place when nothing else holds it (its
 * blocks are neither freed nor allocated again; freeing waits for the disk where the file
 * system discards online), else a new one. *ret_fresh says the directory gained an entry. */
static int open_spare(int dfd, int f, bool *ret_fresh)
{
	_cleanup_free_ char *s = spare_name(f);
	struct stat st;
	int fd;

	if (!s)
		return -ENOMEM;
	*ret_fresh = false;
	fd = openat(dfd, s, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    unused_elsewhere(fd))
			return fd;
		safe_close(fd);
	}
	if (fd >= 0 || errno != ENOENT) {
		/* in use, or not a plain file of ours: it goes, and whoever holds it keeps it */
		if (unlinkat(dfd, s, 0) < 0 && errno != ENOENT)
			return negative_errno();
	}
	fd = openat(dfd, s, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return negative_errno();
	*ret_fresh = true;
	return fd;
}

/* Writes index f to its spare and starts its writeback; the caller syncs it later through
 * o->fd[f], so the files go to disk together. */
static int write_spare(int dfd, int f, const KBuf *b, Output *o)
{
	_cleanup_close_ int fd = open_spare(dfd, f, &o->fresh[f]);
	int r;

	if (fd < 0)
		return fd;
	o->spare[f] = true;
	r = pwrite_all(fd, b->data ?: "", b->size, 0);
	if (r >= 0 && fstat(fd, &o->st[f]) < 0)
		r = negative_errno();
	if (r >= 0 && (size_t)o->st[f].st_size != b->size &&
	    (ftruncate(fd, (off_t)b->size) < 0 || fstat(fd, &o->st[f]) < 0))
		r = negative_errno();
	if (r < 0)
		return r;
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	o->fd[f] = TAKE_FD(fd);
	return 0;
}

/* Nothing is published: the spares this update wrote hold no generation and go. */
static void drop_spares(Output *o, int dfd)
{
	for (int f = 0; f < F_MAX; f++) {
		_cleanup_free_ char *t = NULL;

		if (!o->spare[f])
			continue;
		o->spare[f] = false;
		t = spare_name(f);
		if (t)
			(void)unlinkat(dfd, t, 0);
	}
}

/* Whether file f in place holds b's bytes. The previous generation's mapping is compared when
 * a fast update has one; else the file is read a piece at a time (no mapping: unmapping while
 * other threads run costs every core a TLB flush). */
static bool same_content(Depmod *d, int dfd, int f, const KBuf *b, struct stat *ret_st)
{
	_cleanup_close_ int fd = openat(dfd, file_names[f], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	bool same = true;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size != b->size)
		return false;
	if (d->prev && d->prev->data[f] && d->prev->size[f] == b->size)
		same = memcmp(d->prev->data[f], b->data ?: "", b->size) == 0;
	else {
		char piece[65536];

		for (size_t at = 0; same && at < b->size;) {
			ssize_t n = pread(fd, piece, b->size - at < sizeof(piece) ? b->size - at : sizeof(piece),
					  (off_t)at);

			if (n <= 0)
				return false;
			same = memcmp(piece, b->data + at, (size_t)n) == 0;
			at += (size_t)n;
		}
	}
	if (same)
		*ret_st = st;
	return same;
}

/* Writes a finished index to its spare now, so that its writeback overlaps the rest;
 * a file equal to the one in place is left alone. Called by the thread that built it. */
static void output_flush(Depmod *d, Output *o, int f)
{
	int r;

	if (!o->have_dfd || o->flushed[f] || !o->present[f])
		return;
	o->fd[f] = -EBADF;
	if (d->prev_size[f] == o->buf[f].size &&
	    same_content(d, o->dfd, f, &o->buf[f], &o->st[f])) {
		o->present[f] = false;
		o->flushed[f] = true;
		return;
	}
	step();
	r = write_spare(o->dfd, f, &o->buf[f], o);
	if (r < 0)
		o->err[f] = r;
	o->flushed[f] = true;
}

/* The cache is written beside the commit (it needs only the new files' identity), over the
 * previous one in place: a cache is never synced, and one that is torn, stale or describes
 * files that were not published fails its checksum or its fingerprints, and the next update
 * reads the tree. Written in place, the previous cache's blocks are neither freed nor
 * allocated anew (on a file system with online discard, freeing them waits for the disk).
 * Only an update holding the tree's lock reads it, and this one is done reading it. */
typedef struct CacheJob {
	Depmod *d;
	Output *o;
	int dfd;
	int r;
} CacheJob;

static void *cache_job(void *p)
{
	CacheJob *j = p;
	KBuf *b = &j->o->buf[F_CACHE];
	_cleanup_close_ int fd = -EBADF;

	/* built early (wherever that ran), or now */
	if (j->o->build_task.state != TASK_NONE) {
		task_finish(&j->o->build_task);
		j->r = j->o->cache_early_r;
	} else
		j->r = state_build(j->d, b);
	if (j->r >= 0)
		j->r = state_finish(j->d, j->o->st, b);
	if (j->r < 0)
		return NULL;
	fd = openat(j->dfd, CACHE_NAME, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		j->r = negative_errno();
		return NULL;
	}
	j->r = pwrite_all(fd, b->data, b->size, 0);
	if (j->r >= 0 && ftruncate(fd, (off_t)b->size) < 0)
		j->r = negative_errno();
	return NULL;
}

static void cache_start(CacheJob *j)
{
	task_start(&j->o->cache_task, j->d->worker, cache_job, j);
}

static int cache_wait(CacheJob *j)
{
	task_finish(&j->o->cache_task);
	return j->r;
}

/* The update failed after the cache job started: the cache, written for files that are not
 * published, goes. */
static void cache_drop(CacheJob *j)
{
	(void)cache_wait(j);
	if (j->dfd >= 0)
		(void)unlinkat(j->dfd, CACHE_NAME, 0);
}

static void publish_cache(CacheJob *j)
{
	int r = cache_wait(j);

	if (r < 0) {
		(void)unlinkat(j->dfd, CACHE_NAME, 0);
		log_debug("depmod: the cache was not written (%s); the next update reads the "
			  "whole tree",
			  ERRNO_NAME(-r));
	}
	phase("publish: cache");
}

/* The journal is one record of JOURNAL_SIZE bytes, kept from one update to the next and
 * written over in place: text, NUL-padded, checked by a sum over the text.
 *
 *     kmodd-depmod-journal 2
 *     generation 42
 *     commit                          (or idle)
 *     modules.dep 526589 1835012      (commit: name, size, inode of the new file)
 *     end
 *     sum 1a2b3c4d
 *
 * A commit is synced before the first file is put in place; idle is written after the
 * directory is synced, and not synced itself: a commit that comes back finds its files in
 * place. A record that does not check (torn while written) never had its files put in place:
 * it was either a commit not yet synced or an idle record after a finished publish. */
static uint32_t journal_sum(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

static int journal_record(char rec[static JOURNAL_SIZE], unsigned long generation,
			  const Output *o)
{
	size_t n;
	int k;

	memset(rec, 0, JOURNAL_SIZE);
	k = snprintf(rec, JOURNAL_SIZE, "%s\ngeneration %lu\n%s\n", JOURNAL_MAGIC, generation,
		     o ? "commit" : "idle");
	n = (size_t)k;
	for (int f = 0; o && f < F_MAX; f++) {
		if (!o->present[f])
			continue;
		k = snprintf(rec + n, JOURNAL_SIZE - n, "%s %zu %" PRIu64 "\n", file_names[f],
			     o->buf[f].size, (uint64_t)o->st[f].st_ino);
		if (k < 0 || (size_t)k >= JOURNAL_SIZE - n)
			return -E2BIG;
		n += (size_t)k;
	}
	if (JOURNAL_SIZE - n < 32)
		return -E2BIG;
	memcpy(rec + n, "end\n", 4);
	n += 4;
	snprintf(rec + n, JOURNAL_SIZE - n, "sum %08" PRIx32 "\n", journal_sum(rec, n));
	return 0;
}

/* Opens the journal, made when missing (*ret_made: the directory gained an entry). */
static int journal_open(int dfd, bool *ret_made)
{
	int fd = openat(dfd, JOURNAL_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

	*ret_made = false;
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : negative_errno();
	fd = openat(dfd, JOURNAL_NAME, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return negative_errno();
	*ret_made = true;
	return fd;
}

static int journal_write(int jfd, unsigned long generation, const Output *o, bool sync)
{
	char rec[JOURNAL_SIZE];
	int r = journal_record(rec, generation, o);

	if (r >= 0)
		r = pwrite_all(jfd, rec, sizeof(rec), 0);
	if (r >= 0 && sync && fdatasync(jfd) < 0)
		r = negative_errno();
	return r;
}

/* Puts the new generation of index f in place: exchanged with the file there, which becomes
 * the spare; renamed where there is none, or where the file system cannot exchange. */
static int put_in_place(int dfd, const char *spare, const char *name)
{
	if (renameat2(dfd, spare, dfd, name, RENAME_EXCHANGE) == 0)
		return 0;
	if (errno != ENOENT && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return negative_errno();
	if (renameat(dfd, spare, dfd, name) < 0)
		return negative_errno();
	return 0;
}

static int publish(Depmod *d, Output *o)
{
	_cleanup_close_ int dfd = -EBADF, jfd = -EBADF;
	struct stat *st = o->st;
	int *fds = o->fd;
	CacheJob cache = { d, o, -EBADF, 0 };
	bool dir_dirty = false, committed = false;
	int r, failed = -1;

	for (int f = 0; f < F_MAX; f++)
		if (!o->flushed[f])
			fds[f] = -EBADF;

	dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return report_error(d->rep, negative_errno(), d->dir, "cannot open");

	d->generation++;
	/* a write that failed while the indexes were built */
	for (int f = 0; f < F_MAX; f++)
		if (o->err[f] < 0) {
			r = o->err[f];
			failed = f;
			goto fail;
		}
	for (int f = 0; f < F_MAX; f++)
		if (o->keep[f] && fstatat(dfd, file_names[f], &st[f], AT_SYMLINK_NOFOLLOW) < 0) {
			r = negative_errno();
			failed = f;
			goto fail;
		}
	/* a file the update does not change keeps its inode; the cache records it as it is */
	for (int f = 0; f < F_MAX; f++)
		if (f != F_CACHE && !o->flushed[f] && o->present[f] &&
		    d->prev_size[f] == o->buf[f].size &&
		    same_content(d, dfd, f, &o->buf[f], &st[f]))
			o->present[f] = false;
	for (int f = 0; f < F_MAX; f++) {
		if (f == F_CACHE || !o->present[f] || o->flushed[f])
			continue;
		step();
		r = write_spare(dfd, f, &o->buf[f], o);
		if (r < 0) {
			failed = f;
			goto fail;
		}
	}
	phase("publish: write");
	cache.dfd = dfd;
	output_pass_all(o);
	cache_start(&cache);
	jfd = journal_open(dfd, &dir_dirty);
	if (jfd < 0) {
		r = jfd;
		failed = F_MAX;
		goto fail;
	}
	/* the indexes must be on disk before the journal commits them */
	for (int f = 0; f < F_MAX; f++) {
		if (fds[f] >= 0 && fdatasync(fds[f]) < 0) {
			r = negative_errno();
			failed = f;
			goto fail;
		}
		fds[f] = safe_close(fds[f]);
		dir_dirty = dir_dirty || (o->present[f] && o->fresh[f]);
	}
	/* and a spare (or the journal) made by this update must be found where the commit
	 * says it is */
	if (dir_dirty && fsync(dfd) < 0) {
		r = negative_errno();
		goto fail;
	}
	phase("publish: fdatasync");

	step();
	r = journal_write(jfd, d->generation, o, true);
	if (r < 0) {
		failed = F_MAX;
		/* the commit must not stand: the spares it names go below */
		if (journal_write(jfd, d->generation, NULL, true) < 0)
			committed = true;
		goto fail;
	}
	phase("publish: journal");
	/* the generation is committed: from here recovery rolls forward */
	for (int f = 0; f < F_MAX; f++) {
		_cleanup_free_ char *t = NULL;

		if (!o->present[f])
			continue;
		t = spare_name(f);
		if (!t) {
			cache_drop(&cache);
			return -ENOMEM;
		}
		step();
		r = put_in_place(dfd, t, file_names[f]);
		if (r < 0) {
			cache_drop(&cache);
			return report_error(
				d->rep, r, d->dir,
				"cannot put %s in place; 'kmodctl depmod' will finish the update",
				t);
		}
	}
	step();
	if (fsync(dfd) < 0) {
		r = negative_errno();
		cache_drop(&cache);
		return report_error(d->rep, r, d->dir, "cannot fsync");
	}
	step();
	r = journal_write(jfd, d->generation, NULL, false);
	if (r < 0) {
		_cleanup_free_ char *p = path_join(d->dir, JOURNAL_NAME);

		cache_drop(&cache);
		return report_error(d->rep, r, p ?: d->dir,
				    "cannot write the journal; 'kmodctl depmod' will finish the "
				    "update");
	}
	if (d->rep)
		d->rep->generation = d->generation;
	phase("publish: rename");
	publish_cache(&cache);
	return 0;

fail:
	cache_drop(&cache);
	for (int f = 0; f < F_MAX; f++)
		fds[f] = safe_close(fds[f]);
	/* a commit that may stand keeps what it names, for recovery to finish */
	if (!committed)
		drop_spares(o, dfd);
	{
		_cleanup_free_ char *p = NULL;

		if (failed >= 0 && failed < F_MAX)
			p = path_join(d->dir, file_names[failed]);
		else if (failed == F_MAX)
			p = path_join(d->dir, JOURNAL_NAME);
		return report_error(d->rep, r, p ?: d->dir,
				    "cannot write the new index (%s); %s", ERRNO_NAME(-r),
				    committed ? "'kmodctl depmod' will finish the update"
					      : "the old indexes are unchanged");
	}
}

/* ---- recovery ---- */

/* Version 1: a temporary that exists while its journal does is complete: all of them were
 * synced before the journal was written, and a publish only starts after recovery removed
 * every older one. The size is a sanity check. */
static int file_matches(int dfd, const char *name, size_t size)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return negative_errno();
	return S_ISREG(st.st_mode) && (size_t)st.st_size == size;
}

static int recover_v1(int dfd, const char *dir, const char *jpath, char *data, size_t size,
		      DepmodReport *rep)
{
	char *p = data, *end = data + size, *l;

	if (!(l = next_line(&p, end)) || !streq(l, JOURNAL_MAGIC_V1) ||
	    !(l = next_line(&p, end)) || !startswith(l, "generation "))
		return report_error(rep, -EBADMSG, jpath,
				    "not a kmodd depmod journal; remove it and run "
				    "'kmodctl depmod --full'");
	while ((l = next_line(&p, end)) && !streq(l, "end")) {
		char name[256], tname[300];
		size_t sz;
		int m;

		if (sscanf(l, "%255s %zu", name, &sz) != 2 || strchr(name, '/'))
			return report_error(rep, -EBADMSG, jpath, "malformed line '%s'", l);
		snprintf(tname, sizeof(tname), TMP_PREFIX "%s", name);
		m = file_matches(dfd, tname, sz);
		if (m > 0) {
			if (renameat(dfd, tname, dfd, name) < 0)
				return report_error(rep, negative_errno(), dir,
						    "cannot rename %s", tname);
			continue;
		}
		m = file_matches(dfd, name, sz);
		if (m <= 0 && streq(name, CACHE_NAME)) {
			/* not synced before the commit; without it the next update is a full
			 * build */
			(void)unlinkat(dfd, tname, 0);
			(void)unlinkat(dfd, name, 0);
			continue;
		}
		if (m <= 0)
			return report_error(rep, -EUCLEAN, jpath,
					    "the interrupted update cannot be completed (%s is "
					    "neither old nor new); run 'kmodctl depmod --full'",
					    name);
	}
	if (!l)
		return report_error(rep, -EBADMSG, jpath, "truncated journal");
	if (fsync(dfd) < 0 || unlinkat(dfd, JOURNAL_NAME, 0) < 0)
		return report_error(rep, negative_errno(), jpath, "cannot remove the journal");
	if (rep)
		rep->recovered = true;
	return 0;
}

/* Version 2: finishes a commit. A file whose inode is the one the commit names is in place; one
 * whose spare is that inode is put in place. Where some file is neither, the commit never took
 * effect when no file was put in place yet (a publish that failed after its commit took its
 * spares away, or the files were all rewritten since by something else); else it cannot be
 * finished. */
static int recover_v2(int dfd, int jfd, const char *dir, const char *jpath, char *data,
		      size_t size, DepmodReport *rep)
{
	enum { DONE, PENDING, LOST };
	struct {
		int f, state;
	} e[F_MAX];
	char *end = memchr(data, 0, size) ?: data + size, *p = data, *l, *tail;
	unsigned long generation;
	uint32_t sum;
	size_t n = 0, n_done = 0, n_lost = 0;
	int r;

	tail = memmem(data, (size_t)(end - data), "\nend\nsum ", 9);
	if (!tail || sscanf(tail + 9, "%8" SCNx32, &sum) != 1 ||
	    sum != journal_sum(data, (size_t)(tail + 5 - data))) {
		log_debug("depmod: %s holds no complete record; nothing to finish", jpath);
		return 0;
	}
	end = tail + 5;
	if (!(l = next_line(&p, end)) || !streq(l, JOURNAL_MAGIC) ||
	    !(l = next_line(&p, end)) || sscanf(l, "generation %lu", &generation) != 1 ||
	    !(l = next_line(&p, end)) || !(streq(l, "idle") || streq(l, "commit")))
		return report_error(rep, -EBADMSG, jpath,
				    "malformed journal; remove it and run 'kmodctl depmod --full'");
	if (streq(l, "idle"))
		return 0;
	while ((l = next_line(&p, end)) && !streq(l, "end")) {
		_cleanup_free_ char *spare = NULL;
		char name[256];
		size_t sz;
		uint64_t ino;
		struct stat st;
		int f = 0;

		if (sscanf(l, "%255s %zu %" SCNu64, name, &sz, &ino) == 3)
			for (f = 0; f < F_MAX && !streq(name, file_names[f]); f++)
				;
		if (n == F_MAX || f == F_MAX || f == F_CACHE)
			return report_error(rep, -EBADMSG, jpath, "malformed line '%s'", l);
		spare = spare_name(f);
		if (!spare)
			return -ENOMEM;
		e[n].f = f;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == ino &&
		    (size_t)st.st_size == sz)
			e[n].state = DONE, n_done++;
		else if (fstatat(dfd, spare, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == ino &&
			 (size_t)st.st_size == sz)
			e[n].state = PENDING;
		else
			e[n].state = LOST, n_lost++;
		n++;
	}
	if (n_lost > 0 && n_done > 0)
		for (size_t i = 0; i < n; i++)
			if (e[i].state == LOST)
				return report_error(
					rep, -EUCLEAN, jpath,
					"the interrupted update cannot be completed (%s is neither "
					"old nor new); run 'kmodctl depmod --full'",
					file_names[e[i].f]);
	if (n_lost > 0)
		log_debug("depmod: the update committed in %s never took effect", jpath);
	for (size_t i = 0; n_lost == 0 && i < n; i++) {
		_cleanup_free_ char *spare = spare_name(e[i].f);

		if (e[i].state != PENDING)
			continue;
		if (!spare)
			return -ENOMEM;
		r = put_in_place(dfd, spare, file_names[e[i].f]);
		if (r < 0)
			return report_error(rep, r, dir, "cannot put %s in place", spare);
	}
	if (fsync(dfd) < 0)
		return report_error(rep, negative_errno(), dir, "cannot fsync");
	r = journal_write(jfd, generation, NULL, false);
	if (r < 0)
		return report_error(rep, r, jpath, "cannot write the journal");
	if (rep && n_lost == 0)
		rep->recovered = true;
	return 0;
}

static int recover_dir(const char *dir, DepmodReport *rep)
{
	_cleanup_close_ int dfd = -EBADF, jfd = -EBADF;
	_cleanup_free_ char *jpath = NULL;
	bool removed = false;
	int r;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return report_error(rep, negative_errno(), dir,
				    "cannot open the module directory");

	jfd = openat(dfd, JOURNAL_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (jfd < 0 && errno != ENOENT) {
		jpath = path_join(dir, JOURNAL_NAME);
		return report_error(rep, negative_errno(), jpath ?: dir,
				    "cannot read the journal");
	}
	if (jfd >= 0) {
		char data[JOURNAL_SIZE + 1];
		ssize_t n = pread(jfd, data, JOURNAL_SIZE, 0);

		jpath = path_join(dir, JOURNAL_NAME);
		if (!jpath)
			return -ENOMEM;
		if (n < 0)
			return report_error(rep, negative_errno(), jpath,
					    "cannot read the journal");
		data[n] = 0;
		if (startswith(data, JOURNAL_MAGIC_V1 "\n")) {
			jfd = safe_close(jfd);
			r = recover_v1(dfd, dir, jpath, data, (size_t)n, rep);
			removed = r >= 0;
		} else
			r = recover_v2(dfd, jfd, dir, jpath, data, (size_t)n, rep);
		if (r < 0)
			return r;
	}

	/* what version 1 left */
	{
		_cleanup_(closedirp) DIR *dp = NULL;
		struct dirent *de;
		int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			return negative_errno();
		dp = fdopendir(fd);
		if (!dp) {
			safe_close(fd);
			return negative_errno();
		}
		while ((de = readdir(dp)))
			if (startswith(de->d_name, TMP_PREFIX) ||
			    streq(de->d_name, JOURNAL_NEW)) {
				if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT)
					return report_error(rep, negative_errno(), dir,
							    "cannot remove %s",
							    de->d_name);
				removed = true;
			}
	}
	if (removed && fsync(dfd) < 0)
		return negative_errno();
	return 0;
}

/* One kmodd update of a tree at a time: an exclusive flock on the module directory, held
 * until *ret_fd is closed. */
static int lock_tree(const char *root, const char *kver, DepmodReport *rep, int *ret_fd)
{
	_cleanup_free_ char *dir = path_join(root, "lib/modules", kver);
	int fd;

	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return report_error(rep, negative_errno(), dir,
				    "cannot open the module directory");
	if (flock(fd, LOCK_EX) < 0) {
		int r = negative_errno();
		safe_close(fd);
		return report_error(rep, r, dir, "cannot lock the module directory");
	}
	*ret_fd = fd;
	return 0;
}

static int recover_locked(const char *root, const char *kver, DepmodReport *rep)
{
	_cleanup_free_ char *dir = path_join(root, "lib/modules", kver);

	if (!dir)
		return -ENOMEM;
	return recover_dir(dir, rep);
}

int depmod_recover(const char *root, const char *kver, DepmodReport *rep)
{
	_cleanup_close_ int lock = -EBADF;
	int r;

	r = lock_tree(root, kver, rep, &lock);
	if (r < 0)
		return r;
	return recover_locked(root, kver, rep);
}

/* ---- entry points ---- */

static int build_full(Depmod *d, Output *o)
{
	int r;

	if (!d->tree) {
		r = tree_walk(d);
		if (r < 0)
			return report_error(d->rep, r, d->dir,
					    "cannot list the module tree");
	}
	r = model_from_tree(d);
	if (r < 0)
		return r;
	return compute(d, o, true);
}

int depmod_full(const char *root, const char *kver, DepmodReport *rep)
{
	_cleanup_close_ int lock = -EBADF;
	_cleanup_(depmod_freep) Depmod *d = NULL;
	_cleanup_(output_done) Output o = { .publish = true };
	_cleanup_hashmap_free_ Hashmap *ignored = NULL;
	int r;

	r = lock_tree(root, kver, rep, &lock);
	if (r < 0)
		return r;
	r = recover_locked(root, kver, rep);
	if (r < 0)
		return r;
	r = depmod_new(root, kver, rep, &d);
	if (r < 0)
		return r;
	/* keep the generation count going */
	(void)cache_load(d, &ignored);
	if (rep)
		rep->full_build = true;
	r = build_full(d, &o);
	if (r < 0)
		return r;
	return publish(d, &o);
}

static char *rel_of(Depmod *d, const char *path)
{
	const char *rel = path;
	size_t dl = strlen(d->dir);

	if (path[0] == '/') {
		if (strncmp(path, d->dir, dl) != 0 || path[dl] != '/')
			return NULL;
		rel = path + dl + 1;
	}
	while (startswith(rel, "./"))
		rel += 2;
	if (isempty(rel) || startswith(rel, "../") || strstr(rel, "/../") ||
	    endswith(rel, "/.."))
		return NULL;
	return strdup(rel);
}

/* ---- the fast update: the previous generation from the cache alone ----
 *
 * When the cache matches the index files, modules.order and depmod.d, an update needs no
 * hash of every module: the modules that did not change are taken from the cache as they
 * are (their symbols, order, and their lines in modules.alias and .devname, copied), only
 * the directories whose mtime changed are listed, and only the changed modules are read.
 * Anything unusual (a tie between two files of one module, a file the caller did not name,
 * an error to report) returns 0, and the general update below runs instead. */

static int fast_skip(const char *why)
{
	log_debug("depmod: fast update: %s", why);
	return 0;
}

typedef struct FastName {
	char *name;
	long old; /* index in the cache, or -1 */
	char *winner; /* path, or NULL when no file provides the name any more */
	bool changed;
} FastName;

typedef struct Fast {
	Depmod *d;
	State S;
	int dfd;
	char **changed_dirs; /* relisted or gone, as the cache names them ("" for the top) */
	char **found; /* module files in the relisted directories */
	char **gone; /* module files the cache knows that are gone */
	char **added; /* module files the cache does not know */
	FastName *names;
	size_t n_names;
	Mod *pool;
	size_t n_pool; /* kept here: the cache's header is overwritten when the new cache is
			* written in place (cache_job) */
	Mod **fresh; /* read now, owned */
	size_t n_fresh;
	Mod **probes; /* the added files, read while the directories were checked */
	size_t n_probes;
	Hashmap *by_name, *by_path; /* the cache's modules (index + 1), for many lookups */
	bool *dropped;
	Prev prev;
	void *maps[F_MAX];
} Fast;

static void fast_done(Fast *f)
{
	safe_close(f->dfd);
	strv_free(f->changed_dirs);
	strv_free(f->found);
	strv_free(f->gone);
	strv_free(f->added);
	for (size_t i = 0; i < f->n_names; i++) {
		free(f->names[i].name);
		free(f->names[i].winner);
	}
	free(f->names);
	if (f->pool)
		for (size_t i = 0; i < f->n_pool; i++) {
			free(f->pool[i].softdeps.v);
			free(f->pool[i].aliases.v);
			if (f->pool[i].alloc_deps > 0)
				free(f->pool[i].deps);
		}
	free(f->pool);
	for (size_t i = 0; i < f->n_fresh; i++)
		mod_free(f->fresh[i]);
	free(f->fresh);
	for (size_t i = 0; i < f->n_probes; i++)
		mod_free(f->probes[i]);
	free(f->probes);
	hashmap_free(f->by_name);
	hashmap_free(f->by_path);
	free(f->dropped);
	for (int i = 0; i < F_MAX; i++)
		if (f->maps[i])
			munmap(f->maps[i], f->prev.size[i]);
}

/* Maps the previous generation's file (the cache vouched for it); empty ones map to "". */
static int fast_map(Fast *f, int file)
{
	_cleanup_close_ int fd = openat(f->dfd, file_names[file], O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *p;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	f->prev.data[file] = "";
	f->prev.size[file] = 0;
	if (st.st_size == 0)
		return 0;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	f->maps[file] = p;
	f->prev.data[file] = p;
	f->prev.size[file] = (size_t)st.st_size;
	return 0;
}

static const char *state_str(const State *S, uint32_t off)
{
	return S->strs + off;
}

/* The cache's modules [i, end) as they were: their lines in the previous generation's
 * (mapped) files. false when a line is not inside its file. */
static bool pool_fill(Fast *f, uint32_t i, uint32_t end)
{
	const Prev *P = &f->prev;

	for (; i < end; i++) {
		const StateMod *sm = &f->S.mods[i];
		Mod *m = &f->pool[i];

		if ((size_t)sm->dep_off + sm->dep_len > P->size[F_DEP] ||
		    (size_t)sm->alias_off + sm->alias_len > P->size[F_ALIAS] ||
		    (size_t)sm->devname_off + sm->devname_len > P->size[F_DEVNAME])
			return false;
		m->name = (char *)state_str(&f->S, sm->name);
		m->path = (char *)state_str(&f->S, sm->path);
		m->exports = (uint32_t *)f->S.ids + sm->exports;
		m->n_exports = sm->n_exports;
		m->needs = (uint32_t *)f->S.ids + sm->needs;
		m->n_needs = sm->n_needs;
		m->sort_idx = sm->sort_idx;
		m->bucket = sm->bucket;
		m->has_old_lines = true;
		m->old_deps = f->S.ids + sm->deps;
		m->n_old_deps = sm->n_deps;
		m->old_dep = P->data[F_DEP] + sm->dep_off;
		m->old_dep_len = sm->dep_len;
		m->old_alias = P->data[F_ALIAS] + sm->alias_off;
		m->old_alias_len = sm->alias_len;
		m->old_devname = P->data[F_DEVNAME] + sm->devname_off;
		m->old_devname_len = sm->devname_len;
	}
	return true;
}

static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) + 1 : 0;
}

static bool in_dirs(char *const *dirs, const char *path)
{
	size_t l = dir_len(path);

	STRV_FOREACH(x, dirs)
	if (strlen(*x) == l && strncmp(*x, path, l) == 0)
		return true;
	return false;
}

static bool state_has_dir(const State *S, const char *rel)
{
	for (uint32_t i = 0; i < S->h->n_dirs; i++)
		if (streq(state_str(S, S->dirs[i].path), rel))
			return true;
	return false;
}

/* Lists one directory; subdirectories the cache knows are checked on their own, new ones
 * are listed whole. */
static int fast_list(Fast *f, int fd, const char *prefix)
{
	_cleanup_(closedirp) DIR *dp = NULL;
	struct dirent *de;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0 || (r = dir_stamp(f->d, prefix, &st.st_mtim)) < 0) {
		safe_close(fd);
		return -ENOMEM;
	}
	dp = fdopendir(fd);
	if (!dp) {
		safe_close(fd);
		return negative_errno();
	}
	while ((de = readdir(dp))) {
		_cleanup_free_ char *rel = NULL;
		bool is_dir;

		if (excluded(&f->d->cfg, de->d_name))
			continue;
		if (de->d_type == DT_REG)
			is_dir = false;
		else if (de->d_type == DT_DIR)
			is_dir = true;
		else {
			if (fstatat(dirfd(dp), de->d_name, &st, 0) < 0)
				continue;
			if (S_ISREG(st.st_mode))
				is_dir = false;
			else if (S_ISDIR(st.st_mode))
				is_dir = true;
			else
				continue;
		}
		if (!is_dir && !has_kmod_ext(de->d_name))
			continue;
		if (asprintf(&rel, "%s%s%s", prefix, de->d_name, is_dir ? "/" : "") < 0)
			return -ENOMEM;
		if (is_dir) {
			int sub;

			if (state_has_dir(&f->S, rel))
				continue;
			sub = openat(dirfd(dp), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (sub < 0)
				continue;
			r = fast_list(f, sub, rel);
			if (r < 0)
				return r;
		} else if (strv_consume(&f->found, TAKE_PTR(rel)) < 0)
			return -ENOMEM;
	}
	return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* The output region's pages brought in (a huge page at a time where there are huge pages),
 * on the worker while the main thread goes on: on a virtual machine a fresh page can take
 * long to come. MADV_POPULATE_WRITE leaves what is there as it is (the main thread may be
 * writing already); a kernel without it (before 5.14) leaves the pages to their first use. */
static void *prefault_job(void *p)
{
	Output *o = p;

	(void)madvise(o->region, o->region_size, MADV_POPULATE_WRITE);
	return NULL;
}

typedef struct DirCheck {
	const State *S;
	int dfd;
	uint32_t next, to; /* next: the first not taken yet, by either thread */
	struct stat *st; /* st_mode 0: gone */
	/* then the cache's modules, once the previous generation's files are mapped */
	struct Fast *f;
	uint32_t pool_next, pool_to;
	bool mapped, bad;
} DirCheck;

/* Stats the directories, then takes the cache's modules into the pool, a batch at a time:
 * the thread started for it and the one that started it, once its own work is done, share
 * them. The pool waits for the files the modules' lines are in: a thread that finds them not
 * mapped yet leaves the pool to the other. */
static void *dir_check(void *p)
{
	DirCheck *c = p;
	uint32_t i, end;

	while ((i = __atomic_fetch_add(&c->next, 32, __ATOMIC_RELAXED)) < c->to)
		for (end = i + 32 < c->to ? i + 32 : c->to; i < end; i++) {
			const char *rel = state_str(c->S, c->S->dirs[i].path);

			if (fstatat(c->dfd, rel[0] ? rel : ".", &c->st[i], 0) < 0 ||
			    !S_ISDIR(c->st[i].st_mode))
				c->st[i].st_mode = 0;
		}
	if (!c->f || !__atomic_load_n(&c->mapped, __ATOMIC_ACQUIRE))
		return NULL;
	while ((i = __atomic_fetch_add(&c->pool_next, 256, __ATOMIC_RELAXED)) < c->pool_to)
		if (!pool_fill(c->f, i, i + 256 < c->pool_to ? i + 256 : c->pool_to))
			__atomic_store_n(&c->bad, true, __ATOMIC_RELAXED);
	return NULL;
}

/* Which files appeared and went: only where a directory's mtime changed. */
static int fast_tree(Fast *f, const struct stat *st)
{
	const State *S = &f->S;
	uint32_t nd = S->h->n_dirs;
	int r;

	for (uint32_t i = 0; i < nd; i++) {
		const StateDir *sd = &S->dirs[i];
		const char *rel = state_str(S, sd->path);
		int fd;

		if (st[i].st_mode == 0) {
			if (strv_extend(&f->changed_dirs, rel) < 0)
				return -ENOMEM;
			continue;
		}
		if (sd->sec != 0 && st[i].st_mtim.tv_sec == sd->sec &&
		    st[i].st_mtim.tv_nsec == sd->nsec) {
			r = dir_stamp(f->d, rel, &st[i].st_mtim);
			if (r < 0)
				return r;
			continue;
		}
		if (strv_extend(&f->changed_dirs, rel) < 0)
			return -ENOMEM;
		fd = openat(f->dfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		log_debug("depmod: %s/%s changed, listing it again", f->d->dir, rel);
		r = fast_list(f, fd, rel);
		if (r < 0)
			return r;
	}

	/* the cache's files in those directories: still there, or gone */
	for (int pass = 0; pass < 2; pass++) {
		uint32_t n = pass == 0 ? S->h->n_mods : S->h->n_shadowed;

		for (uint32_t i = 0; i < n; i++) {
			const char *p = state_str(S, pass == 0 ? S->mods[i].path : S->shadowed[i]);

			if (!in_dirs(f->changed_dirs, p) || strv_contains(f->found, p))
				continue;
			if (strv_extend(&f->gone, p) < 0)
				return -ENOMEM;
		}
	}
	/* a few files are looked up one by one; many through a map */
	if (strv_length(f->found) > 4 && !f->by_path) {
		f->by_path = hashmap_new(NULL, NULL);
		if (!f->by_path)
			return -ENOMEM;
		for (uint32_t i = 0; i < S->h->n_mods + S->h->n_shadowed; i++) {
			const char *p = state_str(S, i < S->h->n_mods ? S->mods[i].path :
								  S->shadowed[i - S->h->n_mods]);

			r = hashmap_put(f->by_path, p, (void *)(uintptr_t)(i + 1));
			if (r < 0 && r != -EEXIST)
				return r;
		}
	}
	STRV_FOREACH(p, f->found)
	{
		bool known = false;

		if (f->by_path)
			known = hashmap_contains(f->by_path, *p);
		for (uint32_t i = 0; !f->by_path && i < S->h->n_mods && !known; i++)
			known = streq(state_str(S, S->mods[i].path), *p);
		for (uint32_t i = 0; !f->by_path && i < S->h->n_shadowed && !known; i++)
			known = streq(state_str(S, S->shadowed[i]), *p);
		if (!known && strv_extend(&f->added, *p) < 0)
			return -ENOMEM;
	}
	return 0;
}

static long state_find(Fast *f, const char *name)
{
	const State *S = &f->S;

	if (f->by_name) {
		uintptr_t v = (uintptr_t)hashmap_get(f->by_name, name);

		return v ? (long)v - 1 : -1;
	}
	for (uint32_t i = 0; i < S->h->n_mods; i++)
		if (streq(state_str(S, S->mods[i].name), name))
			return i;
	return -1;
}

static int fast_name_add(Fast *f, const char *name)
{
	FastName *n;

	for (size_t i = 0; i < f->n_names; i++)
		if (streq(f->names[i].name, name))
			return 0;
	n = reallocarray(f->names, f->n_names + 1, sizeof(FastName));
	if (!n)
		return -ENOMEM;
	f->names = n;
	n = &f->names[f->n_names];
	*n = (FastName){ .name = strdup(name), .old = state_find(f, name) };
	if (!n->name)
		return -ENOMEM;
	f->n_names++;
	return 0;
}

static int fast_name_add_path(Fast *f, const char *path)
{
	_cleanup_free_ char *n = modname_from_path(path);

	return n ? fast_name_add(f, n) : -ENOMEM;
}

/* Is name the module name of path (modname_from_path() without the copy)? */
static bool name_is(const char *path, const char *name)
{
	const char *base = strrchr(path, '/');
	size_t l;

	base = base ? base + 1 : path;
	l = strcspn(base, ".");
	if (strlen(name) != l)
		return false;
	for (size_t i = 0; i < l; i++)
		if ((base[i] == '-' ? '_' : base[i]) != name[i])
			return false;
	return true;
}

/* The winner of each name the update touches; 0 when the general update must decide. */
static int fast_decide(Fast *f, char *const *add_rel, char *const *add_names,
		       char *const *rm_names, char ***ret_shadowed)
{
	const State *S = &f->S;
	_cleanup_strv_free_ char **shadowed = NULL;
	int r;

	if (strv_length(f->gone) + strv_length(f->added) + strv_length((char **)add_names) +
		    strv_length((char **)rm_names) > 4) {
		f->by_name = hashmap_new(NULL, NULL);
		if (!f->by_name)
			return -ENOMEM;
		for (uint32_t i = 0; i < S->h->n_mods; i++) {
			r = hashmap_put(f->by_name, state_str(S, S->mods[i].name),
					(void *)(uintptr_t)(i + 1));
			if (r < 0 && r != -EEXIST)
				return r;
		}
	}
	STRV_FOREACH(p, f->gone)
	if ((r = fast_name_add_path(f, *p)) < 0)
		return r;
	STRV_FOREACH(p, f->added)
	if ((r = fast_name_add_path(f, *p)) < 0)
		return r;
	STRV_FOREACH(n, add_names)
	if ((r = fast_name_add(f, *n)) < 0)
		return r;
	STRV_FOREACH(n, rm_names)
	if ((r = fast_name_add(f, *n)) < 0)
		return r;

	for (size_t i = 0; i < f->n_names; i++) {
		FastName *fn = &f->names[i];
		_cleanup_strv_free_ char **files = NULL;
		const char *old_path = fn->old >= 0 ? state_str(S, S->mods[fn->old].path) : NULL;
		const char *best = NULL;
		int best_prio = INT_MIN;
		bool tie = false;

		if (old_path && !strv_contains(f->gone, old_path) && strv_extend(&files, old_path) < 0)
			return -ENOMEM;
		for (uint32_t j = 0; j < S->h->n_shadowed; j++) {
			const char *p = state_str(S, S->shadowed[j]);

			if (!strv_contains(f->gone, p) && name_is(p, fn->name) &&
			    strv_extend(&files, p) < 0)
				return -ENOMEM;
		}
		STRV_FOREACH(p, f->added)
		if (name_is(*p, fn->name) && strv_extend(&files, *p) < 0)
			return -ENOMEM;
		STRV_FOREACH(p, files)
		{
			int prio = config_priority(&f->d->cfg, *p);

			if (!best || prio > best_prio) {
				best = *p;
				best_prio = prio;
				tie = false;
			} else if (prio == best_prio)
				tie = true;
		}
		if (tie)
			return fast_skip("two files of one module at the same priority");
		/* an added file the tree does not hold, a removal of what is not indexed or
		 * still there: the general update reports it */
		STRV_FOREACH(a, add_rel)
		if (name_is(*a, fn->name) && !strv_contains(files, *a))
			return fast_skip("an added file is not in the tree");
		if (strv_contains(rm_names, fn->name) &&
		    (!old_path || (best && streq(best, old_path))))
			return fast_skip("a removed module is not indexed or still there");
		if (best && !(fn->winner = strdup(best)))
			return -ENOMEM;
		fn->changed = !old_path != !best || (best && !streq(best, old_path)) ||
			      (best && strv_contains(add_rel, best));
		/* a change nobody announced: the indexes disagree with the tree */
		if (fn->changed && !strv_contains(add_names, fn->name) &&
		    !strv_contains(rm_names, fn->name))
			return fast_skip("the tree changed where the caller did not say");
		STRV_FOREACH(p, files)
		if (!streq(*p, best) && strv_extend(&shadowed, *p) < 0)
			return -ENOMEM;
	}
	/* the shadowed files of names the update did not touch stay */
	for (uint32_t j = 0; j < S->h->n_shadowed; j++) {
		const char *p = state_str(S, S->shadowed[j]);
		_cleanup_free_ char *n = modname_from_path(p);
		bool touched = false;

		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < f->n_names && !touched; i++)
			touched = streq(f->names[i].name, n);
		if (!touched && strv_extend(&shadowed, p) < 0)
			return -ENOMEM;
	}
	*ret_shadowed = TAKE_PTR(shadowed);
	return 1;
}

/* A module's place in modules.order, as order_modules() finds it. */
static int order_of(const char *data, size_t size, bool have, const Mod *m)
{
	size_t ul = dir_len(m->path) + strlen(m->name) + 3, total = 1, idx = 0;
	int found = 1;

	if (!have || (size > 0 && data[size - 1] != '\n'))
		return 1;
	for (size_t i = 0; i < size; i++)
		total += data[i] == '\n';
	for (const char *line = data, *next; line < data + size; line = next) {
		const char *nl = memchr(line, '\n', (size_t)(data + size - line));

		next = nl + 1;
		idx++;
		if ((size_t)(nl - line) == strnlen(m->path, ul) &&
		    strncmp(line, m->path, (size_t)(nl - line)) == 0)
			found = (int)idx - (int)total;
	}
	return found;
}

static int fast_update(const char *root, const char *kver, char *const *add_rel,
		       char *const *add_names, char *const *rm_names, DepmodReport *rep)
{
	_cleanup_(depmod_freep) Depmod *d = NULL;
	_cleanup_(output_done) Output o = { .publish = true };
	_cleanup_(fast_done) Fast f = { .dfd = -EBADF };
	_cleanup_strv_free_ char **shadowed = NULL;
	_cleanup_free_ char *order = NULL;
	_cleanup_free_ struct stat *dir_st = NULL;
	/* last, so that it stops first: no job of it runs past this function */
	_cleanup_(worker_stop) Worker worker;
	size_t order_size = 0, n_old, n_new = 0;
	bool have_order;
	int r;

	/* started now, it is awake when its first job comes */
	worker_start(&worker);
	r = depmod_new(root, kver, rep, &d);
	if (r < 0)
		return r;
	d->worker = &worker;
	f.d = d;
	r = state_map(d, &f.S);
	if (r <= 0)
		return r;
	n_old = f.S.h->n_mods;
	f.dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f.dfd < 0)
		return 0;
	/* a stat per directory, on a thread, while this one checks the rest of the cache, maps
	 * the previous generation's files (the cache vouches for them) and reads the added
	 * modules */
	{
		static const int mapped[] = { F_DEP, F_DEP_BIN, F_ALIAS, F_ALIAS_BIN,
					      F_SYMBOLS_BIN, F_DEVNAME };
		uint32_t nd = f.S.h->n_dirs;
		DirCheck all = { &f.S, f.dfd, 0, nd, NULL, &f, 0, n_old, false, false };
		const char *skip = NULL;
		Job thread, prefault;
		int taken = 0;

		dir_st = calloc(nd + 1, sizeof(struct stat));
		f.probes = calloc(strv_length((char **)add_rel) + 1, sizeof(Mod *));
		f.pool = calloc(n_old + 1, sizeof(Mod));
		f.n_pool = f.pool ? n_old : 0;
		if (!dir_st || !f.probes || !f.pool)
			return -ENOMEM;
		all.st = dir_st;
		job_start(&thread, &worker, dir_check, &all);
		/* the room for the new generation, sized after the previous one */
		if (output_room(d, &o) < 0)
			return -ENOMEM;
		if (!state_refs_ok(&f.S))
			skip = "the cache does not check";
		else if ((taken = state_take(d, &f.S)) < 0)
			skip = "out of memory";
		for (size_t i = 0; i < ELEMENTSOF(mapped) && !skip; i++)
			if (fast_map(&f, mapped[i]) < 0)
				skip = "an index file cannot be read";
		{
			_cleanup_free_ char *op = path_join(d->dir, "modules.order");

			have_order = op && read_full_file(op, 0, &order, &order_size) >= 0;
		}
		STRV_FOREACH(a, add_rel)
		{
			_cleanup_free_ char *n = modname_from_path(*a);
			Mod *m;

			if (skip)
				break;
			r = n ? mod_new(n, *a, &m) : -ENOMEM;
			if (r < 0) {
				skip = "out of memory";
				break;
			}
			f.probes[f.n_probes++] = m;
			if (mod_read(d, m, true) < 0)
				skip = "a module cannot be read";
		}
		if (!skip)
			__atomic_store_n(&all.mapped, true, __ATOMIC_RELEASE);
		(void)dir_check(&all);
		job_wait(&thread);
		/* brought in on the worker once this thread is done mapping files (a mapping
		 * waits for every page fault in progress) */
		if (o.region)
			job_start(&prefault, &worker, prefault_job, &o);
		if (taken < 0)
			return taken;
		if (skip)
			return fast_skip(skip);
		if (all.bad)
			return fast_skip("the index files do not match the cache");
	}
	phase("load cache");

	r = fast_tree(&f, dir_st);
	if (r < 0)
		return r;
	r = fast_decide(&f, add_rel, add_names, rm_names, &shadowed);
	if (r <= 0)
		return r;
	phase("tree");

	/* the modules that stay, from the pool the cache's were taken into */
	f.fresh = calloc(f.n_names + 1, sizeof(Mod *));
	d->array = calloc(n_old + f.n_names + 1, sizeof(Mod *));
	if (!f.fresh || !d->array)
		return -ENOMEM;
	{
		f.dropped = calloc(n_old + 1, sizeof(bool));
		if (!f.dropped)
			return -ENOMEM;
		for (size_t i = 0; i < f.n_names; i++)
			if (f.names[i].changed && f.names[i].old >= 0)
				f.dropped[f.names[i].old] = true;
		for (uint32_t i = 0; i < n_old; i++) {
			const StateMod *sm = &f.S.mods[i];
			Mod *m = &f.pool[i];

			if (f.dropped[i])
				continue;
			for (uint32_t j = 0; j < sm->n_softdeps; j++)
				if (strlist_add(&m->softdeps,
						state_str(&f.S, f.S.ids[sm->softdeps + j])) < 0)
					return -ENOMEM;
			d->array[d->n_array++] = m;
		}
		f.prev.mods = f.pool;
		f.prev.dropped = f.dropped;
		f.prev.n = n_old;
	}

	/* the changed ones, read (the added files already are) */
	for (size_t i = 0; i < f.n_names; i++) {
		FastName *fn = &f.names[i];
		Mod *m = NULL;

		if (!fn->changed || !fn->winner)
			continue;
		for (size_t j = 0; j < f.n_probes && !m; j++)
			if (f.probes[j] && streq(f.probes[j]->path, fn->winner)) {
				m = f.probes[j];
				f.probes[j] = NULL;
			}
		if (!m) {
			r = mod_new(fn->name, fn->winner, &m);
			if (r < 0)
				return r;
			r = mod_read(d, m, strv_contains(add_rel, fn->winner));
			if (r < 0) {
				mod_free(m);
				return r == -ENOMEM ? r : fast_skip("a module cannot be read");
			}
		}
		f.fresh[f.n_fresh++] = m;
		m->sort_idx = order_of(order, order_size, have_order, m);
		m->bucket = hash_superfast(m->name, (unsigned)strlen(m->name)) & 511;
		n_new++;
	}
	/* into depmod's order: the old ones are in it already, the new ones merge in */
	if (n_new > 0) {
		_cleanup_free_ Mod **merged = calloc(d->n_array + n_new + 1, sizeof(Mod *));
		size_t i = 0, j = 0, k = 0;

		if (!merged)
			return -ENOMEM;
		qsort(f.fresh, f.n_fresh, sizeof(Mod *), sort_cmp);
		while (i < d->n_array || j < f.n_fresh) {
			if (j >= f.n_fresh ||
			    (i < d->n_array && sort_cmp(&d->array[i], &f.fresh[j]) < 0))
				merged[k++] = d->array[i++];
			else
				merged[k++] = f.fresh[j++];
		}
		memcpy(d->array, merged, k * sizeof(Mod *));
		d->n_array = k;
	}
	for (size_t i = 0; i < d->n_array; i++)
		d->array[i]->idx = (unsigned)i;
	d->cached_shadowed = TAKE_PTR(shadowed);
	phase("apply changes");

	d->prev = &f.prev;
	r = compute_deps(d);
	if (r < 0)
		return r;
	r = sym_hash_order(d);
	if (r < 0)
		return r;
	phase("dependencies");
	r = write_outputs(d, &o);
	if (r == -ESTALE)
		return fast_skip("an index file is corrupt");
	if (r < 0)
		return r;
	phase("modules.dep, .symbols, .alias");
	if (rep)
		rep->n_modules = (unsigned)d->n_array;
	r = publish(d, &o);
	return r < 0 ? r : 1;
}

int depmod_update(const char *root, const char *kver, char *const *add,
		  char *const *remove, DepmodReport *rep)
{
	_cleanup_close_ int lock = -EBADF;
	_cleanup_(depmod_freep) Depmod *d = NULL;
	_cleanup_(output_done) Output o = { .publish = true };
	_cleanup_strv_free_ char **add_rel = NULL, **add_names = NULL, **rm_names = NULL;
	_cleanup_strv_free_ char **indexed = NULL;
	_cleanup_hashmap_free_ Hashmap *probes = NULL;
	_cleanup_free_ char *reason = NULL;
	const char *name;
	Cand *c;
	Mod *m;
	int r, have_old;

	phase(NULL);
	r = lock_tree(root, kver, rep, &lock);
	if (r < 0)
		return r;
	r = recover_locked(root, kver, rep);
	if (r < 0)
		return r;
	r = depmod_new(root, kver, rep, &d);
	if (r < 0)
		return r;
	phase("setup");

	/* what the caller says changed */
	STRV_FOREACH(a, add)
	{
		_cleanup_free_ char *abs = NULL;
		char *rel = rel_of(d, *a);
		struct stat st;

		if (!rel)
			return report_error(rep, -EXDEV, *a, "not inside %s", d->dir);
		r = strv_consume(&add_rel, rel);
		if (r < 0)
			return r;
		abs = path_join(d->dir, rel);
		if (!abs)
			return -ENOMEM;
		if (stat(abs, &st) < 0)
			return report_error(rep, negative_errno(), abs, "cannot add: %s",
					    ERRNO_NAME(errno));
		if (!S_ISREG(st.st_mode) || !has_kmod_ext(rel))
			return report_error(
				rep, -ENOEXEC, abs,
				"not a kernel module file (.ko, .ko.xz, .ko.zst)");
		r = strv_consume(&add_names, modname_from_path(rel));
		if (r < 0)
			return r;
	}
	STRV_FOREACH(a, remove)
	{
		char *n = strchr(*a, '/') || has_kmod_ext(*a) ? modname_from_path(*a) :
								NULL;

		if (!n) {
			n = strdup(*a);
			if (!n)
				return -ENOMEM;
			for (char *p = n; *p; p++)
				if (*p == '-')
					*p = '_';
		}
		r = strv_consume(&rm_names, n);
		if (r < 0)
			return r;
	}

	r = fast_update(root, kver, add_rel, add_names, rm_names, rep);
	if (r != 0)
		return r < 0 ? r : 0;
	if (rep) {
		bool recovered = rep->recovered;

		depmod_report_done(rep);
		rep->recovered = recovered;
	}
	log_debug("depmod: the fast update does not apply; updating from the text indexes");

	have_old = model_from_indexes(d, &reason);
	if (have_old < 0)
		return have_old;
	/* the cache vouches for the .bin files this generation wrote; check the others */
	r = check_bins(d, have_old > 0);
	if (r < 0)
		return r;
	if (!have_old) {
		r = dep_names(d, &indexed);
		if (r < 0)
			return r;
	}
	phase("load indexes and cache");

	r = 0;
	if (have_old) {
		_cleanup_free_ char **paths =
			calloc(hashmap_size(d->mods) + 1, sizeof(char *));
		size_t k = 0;

		if (!paths)
			return -ENOMEM;
		HASHMAP_FOREACH_KEY(m, name, d->mods)
		paths[k++] = m->path;
		r = tree_from_cache(d, paths);
	}
	if (r == 0)
		r = tree_walk(d);
	if (r < 0)
		return report_error(rep, r, d->dir, "cannot list the module tree");
	phase("tree");

	/* two files of one module at the same priority: depmod would pick by directory order */
	STRV_FOREACH(a, add_rel)
	{
		_cleanup_free_ char *n = modname_from_path(*a),
				    *abs = path_join(d->dir, *a);

		if (!n || !abs)
			return -ENOMEM;
		c = hashmap_get(d->tree, n);
		if (!c)
			return report_error(rep, -ENOEXEC, abs,
					    "not found by the tree walk");
		STRV_FOREACH(other, c->all)
		if (!streq(*other, *a) &&
		    config_priority(&d->cfg, *other) == config_priority(&d->cfg, *a))
			return report_error(
				rep, -ENOTUNIQ, abs,
				"module name collision: %s/%s provides '%s' at the "
				"same priority; remove one of them",
				d->dir, *other, n);
	}

	/* removals must name indexed modules whose files are gone */
	STRV_FOREACH(n, rm_names)
	{
		Mod *old = have_old ? hashmap_get(d->mods, *n) : NULL;

		if (have_old ? !old : (indexed && !strv_contains(indexed, *n)))
			return report_error(
				rep, -ENOENT, *n,
				"cannot remove module '%s': it is not in modules.dep",
				*n);
		c = hashmap_get(d->tree, *n);
		if (old && c && streq(c->path, old->path)) {
			_cleanup_free_ char *abs = path_join(d->dir, old->path);
			return report_error(
				rep, -EEXIST, abs,
				"cannot remove module '%s': its file is still there; "
				"delete it first",
				*n);
		}
	}

	/* every added file must be a module; what is read here is used below */
	probes = hashmap_new(NULL, mod_free);
	if (!probes)
		return -ENOMEM;
	STRV_FOREACH(a, add_rel)
	{
		_cleanup_free_ char *n = modname_from_path(*a);
		Mod *probe;

		if (!n)
			return -ENOMEM;
		r = mod_new(n, *a, &probe);
		if (r < 0)
			return r;
		r = mod_read(d, probe, true);
		if (r >= 0)
			r = hashmap_put(probes, probe->path, probe);
		if (r < 0) {
			mod_free(probe);
			if (r == -EEXIST)
				continue;
			return r;
		}
	}

	if (have_old && !reason) {
		/* the tree may differ from the indexes only where the caller said */
		HASHMAP_FOREACH_KEY(c, name, d->tree)
		{
			m = hashmap_get(d->mods, name);
			if (m && streq(m->path, c->path) &&
			    !strv_contains(add_rel, c->path))
				continue;
			if (!strv_contains(add_names, name) &&
			    !strv_contains(rm_names, name)) {
				if (asprintf(&reason,
					     "the indexes disagree with the tree (%s%s)",
					     c->path,
					     m ? " replaces an indexed module" :
						 " is not indexed") < 0)
					return -ENOMEM;
				break;
			}
		}
		if (!reason)
			HASHMAP_FOREACH_KEY(m, name, d->mods)
		if (!hashmap_contains(d->tree, name) && !strv_contains(rm_names, name)) {
			if (asprintf(&reason,
				     "the indexes disagree with the tree (%s is "
				     "indexed but missing)",
				     m->path) < 0)
				return -ENOMEM;
			break;
		}
	}

	if (reason) {
		if (rep) {
			rep->full_build = true;
			rep->full_reason = TAKE_PTR(reason);
		}
		hashmap_free(d->mods);
		d->mods = hashmap_new(NULL, mod_free);
		if (!d->mods)
			return -ENOMEM;
		r = build_full(d, &o);
		if (r < 0)
			return r;
		return publish(d, &o);
	}

	/* apply: drop what is gone or replaced, read what is new */
	STRV_FOREACH(n, rm_names)
	{
		c = hashmap_get(d->tree, *n);
		m = hashmap_get(d->mods, *n);
		if (m && (!c || !streq(c->path, m->path)))
			mod_free(hashmap_remove(d->mods, *n));
	}
	HASHMAP_FOREACH_KEY(c, name, d->tree)
	{
		m = hashmap_get(d->mods, name);
		if (m && streq(m->path, c->path) && !strv_contains(add_rel, c->path))
			continue;
		if (m)
			mod_free(hashmap_remove(d->mods, name));
		m = hashmap_remove(probes, c->path);
		if (!m) {
			r = mod_new(name, c->path, &m);
			if (r < 0)
				return r;
			r = mod_read(d, m, false);
			if (r < 0) {
				mod_free(m);
				return r;
			}
		}
		r = mods_put(d, m);
		if (r < 0)
			return r;
	}

	phase("apply changes");
	r = compute(d, &o, false);
	if (r < 0)
		return r;
	phase("compute");
	return publish(d, &o);
}

int depmod_verify(const char *root, const char *kver, DepmodReport *rep)
{
	_cleanup_close_ int lock = -EBADF;
	_cleanup_(depmod_freep) Depmod *d = NULL;
	_cleanup_(output_done) Output o = {};
	int r, differ = 0;

	r = lock_tree(root, kver, rep, &lock);
	if (r < 0)
		return r;
	r = recover_locked(root, kver, rep);
	if (r < 0)
		return r;
	r = depmod_new(root, kver, rep, &d);
	if (r < 0)
		return r;
	r = build_full(d, &o);
	if (r < 0)
		return r;
	for (int f = 0; f < F_MAX; f++) {
		_cleanup_free_ char *data = NULL, *line = NULL;
		size_t size = 0;

		if (f == F_CACHE || !o.present[f])
			continue;
		r = read_index_file(d, file_names[f], &data, &size);
		if (r < 0) {
			if (asprintf(&line, "%s: missing (%s)", file_names[f],
				     ERRNO_NAME(-r)) < 0)
				return -ENOMEM;
		} else if (size != o.buf[f].size ||
			   memcmp(data, o.buf[f].data ?: "", size) != 0) {
			size_t i = 0, lineno = 1;
			const char *a = data, *b = o.buf[f].data ?: "";

			while (i < size && i < o.buf[f].size && a[i] == b[i])
				lineno += a[i++] == '\n';
			if (endswith(file_names[f], ".bin"))
				r = asprintf(
					&line,
					"%s: differs from byte %zu (%zu bytes, expected %zu)",
					file_names[f], i, size, o.buf[f].size);
			else {
				const char *s = b + i;
				while (s > b && s[-1] != '\n')
					s--;
				r = asprintf(&line, "%s:%zu: differs; expected '%.*s'",
					     file_names[f], lineno, (int)strcspn(s, "\n"),
					     s);
			}
			if (r < 0)
				return -ENOMEM;
		} else
			continue;
		differ = 1;
		if (rep && strv_consume(&rep->differences, TAKE_PTR(line)) < 0)
			return -ENOMEM;
	}
	return differ;
}
