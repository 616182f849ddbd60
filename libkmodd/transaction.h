/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Installing and removing KMPs, never half-done.
 *
 * install: take the writer lock (flock on <root>/var/lib/kmodd/lock; -EWOULDBLOCK when another
 * writer holds it); recover a pending transaction; download every package into
 * <root>/var/cache/kmodd/packages/<repo>/ (fetch_to_file with the metadata checksum); verify
 * rpm digests, and with require_signature an OpenPGP signature by one of signature_keys
 * (-ENOKEY unsigned or no keys, -EKEYREJECTED another key), before any byte is extracted;
 * check every payload entry: only regular module
 * files (.ko, .ko.xz, .ko.zst) under /lib/modules/KVER/updates|extra/ — "..", paths elsewhere,
 * symlinks, hardlinks, devices, setuid/setgid bits and other files refuse the package, as
 * does a file that would overwrite one of another package or of the kernel's own tree;
 * write the journal (<root>/var/lib/kmodd/journal: the plan, fsynced) before the first file;
 * extract through openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) below the module directory to
 * temporaries (".kmodd-txn.<id>.<n>" beside their final name), checking each file's sha256
 * against the header; fsync; rename into place; depmod_update(); commit the database
 * (packages, files with sha256, dependencies, history tagged with the transaction id); remove
 * the journal; then load the modules asked for through libkmod with the root's modprobe.d
 * blacklists applied.
 * remove: refuses a module in use (refcnt, or holders outside the removal) unless forced;
 * packages that require the removed ones follow; modules are unloaded before any file goes.
 *
 * The commit point is the database commit (SQLite, synchronous=FULL): the history row with
 * the journal's transaction id is written in the same SQL transaction as the package rows.
 * Recovery (transaction_recover, run first by every writing command) reads the journal:
 *   - the database holds the transaction id: roll forward — delete the backups of replaced
 *     or removed files, prune emptied directories, remove the journal;
 *   - it does not: roll back — restore backups over the new files, delete temporaries, new
 *     files and created directories, then depmod_recover() and, when the journal had reached
 *     "indexing", depmod_update() on the restored tree (a full build when the indexes name
 *     modules that are gone), remove the journal.
 * So after any crash the module tree, the indexes and the database are all the state before
 * or all the state after. Loaded modules are not part of that state: a remove interrupted
 * after unloading is rolled back with its modules still unloaded.
 *
 * Steps, with their crash-point names: KMODD_TXN_CRASH_AT=<name> raises SIGKILL on reaching
 * the step (the crash tests use it; always honoured, since a crash is what recovery is for).
 *   install: install:locked (lock taken, recovery next), install:downloaded (after each
 *     download), install:verified (all verified and planned), install:journal (journal
 *     "prepared" written), install:mkdir (new directories made), install:extract-partial
 *     (part of the first temporary written), install:extracted (temporaries fsynced),
 *     install:placing (journal "placing"), install:rename-first (first rename done),
 *     install:renamed (all renamed, directories not yet fsynced), install:indexing (journal
 *     "indexing"), install:indexed (depmod_update published), install:db-uncommitted (rows
 *     written, COMMIT not), install:committed, install:finished (backups removed),
 *     install:journal-removed, install:loaded.
 *   remove: remove:locked, remove:journal, remove:unloaded, remove:placing,
 *     remove:rename-first (first file moved to its backup), remove:renamed, remove:indexing,
 *     remove:indexed, remove:db-uncommitted, remove:committed, remove:finished,
 *     remove:journal-removed.
 *   recovery: recover:back, recover:forward (before rolling back or forward). */

#include "package.h"

typedef struct TxnOptions {
	bool dry_run;
	bool load;             /* load the requested modules after installing */
	bool require_signature; /* refuse packages without an OpenPGP signature made by one of
				 * signature_keys */
	char *const *signature_keys; /* armored public key files (a repository's gpgkey) */
	bool force;            /* remove: even when in use */
	/* progress lines (downloads, steps) for a TTY; NULL for none */
	void (*progress)(void *userdata, const char *what, uint64_t now, uint64_t total);
	void *userdata;
	const char *command; /* what was asked, for the history ("install e1000") */
} TxnOptions;

typedef struct TxnReport {
	char **installed;   /* NEVRA of packages installed */
	char **removed;     /* NEVRA of packages removed */
	char **loaded;      /* module names loaded */
	char **load_failed; /* "name: reason" */
	bool recovered;     /* a pending transaction was rolled back or forward first */
	char *recovery_action; /* "rolled back ..." / "completed ..." */
	char *error_path;   /* the file or URL behind a failure */
	char *error_message;/* one line for the user */
	long history_id;    /* the database's history entry of this transaction */
} TxnReport;

void txn_report_done(TxnReport *r);

/* Install pkgs (resolution's answer, in any order) into the tree of kver under root.
 * load_modules: module names to load afterwards (NULL: none). */
int transaction_install(const char *root, const char *kver, const PackageRef *pkgs, size_t n,
			char *const *load_modules, const TxnOptions *o, TxnReport *rep);

/* Remove installed packages by name, with the packages that require them. */
int transaction_remove(const char *root, const char *kver, char *const *names,
		       const TxnOptions *o, TxnReport *rep);

/* Does provider satisfy the requirement "name [op evr]" (its own name or one of its
 * provides; versions compared for "=")? What reverse dependencies and `why` use. */
bool package_satisfies(const PackageRef *provider, const char *requirement);

/* Parses a journal as recovery does, changing nothing: 0 when it would be accepted,
 * -EBADMSG/-EPROTONOSUPPORT when not. For the fuzzer. */
int transaction_journal_check(const char *data, size_t size);

/* Roll a pending transaction back or forward; 0 when there was none, 1 when one was handled. */
int transaction_recover(const char *root, const char *kver, TxnReport *rep);
