/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libkmod.h>

#include "kabi.h"
#include "kmodd-cleanup.h"
#include "log.h"
#include "strv.h"

static const char *const verdict_table[_KABI_VERDICT_MAX] = {
	[KABI_OK] = "ok",
	[KABI_MISSING_SYMBOL] = "missing-symbol",
	[KABI_CRC_MISMATCH] = "crc-mismatch",
	[KABI_VERMAGIC_MISMATCH] = "vermagic-mismatch",
	[KABI_UNKNOWN] = "unknown",
};

static const char *const problem_table[_KABI_PROBLEM_KIND_MAX] = {
	[KABI_PROBLEM_MISSING] = "missing-symbol",
	[KABI_PROBLEM_CRC] = "crc-mismatch",
	[KABI_PROBLEM_UNVERIFIABLE] = "unverifiable",
	[KABI_PROBLEM_NO_VERSIONS] = "no-versions",
	[KABI_PROBLEM_VERMAGIC] = "vermagic",
	[KABI_PROBLEM_BREAKS] = "breaks",
};

const char *kabi_verdict_to_string(KabiVerdict v)
{
	return v >= 0 && v < _KABI_VERDICT_MAX ? verdict_table[v] : NULL;
}

const char *kabi_problem_kind_to_string(KabiProblemKind k)
{
	return k >= 0 && k < _KABI_PROBLEM_KIND_MAX ? problem_table[k] : NULL;
}

static void problem_done(KabiProblem *p)
{
	free(p->symbol);
	free(p->provider);
	free(p->user);
	free(p->want_text);
	free(p->have_text);
}

static void problems_free(KabiProblem *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		problem_done(&p[i]);
	free(p);
}

void kabi_result_done(KabiResult *r)
{
	if (!r)
		return;
	problems_free(r->problems, r->n_problems);
	r->problems = NULL;
	r->n_problems = 0;
}

void kabi_results_free(KabiResult *r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++)
		kabi_result_done(&r[i]);
	free(r);
}

/* ---- the kernel ---- */

typedef struct TreeExport {
	const Module *module;
	uint32_t crc;
} TreeExport;

struct KabiKernel {
	ModTree *tree;
	Hashmap *chosen; /* name -> const Module* */
	Hashmap *exports; /* symbol -> TreeExport* (owned) */
	Hashmap *own; /* path -> const Module*: the tree's modules, weak-updates/ aside */
	const char *vermagic;
};

/* Where depmod's default search order with weak-updates puts a file: updates/ first, then
 * extra/, then the rest of the tree; weak-updates/ is no part of the kernel's own tree. */
static int tree_priority(const char *path)
{
	if (startswith(path, "weak-updates/"))
		return -1;
	if (startswith(path, "updates/"))
		return 2;
	if (startswith(path, "extra/"))
		return 1;
	return 0;
}

KabiKernel *kabi_kernel_free(KabiKernel *k)
{
	if (!k)
		return NULL;
	hashmap_free(k->chosen);
	hashmap_free(k->exports);
	hashmap_free(k->own);
	free(k);
	return NULL;
}

int kabi_kernel_new(ModTree *t, KabiKernel **ret)
{
	_cleanup_kabi_kernel_free_ KabiKernel *k = NULL;
	int r;

	k = calloc(1, sizeof(KabiKernel));
	if (!k)
		return -ENOMEM;
	k->tree = t;
	k->chosen = hashmap_new(NULL, NULL);
	k->exports = hashmap_new(NULL, free);
	k->own = hashmap_new(NULL, NULL);
	if (!k->chosen || !k->exports || !k->own)
		return -ENOMEM;

	for (size_t i = 0; i < t->n_modules; i++) {
		const Module *m = t->modules[i], *old;
		int prio = tree_priority(m->path);

		if (prio < 0)
			continue;
		r = hashmap_put(k->own, m->path, (void *)m);
		if (r < 0 && r != -EEXIST)
			return r;
		old = hashmap_get(k->chosen, m->name);
		if (old && tree_priority(old->path) >= prio)
			continue;
		r = hashmap_replace(k->chosen, m->name, (void *)m);
		if (r < 0)
			return r;
		if (!k->vermagic && m->intree && m->vermagic)
			k->vermagic = m->vermagic;
	}

	for (size_t i = 0; i < t->n_modules; i++) {
		const Module *m = t->modules[i];

		if (hashmap_get(k->chosen, m->name) != m)
			continue;
		for (size_t j = 0; j < m->n_exports; j++) {
			TreeExport *e;

			if (hashmap_contains(k->exports, m->exports[j].symbol))
				continue;
			e = malloc(sizeof(TreeExport));
			if (!e)
				return -ENOMEM;
			*e = (TreeExport){ m, (uint32_t)m->exports[j].crc };
			r = hashmap_put(k->exports, m->exports[j].symbol, e);
			if (r < 0) {
				free(e);
				return r;
			}
		}
	}

	*ret = TAKE_PTR(k);
	return 0;
}

const char *kabi_kernel_vermagic(const KabiKernel *k)
{
	return k->vermagic;
}

bool kabi_kernel_has_symvers(const KabiKernel *k)
{
	return k->tree->symvers;
}

const Module *kabi_kernel_module(const KabiKernel *k, const char *name)
{
	return hashmap_get(k->chosen, name);
}

/* The part of a vermagic the kernel compares when modversions is on: after the release. */
static const char *vermagic_flags(const char *v)
{
	const char *s = strchr(v, ' ');
	return s ? s : "";
}

static bool vermagic_flags_equal(const char *a, const char *b)
{
	/* trailing blanks do not count: modinfo values may keep the kernel's trailing space */
	const char *fa = vermagic_flags(a), *fb = vermagic_flags(b);
	size_t la = strlen(fa), lb = strlen(fb);

	while (la > 0 && fa[la - 1] == ' ')
		la--;
	while (lb > 0 && fb[lb - 1] == ' ')
		lb--;
	return la == lb && memcmp(fa, fb, la) == 0;
}

/* ---- the group ---- */

typedef struct User {
	const Module *module;
	uint32_t want;
} User;

typedef struct UserList {
	User *users;
	size_t n, allocated;
} UserList;

static void user_list_free(void *p)
{
	UserList *l = p;

	if (!l)
		return;
	free(l->users);
	free(l);
}

typedef struct Cand {
	const Module *module;
	const char *path;
	const Module *replaces; /* the kernel's module of the same name, or NULL */
	bool active, shadowed;
	char **weak; /* weakly bound symbols, once read */
	bool weak_read;
	KabiProblem *problems; /* this round's */
	size_t n_problems, allocated;
} Cand;

typedef struct Group {
	KabiKernel *k;
	Cand *cands;
	size_t n;
	Hashmap *by_name; /* name -> Cand* of the candidate that may join */
	Hashmap *cexports; /* symbol -> Cand* (active ones), rebuilt each round */
	Hashmap *users; /* symbol -> UserList* */
} Group;

static int cand_add_problem(Cand *c, KabiProblem *p)
{
	if (!GREEDY_REALLOC(c->problems, c->allocated, c->n_problems + 1)) {
		problem_done(p);
		return -ENOMEM;
	}
	c->problems[c->n_problems++] = *p;
	*p = (KabiProblem){};
	return 0;
}

static int add_simple(Cand *c, KabiProblemKind kind, const char *symbol,
		      const char *provider, const char *user, uint32_t want,
		      uint32_t have, bool has_have)
{
	KabiProblem p = { .kind = kind, .want = want, .have = have, .has_have = has_have };

	if ((symbol && !(p.symbol = strdup(symbol))) ||
	    (provider && !(p.provider = strdup(provider))) ||
	    (user && !(p.user = strdup(user)))) {
		problem_done(&p);
		return -ENOMEM;
	}
	return cand_add_problem(c, &p);
}

/* Is symbol bound weakly in the candidate's symbol table? Then the kernel loads the module
 * without it, and depmod does not complain either. */
static bool cand_weak(Group *g, Cand *c, const char *symbol)
{
	if (!c->weak_read && c->path) {
		_cleanup_(kmod_module_unrefp) struct kmod_module *km = NULL;
		struct kmod_list *l = NULL, *i;

		c->weak_read = true;
		if (kmod_module_new_from_path(g->k->tree->ctx, c->path, &km) >= 0 &&
		    kmod_module_get_dependency_symbols(km, &l) >= 0) {
			kmod_list_foreach(i, l)
				if (kmod_module_dependency_symbol_get_bind(i) ==
				    KMOD_SYMBOL_WEAK)
					(void)strv_extend(
						&c->weak,
						kmod_module_dependency_symbol_get_symbol(
							i));
			kmod_module_dependency_symbols_free_list(l);
		}
	}
	return strv_contains(c->weak, symbol);
}

/* Who exports symbol now: vmlinux, an active candidate, or a module of the kernel's tree
 * that no active candidate replaces. 1 found, 0 not. */
static int provider_of(Group *g, const char *symbol, uint32_t *ret_crc,
		       const char **ret_name, Cand **ret_cand)
{
	const Symvers *sv = g->k->tree->symvers;
	const SymversEntry *e;
	const TreeExport *te;
	Cand *c;

	*ret_cand = NULL;
	if (sv && (e = symvers_get(sv, symbol)) && streq(e->module, "vmlinux")) {
		*ret_crc = e->crc;
		*ret_name = "vmlinux";
		return 1;
	}
	c = hashmap_get(g->cexports, symbol);
	if (c) {
		for (size_t j = 0; j < c->module->n_exports; j++)
			if (streq(c->module->exports[j].symbol, symbol)) {
				*ret_crc = (uint32_t)c->module->exports[j].crc;
				break;
			}
		*ret_name = c->module->name;
		*ret_cand = c;
		return 1;
	}
	te = hashmap_get(g->k->exports, symbol);
	if (te) {
		c = hashmap_get(g->by_name, te->module->name);
		if (!c || !c->active) {
			*ret_crc = te->crc;
			*ret_name = te->module->name;
			return 1;
		}
	}
	return 0;
}

/* The candidate's own requirements against the current providers. */
static int check_requires(Group *g, Cand *c)
{
	const Module *m = c->module;
	int r;

	for (size_t j = 0; j < m->n_requires; j++) {
		const char *sym = m->requires[j].symbol, *name = NULL;
		uint32_t want = (uint32_t)m->requires[j].crc, have = 0;
		Cand *pc;

		r = provider_of(g, sym, &have, &name, &pc);
		if (r == 0) {
			if (cand_weak(g, c, sym))
				continue;
			r = add_simple(c,
				       g->k->tree->symvers ? KABI_PROBLEM_MISSING :
							     KABI_PROBLEM_UNVERIFIABLE,
				       sym, NULL, NULL, want, 0, false);
		} else if (have != want)
			r = add_simple(c, KABI_PROBLEM_CRC, sym, name, NULL, want, have,
				       true);
		else
			r = 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* Modules of the kernel's tree that load today and would not once the candidate replaces
 * the kernel's module of its name. The blame goes to the candidate that now exports the
 * symbol with another CRC, or (nobody exports it) to the candidate that replaced the
 * exporter. */
static int check_breaks(Group *g, Cand *c)
{
	const Module *t = c->replaces;
	int r;

	if (!t)
		return 0;
	for (size_t j = 0; j < t->n_exports; j++) {
		const char *sym = t->exports[j].symbol, *name = NULL;
		uint32_t base = (uint32_t)t->exports[j].crc, have = 0;
		UserList *l = hashmap_get(g->users, sym);
		Cand *pc;
		int found;

		if (!l)
			continue;
		found = provider_of(g, sym, &have, &name, &pc);
		if (found && have == base)
			continue;
		for (size_t u = 0; u < l->n; u++) {
			const Module *um = l->users[u].module;
			Cand *uc = hashmap_get(g->by_name, um->name);

			if (um == t || (uc && uc->active) || l->users[u].want != base)
				continue;
			if (found && have == l->users[u].want)
				continue;
			if (found && pc)
				r = add_simple(pc, KABI_PROBLEM_BREAKS, sym, name,
					       um->name, l->users[u].want, have, true);
			else if (!found)
				r = add_simple(c, KABI_PROBLEM_BREAKS, sym, NULL,
					       um->name, l->users[u].want, 0, false);
			else
				r = 0;
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int build_users(Group *g)
{
	ModTree *t = g->k->tree;
	_cleanup_hashmap_free_ Hashmap *wanted = hashmap_new(NULL, NULL);
	int r;

	if (!wanted)
		return -ENOMEM;
	/* only the symbols of kernel modules some candidate may replace */
	for (size_t i = 0; i < g->n; i++) {
		const Module *m = g->cands[i].replaces;

		if (!m || g->cands[i].shadowed)
			continue;
		for (size_t j = 0; j < m->n_exports; j++) {
			r = hashmap_put(wanted, m->exports[j].symbol, (void *)m);
			if (r < 0 && r != -EEXIST)
				return r;
		}
	}
	if (hashmap_size(wanted) == 0)
		return 0;
	for (size_t i = 0; i < t->n_modules; i++) {
		const Module *m = t->modules[i];

		if (hashmap_get(g->k->chosen, m->name) != m)
			continue;
		for (size_t j = 0; j < m->n_requires; j++) {
			const char *sym = m->requires[j].symbol;
			UserList *l;

			if (!hashmap_contains(wanted, sym))
				continue;
			l = hashmap_get(g->users, sym);
			if (!l) {
				l = calloc(1, sizeof(UserList));
				if (!l)
					return -ENOMEM;
				r = hashmap_put(g->users, sym, l);
				if (r < 0) {
					free(l);
					return r;
				}
			}
			if (!GREEDY_REALLOC(l->users, l->allocated, l->n + 1))
				return -ENOMEM;
			l->users[l->n++] = (User){ m, (uint32_t)m->requires[j].crc };
		}
	}
	return 0;
}

static KabiVerdict verdict_of(const KabiProblem *p, size_t n)
{
	bool missing = false, crc = false, vermagic = false;

	for (size_t i = 0; i < n; i++)
		switch (p[i].kind) {
		case KABI_PROBLEM_MISSING:
			missing = true;
			break;
		case KABI_PROBLEM_CRC:
			crc = true;
			break;
		case KABI_PROBLEM_BREAKS:
			if (p[i].has_have)
				crc = true;
			else
				missing = true;
			break;
		case KABI_PROBLEM_VERMAGIC:
			vermagic = true;
			break;
		case KABI_PROBLEM_UNVERIFIABLE:
		case KABI_PROBLEM_NO_VERSIONS:
		case _KABI_PROBLEM_KIND_MAX:
		case _KABI_PROBLEM_KIND_INVALID:
			break;
		}
	if (vermagic)
		return KABI_VERMAGIC_MISMATCH;
	if (missing)
		return KABI_MISSING_SYMBOL;
	if (crc)
		return KABI_CRC_MISMATCH;
	return n > 0 ? KABI_UNKNOWN : KABI_OK;
}

static int rebuild_cexports(Group *g)
{
	hashmap_free(g->cexports);
	g->cexports = hashmap_new(NULL, NULL);
	if (!g->cexports)
		return -ENOMEM;
	for (size_t i = 0; i < g->n; i++) {
		const Cand *c = &g->cands[i];

		if (!c->active)
			continue;
		for (size_t j = 0; j < c->module->n_exports; j++) {
			int r = hashmap_put(g->cexports, c->module->exports[j].symbol,
					    (void *)c);
			if (r < 0 && r != -EEXIST)
				return r;
		}
	}
	return 0;
}

static void cand_take_problems(Cand *c, KabiResult *res)
{
	res->problems = c->problems;
	res->n_problems = c->n_problems;
	res->verdict = verdict_of(c->problems, c->n_problems);
	c->problems = NULL;
	c->n_problems = c->allocated = 0;
}

static void cand_drop_problems(Cand *c)
{
	problems_free(c->problems, c->n_problems);
	c->problems = NULL;
	c->n_problems = c->allocated = 0;
}

/* Checks that do not depend on the group: __versions present, vermagic. */
static int check_alone(Group *g, Cand *c, KabiResult *res)
{
	const Module *m = c->module;
	const char *kv = g->k->vermagic;

	if (m->vermagic && kv) {
		const char *a = strchr(m->vermagic, ' '), *b = strchr(kv, ' ');
		size_t la = a ? (size_t)(a - m->vermagic) : strlen(m->vermagic);
		size_t lb = b ? (size_t)(b - kv) : strlen(kv);

		res->vermagic_differs = la != lb || memcmp(m->vermagic, kv, la) != 0;
		if (!vermagic_flags_equal(m->vermagic, kv)) {
			KabiProblem p = { .kind = KABI_PROBLEM_VERMAGIC };

			p.want_text = strdup(m->vermagic);
			p.have_text = strdup(kv);
			if (!p.want_text || !p.have_text) {
				problem_done(&p);
				return -ENOMEM;
			}
			return cand_add_problem(c, &p);
		}
	}
	if (m->n_requires == 0)
		return add_simple(c, KABI_PROBLEM_NO_VERSIONS, NULL, NULL, NULL, 0, 0,
				  false);
	return 0;
}

static void group_done(Group *g)
{
	for (size_t i = 0; i < g->n; i++) {
		strv_free(g->cands[i].weak);
		cand_drop_problems(&g->cands[i]);
	}
	free(g->cands);
	hashmap_free(g->by_name);
	hashmap_free(g->cexports);
	hashmap_free(g->users);
}

int kabi_check(KabiKernel *k, const Module *const *cands, char *const *paths, size_t n,
	       KabiResult **ret)
{
	Group g = { .k = k, .n = n };
	KabiResult *res = NULL;
	unsigned round = 0;
	int r;

	res = calloc(n ?: 1, sizeof(KabiResult));
	g.cands = calloc(n ?: 1, sizeof(Cand));
	g.by_name = hashmap_new(NULL, NULL);
	g.users = hashmap_new(NULL, user_list_free);
	if (!res || !g.cands || !g.by_name || !g.users) {
		r = -ENOMEM;
		goto fail;
	}

	for (size_t i = 0; i < n; i++) {
		Cand *c = &g.cands[i];
		const Module *own = hashmap_get(k->chosen, cands[i]->name);
		const Cand *first = hashmap_get(g.by_name, cands[i]->name);

		c->module = cands[i];
		c->path = paths ? paths[i] : NULL;
		if (hashmap_get(k->own, cands[i]->path) == cands[i]) {
			/* the kernel's own module: checked against the final group */
			c->shadowed = true;
			if (own != cands[i])
				res[i].shadowed_by = own->path;
			continue;
		}
		if (own && tree_priority(own->path) > 0) {
			c->shadowed = true;
			res[i].shadowed_by = own->path;
			continue;
		}
		if (first) {
			c->shadowed = true;
			res[i].shadowed_by = first->module->path;
			continue;
		}
		c->replaces = own;
		c->active = true;
		r = hashmap_put(g.by_name, c->module->name, c);
		if (r < 0)
			goto fail;
	}

	r = build_users(&g);
	if (r < 0)
		goto fail;

	/* round 1 starts with what fails alone */
	for (size_t i = 0; i < n; i++) {
		Cand *c = &g.cands[i];

		if (!c->active)
			continue;
		r = check_alone(&g, c, &res[i]);
		if (r < 0)
			goto fail;
	}

	for (;;) {
		size_t failed = 0;

		round++;
		r = rebuild_cexports(&g);
		if (r < 0)
			goto fail;
		for (size_t i = 0; i < n; i++) {
			Cand *c = &g.cands[i];

			if (!c->active)
				continue;
			r = check_requires(&g, c);
			if (r >= 0)
				r = check_breaks(&g, c);
			if (r < 0)
				goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			Cand *c = &g.cands[i];

			if (!c->active)
				continue;
			if (c->n_problems > 0) {
				c->active = false;
				res[i].round = round;
				cand_take_problems(c, &res[i]);
				failed++;
			}
		}
		if (failed == 0)
			break;
	}

	/* shadowed candidates: informational, against the final group */
	r = rebuild_cexports(&g);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		Cand *c = &g.cands[i];

		if (!c->shadowed)
			continue;
		r = check_alone(&g, c, &res[i]);
		if (r >= 0)
			r = check_requires(&g, c);
		if (r < 0)
			goto fail;
		cand_take_problems(c, &res[i]);
	}

	group_done(&g);
	*ret = res;
	return 0;
fail:
	group_done(&g);
	kabi_results_free(res, n);
	return r;
}

char *kabi_problem_describe(const KabiProblem *p)
{
	char *s = NULL;
	int r = -1;

	switch (p->kind) {
	case KABI_PROBLEM_MISSING:
		r = asprintf(&s, "missing symbol %s", p->symbol);
		break;
	case KABI_PROBLEM_CRC:
		r = asprintf(
			&s,
			"CRC mismatch on %s: kernel has 0x%08x (%s), module wants 0x%08x",
			p->symbol, p->have, strna(p->provider), p->want);
		break;
	case KABI_PROBLEM_UNVERIFIABLE:
		r = asprintf(&s,
			     "%s: unverifiable (no module exports it, and without "
			     "Module.symvers vmlinux's exports are unknown)",
			     p->symbol);
		break;
	case KABI_PROBLEM_NO_VERSIONS:
		r = asprintf(
			&s,
			"no __versions section: built without CONFIG_MODVERSIONS, so its "
			"symbol versions cannot be checked (the kernel would need --force)");
		break;
	case KABI_PROBLEM_VERMAGIC:
		r = asprintf(&s, "vermagic '%s' does not match the kernel's '%s'",
			     strna(p->want_text), strna(p->have_text));
		break;
	case KABI_PROBLEM_BREAKS:
		if (p->has_have)
			r = asprintf(&s,
				     "would break %s: it wants %s with CRC 0x%08x, this "
				     "module exports 0x%08x",
				     p->user, p->symbol, p->want, p->have);
		else
			r = asprintf(&s,
				     "would break %s: it needs %s, which this module does "
				     "not export",
				     p->user, p->symbol);
		break;
	case _KABI_PROBLEM_KIND_MAX:
	case _KABI_PROBLEM_KIND_INVALID:
		break;
	}
	return r < 0 ? NULL : s;
}
