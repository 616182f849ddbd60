/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <libkmod.h>

#include "hashmap.h"
#include "kernel-release.h"
#include "symvers.h"

/* A symbol with its modversions CRC. */
typedef struct SymbolCrc {
	char *symbol;
	uint64_t crc;
} SymbolCrc;

/* One modinfo key=value pair, in the order the module lists them. */
typedef struct ModInfo {
	char *key;
	char *value;
} ModInfo;

typedef struct Module {
	char *name; /* as the kernel names it: '-' turned into '_' */
	char *path; /* relative to /lib/modules/KVER */
	char **aliases;
	char **depends;
	char **softdeps; /* modinfo softdep values, e.g. "pre: crc32c" */
	char **firmware;
	char *vermagic;
	char *license;
	char *description;
	char *supported; /* SUSE's supported: flag; NULL when absent */
	char *signer;    /* NULL when unsigned */
	char *sig_key;
	char *sig_hashalgo;
	bool intree;
	ModInfo *info; /* everything modinfo shows */
	size_t n_info;
	SymbolCrc *exports; /* sorted by symbol */
	size_t n_exports;
	SymbolCrc *requires; /* __versions, in module order */
	size_t n_requires;
} Module;

Module *module_free(Module *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Module *, module_free);
#define _cleanup_module_free_ _cleanup_(module_freep)

typedef enum ModTreeFlags {
	MODTREE_REQUIRE_INDEX = 1 << 0, /* the tree must hold modules.dep */
} ModTreeFlags;

typedef struct ModTree {
	char *root;    /* "/" or the image root */
	char *kver;    /* kernel release */
	char *flavour; /* part of kver after the last '-' */
	char *dir;     /* <root>/lib/modules/<kver> */
	struct kmod_ctx *ctx;
	Module **modules; /* sorted by path */
	size_t n_modules;
	Hashmap *by_name; /* name -> Module* (the one modules.dep would pick first is not
			   * decided here; the first in path order wins) */
	Symvers *symvers;
	char *error_path; /* the file behind the last failure, when there is one */
} ModTree;

ModTree *modtree_free(ModTree *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(ModTree *, modtree_free);
#define _cleanup_modtree_free_ _cleanup_(modtree_freep)

/* The flavour of a kernel release: the part after the last '-' ("6.1.0-54-amd64" -> "amd64"). */
char *kernel_flavour(const char *kver);

/* Opens <root>/lib/modules/<kver> with one libkmod context (configuration read from the root).
 * -ENOENT when the directory is missing; with MODTREE_REQUIRE_INDEX, -ENOENT with
 * error_path pointing at modules.dep when that is missing. */
int modtree_open(const char *root, const char *kver, ModTreeFlags flags, ModTree **ret,
		 char **ret_error_path);

/* Reads every module (.ko, .ko.xz, .ko.zst) under the tree. On failure t->error_path names
 * the file. -ENOEXEC: a file that is not a valid module. */
int modtree_load_modules(ModTree *t);

/* Loads Module.symvers from path, or (path NULL) from where symvers_find() finds it; a tree
 * without one is not an error (t->symvers stays NULL, returns 0). -EBADMSG/-errno naming
 * t->error_path otherwise. */
int modtree_load_symvers(ModTree *t, const char *path, unsigned *ret_bad_line);

/* Reads one module file (absolute path, or relative to t->dir). */
int modtree_read_module(ModTree *t, const char *path, Module **ret);

/* Looks a module up by name ('-' and '_' alike) through modules.dep, without reading the tree. */
int modtree_find_path(ModTree *t, const char *name, char **ret_relpath);

const Module *modtree_get(const ModTree *t, const char *name);

/* "e1000e" from "kernel/drivers/net/e1000e.ko.xz"; '-' turned into '_'. */
char *module_name_from_path(const char *path);
