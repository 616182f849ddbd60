/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include "db.h"
#include "fileio.h"
#include "log.h"
#include "strv.h"

/* Schema version 1, kept in PRAGMA user_version. A newer database (from a newer kmodd) is
 * refused rather than written with assumptions it does not hold. */
#define DB_SCHEMA_VERSION 1

static const char schema_v1[] =
	"CREATE TABLE packages ("
	"  id INTEGER PRIMARY KEY,"
	"  kver TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  evr TEXT NOT NULL,"
	"  arch TEXT NOT NULL,"
	"  repo_id TEXT,"
	"  url TEXT,"
	"  checksum TEXT,"
	"  download_size INTEGER NOT NULL DEFAULT 0,"
	"  reason TEXT NOT NULL CHECK (reason IN ('user','hotplug','set','dependency')),"
	"  device TEXT,"
	"  requested_by TEXT,"
	"  install_time INTEGER NOT NULL,"
	"  UNIQUE (kver, name));"
	"CREATE TABLE files ("
	"  package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,"
	"  path TEXT NOT NULL UNIQUE,"
	"  sha256 TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  mode INTEGER NOT NULL);"
	"CREATE INDEX files_package ON files(package_id);"
	"CREATE TABLE deps ("
	"  package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,"
	"  kind TEXT NOT NULL CHECK (kind IN ('provides','requires','supplements','recommends')),"
	"  seq INTEGER NOT NULL,"
	"  dep TEXT NOT NULL);"
	"CREATE INDEX deps_package ON deps(package_id);"
	"CREATE TABLE history ("
	"  id INTEGER PRIMARY KEY,"
	"  time INTEGER NOT NULL,"
	"  action TEXT NOT NULL,"
	"  result TEXT NOT NULL,"
	"  command TEXT,"
	"  txn TEXT UNIQUE);"
	"CREATE TABLE history_packages ("
	"  history_id INTEGER NOT NULL REFERENCES history(id) ON DELETE CASCADE,"
	"  seq INTEGER NOT NULL,"
	"  package TEXT NOT NULL);"
	"CREATE INDEX history_packages_id ON history_packages(history_id);"
	"PRAGMA user_version = 1;";

typedef enum Stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_LIST_PACKAGES,
	STMT_LIST_PACKAGES_KVER,
	STMT_GET_PACKAGE,
	STMT_FILES_OF,
	STMT_DEPS_OF,
	STMT_ADD_PACKAGE,
	STMT_ADD_FILE,
	STMT_ADD_DEP,
	STMT_REMOVE_PACKAGE,
	STMT_FILE_OWNER,
	STMT_HISTORY_ADD,
	STMT_HISTORY_ADD_PACKAGE,
	STMT_HISTORY_LIST,
	STMT_HISTORY_PACKAGES,
	STMT_HISTORY_BY_TXN,
	_STMT_MAX,
} Stmt;

#define PACKAGE_COLUMNS                                                                      \
	"id, kver, name, evr, arch, repo_id, url, checksum, download_size, reason, device, " \
	"requested_by, install_time"

static const char *const stmt_sql[_STMT_MAX] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_LIST_PACKAGES] = "SELECT " PACKAGE_COLUMNS
			       " FROM packages ORDER BY kver, name",
	[STMT_LIST_PACKAGES_KVER] = "SELECT " PACKAGE_COLUMNS
				    " FROM packages WHERE kver = ?1 ORDER BY name",
	[STMT_GET_PACKAGE] = "SELECT " PACKAGE_COLUMNS
			     " FROM packages WHERE kver = ?1 AND name = ?2",
	[STMT_FILES_OF] =
		"SELECT path, sha256, size, mode FROM files WHERE package_id = ?1 "
		"ORDER BY path",
	[STMT_DEPS_OF] =
		"SELECT kind, dep FROM deps WHERE package_id = ?1 ORDER BY kind, seq",
	[STMT_ADD_PACKAGE] =
		"INSERT INTO packages (kver, name, evr, arch, repo_id, url, checksum, "
		"download_size, reason, device, requested_by, install_time) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[STMT_ADD_FILE] = "INSERT INTO files (package_id, path, sha256, size, mode) "
			  "VALUES (?1, ?2, ?3, ?4, ?5)",
	[STMT_ADD_DEP] =
		"INSERT INTO deps (package_id, kind, seq, dep) VALUES (?1, ?2, ?3, ?4)",
	[STMT_REMOVE_PACKAGE] = "DELETE FROM packages WHERE kver = ?1 AND name = ?2",
	[STMT_FILE_OWNER] =
		"SELECT p.name FROM files f JOIN packages p ON p.id = f.package_id "
		"WHERE f.path = ?1",
	[STMT_HISTORY_ADD] = "INSERT INTO history (time, action, result, command, txn) "
			     "VALUES (?1, ?2, ?3, ?4, ?5)",
	[STMT_HISTORY_ADD_PACKAGE] =
		"INSERT INTO history_packages (history_id, seq, package) "
		"VALUES (?1, ?2, ?3)",
	[STMT_HISTORY_LIST] =
		"SELECT id, time, action, result, command FROM history ORDER BY id",
	[STMT_HISTORY_PACKAGES] =
		"SELECT package FROM history_packages WHERE history_id = ?1 "
		"ORDER BY seq",
	[STMT_HISTORY_BY_TXN] = "SELECT id FROM history WHERE txn = ?1",
};

struct Db {
	sqlite3 *sql;
	sqlite3_stmt *stmt[_STMT_MAX];
	bool in_transaction;
};

static const char *const dep_kind_name[] = { "provides", "requires", "supplements",
					     "recommends" };

/* The one adapter from SQLite's result codes to -errno. */
static int sql_error(Db *db, int rc, const char *what)
{
	log_debug("sqlite: %s: %s (%d)", what,
		  db && db->sql ? sqlite3_errmsg(db->sql) : "", rc);
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_FORMAT:
		return -EBADMSG;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_TOOBIG:
		return -EFBIG;
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static int stmt_get(Db *db, Stmt s, sqlite3_stmt **ret)
{
	int rc;

	if (!db->stmt[s]) {
		rc = sqlite3_prepare_v3(db->sql, stmt_sql[s], -1,
					SQLITE_PREPARE_PERSISTENT, &db->stmt[s], NULL);
		if (rc != SQLITE_OK)
			return sql_error(db, rc, stmt_sql[s]);
	} else {
		sqlite3_reset(db->stmt[s]);
		sqlite3_clear_bindings(db->stmt[s]);
	}
	*ret = db->stmt[s];
	return 0;
}

static int bind_text(Db *db, sqlite3_stmt *st, int i, const char *s)
{
	int rc = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) :
		     sqlite3_bind_null(st, i);

	return rc == SQLITE_OK ? 0 : sql_error(db, rc, "bind");
}

static int bind_int(Db *db, sqlite3_stmt *st, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(st, i, v);

	return rc == SQLITE_OK ? 0 : sql_error(db, rc, "bind");
}

/* Runs a statement that returns no rows. */
static int step_done(Db *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sql_error(db, rc, sqlite3_sql(st));
	return 0;
}

static int col_strdup(sqlite3_stmt *st, int i, char **ret)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	if (!t) {
		*ret = NULL;
		return 0;
	}
	*ret = strdup((const char *)t);
	return *ret ? 0 : -ENOMEM;
}

static int exec(Db *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &err);

	if (rc != SQLITE_OK) {
		log_debug("sqlite: %s: %s", sql, strna(err));
		sqlite3_free(err);
		return sql_error(db, rc, "exec");
	}
	return 0;
}

static int pragma_int(Db *db, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_error(db, rc, sql);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return sql_error(db, rc, sql);
	return 0;
}

Db *db_close(Db *db)
{
	if (!db)
		return NULL;
	if (db->in_transaction)
		(void)exec(db, "ROLLBACK");
	for (size_t i = 0; i < _STMT_MAX; i++)
		sqlite3_finalize(db->stmt[i]);
	sqlite3_close_v2(db->sql);
	free(db);
	return NULL;
}

/* A reader without write access to the state directory cannot create the WAL index (-shm)
 * of a closed database. With no WAL content pending, the file alone is the whole database:
 * read it as immutable. */
static int reopen_immutable(Db *db, const char *path, int64_t *ret_version)
{
	_cleanup_free_ char *wal = NULL, *uri = NULL,
			    *escaped = malloc(strlen(path) * 3 + 1);
	char *e = escaped;
	struct stat st;
	int rc, r;

	if (!escaped)
		return -ENOMEM;
	/* a URI: '%', '?' and '#' in the path are escaped */
	for (const char *c = path; *c; c++)
		if (*c == '%' || *c == '?' || *c == '#')
			e += sprintf(e, "%%%02X", (unsigned char)*c);
		else
			*e++ = *c;
	*e = 0;
	if (asprintf(&wal, "%s-wal", path) < 0 ||
	    asprintf(&uri, "file:%s?immutable=1", escaped) < 0)
		return -ENOMEM;
	if (stat(wal, &st) >= 0 && st.st_size > 0)
		return -EACCES;
	for (size_t i = 0; i < _STMT_MAX; i++) {
		sqlite3_finalize(db->stmt[i]);
		db->stmt[i] = NULL;
	}
	sqlite3_close_v2(db->sql);
	db->sql = NULL;
	rc = sqlite3_open_v2(uri, &db->sql,
			     SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
				     SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK)
		return sql_error(db, rc, uri);
	r = exec(db, "PRAGMA foreign_keys = ON");
	if (r < 0)
		return r;
	return pragma_int(db, "PRAGMA user_version", ret_version);
}

int db_open(const char *root, bool writable, Db **ret)
{
	_cleanup_(db_closep) Db *db = NULL;
	_cleanup_free_ char *dir = NULL, *path = NULL;
	int64_t version = 0;
	int rc, r;

	dir = kmodd_path_state(root);
	if (!dir)
		return -ENOMEM;
	path = path_join(dir, "kmodd.db");
	if (!path)
		return -ENOMEM;
	if (writable) {
		r = mkdir_p(dir, 0755);
		if (r < 0)
			return r;
	} else if (access(path, F_OK) < 0)
		return negative_errno();

	db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &db->sql,
			     (writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE :
					 SQLITE_OPEN_READONLY) |
				     SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK)
		return sql_error(db, rc, path);
	sqlite3_busy_timeout(db->sql, 10000);

	r = exec(db, "PRAGMA foreign_keys = ON");
	if (r < 0)
		return r;
	if (writable) {
		/* WAL: readers (kmodctl list, the daemon's status) never wait for the writer;
		 * synchronous=FULL: a commit is on disk when it returns, which the transaction
		 * relies on as its commit point. */
		r = exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL");
		if (r < 0)
			return r;
	}
	r = pragma_int(db, "PRAGMA user_version", &version);
	if (r < 0 && !writable && (r == -EROFS || r == -EACCES || r == -ENOENT))
		r = reopen_immutable(db, path, &version);
	if (r < 0)
		return r;
	if (version > DB_SCHEMA_VERSION) {
		log_debug("%s: schema version %" PRIi64 ", this kmodd knows %d", path,
			  version, DB_SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (version == 0) {
		if (!writable)
			return -ENOENT; /* an empty file: nothing was ever installed */
		r = exec(db, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		/* another process may have created it meanwhile */
		r = pragma_int(db, "PRAGMA user_version", &version);
		if (r >= 0 && version == 0)
			r = exec(db, schema_v1);
		if (r < 0) {
			(void)exec(db, "ROLLBACK");
			return r;
		}
		r = exec(db, "COMMIT");
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(db);
	return 0;
}

int db_begin(Db *db)
{
	sqlite3_stmt *st;
	int r;

	if (db->in_transaction)
		return -EBUSY;
	r = stmt_get(db, STMT_BEGIN, &st);
	if (r < 0)
		return r;
	r = step_done(db, st);
	if (r < 0)
		return r;
	db->in_transaction = true;
	return 0;
}

int db_commit(Db *db)
{
	sqlite3_stmt *st;
	int r;

	if (!db->in_transaction)
		return -EINVAL;
	r = stmt_get(db, STMT_COMMIT, &st);
	if (r < 0)
		return r;
	r = step_done(db, st);
	if (r < 0) {
		(void)db_rollback(db);
		return r;
	}
	db->in_transaction = false;
	return 0;
}

int db_rollback(Db *db)
{
	if (!db->in_transaction)
		return 0;
	db->in_transaction = false;
	/* a failed statement may have rolled back already; the explicit one then fails */
	if (sqlite3_get_autocommit(db->sql))
		return 0;
	return exec(db, "ROLLBACK");
}

void db_package_done(DbPackage *p)
{
	if (!p)
		return;
	package_ref_done(&p->ref);
	free(p->kver);
	for (size_t i = 0; i < p->n_files; i++)
		free(p->files[i].path);
	free(p->files);
	*p = (DbPackage){};
}

void db_packages_free(DbPackage *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		db_package_done(&p[i]);
	free(p);
}

/* Reads the current row of a package query and its files and dependencies. */
static int package_from_row(Db *db, sqlite3_stmt *st, DbPackage *ret)
{
	DbPackage p = {};
	sqlite3_stmt *q;
	int64_t id = sqlite3_column_int64(st, 0);
	const char *reason;
	size_t allocated = 0;
	int r, rc;

	if (col_strdup(st, 1, &p.kver) < 0 || col_strdup(st, 2, &p.ref.name) < 0 ||
	    col_strdup(st, 3, &p.ref.evr) < 0 || col_strdup(st, 4, &p.ref.arch) < 0 ||
	    col_strdup(st, 5, &p.ref.repo_id) < 0 || col_strdup(st, 6, &p.ref.url) < 0 ||
	    col_strdup(st, 7, &p.ref.checksum) < 0 ||
	    col_strdup(st, 10, &p.ref.device) < 0 ||
	    col_strdup(st, 11, &p.ref.requested_by) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	p.ref.download_size = (uint64_t)sqlite3_column_int64(st, 8);
	reason = (const char *)sqlite3_column_text(st, 9);
	p.ref.reason = install_reason_from_string(reason);
	if (p.ref.reason < 0)
		p.ref.reason = INSTALL_REASON_USER;
	p.install_time = sqlite3_column_int64(st, 12);

	r = stmt_get(db, STMT_FILES_OF, &q);
	if (r < 0)
		goto fail;
	r = bind_int(db, q, 1, id);
	if (r < 0)
		goto fail;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		DbFile *f;

		if (!GREEDY_REALLOC(p.files, allocated, p.n_files + 1)) {
			r = -ENOMEM;
			goto fail;
		}
		f = &p.files[p.n_files];
		*f = (DbFile){};
		if (col_strdup(q, 0, &f->path) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		p.n_files++;
		snprintf(f->sha256, sizeof(f->sha256), "%s",
			 strempty((const char *)sqlite3_column_text(q, 1)));
		f->size = (uint64_t)sqlite3_column_int64(q, 2);
		f->mode = (uint32_t)sqlite3_column_int64(q, 3);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		r = sql_error(db, rc, "files");
		goto fail;
	}

	r = stmt_get(db, STMT_DEPS_OF, &q);
	if (r < 0)
		goto fail;
	r = bind_int(db, q, 1, id);
	if (r < 0)
		goto fail;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(q, 0);
		const char *dep = (const char *)sqlite3_column_text(q, 1);
		char ***l = NULL;

		if (!kind || !dep)
			continue;
		if (streq(kind, "provides"))
			l = &p.ref.provides;
		else if (streq(kind, "requires"))
			l = &p.ref.requires;
		else if (streq(kind, "supplements"))
			l = &p.ref.supplements;
		else if (streq(kind, "recommends"))
			l = &p.ref.recommends;
		if (l && strv_extend(l, dep) < 0) {
			sqlite3_reset(q);
			r = -ENOMEM;
			goto fail;
		}
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		r = sql_error(db, rc, "deps");
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	db_package_done(&p);
	return r;
}

int db_list_packages(Db *db, const char *kver, DbPackage **ret, size_t *ret_n)
{
	DbPackage *l = NULL;
	size_t n = 0, allocated = 0;
	sqlite3_stmt *st;
	int r, rc;

	r = stmt_get(db, kver ? STMT_LIST_PACKAGES_KVER : STMT_LIST_PACKAGES, &st);
	if (r < 0)
		return r;
	if (kver) {
		r = bind_text(db, st, 1, kver);
		if (r < 0)
			return r;
	}
	/* the nested file and dependency queries are separate statements */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!GREEDY_REALLOC(l, allocated, n + 1)) {
			r = -ENOMEM;
			goto fail;
		}
		r = package_from_row(db, st, &l[n]);
		if (r < 0)
			goto fail;
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = sql_error(db, rc, "list packages");
		goto fail;
	}
	*ret = l;
	*ret_n = n;
	return 0;
fail:
	sqlite3_reset(st);
	db_packages_free(l, n);
	return r;
}

int db_get_package(Db *db, const char *kver, const char *name, DbPackage *ret)
{
	sqlite3_stmt *st;
	int r, rc;

	r = stmt_get(db, STMT_GET_PACKAGE, &st);
	if (r < 0)
		return r;
	r = bind_text(db, st, 1, kver);
	if (r >= 0)
		r = bind_text(db, st, 2, name);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return -ENOENT;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return sql_error(db, rc, "get package");
	}
	r = package_from_row(db, st, ret);
	sqlite3_reset(st);
	return r;
}

static int add_deps(Db *db, int64_t id, const char *kind, char *const *l)
{
	int64_t seq = 0;

	STRV_FOREACH(d, l) {
		sqlite3_stmt *st;
		int r;

		r = stmt_get(db, STMT_ADD_DEP, &st);
		if (r < 0)
			return r;
		if ((r = bind_int(db, st, 1, id)) < 0 ||
		    (r = bind_text(db, st, 2, kind)) < 0 ||
		    (r = bind_int(db, st, 3, seq++)) < 0 ||
		    (r = bind_text(db, st, 4, *d)) < 0)
			return r;
		r = step_done(db, st);
		if (r < 0)
			return r;
	}
	return 0;
}

int db_add_package(Db *db, const DbPackage *p)
{
	const char *reason = install_reason_to_string(p->ref.reason);
	sqlite3_stmt *st;
	int64_t id;
	int r;

	if (!p->kver || !p->ref.name || !p->ref.evr || !p->ref.arch || !reason)
		return -EINVAL;
	r = stmt_get(db, STMT_ADD_PACKAGE, &st);
	if (r < 0)
		return r;
	if ((r = bind_text(db, st, 1, p->kver)) < 0 ||
	    (r = bind_text(db, st, 2, p->ref.name)) < 0 ||
	    (r = bind_text(db, st, 3, p->ref.evr)) < 0 ||
	    (r = bind_text(db, st, 4, p->ref.arch)) < 0 ||
	    (r = bind_text(db, st, 5, p->ref.repo_id)) < 0 ||
	    (r = bind_text(db, st, 6, p->ref.url)) < 0 ||
	    (r = bind_text(db, st, 7, p->ref.checksum)) < 0 ||
	    (r = bind_int(db, st, 8, (int64_t)p->ref.download_size)) < 0 ||
	    (r = bind_text(db, st, 9, reason)) < 0 ||
	    (r = bind_text(db, st, 10, p->ref.device)) < 0 ||
	    (r = bind_text(db, st, 11, p->ref.requested_by)) < 0 ||
	    (r = bind_int(db, st, 12, p->install_time ?: (int64_t)time(NULL))) < 0)
		return r;
	r = step_done(db, st);
	if (r < 0)
		return r;
	id = sqlite3_last_insert_rowid(db->sql);

	for (size_t i = 0; i < p->n_files; i++) {
		const DbFile *f = &p->files[i];

		r = stmt_get(db, STMT_ADD_FILE, &st);
		if (r < 0)
			return r;
		if ((r = bind_int(db, st, 1, id)) < 0 ||
		    (r = bind_text(db, st, 2, f->path)) < 0 ||
		    (r = bind_text(db, st, 3, f->sha256)) < 0 ||
		    (r = bind_int(db, st, 4, (int64_t)f->size)) < 0 ||
		    (r = bind_int(db, st, 5, f->mode)) < 0)
			return r;
		r = step_done(db, st);
		if (r < 0)
			return r;
	}
	if ((r = add_deps(db, id, dep_kind_name[0], p->ref.provides)) < 0 ||
	    (r = add_deps(db, id, dep_kind_name[1], p->ref.requires)) < 0 ||
	    (r = add_deps(db, id, dep_kind_name[2], p->ref.supplements)) < 0 ||
	    (r = add_deps(db, id, dep_kind_name[3], p->ref.recommends)) < 0)
		return r;
	return 0;
}

int db_remove_package(Db *db, const char *kver, const char *name)
{
	sqlite3_stmt *st;
	int r;

	r = stmt_get(db, STMT_REMOVE_PACKAGE, &st);
	if (r < 0)
		return r;
	if ((r = bind_text(db, st, 1, kver)) < 0 || (r = bind_text(db, st, 2, name)) < 0)
		return r;
	r = step_done(db, st);
	if (r < 0)
		return r;
	return sqlite3_changes(db->sql) > 0 ? 0 : -ENOENT;
}

int db_file_owner(Db *db, const char *path, char **ret_name)
{
	sqlite3_stmt *st;
	int r, rc;

	r = stmt_get(db, STMT_FILE_OWNER, &st);
	if (r < 0)
		return r;
	r = bind_text(db, st, 1, path);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = ret_name ? col_strdup(st, 0, ret_name) : 0;
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = sql_error(db, rc, "file owner");
	sqlite3_reset(st);
	return r;
}

void db_history_free(DbHistory *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].action);
		free(h[i].result);
		free(h[i].command);
		strv_free(h[i].packages);
	}
	free(h);
}

int db_history_add_txn(Db *db, const DbHistory *h, const char *txn, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int64_t id, seq = 0;
	int r;

	if (!h->action || !h->result)
		return -EINVAL;
	r = stmt_get(db, STMT_HISTORY_ADD, &st);
	if (r < 0)
		return r;
	if ((r = bind_int(db, st, 1, h->time ?: (int64_t)time(NULL))) < 0 ||
	    (r = bind_text(db, st, 2, h->action)) < 0 ||
	    (r = bind_text(db, st, 3, h->result)) < 0 ||
	    (r = bind_text(db, st, 4, h->command)) < 0 ||
	    (r = bind_text(db, st, 5, txn)) < 0)
		return r;
	r = step_done(db, st);
	if (r < 0)
		return r;
	id = sqlite3_last_insert_rowid(db->sql);
	STRV_FOREACH(p, h->packages) {
		r = stmt_get(db, STMT_HISTORY_ADD_PACKAGE, &st);
		if (r < 0)
			return r;
		if ((r = bind_int(db, st, 1, id)) < 0 ||
		    (r = bind_int(db, st, 2, seq++)) < 0 ||
		    (r = bind_text(db, st, 3, *p)) < 0)
			return r;
		r = step_done(db, st);
		if (r < 0)
			return r;
	}
	if (ret_id)
		*ret_id = id;
	return 0;
}

int db_history_add(Db *db, const DbHistory *h, int64_t *ret_id)
{
	return db_history_add_txn(db, h, NULL, ret_id);
}

int db_history_find_txn(Db *db, const char *txn, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int r, rc;

	r = stmt_get(db, STMT_HISTORY_BY_TXN, &st);
	if (r < 0)
		return r;
	r = bind_text(db, st, 1, txn);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (ret_id)
			*ret_id = sqlite3_column_int64(st, 0);
		r = 1;
	} else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = sql_error(db, rc, "history by transaction");
	sqlite3_reset(st);
	return r;
}

int db_history_list(Db *db, DbHistory **ret, size_t *ret_n)
{
	DbHistory *l = NULL;
	size_t n = 0, allocated = 0;
	sqlite3_stmt *st, *q;
	int r, rc;

	r = stmt_get(db, STMT_HISTORY_LIST, &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		DbHistory *h;
		int rq;

		if (!GREEDY_REALLOC(l, allocated, n + 1)) {
			r = -ENOMEM;
			goto fail;
		}
		h = &l[n++];
		*h = (DbHistory){
			.id = sqlite3_column_int64(st, 0),
			.time = sqlite3_column_int64(st, 1),
		};
		if (col_strdup(st, 2, &h->action) < 0 ||
		    col_strdup(st, 3, &h->result) < 0 ||
		    col_strdup(st, 4, &h->command) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		r = stmt_get(db, STMT_HISTORY_PACKAGES, &q);
		if (r < 0)
			goto fail;
		r = bind_int(db, q, 1, h->id);
		if (r < 0)
			goto fail;
		while ((rq = sqlite3_step(q)) == SQLITE_ROW)
			if (strv_extend(&h->packages,
					(const char *)sqlite3_column_text(q, 0)) < 0) {
				sqlite3_reset(q);
				r = -ENOMEM;
				goto fail;
			}
		sqlite3_reset(q);
		if (rq != SQLITE_DONE) {
			r = sql_error(db, rq, "history packages");
			goto fail;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = sql_error(db, rc, "history");
		goto fail;
	}
	*ret = l;
	*ret_n = n;
	return 0;
fail:
	sqlite3_reset(st);
	db_history_free(l, n);
	return r;
}
