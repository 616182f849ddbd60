/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Resolution with libsolv: from a need to the packages to install.
 *
 * The pool holds the system repository — a solvable kernel-<flavour> for the kernel being
 * served, providing ksym(<flavour>:SYM) = <crc> (canonical "%x") for every vmlinux export of
 * its Module.symvers, kernel-uname-r = KVER, and kmod(<name>.ko) for every module already
 * in its tree; plus the installed KMPs from the database — and the enabled repositories from
 * their .solv caches. libsolv's modalias(kernel-F:pattern) supplements are answered through
 * the NAMESPACE_MODALIAS callback with fnmatch() against the asked modalias only, so the
 * answer is exactly what was asked plus its dependencies, never whatever else supplements
 * other hardware. */

#include <solv/pool.h>
#include <solv/queue.h>

#include "package.h"

typedef struct Resolver Resolver;

typedef enum NeedKind {
	NEED_MODALIAS, /* a device modalias: every package whose Supplements match */
	NEED_MODULE,   /* a module name: kmod(<name>.ko) */
	NEED_CAPABILITY, /* any capability, e.g. "kmod(e1000.ko)" or "ksym(amd64:foo)" */
	NEED_PACKAGE,  /* a package name */
	_NEED_KIND_MAX,
	_NEED_KIND_INVALID = -EINVAL,
} NeedKind;

typedef struct ResolveResult {
	PackageRef *install; /* in install order (dependencies first) */
	size_t n_install;
	char **modules;      /* the module names that serve the need (to load afterwards) */
	bool already;        /* the need is served by what is installed already */
	char **problems;     /* plain words: "no repository offers ksym(amd64:foo) = 1a2b needed
			      * by bar-kmp-amd64 for kernel 6.1.0-54-amd64" */
} ResolveResult;

void resolve_result_done(ResolveResult *r);

/* Builds the pool for kver under root. */
int resolver_new(const char *root, const char *kver, Resolver **ret);
Resolver *resolver_free(Resolver *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Resolver *, resolver_free);
#define _cleanup_resolver_free_ _cleanup_(resolver_freep)

/* Several needs at once (a set); reason and device are recorded in each PackageRef
 * (packages pulled in by others get INSTALL_REASON_DEPENDENCY), requested_by is the needs
 * or what resolver_set_requested_by() set. Only what was asked and what it requires is
 * installed, plus the modules its softdeps name (as modprobe loads them); never packages that
 * merely supplement or are recommended. The kernel's own package is locked.
 * Returns 0 with a result (already set when the tree serves every need as it is), -ENOENT when
 * nothing provides a need, -EDEADLK when the needs cannot be satisfied; in both cases
 * ret->problems (only) says why, in plain words. */
int resolver_solve(Resolver *r, NeedKind kind, char *const *needs, InstallReason reason,
		   const char *device, ResolveResult *ret);

/* The pieces of resolver_new(), for tools and tests that bring their own repositories:
 * resolver_new_bare() builds the system repository (kernel and installed KMPs) only;
 * resolver_add_repo_file() adds a repository from a .solv file or an rpm-md primary.xml
 * (.gz/.zst) whose packages live below baseurl; resolver_prepare() makes the pool ready
 * (whatprovides, the modalias index) and is implied by the first solve. */
int resolver_new_bare(const char *root, const char *kver, Resolver **ret);
int resolver_add_repo_file(Resolver *r, const char *id, const char *path, const char *baseurl);
int resolver_prepare(Resolver *r);

Pool *resolver_pool(Resolver *r);
const char *resolver_kver(const Resolver *r);
/* Enabled repositories without cached metadata (never refreshed). */
char *const *resolver_missing_repos(const Resolver *r);
/* Non-fatal trouble met while building the pool: no Module.symvers, an unreadable database,
 * malformed .repo lines. */
char *const *resolver_warnings(const Resolver *r);

/* Whether the kernel's tree has the module (or it is built in). */
bool resolver_module_installed(Resolver *r, const char *module);
/* Solvables providing a capability (rpm syntax: "kmod(e1000.ko)", "ksym(amd64:x) = 1a2b"),
 * or (modalias) the available packages whose modalias patterns match a device modalias. */
int resolver_what_provides(Resolver *r, const char *what, bool modalias, Queue *ret);
int resolver_solvable_ref(Resolver *r, Id p, PackageRef *ret);
bool resolver_solvable_installed(Resolver *r, Id p);
/* The module names a solvable provides (kmod(<name>.ko)). */
int resolver_solvable_modules(Resolver *r, Id p, char ***ret);
/* Every module name some available package provides (with repetitions). */
int resolver_available_modules(Resolver *r, char ***ret);

/* What later solves record as requested_by ("set:netfilter", "scan"); NULL: the needs
 * themselves. */
int resolver_set_requested_by(Resolver *r, const char *requested_by);
/* The module's path in the kernel tree of a repository package ("kernel/net/netfilter/x.ko",
 * or "updates/..." as its file list says), from its file list when the metadata has one, else
 * from the description kmpbuild writes; NULL when unknown. */
char *resolver_solvable_tree_path(Resolver *r, Id p);
