/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* KABI compatibility: would a kernel load a module built for another kernel?
 *
 * The kernel's modversions check: every symbol in the module's __versions must be exported —
 * by vmlinux (Module.symvers) or by a module loaded before it — with the same CRC, and the
 * vermagic must agree after the release (the part the kernel compares when modversions is
 * on). A missing symbol the module binds weakly is no problem, as for the kernel.
 *
 * Candidates (modules of KMPs installed for other kernels, or already linked into this
 * kernel's weak-updates/) are decided as one group, as weak-updates would hold them: a
 * candidate replaces the kernel's module of the same name (weak-updates comes before the
 * kernel's own tree, after its updates/ and extra/), so candidates provide symbols to each
 * other, and a candidate is refused when it would break a module of the kernel's tree that
 * loads today (it lacks a symbol that module needs, or exports it with another CRC).
 * Failing candidates leave the group and the rest is checked again until nothing changes;
 * each failed candidate keeps the problems of the round it failed in.
 *
 * A candidate whose name the kernel's own updates/ or extra/ provides is shadowed: it never
 * joins the group (the kernel has its own build) and is checked against the final group. */

#include <stdint.h>

#include "modtree.h"

typedef enum KabiVerdict {
	KABI_OK,
	KABI_MISSING_SYMBOL,
	KABI_CRC_MISMATCH,
	KABI_VERMAGIC_MISMATCH,
	KABI_UNKNOWN, /* no __versions, or vmlinux symbols without Module.symvers */
	_KABI_VERDICT_MAX,
	_KABI_VERDICT_INVALID = -EINVAL,
} KabiVerdict;

/* "ok", "missing-symbol", "crc-mismatch", "vermagic-mismatch", "unknown" */
const char *kabi_verdict_to_string(KabiVerdict v);

typedef enum KabiProblemKind {
	KABI_PROBLEM_MISSING, /* nothing available exports symbol */
	KABI_PROBLEM_CRC, /* provider exports symbol with have, the module wants want */
	KABI_PROBLEM_UNVERIFIABLE, /* no Module.symvers and no module exports symbol */
	KABI_PROBLEM_NO_VERSIONS, /* the module has no __versions (built without modversions) */
	KABI_PROBLEM_VERMAGIC, /* vermagic differs beyond the release: have (kernel), want */
	/* replacing the kernel's module would break user: symbol missing (has_have false)
	 * or exported with have where user wants want */
	KABI_PROBLEM_BREAKS,
	_KABI_PROBLEM_KIND_MAX,
	_KABI_PROBLEM_KIND_INVALID = -EINVAL,
} KabiProblemKind;

/* "missing-symbol", "crc-mismatch", "unverifiable", "no-versions", "vermagic", "breaks" */
const char *kabi_problem_kind_to_string(KabiProblemKind k);

typedef struct KabiProblem {
	KabiProblemKind kind;
	char *symbol; /* NULL for NO_VERSIONS and VERMAGIC */
	char *provider; /* CRC/BREAKS: "vmlinux" or the exporting module's name */
	char *user; /* BREAKS: the kernel's module that would be refused */
	char *want_text; /* VERMAGIC: the module's vermagic */
	char *have_text; /* VERMAGIC: the kernel's */
	uint32_t want, have;
	bool has_have;
} KabiProblem;

typedef struct KabiResult {
	KabiVerdict verdict;
	KabiProblem *problems;
	size_t n_problems;
	unsigned round; /* the round a failed candidate left the group (1-based) */
	const char *shadowed_by; /* path of the kernel's own module of that name, or NULL */
	bool vermagic_differs; /* the release part differs (expected for another kernel) */
} KabiResult;

void kabi_result_done(KabiResult *r);
void kabi_results_free(KabiResult *r, size_t n);

typedef struct KabiKernel KabiKernel;

/* The symbol providers of a kernel: t with its modules loaded (modtree_load_modules) and,
 * when there is one, its Module.symvers (modtree_load_symvers). Modules under weak-updates/
 * are not part of the kernel's own tree: pass them as candidates. t must outlive k. */
int kabi_kernel_new(ModTree *t, KabiKernel **ret);
KabiKernel *kabi_kernel_free(KabiKernel *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(KabiKernel *, kabi_kernel_free);
#define _cleanup_kabi_kernel_free_ _cleanup_(kabi_kernel_freep)

/* The kernel's vermagic (its own modules'), NULL when it has none. */
const char *kabi_kernel_vermagic(const KabiKernel *k);
bool kabi_kernel_has_symvers(const KabiKernel *k);

/* The tree module that takes precedence for a name (updates/ over extra/ over the rest,
 * weak-updates/ excluded), NULL when none. */
const Module *kabi_kernel_module(const KabiKernel *k, const char *name);

/* Decides candidates as one group; ret gets n results, in the order of cands. Two
 * candidates of one name: the first joins, the others are shadowed by it. paths[i] (may be
 * NULL) is the absolute file of cands[i], read again only to learn whether a missing symbol
 * is bound weakly. */
int kabi_check(KabiKernel *k, const Module *const *cands, char *const *paths, size_t n,
	       KabiResult **ret);

/* One line for people: "CRC mismatch on foo: kernel has 0x1234abcd, module wants 0x...". */
char *kabi_problem_describe(const KabiProblem *p);
