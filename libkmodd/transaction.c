/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include <rpm/header.h>
#include <rpm/rpmarchive.h>
#include <rpm/rpmcrypto.h>
#include <rpm/rpmfi.h>
#include <rpm/rpmfiles.h>
#include <rpm/rpmio.h>
#include <rpm/rpmkeyring.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmts.h>

#include "db.h"
#include "depmod.h"
#include "fetch.h"
#include "fileio.h"
#include "kmodd-cleanup.h"
#include "kmp-rpm.h"
#include "kmp.h"
#include "log.h"
#include "sha256.h"
#include "strv.h"
#include "transaction.h"

#define JOURNAL_VERSION 1
#define TMP_PREFIX ".kmodd-txn."

static void json_object_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}

/* ---- crash points ---- */

/* KMODD_TXN_CRASH_AT=<step> kills the process with SIGKILL when it reaches that step: the
 * crash tests use it, and it is harmless in production (a crash is what recovery is for). */
static void crash_point(const char *step)
{
	static const char *at = NULL;
	static bool read = false;

	if (!read) {
		at = getenv("KMODD_TXN_CRASH_AT");
		read = true;
	}
	if (at && streq(at, step)) {
		log_debug("transaction: crash point %s", step);
		raise(SIGKILL);
	}
}

/* ---- the plan and its journal ---- */

typedef struct TxnFile {
	char *final; /* relative to the module directory: "updates/.../e1000.ko" */
	char *temp; /* the new content before the rename, or NULL (a removal) */
	char *backup; /* where the old file waits for the commit, or NULL (a new file) */
	char sha256[65];
	uint64_t size;
	size_t pkg; /* install: index into Txn.add */
} TxnFile;

typedef struct Txn {
	char *root;
	char *kver;
	char *moddir; /* <root>/lib/modules/<kver> */
	char *state_dir;
	char *journal;
	char *db_path;
	int moddir_fd;
	char id[33];
	char *action; /* "install" / "remove" */
	char *command;
	char *state; /* "prepared", "placing", "indexing" */

	TxnFile *files;
	size_t n_files, allocated_files;
	char **dirs; /* directories this transaction creates, parents first */

	DbPackage *add; /* install: the new rows */
	size_t n_add, allocated_add;
	char **rpm_paths; /* install: downloaded file of each add[] (not journaled) */
	char **remove; /* names of packages removed (or replaced by a new version) */
	char **remove_nevra;
	char **unload; /* remove: modules to unload */
	char **load; /* install: what to load afterwards (not journaled) */
} Txn;

static void txn_free(Txn *t)
{
	if (!t)
		return;
	free(t->root);
	free(t->kver);
	free(t->moddir);
	free(t->state_dir);
	free(t->journal);
	free(t->db_path);
	safe_close(t->moddir_fd);
	free(t->action);
	free(t->command);
	free(t->state);
	for (size_t i = 0; i < t->n_files; i++) {
		free(t->files[i].final);
		free(t->files[i].temp);
		free(t->files[i].backup);
	}
	free(t->files);
	strv_free(t->dirs);
	db_packages_free(t->add, t->n_add);
	strv_free(t->rpm_paths);
	strv_free(t->remove);
	strv_free(t->remove_nevra);
	strv_free(t->unload);
	strv_free(t->load);
	free(t);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Txn *, txn_free);

static int txn_new(const char *root, const char *kver, const char *action,
		   const char *command, Txn **ret)
{
	_cleanup_(txn_freep) Txn *t = calloc(1, sizeof(Txn));
	uint8_t rnd[16];

	if (!t)
		return -ENOMEM;
	t->moddir_fd = -EBADF;
	t->root = strdup(root);
	t->kver = strdup(kver);
	t->moddir = path_join(root, "lib/modules", kver);
	t->state_dir = kmodd_path_state(root);
	t->action = strdup(action);
	t->command = command ? strdup(command) : NULL;
	if (!t->root || !t->kver || !t->moddir || !t->state_dir || !t->action ||
	    (command && !t->command))
		return -ENOMEM;
	t->journal = path_join(t->state_dir, "journal");
	t->db_path = path_join(t->state_dir, "kmodd.db");
	if (!t->journal || !t->db_path)
		return -ENOMEM;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(t->id + 2 * i, 3, "%02x", rnd[i]);
	*ret = TAKE_PTR(t);
	return 0;
}

static int txn_open_moddir(Txn *t)
{
	if (t->moddir_fd >= 0)
		return 0;
	/* the root itself is trusted (it may hold symlinks such as /lib -> usr/lib); only
	 * what is below the module directory comes from packages */
	t->moddir_fd = open(t->moddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return t->moddir_fd < 0 ? negative_errno() : 0;
}

static int open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));

	return fd < 0 ? negative_errno() : (int)fd;
}

/* Opens the parent directory of rel beneath the module directory; *ret_base points into
 * rel at the last component. */
static int open_parent(Txn *t, const char *rel, const char **ret_base)
{
	_cleanup_free_ char *dir = NULL;
	const char *slash = strrchr(rel, '/');

	if (!slash) {
		*ret_base = rel;
		return open_beneath(t->moddir_fd, ".", O_PATH | O_DIRECTORY, 0);
	}
	dir = strndup(rel, (size_t)(slash - rel));
	if (!dir)
		return -ENOMEM;
	*ret_base = slash + 1;
	return open_beneath(t->moddir_fd, dir, O_PATH | O_DIRECTORY, 0);
}

static bool exists_beneath(Txn *t, const char *rel)
{
	_cleanup_close_ int fd = open_beneath(t->moddir_fd, rel, O_PATH, 0);

	return fd >= 0;
}

static int unlink_beneath(Txn *t, const char *rel, int flags)
{
	_cleanup_close_ int dfd = -EBADF;
	const char *base;

	dfd = open_parent(t, rel, &base);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	if (unlinkat(dfd, base, flags) < 0 && errno != ENOENT)
		return negative_errno();
	return 0;
}

/* rename within one directory (temporaries and backups sit beside their file) */
static int rename_beneath(Txn *t, const char *from, const char *to)
{
	_cleanup_close_ int dfd = -EBADF;
	const char *base_from, *base_to;

	dfd = open_parent(t, from, &base_from);
	if (dfd < 0)
		return dfd;
	base_to = strrchr(to, '/') ? strrchr(to, '/') + 1 : to;
	if (renameat(dfd, base_from, dfd, base_to) < 0)
		return negative_errno();
	return 0;
}

static int fsync_beneath(Txn *t, const char *reldir)
{
	_cleanup_close_ int fd =
		open_beneath(t->moddir_fd, reldir, O_RDONLY | O_DIRECTORY, 0);

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	return fsync(fd) < 0 ? negative_errno() : 0;
}

static char *dir_of(const char *rel)
{
	const char *slash = strrchr(rel, '/');

	return slash ? strndup(rel, (size_t)(slash - rel)) : strdup(".");
}

/* fsyncs the directories of every file of the plan and the module directory */
static int txn_fsync_dirs(Txn *t)
{
	_cleanup_strv_free_ char **done = NULL;
	int r, ret = 0;

	for (size_t i = 0; i < t->n_files; i++) {
		_cleanup_free_ char *d = dir_of(t->files[i].final);

		if (!d)
			return -ENOMEM;
		if (strv_contains(done, d))
			continue;
		r = fsync_beneath(t, d);
		if (r < 0 && ret == 0)
			ret = r;
		if (strv_extend(&done, d) < 0)
			return -ENOMEM;
	}
	r = fsync_beneath(t, ".");
	return ret < 0 ? ret : r;
}

static json_object *json_strv(char *const *l)
{
	json_object *a = json_object_new_array();

	if (!a)
		return NULL;
	STRV_FOREACH(s, l)
		json_object_array_add(a, json_object_new_string(*s));
	return a;
}

static void json_add_str(json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

static json_object *json_package(const DbPackage *p)
{
	json_object *o = json_object_new_object(), *files;

	if (!o)
		return NULL;
	json_add_str(o, "name", p->ref.name);
	json_add_str(o, "evr", p->ref.evr);
	json_add_str(o, "arch", p->ref.arch);
	json_add_str(o, "repo", p->ref.repo_id);
	json_add_str(o, "url", p->ref.url);
	json_add_str(o, "checksum", p->ref.checksum);
	json_object_object_add(o, "download_size",
			       json_object_new_int64((int64_t)p->ref.download_size));
	json_add_str(o, "reason", install_reason_to_string(p->ref.reason));
	json_add_str(o, "device", p->ref.device);
	json_add_str(o, "requested_by", p->ref.requested_by);
	json_add_str(o, "kver", p->kver);
	json_object_object_add(o, "install_time", json_object_new_int64(p->install_time));
	json_object_object_add(o, "provides", json_strv(p->ref.provides));
	json_object_object_add(o, "requires", json_strv(p->ref.requires));
	json_object_object_add(o, "supplements", json_strv(p->ref.supplements));
	json_object_object_add(o, "recommends", json_strv(p->ref.recommends));
	files = json_object_new_array();
	for (size_t i = 0; i < p->n_files; i++) {
		json_object *f = json_object_new_object();

		json_add_str(f, "path", p->files[i].path);
		json_add_str(f, "sha256", p->files[i].sha256);
		json_object_object_add(f, "size",
				       json_object_new_int64((int64_t)p->files[i].size));
		json_object_object_add(f, "mode", json_object_new_int64(p->files[i].mode));
		json_object_array_add(files, f);
	}
	json_object_object_add(o, "files", files);
	return o;
}

static int txn_write_journal(Txn *t, const char *state)
{
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *files, *add;
	const char *s;
	int r;

	if (!o)
		return -ENOMEM;
	free(t->state);
	t->state = strdup(state);
	if (!t->state)
		return -ENOMEM;
	json_object_object_add(o, "version", json_object_new_int(JOURNAL_VERSION));
	json_add_str(o, "id", t->id);
	json_add_str(o, "action", t->action);
	json_add_str(o, "state", state);
	json_add_str(o, "kver", t->kver);
	json_add_str(o, "command", t->command);
	files = json_object_new_array();
	for (size_t i = 0; i < t->n_files; i++) {
		json_object *f = json_object_new_object();

		json_add_str(f, "final", t->files[i].final);
		json_add_str(f, "temp", t->files[i].temp);
		json_add_str(f, "backup", t->files[i].backup);
		json_object_array_add(files, f);
	}
	json_object_object_add(o, "files", files);
	json_object_object_add(o, "dirs", json_strv(t->dirs));
	add = json_object_new_array();
	for (size_t i = 0; i < t->n_add; i++)
		json_object_array_add(add, json_package(&t->add[i]));
	json_object_object_add(o, "add", add);
	json_object_object_add(o, "remove", json_strv(t->remove));
	json_object_object_add(o, "remove_nevra", json_strv(t->remove_nevra));
	json_object_object_add(o, "unload", json_strv(t->unload));

	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (!s)
		return -ENOMEM;
	r = mkdir_p(t->state_dir, 0755);
	if (r < 0)
		return r;
	/* temporary, fsync, rename, fsync of the directory */
	return write_file_atomic(t->journal, s, strlen(s), 0600);
}

static int txn_remove_journal(Txn *t)
{
	if (unlink(t->journal) < 0 && errno != ENOENT)
		return negative_errno();
	return fsync_directory_of(t->journal);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int jdup(json_object *o, const char *key, char **ret)
{
	const char *s = jstr(o, key);

	*ret = s ? strdup(s) : NULL;
	return s && !*ret ? -ENOMEM : 0;
}

static int jstrv(json_object *o, const char *key, char ***ret)
{
	json_object *a;

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &a) ||
	    !json_object_is_type(a, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);

		if (!json_object_is_type(e, json_type_string))
			return -EBADMSG;
		if (strv_extend(ret, json_object_get_string(e)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* A journaled relative path must stay a plain relative path below the module directory. */
static bool rel_path_ok(const char *p)
{
	if (!p || !*p || p[0] == '/')
		return false;
	for (const char *c = p; c;) {
		const char *e = strchr(c, '/');
		size_t l = e ? (size_t)(e - c) : strlen(c);

		if (l == 0 || (l == 1 && c[0] == '.') ||
		    (l == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c = e ? e + 1 : NULL;
	}
	return true;
}

/* What a journal may name: files and directories below updates/ or extra/; temporaries
 * and backups (beside: the file they stand for) beside it with kmodd's prefix. */
static bool journal_path_ok(const char *p, const char *beside)
{
	const char *slash;

	if (!rel_path_ok(p) || !(startswith(p, "updates") || startswith(p, "extra")))
		return false;
	if (!beside)
		return true;
	slash = strrchr(p, '/');
	if (!slash || !startswith(slash + 1, TMP_PREFIX))
		return false;
	return strncmp(p, beside, (size_t)(slash - p) + 1) == 0 &&
	       !strchr(beside + (slash - p) + 1, '/');
}

static int json_to_package(json_object *o, DbPackage *p)
{
	json_object *files, *v;
	int r;

	if ((r = jdup(o, "name", &p->ref.name)) < 0 ||
	    (r = jdup(o, "evr", &p->ref.evr)) < 0 ||
	    (r = jdup(o, "arch", &p->ref.arch)) < 0 ||
	    (r = jdup(o, "repo", &p->ref.repo_id)) < 0 ||
	    (r = jdup(o, "url", &p->ref.url)) < 0 ||
	    (r = jdup(o, "checksum", &p->ref.checksum)) < 0 ||
	    (r = jdup(o, "device", &p->ref.device)) < 0 ||
	    (r = jdup(o, "requested_by", &p->ref.requested_by)) < 0 ||
	    (r = jdup(o, "kver", &p->kver)) < 0 ||
	    (r = jstrv(o, "provides", &p->ref.provides)) < 0 ||
	    (r = jstrv(o, "requires", &p->ref.requires)) < 0 ||
	    (r = jstrv(o, "supplements", &p->ref.supplements)) < 0 ||
	    (r = jstrv(o, "recommends", &p->ref.recommends)) < 0)
		return r;
	if (!p->ref.name || !p->ref.evr || !p->ref.arch || !p->kver)
		return -EBADMSG;
	p->ref.reason = install_reason_from_string(jstr(o, "reason"));
	if (p->ref.reason < 0)
		return -EBADMSG;
	if (json_object_object_get_ex(o, "download_size", &v))
		p->ref.download_size = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "install_time", &v))
		p->install_time = json_object_get_int64(v);
	if (!json_object_object_get_ex(o, "files", &files) ||
	    !json_object_is_type(files, json_type_array))
		return -EBADMSG;
	p->files = calloc(json_object_array_length(files) + 1, sizeof(DbFile));
	if (!p->files)
		return -ENOMEM;
	for (size_t i = 0; i < json_object_array_length(files); i++) {
		json_object *f = json_object_array_get_idx(files, i);
		DbFile *d = &p->files[p->n_files];
		const char *sha = jstr(f, "sha256");

		if (!sha || strlen(sha) != 64)
			return -EBADMSG;
		r = jdup(f, "path", &d->path);
		if (r < 0)
			return r;
		if (!d->path)
			return -EBADMSG;
		p->n_files++;
		memcpy(d->sha256, sha, 65);
		if (json_object_object_get_ex(f, "size", &v))
			d->size = (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(f, "mode", &v))
			d->mode = (uint32_t)json_object_get_int64(v);
	}
	return 0;
}

/* Parses a journal; the paths it names must stay below the module directory. */
static int txn_parse_journal(const char *root, const char *data, size_t size, Txn **ret)
{
	_cleanup_(txn_freep) Txn *t = NULL;
	_cleanup_(json_object_putp) json_object *o = NULL;
	struct json_tokener *tok;
	json_object *files, *add, *v;
	const char *id, *action, *kver;
	int r;

	if (size > INT_MAX)
		return -EFBIG;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, data, (int)size);
	if (o && tok->char_offset != (int)size &&
	    strspn(data + tok->char_offset, " \t\n") != size - (size_t)tok->char_offset) {
		json_object_put(o);
		o = NULL; /* trailing garbage */
	}
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object))
		return -EBADMSG;
	if (!json_object_object_get_ex(o, "version", &v) ||
	    json_object_get_int(v) != JOURNAL_VERSION)
		return -EPROTONOSUPPORT;
	id = jstr(o, "id");
	action = jstr(o, "action");
	kver = jstr(o, "kver");
	if (!id || strlen(id) != 32 || !action || !kver || !rel_path_ok(kver) ||
	    strchr(kver, '/') || (!streq(action, "install") && !streq(action, "remove")))
		return -EBADMSG;
	r = txn_new(root, kver, action, jstr(o, "command"), &t);
	if (r < 0)
		return r;
	memcpy(t->id, id, 33);
	r = jdup(o, "state", &t->state);
	if (r < 0)
		return r;
	if (!t->state)
		return -EBADMSG;

	if (!json_object_object_get_ex(o, "files", &files) ||
	    !json_object_is_type(files, json_type_array))
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(files); i++) {
		json_object *f = json_object_array_get_idx(files, i);
		TxnFile *tf;

		if (!GREEDY_REALLOC(t->files, t->allocated_files, t->n_files + 1))
			return -ENOMEM;
		tf = &t->files[t->n_files];
		*tf = (TxnFile){};
		t->n_files++;
		if ((r = jdup(f, "final", &tf->final)) < 0 ||
		    (r = jdup(f, "temp", &tf->temp)) < 0 ||
		    (r = jdup(f, "backup", &tf->backup)) < 0)
			return r;
		if (!journal_path_ok(tf->final, NULL) ||
		    (tf->temp && !journal_path_ok(tf->temp, tf->final)) ||
		    (tf->backup && !journal_path_ok(tf->backup, tf->final)))
			return -EBADMSG;
	}
	if ((r = jstrv(o, "dirs", &t->dirs)) < 0 ||
	    (r = jstrv(o, "remove", &t->remove)) < 0 ||
	    (r = jstrv(o, "remove_nevra", &t->remove_nevra)) < 0 ||
	    (r = jstrv(o, "unload", &t->unload)) < 0)
		return r;
	STRV_FOREACH(d, t->dirs)
		if (!journal_path_ok(*d, NULL))
			return -EBADMSG;
	if (!streq(t->state, "prepared") && !streq(t->state, "placing") &&
	    !streq(t->state, "indexing"))
		return -EBADMSG;
	if (json_object_object_get_ex(o, "add", &add) &&
	    json_object_is_type(add, json_type_array)) {
		size_t n = json_object_array_length(add);

		t->add = calloc(n + 1, sizeof(DbPackage));
		if (!t->add)
			return -ENOMEM;
		t->allocated_add = n + 1;
		for (size_t i = 0; i < n; i++) {
			r = json_to_package(json_object_array_get_idx(add, i), &t->add[i]);
			t->n_add++;
			if (r < 0)
				return r;
		}
	}
	*ret = TAKE_PTR(t);
	return 0;
}

int transaction_journal_check(const char *data, size_t size)
{
	_cleanup_(txn_freep) Txn *t = NULL;

	return txn_parse_journal("/", data, size, &t);
}

/* Reads <root>/var/lib/kmodd/journal: 0 and *ret NULL when there is none. */
static int txn_load_journal(const char *root, Txn **ret)
{
	_cleanup_free_ char *state = NULL, *path = NULL, *data = NULL;
	size_t size = 0;
	int r;

	state = kmodd_path_state(root);
	if (!state)
		return -ENOMEM;
	path = path_join(state, "journal");
	if (!path)
		return -ENOMEM;
	r = read_full_file(path, 64 * 1024 * 1024, &data, &size);
	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r < 0)
		return r;
	return txn_parse_journal(root, data, size, ret);
}

/* ---- report helpers ---- */

void txn_report_done(TxnReport *r)
{
	if (!r)
		return;
	strv_free(r->installed);
	strv_free(r->removed);
	strv_free(r->loaded);
	strv_free(r->load_failed);
	free(r->recovery_action);
	free(r->error_path);
	free(r->error_message);
	*r = (TxnReport){};
}

_printf_(4, 5) static int report_error(TxnReport *rep, int r, const char *path,
				       const char *fmt, ...)
{
	va_list ap;

	if (!rep)
		return r;
	free(rep->error_path);
	free(rep->error_message);
	rep->error_path = path ? strdup(path) : NULL;
	rep->error_message = NULL;
	va_start(ap, fmt);
	if (vasprintf(&rep->error_message, fmt, ap) < 0)
		rep->error_message = NULL;
	va_end(ap);
	log_debug("transaction: %s: %s", strna(path), strna(rep->error_message));
	return r;
}

/* Writes the journal with the transaction in state, naming the journal on failure. */
static int journal_step(Txn *t, const char *state, TxnReport *rep)
{
	int r = txn_write_journal(t, state);

	if (r < 0)
		return report_error(rep, r, t->journal, "cannot write the journal: %s",
				    strerror(-r));
	return 0;
}

static void progress(const TxnOptions *o, const char *what)
{
	if (o && o->progress)
		o->progress(o->userdata, what, 0, 0);
}

/* ---- lock ---- */

static int take_lock(const char *root, int *ret_fd, TxnReport *rep)
{
	_cleanup_free_ char *dir = kmodd_path_state(root), *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (!dir)
		return -ENOMEM;
	path = path_join(dir, "lock");
	if (!path)
		return -ENOMEM;
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return report_error(rep, r, dir, "cannot create: %s", strerror(-r));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return report_error(rep, negative_errno(), path,
				    "cannot open the lock: %s", strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return report_error(
				rep, -EWOULDBLOCK, path,
				"another kmodctl or kmodd is changing this system");
		return report_error(rep, negative_errno(), path, "cannot lock: %s",
				    strerror(errno));
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* ---- module names and dependencies ---- */

static bool is_module_file(const char *name)
{
	return endswith(name, ".ko") || endswith(name, ".ko.xz") ||
	       endswith(name, ".ko.zst") || endswith(name, ".ko.gz");
}

/* "updates/x/e1000-foo.ko.xz" -> "e1000_foo" */
static char *module_name_of(const char *path)
{
	const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *n = strdup(b), *dot;

	if (!n)
		return NULL;
	dot = strstr(n, ".ko");
	if (dot)
		*dot = 0;
	for (char *p = n; *p; p++)
		if (*p == '-')
			*p = '_';
	return n;
}

static bool same_module_name(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
			return false;
	return *a == *b;
}

/* Does the provide "name [= evr]" satisfy the requirement "name [op evr]"? Versions are
 * compared for '=' only; other operators are taken as satisfied by a provide of that name. */
static bool dep_matches(const char *req, const char *prov)
{
	size_t lr = strcspn(req, " "), lp = strcspn(prov, " ");
	const char *rv, *pv;

	if (lr != lp || strncmp(req, prov, lr) != 0)
		return false;
	rv = req[lr] ? req + lr + 1 : NULL;
	pv = prov[lp] ? prov + lp + 1 : NULL;
	if (!rv || !pv)
		return true;
	if (startswith(rv, "= ") && startswith(pv, "= "))
		return streq(rv + 2, pv + 2);
	return true;
}

bool package_satisfies(const PackageRef *p, const char *req)
{
	size_t l = strcspn(req, " ");

	if (strlen(p->name) == l && strncmp(req, p->name, l) == 0)
		return true;
	STRV_FOREACH(pr, p->provides)
		if (dep_matches(req, *pr))
			return true;
	return false;
}

/* ---- libkmod ---- */

static void kmod_log_debug(void *data, int priority, const char *file, int line,
			   const char *fn, const char *format, va_list args)
{
	_cleanup_free_ char *s = NULL;

	if (vasprintf(&s, format, args) >= 0)
		log_debug("libkmod: %s", s);
}

static int kmod_ctx_for(const char *root, const char *kver, struct kmod_ctx **ret)
{
	_cleanup_free_ char *dir = path_join(root, "lib/modules", kver);
	_cleanup_free_ char *c1 = path_join(root, "etc/modprobe.d");
	_cleanup_free_ char *c2 = path_join(root, "run/modprobe.d");
	_cleanup_free_ char *c3 = path_join(root, "usr/local/lib/modprobe.d");
	_cleanup_free_ char *c4 = path_join(root, "lib/modprobe.d");
	const char *configs[5];
	struct kmod_ctx *ctx;
	size_t n = 0;

	if (!dir || !c1 || !c2 || !c3 || !c4)
		return -ENOMEM;
	/* the root's modprobe.d, as modprobe -d ROOT would read it */
	configs[n++] = c1;
	configs[n++] = c2;
	configs[n++] = c3;
	configs[n++] = c4;
	configs[n] = NULL;
	ctx = kmod_new(dir, configs);
	if (!ctx)
		return -ENOMEM;
	kmod_set_log_fn(ctx, kmod_log_debug, NULL);
	*ret = ctx;
	return 0;
}

/* ---- reading packages ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(Header, headerFree);
DEFINE_TRIVIAL_CLEANUP_FUNC(rpmts, rpmtsFree);
DEFINE_TRIVIAL_CLEANUP_FUNC(rpmfiles, rpmfilesFree);
DEFINE_TRIVIAL_CLEANUP_FUNC(rpmfi, rpmfiFree);

static void rpm_fclosep(FD_t *fd)
{
	if (*fd)
		Fclose(*fd);
}

/* "/lib/modules/KVER/updates/x.ko" -> "updates/x.ko", or NULL */
static const char *payload_rel(const char *kver, const char *fn)
{
	const char *p = startswith(fn, "/usr/lib/modules/") ?:
				startswith(fn, "/lib/modules/");

	if (!p || !startswith(p, kver) || p[strlen(kver)] != '/')
		return NULL;
	return p + strlen(kver) + 1;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(rpmKeyring, rpmKeyringFree);
DEFINE_TRIVIAL_CLEANUP_FUNC(rpmPubkey, rpmPubkeyFree);

/* A keyring of the armored public keys in the given files (with their subkeys). */
static int keyring_load(char *const *paths, rpmKeyring *ret, TxnReport *rep)
{
	_cleanup_(rpmKeyringFreep) rpmKeyring kr = NULL;
	int r;

	r = kmp_init();
	if (r < 0)
		return r;
	kr = rpmKeyringNew();
	if (!kr)
		return -ENOMEM;
	STRV_FOREACH(p, paths) {
		_cleanup_free_ char *armor = NULL;
		_cleanup_free_ uint8_t *pkt = NULL;
		_cleanup_(rpmPubkeyFreep) rpmPubkey key = NULL;
		rpmPubkey *subs = NULL;
		size_t len = 0;
		int n = 0;

		r = read_full_file(*p, 1024 * 1024, &armor, NULL);
		if (r < 0)
			return report_error(rep, r, *p, "cannot read the signing key: %s",
					    strerror(-r));
		if (pgpParsePkts(armor, &pkt, &len) != PGPARMOR_PUBKEY || !pkt)
			return report_error(rep, -EBADMSG, *p,
					    "not an armored OpenPGP public key");
		key = rpmPubkeyNew(pkt, len);
		if (!key)
			return report_error(rep, -EBADMSG, *p,
					    "unusable OpenPGP public key");
		if (rpmKeyringAddKey(kr, key) < 0)
			return -ENOMEM;
		subs = rpmGetSubkeys(key, &n);
		for (int i = 0; i < n; i++) {
			(void)rpmKeyringAddKey(kr, subs[i]);
			rpmPubkeyFree(subs[i]);
		}
		free(subs);
	}
	*ret = TAKE_PTR(kr);
	return 0;
}

/* The package carries an OpenPGP signature that a key of the keyring verifies. */
static int verify_signature(const char *path, rpmKeyring kr, TxnReport *rep)
{
	_cleanup_(rpmtsFreep) rpmts ts = NULL;
	_cleanup_(rpm_fclosep) FD_t fd = NULL;
	_cleanup_(headerFreep) Header h = NULL;
	rpmRC rc;

	fd = Fopen(path, "r.ufdio");
	if (!fd || Ferror(fd))
		return report_error(rep, -errno ?: -EIO, path, "cannot open");
	ts = rpmtsCreate();
	if (!ts)
		return -ENOMEM;
	rpmtsSetKeyring(ts, kr);
	rpmtsSetVSFlags(ts, RPMVSF_DEFAULT);
	rc = rpmReadPackageFile(ts, fd, path, &h);
	if (rc == RPMRC_NOKEY || rc == RPMRC_NOTTRUSTED)
		return report_error(
			rep, -EKEYREJECTED, path,
			"signed with a key that is not trusted for this repository");
	if (rc != RPMRC_OK)
		return report_error(rep, -EBADMSG, path,
				    "signature or digest check failed");
	if (!headerIsEntry(h, RPMTAG_RSAHEADER) && !headerIsEntry(h, RPMTAG_DSAHEADER) &&
	    !headerIsEntry(h, RPMTAG_SIGGPG) && !headerIsEntry(h, RPMTAG_SIGPGP))
		return report_error(rep, -ENOKEY, path, "the package is not signed");
	return 0;
}

/* The module-directory-relative path of a payload file, or why it is refused. */
static int payload_path(const char *kver, const char *fn, mode_t mode, uint32_t nlink,
			const char *link, char **ret_rel, const char **ret_why)
{
	const char *rest;

	/* rpm stores absolute paths: the file's place under the root */
	if (fn[0] != '/') {
		*ret_why = "not an absolute rpm path";
		return -EPERM;
	}
	if (!rel_path_ok(fn + 1)) {
		*ret_why = "the path has '..', '.' or empty components";
		return -EPERM;
	}
	rest = payload_rel(kver, fn);
	if (!rest) {
		*ret_why =
			"outside /lib/modules/<kernel>/ of the kernel being installed to";
		return -EPERM;
	}
	if (!startswith(rest, "updates/") && !startswith(rest, "extra/") &&
	    !streq(rest, "updates") && !streq(rest, "extra")) {
		*ret_why = "outside the updates/ and extra/ directories";
		return -EPERM;
	}
	if (S_ISDIR(mode)) {
		*ret_rel = NULL; /* a directory we would create anyway */
		return 0;
	}
	if (S_ISLNK(mode) || !isempty(link)) {
		*ret_why = "a symbolic link";
		return -EPERM;
	}
	if (!S_ISREG(mode)) {
		*ret_why = "not a regular file (device, fifo or socket)";
		return -EPERM;
	}
	if (mode & (S_ISUID | S_ISGID)) {
		*ret_why = "setuid or setgid bits";
		return -EPERM;
	}
	if (nlink > 1) {
		*ret_why = "a hard link";
		return -EPERM;
	}
	if (!is_module_file(rest) || strchr(rest, '/') == NULL ||
	    streq(strrchr(rest, '/'), "/.ko")) {
		*ret_why = "not a kernel module (.ko, .ko.xz, .ko.zst)";
		return -EPERM;
	}
	if (startswith(strrchr(rest, '/') + 1, TMP_PREFIX)) {
		*ret_why = "a name reserved for kmodd's temporary files";
		return -EPERM;
	}
	*ret_rel = strdup(rest);
	return *ret_rel ? 0 : -ENOMEM;
}

/* Checks every payload entry of the package against the rules and adds its files to the
 * plan, without extracting anything. */
static int plan_package(Txn *t, size_t pkg, const char *rpm_path, TxnReport *rep)
{
	_cleanup_(rpm_fclosep) FD_t fd = NULL;
	_cleanup_(headerFreep) Header h = NULL;
	_cleanup_(rpmfilesFreep) rpmfiles files = NULL;
	_cleanup_(rpmfiFreep) rpmfi fi = NULL;
	DbPackage *p = &t->add[pkg];
	int r;

	r = kmp_open_package(rpm_path, &fd, &h);
	if (r < 0)
		return report_error(rep, r, p->ref.url ?: rpm_path,
				    r == -ENOEXEC ?
					    "not an rpm package" :
					    "rpm digest or signature check failed");
	files = rpmfilesNew(NULL, h, 0, RPMFI_KEEPHEADER);
	if (!files)
		return report_error(rep, -EBADMSG, rpm_path, "cannot read the file list");
	fi = rpmfilesIter(files, RPMFI_ITER_FWD);
	if (!fi)
		return -ENOMEM;
	while (rpmfiNext(fi) >= 0) {
		_cleanup_free_ char *rel = NULL, *rootrel = NULL;
		const char *why = NULL, *fn = rpmfiFN(fi);
		DbFile *f;
		char *digest;
		int algo = 0;

		r = payload_path(t->kver, fn, rpmfiFMode(fi), rpmfiFNlink(fi),
				 rpmfiFLink(fi), &rel, &why);
		if (r < 0)
			return report_error(rep, r, p->ref.url ?: rpm_path,
					    "package %s: refusing payload file '%s': %s",
					    p->ref.name, fn, why);
		if (!rel)
			continue;
		digest = rpmfiFDigestHex(fi, &algo);
		if (!digest || algo != RPM_HASH_SHA256 || strlen(digest) != 64) {
			free(digest);
			return report_error(rep, -EBADMSG, p->ref.url ?: rpm_path,
					    "package %s: '%s' has no sha256 digest",
					    p->ref.name, fn);
		}
		rootrel = path_join("lib/modules", t->kver, rel);
		if (!rootrel || !(p->files = reallocarray(p->files, p->n_files + 1,
							  sizeof(DbFile)))) {
			free(digest);
			return -ENOMEM;
		}
		f = &p->files[p->n_files++];
		*f = (DbFile){ .path = TAKE_PTR(rootrel),
			       .size = (uint64_t)rpmfiFSize(fi),
			       .mode = S_IFREG | 0644 };
		memcpy(f->sha256, digest, 65);
		free(digest);
	}
	return 0;
}

/* Writes one payload file into its temporary, checking size and digest against the
 * verified header. */
static int extract_one(Txn *t, rpmfi fi, TxnFile *tf, bool *first, TxnReport *rep)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_close_ int dfd = -EBADF;
	char buf[64 * 1024], got[SHA256_HEX_SIZE];
	const char *base;
	uint64_t total = 0;
	Sha256 s;
	int r;

	dfd = open_parent(t, tf->temp, &base);
	if (dfd < 0)
		return report_error(rep, dfd, tf->final, "cannot open the directory");
	{
		struct open_how how = {
			.flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			.mode = 0600,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
		};
		long k = syscall(SYS_openat2, dfd, base, &how, sizeof(how));

		if (k < 0)
			return report_error(rep, negative_errno(), tf->temp,
					    "cannot create: %s", strerror(errno));
		fd = (int)k;
	}
	sha256_init(&s);
	for (;;) {
		ssize_t n = rpmfiArchiveRead(fi, buf, sizeof(buf));

		if (n < 0)
			return report_error(rep, -EBADMSG, tf->final, "corrupt payload");
		if (n == 0)
			break;
		sha256_update(&s, buf, (size_t)n);
		for (const char *p = buf, *e = buf + n; p < e;) {
			ssize_t w = write(fd, p, (size_t)(e - p));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return report_error(rep, negative_errno(), tf->final,
						    "cannot write: %s", strerror(errno));
			p += w;
		}
		total += (uint64_t)n;
		if (*first) {
			*first = false;
			crash_point("install:extract-partial");
		}
	}
	sha256_finish_hex(&s, got);
	if (total != tf->size || !streq(got, tf->sha256))
		return report_error(
			rep, -EBADMSG, tf->final,
			"payload content differs from the package header's digest");
	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
		return report_error(rep, negative_errno(), tf->final, "cannot write: %s",
				    strerror(errno));
	r = 0;
	return r;
}

static int extract_package(Txn *t, size_t pkg, bool *first, TxnReport *rep)
{
	_cleanup_(rpm_fclosep) FD_t fd = NULL;
	_cleanup_(headerFreep) Header h = NULL;
	_cleanup_(rpmfilesFreep) rpmfiles files = NULL;
	_cleanup_free_ bool *seen = NULL;
	const char *rpm_path = t->rpm_paths[pkg];
	FD_t z = NULL;
	rpmfi fi = NULL;
	int r, rc;

	r = kmp_open_package(rpm_path, &fd, &h);
	if (r < 0)
		return report_error(rep, r, rpm_path,
				    "rpm digest or signature check failed");
	r = kmp_payload_open(fd, h, &z);
	if (r == -EPROTONOSUPPORT)
		return report_error(rep, r, rpm_path, "payload compressor %s",
				    strna(headerGetString(h, RPMTAG_PAYLOADCOMPRESSOR)));
	if (r < 0)
		return report_error(rep, r, rpm_path, "cannot open the payload");
	fd = NULL; /* now owned by z */
	files = rpmfilesNew(NULL, h, 0, RPMFI_KEEPHEADER);
	if (!files) {
		Fclose(z);
		return report_error(rep, -EBADMSG, rpm_path, "cannot read the file list");
	}
	fi = rpmfiNewArchiveReader(z, files, RPMFI_ITER_READ_ARCHIVE);
	if (!fi) {
		Fclose(z);
		return report_error(rep, -EBADMSG, rpm_path, "cannot read the payload");
	}
	seen = calloc(t->n_files + 1, sizeof(bool));
	if (!seen) {
		r = -ENOMEM;
		goto finish;
	}
	r = 0;
	while ((rc = rpmfiNext(fi)) >= 0) {
		const char *fn = rpmfiFN(fi);
		TxnFile *tf = NULL;

		if (S_ISDIR(rpmfiFMode(fi)))
			continue;
		const char *rel = payload_rel(t->kver, fn);

		for (size_t i = 0; rel && i < t->n_files; i++)
			if (t->files[i].temp && t->files[i].pkg == pkg &&
			    streq(t->files[i].final, rel)) {
				tf = &t->files[i];
				seen[i] = true;
				break;
			}
		if (!tf) {
			r = report_error(rep, -EBADMSG, rpm_path,
					 "payload file '%s' is not in the plan", fn);
			goto finish;
		}
		r = extract_one(t, fi, tf, first, rep);
		if (r < 0)
			goto finish;
	}
	if (rc != RPMERR_ITER_END) {
		r = report_error(rep, -EBADMSG, rpm_path, "corrupt payload (%d)", rc);
		goto finish;
	}
	for (size_t i = 0; i < t->n_files; i++)
		if (t->files[i].temp && t->files[i].pkg == pkg && !seen[i]) {
			r = report_error(rep, -EBADMSG, rpm_path, "payload lacks '%s'",
					 t->files[i].final);
			goto finish;
		}
finish:
	rpmfiArchiveClose(fi);
	rpmfiFree(fi);
	Fclose(z);
	return r;
}

/* ---- placing, finishing, rolling back ---- */

static int txn_place(Txn *t, const char *action, TxnReport *rep)
{
	_cleanup_free_ char *first = NULL, *all = NULL;
	bool did = false;
	int r;

	if (asprintf(&first, "%s:rename-first", action) < 0 ||
	    asprintf(&all, "%s:renamed", action) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_files; i++) {
		TxnFile *f = &t->files[i];

		if (f->backup && exists_beneath(t, f->final)) {
			r = rename_beneath(t, f->final, f->backup);
			if (r < 0)
				return report_error(rep, r, f->final, "cannot rename: %s",
						    strerror(-r));
		}
		if (f->temp) {
			r = rename_beneath(t, f->temp, f->final);
			if (r < 0)
				return report_error(rep, r, f->final, "cannot rename: %s",
						    strerror(-r));
		}
		if (!did) {
			did = true;
			crash_point(first);
		}
	}
	crash_point(all);
	r = txn_fsync_dirs(t);
	if (r < 0)
		return report_error(rep, r, t->moddir, "cannot sync: %s", strerror(-r));
	return 0;
}

/* Removes the directories emptied by removals, deepest first, never the module directory. */
static void prune_dirs(Txn *t, const char *rel)
{
	_cleanup_free_ char *d = dir_of(rel);

	while (d && !streq(d, ".")) {
		char *slash;

		if (unlink_beneath(t, d, AT_REMOVEDIR) < 0 || exists_beneath(t, d))
			break;
		slash = strrchr(d, '/');
		if (!slash)
			break;
		*slash = 0;
	}
}

/* After the commit point: the old files go. Idempotent. */
static int txn_finish(Txn *t)
{
	int r, ret = 0;

	for (size_t i = 0; i < t->n_files; i++) {
		TxnFile *f = &t->files[i];

		if (f->temp && exists_beneath(t, f->temp)) {
			/* committed, so every temporary was renamed before; cannot happen */
			r = rename_beneath(t, f->temp, f->final);
			if (r < 0 && ret == 0)
				ret = r;
		}
		if (f->backup) {
			r = unlink_beneath(t, f->backup, 0);
			if (r < 0 && ret == 0)
				ret = r;
		}
	}
	for (size_t i = 0; i < t->n_files; i++)
		if (!t->files[i].temp)
			prune_dirs(t, t->files[i].final);
	r = txn_fsync_dirs(t);
	return ret < 0 ? ret : r;
}

/* Before the commit point: back to the state before. Idempotent. indexes: the indexes may
 * have been rewritten (the journal reached "indexing" and depmod did not report failure). */
static int txn_rollback(Txn *t, bool indexes, DepmodReport *drep)
{
	_cleanup_strv_free_ char **present = NULL;
	bool placing = !streq(t->state, "prepared");
	int r, ret = 0;

	for (size_t i = t->n_files; i > 0; i--) {
		TxnFile *f = &t->files[i - 1];

		if (f->backup && exists_beneath(t, f->backup)) {
			r = rename_beneath(t, f->backup, f->final);
			if (r < 0 && ret == 0)
				ret = r;
		} else if (f->temp && !exists_beneath(t, f->temp) && placing &&
			   !f->backup) {
			/* renamed into place: ours, since the path was free when planned */
			r = unlink_beneath(t, f->final, 0);
			if (r < 0 && ret == 0)
				ret = r;
		}
		if (f->temp) {
			r = unlink_beneath(t, f->temp, 0);
			if (r < 0 && ret == 0)
				ret = r;
		}
	}
	for (size_t i = strv_length(t->dirs); i > 0; i--)
		(void)unlink_beneath(t, t->dirs[i - 1], AT_REMOVEDIR);
	r = txn_fsync_dirs(t);
	if (r < 0 && ret == 0)
		ret = r;
	if (ret < 0)
		return ret;

	r = depmod_recover(t->root, t->kver, drep);
	if (r < 0)
		return r;
	if (indexes) {
		/* the tree is the old one again; the indexes are the old or the new generation.
		 * Re-reading the files this transaction touched and still there, and letting
		 * depmod_update fall back to a full build when the indexes name modules that
		 * are gone, gives the old generation either way. */
		for (size_t i = 0; i < t->n_files; i++)
			if (exists_beneath(t, t->files[i].final) &&
			    strv_extend(&present, t->files[i].final) < 0)
				return -ENOMEM;
		r = depmod_update(t->root, t->kver, present, NULL, drep);
		if (r < 0)
			return r;
	}
	return 0;
}

static void history_note(const char *root, const char *action, const char *result,
			 const char *command, char **packages)
{
	_cleanup_(db_closep) Db *db = NULL;
	DbHistory h = { .action = (char *)action,
			.result = (char *)result,
			.command = (char *)command,
			.packages = packages };

	if (db_open(root, true, &db) < 0)
		return;
	(void)db_history_add(db, &h, NULL);
}

static char **history_packages(Txn *t)
{
	char **l = NULL;

	for (size_t i = 0; i < t->n_add; i++) {
		_cleanup_free_ char *n = package_ref_nevra(&t->add[i].ref);
		char *s = NULL;

		if (!n || asprintf(&s, "+%s", n) < 0 || strv_consume(&l, s) < 0)
			return strv_free(l);
	}
	STRV_FOREACH(n, t->remove_nevra) {
		char *s = NULL;

		if (asprintf(&s, "-%s", *n) < 0 || strv_consume(&l, s) < 0)
			return strv_free(l);
	}
	return l;
}

static int txn_commit_db(Txn *t, Db *db, int64_t *ret_id)
{
	_cleanup_strv_free_ char **pk = history_packages(t);
	_cleanup_free_ char *c_uncommitted = NULL;
	DbHistory h = { .action = t->action,
			.result = (char *)"ok",
			.command = t->command,
			.packages = pk };
	int r;

	if (asprintf(&c_uncommitted, "%s:db-uncommitted", t->action) < 0)
		return -ENOMEM;
	r = db_begin(db);
	if (r < 0)
		return r;
	STRV_FOREACH(n, t->remove) {
		r = db_remove_package(db, t->kver, *n);
		if (r < 0 && r != -ENOENT)
			goto fail;
	}
	for (size_t i = 0; i < t->n_add; i++) {
		r = db_add_package(db, &t->add[i]);
		if (r < 0)
			goto fail;
	}
	r = db_history_add_txn(db, &h, t->id, ret_id);
	if (r < 0)
		goto fail;
	crash_point(c_uncommitted);
	return db_commit(db);
fail:
	(void)db_rollback(db);
	return r;
}

/* ---- recovery ---- */

static int recover_locked(const char *root, TxnReport *rep)
{
	_cleanup_(txn_freep) Txn *t = NULL;
	_cleanup_(db_closep) Db *db = NULL;
	_cleanup_(depmod_report_done) DepmodReport drep = {};
	_cleanup_free_ char *what = NULL, *jpath = NULL;
	_cleanup_strv_free_ char **pk = NULL;
	int r, committed;

	r = txn_load_journal(root, &t);
	if (r < 0) {
		_cleanup_free_ char *s = kmodd_path_state(root);

		jpath = s ? path_join(s, "journal") : NULL;
		return report_error(
			rep, r, jpath,
			"unreadable transaction journal; inspect it, then delete it and "
			"run 'kmodctl verify'");
	}
	if (!t)
		return 0;
	r = txn_open_moddir(t);
	if (r < 0)
		return report_error(rep, r, t->moddir, "cannot open the module directory");
	r = db_open(root, true, &db);
	if (r < 0)
		return report_error(rep, r, t->db_path, "cannot open the database");
	committed = db_history_find_txn(db, t->id, NULL);
	if (committed < 0)
		return report_error(rep, committed, t->db_path,
				    "cannot read the database");
	pk = history_packages(t);
	what = strv_join(pk, " ");
	if (committed) {
		crash_point("recover:forward");
		r = txn_finish(t);
	} else {
		crash_point("recover:back");
		r = txn_rollback(t, streq(t->state, "indexing"), &drep);
	}
	if (r < 0)
		return report_error(rep, r, drep.error_path ?: t->moddir,
				    "recovery of the interrupted %s failed: %s",
				    t->action, drep.error_message ?: strerror(-r));
	r = txn_remove_journal(t);
	if (r < 0)
		return report_error(rep, r, t->journal, "cannot remove the journal");
	if (rep) {
		rep->recovered = true;
		free(rep->recovery_action);
		if (asprintf(&rep->recovery_action, "%s interrupted %s (%s)",
			     committed ? "completed" : "rolled back", t->action,
			     strempty(what)) < 0)
			rep->recovery_action = NULL;
	}
	{
		_cleanup_free_ char *res = NULL;

		if (asprintf(&res, "%s %s", committed ? "completed" : "rolled back",
			     t->action) >= 0) {
			DbHistory h = { .action = (char *)"recover",
					.result = res,
					.command = t->command,
					.packages = pk };
			(void)db_history_add(db, &h, NULL);
		}
	}
	return 1;
}

int transaction_recover(const char *root, const char *kver, TxnReport *rep)
{
	_cleanup_close_ int lock = -EBADF;
	int r;

	r = take_lock(root, &lock, rep);
	if (r < 0)
		return r;
	return recover_locked(root, rep);
}

/* ---- install ---- */

static int download(Txn *t, const PackageRef *p, const TxnOptions *o, char **ret_path,
		    TxnReport *rep)
{
	_cleanup_free_ char *cache = kmodd_path_cache(t->root), *dir = NULL,
			    *nevra = NULL, *file = NULL, *err = NULL;
	FetchOptions fo = {
		.sha256 = p->checksum,
		.retries = 2,
		.progress = o ? o->progress : NULL,
		.userdata = o ? o->userdata : NULL,
	};
	char got[65];
	int r;

	if (!cache)
		return -ENOMEM;
	dir = path_join(cache, "packages", p->repo_id ?: "@local");
	nevra = package_ref_nevra(p);
	if (!dir || !nevra || !rel_path_ok(p->repo_id ?: "x") || strchr(nevra, '/'))
		return report_error(rep, -EINVAL, p->url,
				    "invalid package or repository name");
	if (asprintf(&file, "%s/%s.rpm", dir, nevra) < 0)
		return -ENOMEM;
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return report_error(rep, r, dir, "cannot create: %s", strerror(-r));
	/* a verified copy from an earlier attempt */
	if (p->checksum && sha256_file(file, got) >= 0 &&
	    strcasecmp(got, p->checksum) == 0) {
		*ret_path = TAKE_PTR(file);
		return 0;
	}
	if (!p->url)
		return report_error(rep, -EINVAL, p->name, "no download URL");
	r = fetch_to_file(p->url, file, &fo, &err);
	if (r < 0)
		return report_error(rep, r, p->url, "%s", err ?: strerror(-r));
	*ret_path = TAKE_PTR(file);
	return 0;
}

static int add_file(Txn *t, TxnFile f)
{
	if (!GREEDY_REALLOC(t->files, t->allocated_files, t->n_files + 1))
		return -ENOMEM;
	t->files[t->n_files++] = f;
	return 0;
}

static int tmp_name(Txn *t, const char *final, const char *suffix, char **ret)
{
	_cleanup_free_ char *d = dir_of(final);

	if (!d)
		return -ENOMEM;
	if (asprintf(ret, "%s%s%s%s.%zu%s", streq(d, ".") ? "" : d,
		     streq(d, ".") ? "" : "/", TMP_PREFIX, t->id, t->n_files, suffix) < 0)
		return -ENOMEM;
	return 0;
}

static const char *mod_rel(const Txn *t, const char *rootrel)
{
	const char *p = startswith(rootrel, "lib/modules/");

	if (!p || !startswith(p, t->kver) || p[strlen(t->kver)] != '/')
		return NULL;
	return p + strlen(t->kver) + 1;
}

/* Builds the file operations: new files (temp -> final, with a backup when a replaced
 * package had the same path), removed files of replaced packages (final -> backup). */
static int plan_files(Txn *t, Db *db, DbPackage *replaced, size_t n_replaced,
		      TxnReport *rep)
{
	for (size_t k = 0; k < t->n_add; k++)
		for (size_t j = 0; j < t->add[k].n_files; j++) {
			const char *root_rel = t->add[k].files[j].path,
				   *rel = mod_rel(t, root_rel);
			_cleanup_free_ char *owner = NULL;
			TxnFile f = { .pkg = k, .size = t->add[k].files[j].size };
			bool replaces = false;
			int r;

			if (!rel)
				return -EINVAL;
			for (size_t i = 0; i < t->n_files; i++)
				if (streq(t->files[i].final, rel))
					return report_error(
						rep, -EEXIST, root_rel,
						"two packages of this transaction "
						"install this file");
			r = db_file_owner(db, root_rel, &owner);
			if (r < 0 && r != -ENOENT)
				return report_error(rep, r, t->db_path,
						    "cannot read the database");
			if (owner) {
				for (size_t i = 0; i < n_replaced; i++)
					if (streq(replaced[i].ref.name, owner))
						replaces = true;
				if (!replaces)
					return report_error(
						rep, -EEXIST, root_rel,
						"package %s would overwrite a file of "
						"package %s",
						t->add[k].ref.name, owner);
			} else if (exists_beneath(t, rel))
				return report_error(
					rep, -EEXIST, root_rel,
					"package %s would overwrite a file that no "
					"package owns (the kernel's own tree)",
					t->add[k].ref.name);
			memcpy(f.sha256, t->add[k].files[j].sha256, 65);
			f.final = strdup(rel);
			if (!f.final)
				return -ENOMEM;
			r = tmp_name(t, rel, "", &f.temp);
			if (r >= 0 && replaces)
				r = tmp_name(t, rel, ".old", &f.backup);
			if (r >= 0)
				r = add_file(t, f);
			if (r < 0) {
				free(f.final);
				free(f.temp);
				free(f.backup);
				return r;
			}
		}

	/* files of replaced versions that the new ones do not overwrite */
	for (size_t i = 0; i < n_replaced; i++)
		for (size_t j = 0; j < replaced[i].n_files; j++) {
			const char *rel = mod_rel(t, replaced[i].files[j].path);
			TxnFile f = {};
			bool kept = false;
			int r;

			if (!rel)
				continue;
			for (size_t x = 0; x < t->n_files; x++)
				if (streq(t->files[x].final, rel))
					kept = true;
			if (kept)
				continue;
			f.final = strdup(rel);
			if (!f.final)
				return -ENOMEM;
			r = tmp_name(t, rel, ".old", &f.backup);
			if (r >= 0)
				r = add_file(t, f);
			if (r < 0) {
				free(f.final);
				free(f.backup);
				return r;
			}
		}

	/* directories to create, parents first */
	for (size_t i = 0; i < t->n_files; i++) {
		_cleanup_free_ char *d = NULL;

		if (!t->files[i].temp)
			continue;
		d = dir_of(t->files[i].final);
		if (!d)
			return -ENOMEM;
		for (char *s = d; s;) {
			char *slash = strchr(s, '/');
			char save = 0;

			if (slash) {
				save = *slash;
				*slash = 0;
			}
			if (!streq(d, ".") && !strv_contains(t->dirs, d) &&
			    !exists_beneath(t, d) && strv_extend(&t->dirs, d) < 0)
				return -ENOMEM;
			if (slash)
				*slash = save;
			s = slash ? slash + 1 : NULL;
		}
	}
	return 0;
}

static int make_dirs(Txn *t, TxnReport *rep)
{
	STRV_FOREACH(d, t->dirs) {
		_cleanup_close_ int dfd = -EBADF;
		const char *base;

		dfd = open_parent(t, *d, &base);
		if (dfd < 0)
			return report_error(rep, dfd, *d, "cannot open the directory");
		if (mkdirat(dfd, base, 0755) < 0 && errno != EEXIST)
			return report_error(rep, negative_errno(), *d,
					    "cannot create: %s", strerror(errno));
	}
	return 0;
}

static int load_modules(const Txn *t, TxnReport *rep)
{
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
	int r;

	r = kmod_ctx_for(t->root, t->kver, &ctx);
	if (r < 0)
		return r;
	STRV_FOREACH(name, t->load) {
		_cleanup_(kmod_module_unref_listp) struct kmod_list *list = NULL;
		struct kmod_list *it;
		char *s = NULL;

		r = kmod_module_new_from_lookup(ctx, *name, &list);
		if (r >= 0 && !list)
			r = -ENOENT;
		if (r < 0) {
			if (asprintf(&s, "%s: %s", *name,
				     r == -ENOENT ? "not found" : strerror(-r)) >= 0)
				(void)strv_consume(&rep->load_failed, s);
			continue;
		}
		kmod_list_foreach(it, list) {
			_cleanup_(kmod_module_unrefp) struct kmod_module *m =
				kmod_module_get_module(it);

			r = kmod_module_probe_insert_module(m, KMOD_PROBE_APPLY_BLACKLIST,
							    NULL, NULL, NULL, NULL);
			if (r == 0)
				(void)strv_extend(&rep->loaded, kmod_module_get_name(m));
			else if (asprintf(&s, "%s: %s", kmod_module_get_name(m),
					  r > 0 ? "blacklisted" : strerror(-r)) >= 0)
				(void)strv_consume(&rep->load_failed, s);
		}
	}
	return 0;
}

int transaction_install(const char *root, const char *kver, const PackageRef *pkgs,
			size_t n, char *const *load_modules_names, const TxnOptions *o,
			TxnReport *rep)
{
	static const TxnOptions defaults = {};
	_cleanup_close_ int lock = -EBADF;
	_cleanup_(txn_freep) Txn *t = NULL;
	_cleanup_(db_closep) Db *db = NULL;
	_cleanup_(depmod_report_done) DepmodReport drep = {};
	_cleanup_strv_free_ char **add_paths = NULL, **rm_paths = NULL;
	_cleanup_(rpmKeyringFreep) rpmKeyring keyring = NULL;
	DbPackage *replaced = NULL;
	size_t n_replaced = 0;
	bool first = true, indexes = false;
	int64_t hid = 0;
	int r;

	o = o ?: &defaults;
	if (!root || !kver || (n > 0 && !pkgs) || !rep)
		return -EINVAL;
	if (o->require_signature && strv_length(o->signature_keys) == 0)
		return report_error(rep, -ENOKEY, NULL,
				    "package signatures are required but no signing key is "
				    "configured; set the repository's gpgkey");

	if (!o->dry_run) {
		r = take_lock(root, &lock, rep);
		if (r < 0)
			return r;
		crash_point("install:locked");
		r = recover_locked(root, rep);
		if (r < 0)
			return r;
	}

	r = txn_new(root, kver, "install", o->command, &t);
	if (r < 0)
		return r;
	r = txn_open_moddir(t);
	if (r < 0)
		return report_error(rep, r, t->moddir, "no module tree for kernel %s",
				    kver);
	r = db_open(root, !o->dry_run, &db);
	if (r == -ENOENT && o->dry_run)
		db = NULL;
	else if (r < 0)
		return report_error(rep, r, t->db_path, "cannot open the database");

	t->add = calloc(n + 1, sizeof(DbPackage));
	t->rpm_paths = calloc(n + 1, sizeof(char *));
	replaced = calloc(n + 1, sizeof(DbPackage));
	if (!t->add || !t->rpm_paths || !replaced) {
		r = -ENOMEM;
		goto fail_plan;
	}
	t->allocated_add = n + 1;
	for (size_t i = 0; i < n; i++) {
		DbPackage old = {};
		DbPackage *p;

		if (!pkgs[i].name || !pkgs[i].evr || !pkgs[i].arch) {
			r = report_error(rep, -EINVAL, pkgs[i].url,
					 "incomplete package description");
			goto fail_plan;
		}
		for (size_t j = 0; j < i; j++)
			if (streq(pkgs[j].name, pkgs[i].name)) {
				r = report_error(rep, -EINVAL, pkgs[i].url,
						 "package %s given twice", pkgs[i].name);
				goto fail_plan;
			}
		r = db ? db_get_package(db, kver, pkgs[i].name, &old) : -ENOENT;
		if (r >= 0 && streq(old.ref.evr, pkgs[i].evr) &&
		    streq(old.ref.arch, pkgs[i].arch)) {
			db_package_done(&old); /* installed already */
			continue;
		}
		if (r >= 0) {
			_cleanup_free_ char *nevra = package_ref_nevra(&old.ref);

			if (!nevra || strv_extend(&t->remove, old.ref.name) < 0 ||
			    strv_extend(&t->remove_nevra, nevra) < 0) {
				db_package_done(&old);
				r = -ENOMEM;
				goto fail_plan;
			}
			replaced[n_replaced++] = old;
		} else if (r != -ENOENT) {
			r = report_error(rep, r, t->db_path, "cannot read the database");
			goto fail_plan;
		}
		p = &t->add[t->n_add];
		r = package_ref_copy(&pkgs[i], &p->ref);
		if (r < 0)
			goto fail_plan;
		t->n_add++;
		p->kver = strdup(kver);
		if (!p->kver) {
			r = -ENOMEM;
			goto fail_plan;
		}
		p->install_time = (int64_t)time(NULL);
	}
	STRV_FOREACH(m, load_modules_names)
		if (strv_extend(&t->load, *m) < 0) {
			r = -ENOMEM;
			goto fail_plan;
		}

	if (o->dry_run) {
		for (size_t i = 0; i < t->n_add; i++) {
			char *s = package_ref_nevra(&t->add[i].ref);
			if (!s || strv_consume(&rep->installed, s) < 0) {
				r = -ENOMEM;
				goto fail_plan;
			}
		}
		r = 0;
		goto fail_plan;
	}

	/* download and verify everything before anything is written */
	for (size_t i = 0; i < t->n_add; i++) {
		progress(o, t->add[i].ref.name);
		r = download(t, &t->add[i].ref, o, &t->rpm_paths[i], rep);
		if (r < 0)
			goto fail_plan;
		crash_point("install:downloaded");
		r = kmp_verify_file(t->rpm_paths[i]);
		if (r < 0) {
			r = report_error(rep, r, t->add[i].ref.url ?: t->rpm_paths[i],
					 r == -ENOEXEC ?
						 "not an rpm package" :
						 "rpm digest check failed: the package is "
						 "corrupt or was tampered with");
			goto fail_plan;
		}
		if (o->require_signature) {
			if (!keyring) {
				r = keyring_load(o->signature_keys, &keyring, rep);
				if (r < 0)
					goto fail_plan;
			}
			r = verify_signature(t->rpm_paths[i], keyring, rep);
			if (r < 0)
				goto fail_plan;
		}
		r = plan_package(t, i, t->rpm_paths[i], rep);
		if (r < 0)
			goto fail_plan;
	}
	crash_point("install:verified");
	r = plan_files(t, db, replaced, n_replaced, rep);
	if (r < 0)
		goto fail_plan;
	db_packages_free(replaced, n_replaced);
	replaced = NULL;
	if (t->n_add == 0)
		goto load; /* everything installed already */

	/* the journal before the first byte */
	r = journal_step(t, "prepared", rep);
	if (r < 0)
		return r;
	crash_point("install:journal");
	r = make_dirs(t, rep);
	if (r < 0)
		goto rollback;
	crash_point("install:mkdir");
	for (size_t i = 0; i < t->n_add; i++) {
		r = extract_package(t, i, &first, rep);
		if (r < 0)
			goto rollback;
	}
	r = txn_fsync_dirs(t);
	if (r < 0) {
		report_error(rep, r, t->moddir, "cannot sync: %s", strerror(-r));
		goto rollback;
	}
	crash_point("install:extracted");

	r = journal_step(t, "placing", rep);
	if (r < 0)
		goto rollback;
	crash_point("install:placing");
	r = txn_place(t, "install", rep);
	if (r < 0)
		goto rollback;

	r = journal_step(t, "indexing", rep);
	if (r < 0)
		goto rollback;
	crash_point("install:indexing");
	for (size_t i = 0; i < t->n_files; i++) {
		TxnFile *f = &t->files[i];

		if (f->temp)
			r = strv_extend(&add_paths, f->final);
		else
			r = strv_extend(&rm_paths, f->final);
		if (r < 0)
			goto rollback;
	}
	indexes = true;
	r = depmod_update(root, kver, add_paths, rm_paths, &drep);
	if (r < 0) {
		indexes = false; /* "nothing is changed on failure" */
		report_error(rep, r, drep.error_path ?: t->moddir,
			     "updating the module indexes: %s",
			     drep.error_message ?: strerror(-r));
		goto rollback;
	}
	crash_point("install:indexed");

	/* the commit point */
	r = txn_commit_db(t, db, &hid);
	if (r < 0) {
		report_error(rep, r, t->db_path, "cannot record the packages: %s",
			     strerror(-r));
		goto rollback;
	}
	crash_point("install:committed");
	rep->history_id = (long)hid;
	for (size_t i = 0; i < t->n_add; i++) {
		char *s = package_ref_nevra(&t->add[i].ref);
		if (s)
			(void)strv_consume(&rep->installed, s);
	}
	STRV_FOREACH(s, t->remove_nevra)
		(void)strv_extend(&rep->removed, *s);

	r = txn_finish(t);
	if (r < 0)
		log_debug("transaction: finishing: %s; recovery completes it",
			  strerror(-r));
	crash_point("install:finished");
	if (r >= 0) {
		r = txn_remove_journal(t);
		if (r < 0)
			log_debug("transaction: removing the journal: %s", strerror(-r));
	}
	crash_point("install:journal-removed");
load:
	lock = safe_close(lock);
	if (o->load && t->load) {
		r = load_modules(t, rep);
		if (r < 0)
			log_debug("transaction: loading: %s", strerror(-r));
		crash_point("install:loaded");
	}
	return 0;

rollback : {
	_cleanup_(depmod_report_done) DepmodReport rrep = {};
	_cleanup_strv_free_ char **pk = history_packages(t);
	_cleanup_free_ char *res = NULL;
	int k;

	k = txn_rollback(t, indexes, &rrep);
	if (k >= 0)
		k = txn_remove_journal(t);
	if (k < 0)
		log_debug("transaction: rollback: %s; recovery retries it", strerror(-k));
	if (asprintf(&res, "rolled back: %s", strna(rep->error_message)) >= 0)
		history_note(root, "install", res, t->command, pk);
}
	return r;

fail_plan:
	db_packages_free(replaced, n_replaced);
	return r;
}

/* ---- remove ---- */

static int find_package_for(DbPackage *all, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(all[i].ref.name, name))
			return (int)i;
	/* a module name: the package that ships it */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < all[i].n_files; j++) {
			_cleanup_free_ char *m = module_name_of(all[i].files[j].path);

			if (m && same_module_name(m, name))
				return (int)i;
		}
	return -ENOENT;
}

/* Is requirement req of a package still satisfied when the packages marked in gone[] are
 * removed? Only when one of those provided it and nothing left does. */
static bool broken_by(DbPackage *all, size_t n, const bool *gone, const char *req)
{
	bool by_gone = false;

	if (startswith(req, "rpmlib("))
		return false;
	for (size_t i = 0; i < n; i++)
		if (package_satisfies(&all[i].ref, req)) {
			if (!gone[i])
				return false;
			by_gone = true;
		}
	return by_gone;
}

static int in_use_check(Txn *t, bool force, TxnReport *rep)
{
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
	int r;

	r = kmod_ctx_for(t->root, t->kver, &ctx);
	if (r < 0)
		return r;
	STRV_FOREACH(name, t->unload) {
		_cleanup_(kmod_module_unrefp) struct kmod_module *m = NULL;
		_cleanup_(kmod_module_unref_listp) struct kmod_list *holders = NULL;
		struct kmod_list *it;
		int refcnt, n_holders = 0;

		r = kmod_module_new_from_name(ctx, *name, &m);
		if (r < 0)
			return r;
		if (kmod_module_get_initstate(m) < 0)
			continue; /* not loaded */
		refcnt = kmod_module_get_refcnt(m);
		holders = kmod_module_get_holders(m);
		kmod_list_foreach(it, holders) {
			struct kmod_module *h = kmod_module_get_module(it);
			const char *hn = kmod_module_get_name(h);
			bool ours = strv_contains(t->unload, hn);

			kmod_module_unref(h);
			if (!ours && !force)
				return report_error(
					rep, -EBUSY, *name,
					"module %s is in use by %s; remove that first "
					"or use --force",
					*name, hn);
			n_holders++;
		}
		if (refcnt > n_holders && !force)
			return report_error(
				rep, -EBUSY, *name,
				"module %s is in use (reference count %d); stop its "
				"users or use --force",
				*name, refcnt);
	}
	return 0;
}

static int unload_modules(Txn *t, bool force, TxnReport *rep)
{
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
	_cleanup_free_ bool *done = calloc(strv_length(t->unload) + 1, sizeof(bool));
	size_t n = strv_length(t->unload);
	bool progress_made = true;
	int r;

	if (!done)
		return -ENOMEM;
	r = kmod_ctx_for(t->root, t->kver, &ctx);
	if (r < 0)
		return r;
	/* holders first: repeat while something could be unloaded */
	while (progress_made) {
		progress_made = false;
		for (size_t i = 0; i < n; i++) {
			_cleanup_(kmod_module_unrefp) struct kmod_module *m = NULL;
			_cleanup_(kmod_module_unref_listp) struct kmod_list *holders =
				NULL;

			if (done[i])
				continue;
			r = kmod_module_new_from_name(ctx, t->unload[i], &m);
			if (r < 0)
				return r;
			if (kmod_module_get_initstate(m) < 0) {
				done[i] = true;
				continue;
			}
			holders = kmod_module_get_holders(m);
			if (holders && !force)
				continue;
			r = kmod_module_remove_module(m, force ? KMOD_REMOVE_FORCE : 0);
			if (r < 0 && r != -ENOENT && !force) {
				if (holders)
					continue;
				return report_error(rep, r, t->unload[i],
						    "cannot unload module %s: %s",
						    t->unload[i], strerror(-r));
			}
			if (r < 0 && r != -ENOENT)
				/* forced: the files go even though the module stays loaded */
				log_debug(
					"transaction: unloading %s: %s, continuing (forced)",
					t->unload[i], strerror(-r));
			done[i] = true;
			progress_made = true;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (!done[i])
			return report_error(rep, -EBUSY, t->unload[i],
					    "cannot unload module %s: still in use",
					    t->unload[i]);
	return 0;
}

int transaction_remove(const char *root, const char *kver, char *const *names,
		       const TxnOptions *o, TxnReport *rep)
{
	static const TxnOptions defaults = {};
	_cleanup_close_ int lock = -EBADF;
	_cleanup_(txn_freep) Txn *t = NULL;
	_cleanup_(db_closep) Db *db = NULL;
	_cleanup_(depmod_report_done) DepmodReport drep = {};
	_cleanup_strv_free_ char **rm_paths = NULL;
	_cleanup_free_ bool *gone = NULL;
	DbPackage *all = NULL;
	size_t n_all = 0;
	bool changed = true, indexes = false;
	int64_t hid = 0;
	int r;

	o = o ?: &defaults;
	if (!root || !kver || !rep)
		return -EINVAL;
	if (!o->dry_run) {
		r = take_lock(root, &lock, rep);
		if (r < 0)
			return r;
		crash_point("remove:locked");
		r = recover_locked(root, rep);
		if (r < 0)
			return r;
	}
	r = txn_new(root, kver, "remove", o->command, &t);
	if (r < 0)
		return r;
	r = txn_open_moddir(t);
	if (r < 0)
		return report_error(rep, r, t->moddir, "no module tree for kernel %s",
				    kver);
	r = db_open(root, !o->dry_run, &db);
	if (r == -ENOENT) {
		r = report_error(rep, -ENOENT, names && names[0] ? names[0] : NULL,
				 "no package is installed");
		return r;
	}
	if (r < 0)
		return report_error(rep, r, t->db_path, "cannot open the database");
	r = db_list_packages(db, kver, &all, &n_all);
	if (r < 0)
		return report_error(rep, r, t->db_path, "cannot read the database");
	gone = calloc(n_all + 1, sizeof(bool));
	if (!gone) {
		r = -ENOMEM;
		goto finish;
	}
	STRV_FOREACH(name, names) {
		int i = find_package_for(all, n_all, *name);

		if (i < 0) {
			r = report_error(
				rep, -ENOENT, *name,
				"no installed package or module '%s' for kernel %s",
				*name, kver);
			goto finish;
		}
		gone[i] = true;
	}
	/* reverse dependencies follow */
	while (changed) {
		changed = false;
		for (size_t i = 0; i < n_all; i++) {
			if (gone[i])
				continue;
			STRV_FOREACH(req, all[i].ref.requires)
				if (broken_by(all, n_all, gone, *req)) {
					gone[i] = true;
					changed = true;
					break;
				}
		}
	}
	for (size_t i = 0; i < n_all; i++) {
		_cleanup_free_ char *nevra = NULL;

		if (!gone[i])
			continue;
		nevra = package_ref_nevra(&all[i].ref);
		if (!nevra || strv_extend(&t->remove, all[i].ref.name) < 0 ||
		    strv_extend(&t->remove_nevra, nevra) < 0 ||
		    strv_extend(&rep->removed, nevra) < 0) {
			r = -ENOMEM;
			goto finish;
		}
		for (size_t j = 0; j < all[i].n_files; j++) {
			const char *rel = mod_rel(t, all[i].files[j].path);
			TxnFile f = {};
			_cleanup_free_ char *m = NULL;

			if (!rel)
				continue;
			f.final = strdup(rel);
			if (!f.final) {
				r = -ENOMEM;
				goto finish;
			}
			r = tmp_name(t, rel, ".old", &f.backup);
			if (r >= 0)
				r = add_file(t, f);
			if (r < 0) {
				free(f.final);
				free(f.backup);
				goto finish;
			}
			m = module_name_of(rel);
			if (!m || (!strv_contains(t->unload, m) &&
				   strv_consume(&t->unload, TAKE_PTR(m)) < 0)) {
				r = -ENOMEM;
				goto finish;
			}
		}
	}
	r = in_use_check(t, o->force, rep);
	if (r < 0)
		goto finish;
	if (o->dry_run) {
		r = 0;
		goto finish;
	}

	r = journal_step(t, "prepared", rep);
	if (r < 0)
		goto finish;
	crash_point("remove:journal");
	r = unload_modules(t, o->force, rep);
	if (r < 0)
		goto rollback;
	crash_point("remove:unloaded");
	r = journal_step(t, "placing", rep);
	if (r < 0)
		goto rollback;
	crash_point("remove:placing");
	r = txn_place(t, "remove", rep);
	if (r < 0)
		goto rollback;
	r = journal_step(t, "indexing", rep);
	if (r < 0)
		goto rollback;
	crash_point("remove:indexing");
	for (size_t i = 0; i < t->n_files; i++)
		if (strv_extend(&rm_paths, t->files[i].final) < 0) {
			r = -ENOMEM;
			goto rollback;
		}
	indexes = true;
	r = depmod_update(root, kver, NULL, rm_paths, &drep);
	if (r == -ENOENT) {
		/* a module of the package was not indexed (its file deleted and depmod run by
		 * hand): the indexes of the tree as it now is */
		depmod_report_done(&drep);
		r = depmod_full(root, kver, &drep);
	}
	if (r < 0) {
		indexes = false;
		report_error(rep, r, drep.error_path ?: t->moddir,
			     "updating the module indexes: %s",
			     drep.error_message ?: strerror(-r));
		goto rollback;
	}
	crash_point("remove:indexed");
	r = txn_commit_db(t, db, &hid);
	if (r < 0) {
		report_error(rep, r, t->db_path, "cannot record the removal: %s",
			     strerror(-r));
		goto rollback;
	}
	crash_point("remove:committed");
	rep->history_id = (long)hid;
	r = txn_finish(t);
	if (r < 0)
		log_debug("transaction: finishing: %s; recovery completes it",
			  strerror(-r));
	crash_point("remove:finished");
	if (r >= 0) {
		r = txn_remove_journal(t);
		if (r < 0)
			log_debug("transaction: removing the journal: %s", strerror(-r));
	}
	crash_point("remove:journal-removed");
	r = 0;
	goto finish;

rollback : {
	_cleanup_(depmod_report_done) DepmodReport rrep = {};
	_cleanup_strv_free_ char **pk = history_packages(t);
	_cleanup_free_ char *res = NULL;
	int k;

	k = txn_rollback(t, indexes, &rrep);
	if (k >= 0)
		k = txn_remove_journal(t);
	if (k < 0)
		log_debug("transaction: rollback: %s; recovery retries it", strerror(-k));
	if (asprintf(&res, "rolled back: %s", strna(rep->error_message)) >= 0)
		history_note(root, "remove", res, t->command, pk);
	rep->removed = strv_free(rep->removed);
}
finish:
	db_packages_free(all, n_all);
	return r;
}
