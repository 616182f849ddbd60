/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Installing and removing KMPs, never half-done.
 *
 * install: take the writer lock (<root>/var/lib/kmodd/lock); recover a pending transaction;
 * download every package into <root>/var/cache/kmodd/packages/<repo>/ (fetch_to_file with the
 * metadata checksum); verify rpm digests (and the signature when asked) before any byte is
 * extracted; write the journal (<root>/var/lib/kmodd/journal: the plan, fsynced) before the
 * first file; extract only module files into /lib/modules/KVER/updates|extra/ through
 * openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) — refusing "..", absolute paths, symlinks,
 * hardlinks, devices, setuid bits and anything that is not a module — to temporaries, fsync,
 * rename into place; depmod_update(); commit the database (packages, files with sha256,
 * dependencies, history); remove the journal; then load the modules asked for through
 * libkmod with the blacklists applied.
 * remove: refuses a module in use unless forced; packages that require the removed ones follow.
 * Recovery (transaction_recover, run first by every writing command) rolls a journaled
 * transaction back or forward so the module tree, the indexes and the database agree. */

#include "package.h"

typedef struct TxnOptions {
	bool dry_run;
	bool load;             /* load the requested modules after installing */
	bool require_signature;
	bool force;            /* remove: even when in use */
	/* progress lines (downloads, steps) for a TTY; NULL for none */
	void (*progress)(void *userdata, const char *what, uint64_t now, uint64_t total);
	void *userdata;
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

/* Roll a pending transaction back or forward; 0 when there was none, 1 when one was handled. */
int transaction_recover(const char *root, const char *kver, TxnReport *rep);
