/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Incremental depmod.
 *
 * Writes the same files as kmod 30's `depmod -b ROOT KVER`, byte for byte: modules.dep,
 * .dep.bin, .alias, .alias.bin, .softdep, .symbols, .symbols.bin, .devname, and (full builds
 * only) .builtin.bin and .builtin.alias.bin, which derive from modules.builtin and
 * modules.builtin.modinfo alone and so never change with the module set. modules.order and
 * modules.builtin* are only read.
 *
 * The exact output depends on more than the text indexes hold: the order in which each module
 * needs its symbols (depmod's topological sort walks the direct dependencies in that order),
 * every exporter of a symbol that several modules export, and symbols nobody exports yet.
 * So each generation also carries a cache, <moddir>/.kmodd-depmod.cache, binary and read in
 * place: per module its exports, needed symbols, order key and where its lines are in
 * modules.dep, .alias and .devname; the symbols with their hash order and lookup table; the
 * mtime of every directory of the tree; the module files that lost to a higher-priority one;
 * the identity (inode, size, mtime) of the index files, modules.order and depmod.d it belongs
 * to; a checksum. An update with a matching cache lists again only the directories whose mtime
 * changed, reads the changed modules only (modelf; libkmod, loaded then, for compressed ones),
 * takes the others from the cache,
 * copies their lines and patches the .bin tries (kmod_index_patch()). Where that cannot decide
 * (two files of one module at the same priority, an error to report), the general update parses
 * modules.alias and .softdep and recomputes everything in memory. When the indexes are missing,
 * disagree with the tree, or were rewritten by something else (no matching cache), the update
 * becomes a full build and the report says why.
 *
 * Publishing: every file of the new generation is written over its spare,
 * <moddir>/.kmodd-spare.<name>, the file the generation before last published (or a new one
 * when the spare is missing or still open or mapped by some process: a write lease tells), and
 * fdatasynced; the journal <moddir>/.kmodd-depmod.journal, one checksummed record kept from
 * one update to the next, is written over in place with the commit (names, sizes, inodes) and
 * fdatasynced; the spares are exchanged with the files in place (renameat2 RENAME_EXCHANGE, so
 * the old files become the spares and no blocks are freed), dependency and symbol indexes
 * first, the alias indexes last; the directory is fsynced; the journal is marked idle. The
 * cache is built and written beside the commit, over the previous one in place, not synced: it
 * checks itself (checksum, fingerprints), and a lost, torn or stale one means one full build.
 * depmod_recover() finishes a committed publish (it exchanges what is not in place yet) and
 * removes the temporaries an earlier version's publish left,
 * so after any crash the directory holds the old or the new generation, complete. */

#include <stdbool.h>

#include "macros.h"

typedef struct DepmodReport {
	bool full_build; /* the whole tree was read */
	char *full_reason; /* why an update became a full build */
	bool recovered; /* an interrupted publish was finished first */
	unsigned n_modules; /* modules in the new generation */
	unsigned n_read; /* modules whose ELF was read */
	unsigned long generation;
	char **differences; /* depmod_verify(): one line per file that differs */
	char *error_path; /* the file behind a failure */
	char *error_message; /* what is wrong with it, for the user */
} DepmodReport;

void depmod_report_done(DepmodReport *r);

/* Finishes or discards an interrupted publish in <root>/lib/modules/<kver>. */
int depmod_recover(const char *root, const char *kver, DepmodReport *rep);

/* Updates the indexes after files were added (paths, absolute or relative to the module
 * directory, already in place) and modules removed (names or paths, files already gone).
 * Errors: -ENOENT (added file missing, removed module not indexed), -ENOEXEC (not a module),
 * -ENOTUNIQ (two files provide the same module at the same priority), -EEXIST (a removed
 * module's file is still there), -EBADMSG (a corrupt existing index), -ELOOP (dependency
 * cycle), write errors; rep->error_path and rep->error_message say which file and why.
 * Nothing is changed on failure. */
int depmod_update(const char *root, const char *kver, char *const *add,
		  char *const *remove, DepmodReport *rep);

/* Reads the whole tree and writes every index. */
int depmod_full(const char *root, const char *kver, DepmodReport *rep);

/* Builds every index in memory and compares with the files. Returns 0 when they agree, 1 when
 * not (rep->differences says what). */
int depmod_verify(const char *root, const char *kver, DepmodReport *rep);
