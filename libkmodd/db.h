/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The installed-package database: SQLite in WAL mode at <root>/var/lib/kmodd/kmodd.db.
 * Tables: packages (NEVRA, kernel release, repository, checksum, reason, triggering device,
 * requested_by, install time), files (path relative to the root, sha256, size, mode),
 * deps (kind provides/requires/supplements/recommends, text), history (transactions with
 * their action, time, result, and the packages they touched).
 *
 * The schema version is PRAGMA user_version (1); a database with a newer version is refused
 * with -EPROTONOSUPPORT. Foreign keys are on (files and deps go with their package),
 * synchronous=FULL (a commit is durable when db_commit() returns: the transaction code uses
 * it as its commit point). Statements are prepared once per Db. Errors are -errno:
 * -EBUSY (locked longer than 10 s), -ENOSPC, -EIO, -EBADMSG (corrupt), -EEXIST (a
 * constraint, e.g. a file already owned), -EROFS. */

#include "package.h"

typedef struct Db Db;

typedef struct DbFile {
	char *path; /* relative to the root: "lib/modules/KVER/updates/.../e1000.ko" */
	char sha256[65];
	uint64_t size;
	uint32_t mode;
} DbFile;

typedef struct DbPackage {
	PackageRef ref; /* name, evr, arch, repo_id, checksum, deps, reason, device, requested_by */
	char *kver;
	int64_t install_time;
	DbFile *files;
	size_t n_files;
} DbPackage;

void db_package_done(DbPackage *p);
void db_packages_free(DbPackage *p, size_t n);

typedef struct DbHistory {
	int64_t id;
	int64_t time;
	char *action;  /* "install", "remove", "recover" */
	char *result;  /* "ok", "rolled-back", "failed: ..." */
	char *command; /* what was asked */
	char **packages; /* "+name-evr.arch" / "-name-evr.arch" */
} DbHistory;

void db_history_free(DbHistory *h, size_t n);

/* writable: create the database when missing; read-only otherwise (-ENOENT when missing). */
int db_open(const char *root, bool writable, Db **ret);
Db *db_close(Db *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(Db *, db_close);
#define _cleanup_db_close_ _cleanup_(db_closep)

int db_begin(Db *db);
int db_commit(Db *db);
int db_rollback(Db *db);

/* kver NULL: every kernel. */
int db_list_packages(Db *db, const char *kver, DbPackage **ret, size_t *ret_n);
/* -ENOENT when not installed. */
int db_get_package(Db *db, const char *kver, const char *name, DbPackage *ret);
int db_add_package(Db *db, const DbPackage *p);
int db_remove_package(Db *db, const char *kver, const char *name);
/* Which package owns a file (path relative to root); -ENOENT when none. */
int db_file_owner(Db *db, const char *path, char **ret_name);

int db_history_add(Db *db, const DbHistory *h, int64_t *ret_id);
/* The same, tagged with a transaction id (unique): recovery asks whether the database
 * already holds a journaled transaction. db_history_find_txn: 1 found, 0 not. */
int db_history_add_txn(Db *db, const DbHistory *h, const char *txn, int64_t *ret_id);
int db_history_find_txn(Db *db, const char *txn, int64_t *ret_id);
int db_history_list(Db *db, DbHistory **ret, size_t *ret_n);
