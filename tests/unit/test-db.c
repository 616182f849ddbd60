/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The installed database (db.c): schema creation, packages with files and dependencies,
 * owners, history tagged with transaction ids, constraints, read-only opening, a newer
 * schema refused; and the dependency matching of transaction.c. */
#include <sqlite3.h>
#include <sys/stat.h>

#include "db.h"
#include "strv.h"
#include "tests.h"
#include "transaction.h"

static char *make_root(void)
{
	char *d = strdup("/tmp/kmodd-test-db.XXXXXX");

	if (!d || !mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static void rm_rf(const char *d)
{
	char *cmd = NULL;

	if (asprintf(&cmd, "rm -rf '%s'", d) >= 0 && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", d);
	free(cmd);
}

static void fill(DbPackage *p, const char *name, const char *file)
{
	static DbFile f;
	static char *prov[] = { NULL, (char *)"kmod(x.ko)", NULL };
	static char *req[] = { (char *)"ksym(amd64:foo) = 1a2b", NULL };

	prov[0] = (char *)name;
	f = (DbFile){ .path = (char *)file, .size = 3, .mode = 0100644 };
	memset(f.sha256, 'a', 64);
	*p = (DbPackage){
		.ref = { .name = (char *)name,
			 .evr = (char *)"1-1",
			 .arch = (char *)"x86_64",
			 .repo_id = (char *)"r",
			 .reason = INSTALL_REASON_HOTPLUG,
			 .device = (char *)"pci:v00008086d0000100E",
			 .provides = prov,
			 .requires = req },
		.kver = (char *)"6.1.0-54-amd64",
		.install_time = 42,
		.files = &f,
		.n_files = 1,
	};
}

TEST(roundtrip)
{
	_cleanup_free_ char *root = make_root();
	_cleanup_(db_closep) Db *db = NULL;
	DbPackage p, got = {};
	DbPackage *l = NULL;
	size_t n = 0;
	char *owner = NULL;
	int64_t id = 0;

	ASSERT_TRUE(root);
	ASSERT_ERROR(db_open(root, false, &db), ENOENT);
	ASSERT_OK(db_open(root, true, &db));
	fill(&p, "e1000-kmp-amd64", "lib/modules/6.1.0-54-amd64/updates/e1000.ko");
	ASSERT_OK(db_begin(db));
	ASSERT_OK(db_add_package(db, &p));
	{
		DbHistory h = { .action = (char *)"install",
				.result = (char *)"ok",
				.command = (char *)"install e1000" };
		ASSERT_OK(db_history_add_txn(db, &h, "0123", &id));
	}
	ASSERT_OK(db_commit(db));

	ASSERT_OK(db_get_package(db, "6.1.0-54-amd64", "e1000-kmp-amd64", &got));
	ASSERT_STREQ(got.ref.evr, "1-1");
	ASSERT_STREQ(got.ref.device, "pci:v00008086d0000100E");
	ASSERT_TRUE(got.ref.reason == INSTALL_REASON_HOTPLUG);
	ASSERT_TRUE(got.n_files == 1 && got.files[0].size == 3 &&
		    got.files[0].mode == 0100644);
	ASSERT_TRUE(strv_length(got.ref.provides) == 2 &&
		    strv_length(got.ref.requires) == 1);
	ASSERT_STREQ(got.ref.provides[1], "kmod(x.ko)");
	db_package_done(&got);

	ASSERT_OK(
		db_file_owner(db, "lib/modules/6.1.0-54-amd64/updates/e1000.ko", &owner));
	ASSERT_STREQ(owner, "e1000-kmp-amd64");
	free(owner);
	ASSERT_ERROR(db_file_owner(db, "lib/modules/x.ko", NULL), ENOENT);
	ASSERT_TRUE(db_history_find_txn(db, "0123", NULL) == 1);
	ASSERT_TRUE(db_history_find_txn(db, "4567", NULL) == 0);

	/* a second package with the same file: a constraint, rolled back */
	fill(&p, "other-kmp-amd64", "lib/modules/6.1.0-54-amd64/updates/e1000.ko");
	ASSERT_OK(db_begin(db));
	ASSERT_ERROR(db_add_package(db, &p), EEXIST);
	ASSERT_OK(db_rollback(db));
	ASSERT_OK(db_list_packages(db, NULL, &l, &n));
	ASSERT_TRUE(n == 1);
	db_packages_free(l, n);

	/* removal takes files and deps along (foreign keys) */
	ASSERT_OK(db_begin(db));
	ASSERT_OK(db_remove_package(db, "6.1.0-54-amd64", "e1000-kmp-amd64"));
	ASSERT_ERROR(db_remove_package(db, "6.1.0-54-amd64", "e1000-kmp-amd64"), ENOENT);
	ASSERT_OK(db_commit(db));
	ASSERT_ERROR(db_file_owner(db, "lib/modules/6.1.0-54-amd64/updates/e1000.ko",
				   NULL),
		     ENOENT);
	db = db_close(db);

	/* read-only: the history is there */
	ASSERT_OK(db_open(root, false, &db));
	{
		DbHistory *h = NULL;
		size_t nh = 0;

		ASSERT_OK(db_history_list(db, &h, &nh));
		ASSERT_TRUE(nh == 1);
		ASSERT_STREQ(h[0].action, "install");
		db_history_free(h, nh);
	}
	db = db_close(db);
	rm_rf(root);
}

TEST(newer_schema_refused)
{
	_cleanup_free_ char *root = make_root(), *path = NULL;
	_cleanup_(db_closep) Db *db = NULL;
	sqlite3 *s = NULL;

	ASSERT_TRUE(root);
	ASSERT_OK(db_open(root, true, &db));
	db = db_close(db);
	ASSERT_TRUE(asprintf(&path, "%s/var/lib/kmodd/kmodd.db", root) > 0);
	ASSERT_TRUE(sqlite3_open(path, &s) == SQLITE_OK);
	ASSERT_TRUE(sqlite3_exec(s, "PRAGMA user_version = 99", NULL, NULL, NULL) ==
		    SQLITE_OK);
	sqlite3_close(s);
	ASSERT_ERROR(db_open(root, true, &db), EPROTONOSUPPORT);
	rm_rf(root);
}

TEST(dependency_matching)
{
	char *prov[] = { (char *)"ksym(amd64:mii_link_ok) = 1a2b", (char *)"kmod(mii.ko)",
			 NULL };
	PackageRef p = { .name = (char *)"mii-kmp-amd64", .provides = prov };

	ASSERT_TRUE(package_satisfies(&p, "mii-kmp-amd64"));
	ASSERT_TRUE(package_satisfies(&p, "mii-kmp-amd64 >= 1"));
	ASSERT_TRUE(package_satisfies(&p, "ksym(amd64:mii_link_ok) = 1a2b"));
	ASSERT_TRUE(!package_satisfies(&p, "ksym(amd64:mii_link_ok) = 1a2c"));
	ASSERT_TRUE(package_satisfies(&p, "ksym(amd64:mii_link_ok)"));
	ASSERT_TRUE(package_satisfies(&p, "kmod(mii.ko)"));
	ASSERT_TRUE(!package_satisfies(&p, "kmod(mii2.ko)"));
	ASSERT_TRUE(!package_satisfies(&p, "mii"));
}
