/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kabi.h"
#include "strv.h"
#include "tests.h"

/* A kernel built in memory: vmlinux exports A (1) and B (2); its tree has core.ko exporting
 * C (3), user.ko needing C (3), and updates/own.ko (its own KMP of "own"). */
#define VERMAGIC "6.1.0-54-amd64 SMP preempt mod_unload modversions "

static Module *mod(const char *name, const char *path, const char *vermagic,
		   const char *exports, const char *requires)
{
	Module *m = calloc(1, sizeof(Module));
	_cleanup_strv_free_ char **e = NULL, **q = NULL;

	m->name = strdup(name);
	m->path = strdup(path);
	m->vermagic = vermagic ? strdup(vermagic) : NULL;
	m->intree = true;
	(void)strv_split(exports, " ", &e);
	(void)strv_split(requires, " ", &q);
	m->exports = calloc(strv_length(e) + 1, sizeof(SymbolCrc));
	m->requires = calloc(strv_length(q) + 1, sizeof(SymbolCrc));
	STRV_FOREACH(s, e) {
		char *eq = strchr(*s, '=');
		*eq = 0;
		m->exports[m->n_exports++] =
			(SymbolCrc){ strdup(*s), strtoul(eq + 1, NULL, 16) };
	}
	STRV_FOREACH(s, q) {
		char *eq = strchr(*s, '=');
		*eq = 0;
		m->requires[m->n_requires++] =
			(SymbolCrc){ strdup(*s), strtoul(eq + 1, NULL, 16) };
	}
	return m;
}

static ModTree *tree_new(bool with_symvers)
{
	static const char sv[] = "0x00000001\tA\tvmlinux\tEXPORT_SYMBOL\t\n"
				 "0x00000002\tB\tvmlinux\tEXPORT_SYMBOL_GPL\t\n";
	ModTree *t = calloc(1, sizeof(ModTree));

	t->modules = calloc(4, sizeof(Module *));
	t->modules[t->n_modules++] =
		mod("core", "kernel/core.ko", VERMAGIC, "C=3", "A=1");
	t->modules[t->n_modules++] = mod("own", "updates/own.ko", VERMAGIC, "", "A=1");
	t->modules[t->n_modules++] =
		mod("user", "kernel/user.ko", VERMAGIC, "", "A=1 C=3");
	if (with_symvers)
		(void)symvers_parse("test", sv, sizeof(sv) - 1, &t->symvers, NULL);
	return t;
}

static void tree_free(ModTree *t)
{
	for (size_t i = 0; i < t->n_modules; i++)
		module_free(t->modules[i]);
	free(t->modules);
	symvers_free(t->symvers);
	free(t);
}

static const KabiResult *find(const KabiResult *r, Module **c, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(c[i]->name, name))
			return &r[i];
	TEST_FAIL("no result for %s", name);
	return NULL;
}

static bool has_problem(const KabiResult *r, KabiProblemKind kind, const char *symbol)
{
	for (size_t i = 0; i < r->n_problems; i++)
		if (r->problems[i].kind == kind &&
		    streq_ptr(r->problems[i].symbol, symbol))
			return true;
	return false;
}

#define V53 "6.1.0-53-amd64 SMP preempt mod_unload modversions "

TEST(group)
{
	ModTree *t = tree_new(true);
	KabiKernel *k = NULL;
	KabiResult *res = NULL;
	Module *c[] = {
		mod("ok1", "updates/ok1.ko", V53, "", "A=1"),
		mod("crc1", "updates/crc1.ko", V53, "", "A=1 B=9"),
		mod("miss1", "updates/miss1.ko", V53, "", "Z=1"),
		mod("grp_a", "updates/grp_a.ko", V53, "", "A=1 D=5"),
		mod("grp_b", "updates/grp_b.ko", V53, "D=5", "A=1"),
		mod("grp_c", "updates/grp_c.ko", V53, "", "E=6"),
		mod("grp_d", "updates/grp_d.ko", V53, "E=6", "B=9"),
		mod("core", "updates/core.ko", V53, "C=4", "A=1"),
		mod("nover", "updates/nover.ko", V53, "", ""),
		mod("vm", "updates/vm.ko", "6.1.0-53-amd64 SMP mod_unload ", "", "A=1"),
		mod("own", "updates/own.ko", V53, "", "A=1"),
	};
	const Module *cc[ELEMENTSOF(c) + 1];
	size_t n = ELEMENTSOF(c);
	const KabiResult *r;

	for (size_t i = 0; i < n; i++)
		cc[i] = c[i];
	cc[n] = t->modules[2]; /* the kernel's own user.ko */
	ASSERT_OK(kabi_kernel_new(t, &k));
	ASSERT_STREQ(kabi_kernel_vermagic(k), VERMAGIC);
	ASSERT_OK(kabi_check(k, cc, NULL, n + 1, &res));

	r = find(res, c, n, "ok1");
	ASSERT_TRUE(r->verdict == KABI_OK && r->n_problems == 0 && r->vermagic_differs);
	r = find(res, c, n, "crc1");
	ASSERT_TRUE(r->verdict == KABI_CRC_MISMATCH &&
		    has_problem(r, KABI_PROBLEM_CRC, "B"));
	ASSERT_TRUE(r->problems[0].have == 2 && r->problems[0].want == 9 && r->round == 1);
	ASSERT_STREQ(r->problems[0].provider, "vmlinux");
	r = find(res, c, n, "miss1");
	ASSERT_TRUE(r->verdict == KABI_MISSING_SYMBOL &&
		    has_problem(r, KABI_PROBLEM_MISSING, "Z"));
	/* candidates provide symbols to each other */
	ASSERT_TRUE(find(res, c, n, "grp_a")->verdict == KABI_OK);
	ASSERT_TRUE(find(res, c, n, "grp_b")->verdict == KABI_OK);
	/* grp_d fails alone, then grp_c loses its provider in the next round */
	ASSERT_TRUE(find(res, c, n, "grp_d")->round == 1);
	r = find(res, c, n, "grp_c");
	ASSERT_TRUE(r->verdict == KABI_MISSING_SYMBOL && r->round == 2);
	/* replacing core would break the kernel's user.ko */
	r = find(res, c, n, "core");
	ASSERT_TRUE(r->verdict == KABI_CRC_MISMATCH &&
		    has_problem(r, KABI_PROBLEM_BREAKS, "C"));
	ASSERT_STREQ(r->problems[0].user, "user");
	r = find(res, c, n, "nover");
	ASSERT_TRUE(r->verdict == KABI_UNKNOWN &&
		    has_problem(r, KABI_PROBLEM_NO_VERSIONS, NULL));
	r = find(res, c, n, "vm");
	ASSERT_TRUE(r->verdict == KABI_VERMAGIC_MISMATCH);
	/* the kernel has its own build of "own" */
	r = find(res, c, n, "own");
	ASSERT_TRUE(r->shadowed_by && streq(r->shadowed_by, "updates/own.ko"));
	/* the kernel's own module: checked, not a member of the group */
	ASSERT_TRUE(res[n].verdict == KABI_OK && !res[n].shadowed_by);

	for (size_t i = 0; i <= n; i++) {
		_cleanup_free_ char *d =
			res[i].n_problems ? kabi_problem_describe(&res[i].problems[0]) :
					    NULL;
		ASSERT_TRUE(res[i].n_problems == 0 || d);
	}
	kabi_results_free(res, n + 1);
	kabi_kernel_free(k);
	for (size_t i = 0; i < n; i++)
		module_free(c[i]);
	tree_free(t);
}

TEST(no_symvers)
{
	ModTree *t = tree_new(false);
	KabiKernel *k = NULL;
	KabiResult *res = NULL;
	Module *c[] = {
		mod("vmonly", "updates/vmonly.ko", V53, "", "A=1"),
		mod("modonly", "updates/modonly.ko", V53, "", "C=3"),
		mod("modbad", "updates/modbad.ko", V53, "", "A=1 C=7"),
	};
	const Module *cc[] = { c[0], c[1], c[2] };

	ASSERT_OK(kabi_kernel_new(t, &k));
	ASSERT_TRUE(!kabi_kernel_has_symvers(k));
	ASSERT_OK(kabi_check(k, cc, NULL, 3, &res));
	ASSERT_TRUE(res[0].verdict == KABI_UNKNOWN &&
		    has_problem(&res[0], KABI_PROBLEM_UNVERIFIABLE, "A"));
	ASSERT_TRUE(res[1].verdict == KABI_OK);
	ASSERT_TRUE(res[2].verdict == KABI_CRC_MISMATCH &&
		    has_problem(&res[2], KABI_PROBLEM_CRC, "C") &&
		    has_problem(&res[2], KABI_PROBLEM_UNVERIFIABLE, "A"));
	kabi_results_free(res, 3);
	kabi_kernel_free(k);
	for (size_t i = 0; i < 3; i++)
		module_free(c[i]);
	tree_free(t);
}

TEST(strings)
{
	ASSERT_STREQ(kabi_verdict_to_string(KABI_CRC_MISMATCH), "crc-mismatch");
	ASSERT_STREQ(kabi_problem_kind_to_string(KABI_PROBLEM_BREAKS), "breaks");
	ASSERT_TRUE(kabi_verdict_to_string(_KABI_VERDICT_MAX) == NULL);
}
