/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What every installed module is worth on a kernel: KABI verdict (kabi.h), owning package,
 * signature, in-tree or not, SUSE's supported: flag, taint and blacklisting.
 *
 * For kernel KVER the audit covers
 *   - the kernel's own tree (kernel/, updates/, extra/, ...): source "tree";
 *   - its weak-updates/ links: source "weak-updates" (a dangling link is listed apart);
 *   - modules installed for other kernels of the same flavour (their updates/ and extra/),
 *     not linked: source "candidate" — would they load on KVER?
 * Weak-updates links and candidates are decided as one group (kabi_check). */

#include "db.h"
#include "kabi.h"

typedef enum AuditSource {
	AUDIT_SOURCE_TREE,
	AUDIT_SOURCE_WEAK_UPDATES,
	AUDIT_SOURCE_CANDIDATE,
	_AUDIT_SOURCE_MAX,
	_AUDIT_SOURCE_INVALID = -EINVAL,
} AuditSource;

const char *audit_source_to_string(AuditSource s); /* "tree", "weak-updates", "candidate" */

typedef struct AuditModule {
	char *name;
	char *path; /* relative to /lib/modules/KVER of the audited kernel (tree and
			    * weak-updates), or of origin_kver (candidates) */
	char *file; /* the file read, relative to the root */
	char *origin_kver; /* the kernel whose tree holds the file */
	AuditSource source;
	char *package; /* owning package, NULL when none */
	char *package_kver;
	KabiResult kabi;
	const Module *module; /* borrowed from the audit's trees */
	bool kernel_key; /* signed with the key of the kernel's own modules */
	char *taint; /* /sys/module/NAME/taint when loaded on the running kernel */
	bool loaded;
	bool blacklisted;
} AuditModule;

typedef struct AuditKernel {
	char *kver;
	bool running; /* the kernel the root runs (taint is read for it only) */
	char *symvers_path; /* NULL when the kernel has no Module.symvers */
	char *vermagic;
	char *sig_key; /* the key of its own modules */
	long tainted; /* /proc/sys/kernel/tainted, -1 when unknown */
	AuditModule *modules;
	size_t n_modules;
	char **dangling; /* weak-updates links (relative paths) whose target is gone */
	char **warnings; /* unreadable files, skipped */
	bool database; /* the installed database was read */
	/* internal: the trees the modules point into */
	ModTree *tree;
	ModTree **others;
	size_t n_others;
	KabiKernel *kabi;
} AuditKernel;

void audit_kernel_done(AuditKernel *a);

/* Kernels under <root>/lib/modules, sorted. */
int audit_list_kernels(const char *root, char ***ret);

typedef struct AuditOptions {
	const char *symvers; /* Module.symvers to use instead of the kernel's own */
	bool own_tree; /* include the kernel's own tree (true for audit; kernel add
				 * wants the candidates only) */
	const char *exclude_kver; /* take no candidates from this kernel (being removed) */
} AuditOptions;

/* Audits kver under root. The installed database is read when there is one (no database:
 * no packages). On failure, *ret_error_path (when given) names the file. */
int audit_kernel(const char *root, const char *kver, const AuditOptions *o,
		 AuditKernel *ret, char **ret_error_path);

/* Does the module count against a clean audit (a verdict other than ok, not shadowed)? */
bool audit_module_failed(const AuditModule *m);
