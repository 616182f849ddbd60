/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checks a kmpbuild repository with libsolv: loads repodata/<sha>-primary.xml.gz with
 * repo_add_rpmmd, installs the base package kernel-FLAVOUR into the installed repository and
 * then, for every KMP, solves "install this KMP" and compares the transaction with the
 * closure of the module's modules.dep line (minus the base modules).
 *
 *   kmp-solvecheck REPO MODULES_DEP FLAVOUR [PKGNAME_SUFFIX]
 *   kmp-solvecheck --modalias ALIAS REPO MODULES_DEP FLAVOUR
 *       prints the packages libsolv installs for a device with that modalias (Supplements:
 *       modalias() through a NAMESPACE_MODALIAS callback matching with fnmatch)
 *
 * Prints a summary line; exit status 0 when every package matched. */
#include <dirent.h>
#include <fnmatch.h>
#include <stdint.h>

#include <solv/knownid.h>
#include <solv/pool.h>
#include <solv/poolarch.h>
#include <solv/repo.h>
#include <solv/repo_rpmmd.h>
#include <solv/selection.h>
#include <solv/solv_xfopen.h>
#include <solv/solver.h>
#include <solv/transaction.h>

#include "hashmap.h"
#include "macros.h"
#include "strv.h"

typedef struct Mod {
	char *path;
	char *name;    /* '_' form */
	char *pkgname; /* KMP name */
	size_t *deps;
	size_t n_deps;
	bool base;
} Mod;

static char *stem_of(const char *path)
{
	const char *b = strrchr(path, '/');
	const char *dot;

	b = b ? b + 1 : path;
	dot = strstr(b, ".ko");
	return dot ? strndup(b, (size_t)(dot - b)) : strdup(b);
}

static char *name_of(const char *path)
{
	char *s = stem_of(path);

	for (char *c = s; c && *c; c++)
		if (*c == '-')
			*c = '_';
	return s;
}

static int compare_id(const void *a, const void *b, void *userdata)
{
	Id x = *(const Id *)a, y = *(const Id *)b;

	return x < y ? -1 : x > y;
}

/* NAMESPACE_MODALIAS: does the device's modalias match this Supplements pattern? */
static Id modalias_callback(Pool *pool, void *data, Id name, Id evr)
{
	const char *modalias = data;

	if (name != NAMESPACE_MODALIAS)
		return 0;
	return fnmatch(pool_id2str(pool, evr), modalias, 0) == 0 ? SYSTEMSOLVABLE : 0;
}

/* What hardware-driven installation of one device picks: the packages that supplement the
 * installed kernel-FLAVOUR and the device (like `zypper install-new-recommends`). */
static int solve_modalias(Pool *pool, const char *modalias)
{
	Solver *solv;
	Transaction *trans;
	Queue job;
	int n = 0;

	pool_setnamespacecallback(pool, modalias_callback, (void *)modalias);
	pool_createwhatprovides(pool);
	queue_init(&job);
	queue_push2(&job, SOLVER_SOLVABLE_ALL | SOLVER_VERIFY, 0);
	solv = solver_create(pool);
	solver_set_flag(solv, SOLVER_FLAG_ADD_ALREADY_RECOMMENDED, 1);
	solver_set_flag(solv, SOLVER_FLAG_ONLY_NAMESPACE_RECOMMENDED, 1);
	if (solver_solve(solv, &job) != 0) {
		printf("PROBLEM modalias %s: %s\n", modalias, solver_problem2str(solv, 1));
		n = -1;
	} else {
		trans = solver_create_transaction(solv);
		for (int k = 0; k < trans->steps.count; k++) {
			Id sp = trans->steps.elements[k];

			if (transaction_type(trans, sp, SOLVER_TRANSACTION_SHOW_ACTIVE) ==
			    SOLVER_TRANSACTION_INSTALL) {
				printf("MODALIAS %s\n", pool_solvid2str(pool, sp));
				n++;
			}
		}
		transaction_free(trans);
	}
	solver_free(solv);
	queue_free(&job);
	return n;
}

static int find_primary(const char *repo, char **ret)
{
	char *dir = NULL;
	DIR *d;
	struct dirent *de;

	if (asprintf(&dir, "%s/repodata", repo) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d) {
		free(dir);
		return -errno;
	}
	while ((de = readdir(d)))
		if (endswith(de->d_name, "-primary.xml.gz") || endswith(de->d_name, "-primary.xml.zst")) {
			int r = asprintf(ret, "%s/%s", dir, de->d_name);
			closedir(d);
			free(dir);
			return r < 0 ? -ENOMEM : 0;
		}
	closedir(d);
	free(dir);
	return -ENOENT;
}

int main(int argc, char *argv[])
{
	const char *repo_dir, *dep_path, *flavour, *suffix, *modalias = NULL;
	char *primary = NULL, *line = NULL, *basename_ = NULL;
	Mod *mods = NULL;
	size_t n_mods = 0, allocated = 0, linesize = 0;
	Hashmap *by_path, *by_pkg;
	Pool *pool;
	Repo *repo, *installed;
	Id base_id = 0;
	FILE *f;
	unsigned checked = 0, mismatched = 0, problems = 0, missing = 0;

	if (argc > 2 && streq(argv[1], "--modalias")) {
		modalias = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: %s [--modalias ALIAS] REPO MODULES_DEP FLAVOUR [SUFFIX]\n",
			argv[0]);
		return 2;
	}
	repo_dir = argv[1];
	dep_path = argv[2];
	flavour = argv[3];
	suffix = argc > 4 ? argv[4] : "";

	by_path = hashmap_new(NULL, NULL);
	by_pkg = hashmap_new(NULL, NULL);

	/* modules.dep */
	f = fopen(dep_path, "re");
	if (!f) {
		fprintf(stderr, "%s: %s\n", dep_path, strerror(errno));
		return 1;
	}
	while (getline(&line, &linesize, f) > 0) {
		char *colon = strchr(line, ':');
		char *stem;

		if (!colon)
			continue;
		*colon = 0;
		GREEDY_REALLOC(mods, allocated, n_mods + 1);
		mods[n_mods] = (Mod){ .path = strdup(line), .name = name_of(line) };
		stem = stem_of(line);
		if (asprintf(&mods[n_mods].pkgname, "%s-kmp-%s%s", stem, flavour, suffix) < 0)
			return 1;
		free(stem);
		hashmap_put(by_path, mods[n_mods].path, (void *)(uintptr_t)(n_mods + 1));
		hashmap_put(by_pkg, mods[n_mods].pkgname, (void *)(uintptr_t)(n_mods + 1));
		n_mods++;
	}
	rewind(f);
	while (getline(&line, &linesize, f) > 0) {
		char *colon = strchr(line, ':'), *tok, *save = NULL;
		size_t idx, a = 0;

		if (!colon)
			continue;
		*colon = 0;
		idx = (uintptr_t)hashmap_get(by_path, line) - 1;
		for (tok = strtok_r(colon + 1, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
			size_t d = (uintptr_t)hashmap_get(by_path, tok);

			if (d == 0)
				continue;
			GREEDY_REALLOC(mods[idx].deps, a, mods[idx].n_deps + 1);
			mods[idx].deps[mods[idx].n_deps++] = d - 1;
		}
	}
	fclose(f);

	/* the repository */
	if (find_primary(repo_dir, &primary) < 0) {
		fprintf(stderr, "%s/repodata: no primary.xml\n", repo_dir);
		return 1;
	}
	pool = pool_create();
	pool_setarch(pool, "x86_64");
	repo = repo_create(pool, "kmp");
	f = solv_xfopen(primary, "r");
	if (!f) {
		fprintf(stderr, "%s: cannot open\n", primary);
		return 1;
	}
	if (repo_add_rpmmd(repo, f, NULL, 0) != 0) {
		fprintf(stderr, "repo_add_rpmmd %s: %s\n", primary, pool_errstr(pool));
		return 1;
	}
	fclose(f);
	printf("loaded %d solvables from %s\n", repo->nsolvables, primary);

	/* the base package, installed */
	if (asprintf(&basename_, "kernel-%s%s", flavour, suffix) < 0)
		return 1;
	{
		Id p;
		Solvable *s;

		FOR_REPO_SOLVABLES(repo, p, s)
			if (streq(pool_id2str(pool, s->name), basename_) ||
			    (suffix[0] && startswith(pool_id2str(pool, s->name), "kernel-") &&
			     !strstr(pool_id2str(pool, s->name), "-kmp-")))
				base_id = p;
	}
	if (!base_id) {
		fprintf(stderr, "no base package kernel-%s in the repository\n", flavour);
		return 1;
	}
	installed = repo_create(pool, "@System");
	{
		Solvable *b = pool->solvables + base_id;
		Id sid = repo_add_solvable(installed);
		Solvable *s = pool->solvables + sid;
		Id *pp;

		s->name = b->name;
		s->evr = b->evr;
		s->arch = b->arch;
		s->vendor = b->vendor;
		for (pp = b->repo->idarraydata + b->provides; *pp; pp++)
			s->provides = repo_addid_dep(installed, s->provides, *pp, 0);
	}
	pool_set_installed(pool, installed);
	pool_addfileprovides(pool);
	pool_createwhatprovides(pool);

	if (modalias) {
		int n = solve_modalias(pool, modalias);

		printf("modalias %s: %d packages\n", modalias, n);
		/* the closure check below is skipped; its result counters stay 0 */
		checked = n > 0 ? 1 : 0;
		goto finish;
	}

	/* which modules the base package holds: it provides kmod(<name>.ko) for them */
	for (size_t i = 0; i < n_mods; i++) {
		char *cap = NULL;
		Id dep, p, pp2;

		if (asprintf(&cap, "kmod(%s.ko)", mods[i].name) < 0)
			return 1;
		dep = pool_str2id(pool, cap, 0);
		free(cap);
		if (!dep)
			continue;
		FOR_PROVIDES(p, pp2, dep)
			if (pool->solvables[p].repo == installed)
				mods[i].base = true;
	}

	{
		Id p;
		Solvable *s;
		Hashmap *seen = hashmap_new(NULL, NULL);

		FOR_REPO_SOLVABLES(repo, p, s) {
			const char *name = pool_id2str(pool, s->name);
			size_t idx = (uintptr_t)hashmap_get(by_pkg, name);
			Solver *solv;
			Transaction *trans;
			Queue job, want;
			char *expected = NULL, *got = NULL;
			size_t *stack, n_stack = 0;
			bool *in = NULL;

			if (p == base_id)
				continue;
			if (idx == 0) {
				printf("MISMATCH %s: no module of that name in modules.dep\n", name);
				mismatched++;
				continue;
			}
			idx--;
			hashmap_put(seen, name, (void *)1);
			if (mods[idx].base) {
				printf("MISMATCH %s: a base module has a KMP too\n", name);
				mismatched++;
				continue;
			}

			/* expected: the closure of the modules.dep line, base modules left out */
			in = calloc(n_mods, sizeof(bool));
			stack = calloc(n_mods, sizeof(size_t));
			stack[n_stack++] = idx;
			in[idx] = true;
			while (n_stack > 0) {
				size_t m = stack[--n_stack];

				for (size_t k = 0; k < mods[m].n_deps; k++) {
					size_t d = mods[m].deps[k];

					if (!in[d]) {
						in[d] = true;
						stack[n_stack++] = d;
					}
				}
			}
			queue_init(&want);
			for (size_t k = 0; k < n_mods; k++)
				if (in[k] && !mods[k].base)
					queue_push(&want, pool_str2id(pool, mods[k].pkgname, 1));
			solv_sort(want.elements, want.count, sizeof(Id), compare_id, NULL);

			queue_init(&job);
			queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE, p);
			solv = solver_create(pool);
			solver_set_flag(solv, SOLVER_FLAG_IGNORE_RECOMMENDED, 1);
			checked++;
			if (solver_solve(solv, &job) != 0) {
				Queue pq;

				queue_init(&pq);
				solver_findallproblemrules(solv, 1, &pq);
				printf("PROBLEM %s: %s\n", name,
				       pq.count ? solver_problem2str(solv, 1) : "unsolvable");
				queue_free(&pq);
				problems++;
			} else {
				Queue inst;

				trans = solver_create_transaction(solv);
				queue_init(&inst);
				for (int k = 0; k < trans->steps.count; k++) {
					Id sp = trans->steps.elements[k];
					Id type = transaction_type(trans, sp,
								   SOLVER_TRANSACTION_SHOW_ACTIVE);

					if (type == SOLVER_TRANSACTION_INSTALL)
						queue_push(&inst, pool->solvables[sp].name);
					else {
						printf("MISMATCH %s: transaction %s %s\n", name,
						       type == SOLVER_TRANSACTION_ERASE ? "erases"
											 : "changes",
						       pool_solvid2str(pool, sp));
						mismatched++;
					}
				}
				solv_sort(inst.elements, inst.count, sizeof(Id), compare_id, NULL);
				if (inst.count != want.count ||
				    memcmp(inst.elements, want.elements, sizeof(Id) * (size_t)want.count)) {
					mismatched++;
					if (mismatched <= 20) {
						FILE *ef = open_memstream(&expected, &(size_t){ 0 });
						FILE *gf = open_memstream(&got, &(size_t){ 0 });

						for (int k = 0; k < want.count; k++)
							fprintf(ef, " %s", pool_id2str(pool, want.elements[k]));
						for (int k = 0; k < inst.count; k++)
							fprintf(gf, " %s", pool_id2str(pool, inst.elements[k]));
						fclose(ef);
						fclose(gf);
						printf("MISMATCH %s: expected%s; solver installs%s\n", name,
						       expected, got);
						free(expected);
						free(got);
					}
				}
				queue_free(&inst);
				transaction_free(trans);
			}
			solver_free(solv);
			queue_free(&job);
			queue_free(&want);
			free(in);
			free(stack);
		}

		for (size_t i = 0; i < n_mods; i++)
			if (!mods[i].base && !hashmap_contains(seen, mods[i].pkgname)) {
				printf("MISSING %s (module %s has no KMP)\n", mods[i].pkgname,
				       mods[i].path);
				missing++;
			}
		hashmap_free(seen);
	}

	printf("checked %u KMPs: %u mismatched, %u unsolvable, %u modules without a KMP\n",
	       checked, mismatched, problems, missing);
finish:
	pool_free(pool);
	for (size_t i = 0; i < n_mods; i++) {
		free(mods[i].path);
		free(mods[i].name);
		free(mods[i].pkgname);
		free(mods[i].deps);
	}
	free(mods);
	hashmap_free(by_path);
	hashmap_free(by_pkg);
	free(primary);
	free(line);
	free(basename_);
	return mismatched || problems || missing || checked == 0 ? 1 : 0;
}
