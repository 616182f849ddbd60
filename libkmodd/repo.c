/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Repository metadata: refresh (fetch, verify, parse once), the .solv cache, pool loading. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "fetch.h"
#include "fileio.h"
#include "kmodd-cleanup.h"
#include "log.h"
#include "package.h"
#include "repo.h"
#include "repomd.h"
#include "sha256.h"
#include "strv.h"

#include <solv/repo_rpmmd.h>
#include <solv/repo_solv.h>
#include <solv/repo_write.h>
#include <solv/solv_xfopen.h>

#define REPOMD_MAX_SIZE (4u * 1024 * 1024)
#define SIGNATURE_MAX_SIZE (64u * 1024)
#define GPGKEY_MAX_SIZE (1024u * 1024)
#define STATE_MAX_SIZE (64u * 1024)

extern char **environ;

/* The one place where libsolv's -1 + pool_errstr() becomes an errno. */
static int solv_error(Pool *pool, const char *what, char **ret_msg)
{
	const char *e = pool_errstr(pool);

	log_debug("libsolv: %s: %s", what, strna(e));
	if (ret_msg && asprintf(ret_msg, "%s", isempty(e) ? "malformed" : e) < 0)
		*ret_msg = NULL;
	return -EBADMSG;
}

static char *state_dir(const char *root)
{
	return path_join(root, "var/lib/kmodd/repos");
}

static char *state_path(const char *root, const char *id)
{
	_cleanup_free_ char *d = state_dir(root), *f = NULL;

	if (!d || asprintf(&f, "%s.state", id) < 0)
		return NULL;
	return path_join(d, f);
}

static char *cache_dir(const char *root, const char *id)
{
	return path_join(root, "var/cache/kmodd/repos", id);
}

char *repo_solv_path(const char *root, const char *id, const char *checksum)
{
	_cleanup_free_ char *d = cache_dir(root, id), *f = NULL;

	if (!d || asprintf(&f, "%s.solv", checksum) < 0)
		return NULL;
	return path_join(d, f);
}

static int parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (isempty(s) || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int repo_state_read(const char *root, const char *id, RepoState *ret)
{
	_cleanup_free_ char *path = state_path(root, id), *text = NULL;
	RepoState st = {};
	char *save = NULL;
	int r;

	if (!path)
		return -ENOMEM;
	r = read_full_file(path, STATE_MAX_SIZE, &text, NULL);
	if (r < 0)
		return r;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		const char *v;
		uint64_t u;

		if ((v = startswith(l, "timestamp="))) {
			if (parse_u64(v, &st.timestamp) < 0)
				return -EBADMSG;
		} else if ((v = startswith(l, "refreshed="))) {
			if (parse_u64(v, &st.refreshed) < 0)
				return -EBADMSG;
		} else if ((v = startswith(l, "packages="))) {
			if (parse_u64(v, &u) < 0 || u > UINT32_MAX)
				return -EBADMSG;
			st.n_solvables = (unsigned)u;
		} else if ((v = startswith(l, "repomd="))) {
			if (!sha256_hex_valid(v))
				return -EBADMSG;
			memcpy(st.repomd, v, 65);
		} else if ((v = startswith(l, "primary="))) {
			if (!sha256_hex_valid(v))
				return -EBADMSG;
			memcpy(st.primary, v, 65);
		}
	}
	if (!st.primary[0])
		return -EBADMSG;
	*ret = st;
	return 0;
}

static int repo_state_write(const char *root, const char *id, const RepoState *st,
			    const char *baseurl)
{
	_cleanup_free_ char *dir = state_dir(root), *path = state_path(root, id),
			    *text = NULL;
	int r;

	if (!dir || !path)
		return -ENOMEM;
	if (asprintf(&text,
		     "# kmodd: the last accepted metadata of repository '%s'; older metadata is "
		     "refused\n"
		     "url=%s\n"
		     "timestamp=%" PRIu64 "\n"
		     "repomd=%s\n"
		     "primary=%s\n"
		     "packages=%u\n"
		     "refreshed=%" PRIu64 "\n",
		     id, baseurl, st->timestamp, st->repomd, st->primary, st->n_solvables,
		     st->refreshed) < 0)
		return -ENOMEM;
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return r;
	return write_file_atomic(path, text, strlen(text), 0644);
}

/* Removes regular files of dir for which keep() says no. */
static void cache_dir_clean(const char *dir,
			    bool (*keep)(const char *name, const void *u),
			    const void *userdata)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
		    keep(de->d_name, userdata))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0)
			log_debug("cannot remove %s/%s: %m", dir, de->d_name);
	}
	closedir(d);
}

static bool keep_nothing(const char *name, const void *u)
{
	return false;
}

static bool keep_solv(const char *name, const void *u)
{
	const char *keep = u;

	return keep && startswith(name, keep) && streq(name + strlen(keep), ".solv");
}

static bool keep_all_but_temporaries(const char *name, const void *u)
{
	return !startswith(name, ".#") && !startswith(name, "primary.");
}

/* keeps everything but "<id>.state.tmp.*" left by an interrupted state write */
static bool keep_all_but_state_temporaries(const char *name, const void *u)
{
	const char *id = u, *rest = startswith(name, id);

	return !rest || !startswith(rest, ".state.tmp.");
}

int repo_cache_remove(const char *root, const char *id)
{
	_cleanup_free_ char *dir = cache_dir(root, id), *state = state_path(root, id);

	if (!dir || !state)
		return -ENOMEM;
	cache_dir_clean(dir, keep_nothing, NULL);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return negative_errno();
	if (unlink(state) < 0 && errno != ENOENT)
		return negative_errno();
	return 0;
}

/* Opens a cache file only when it is a regular file owned by us (root) and not writable
 * by others: a .solv is trusted input. */
static FILE *open_trusted(const char *path)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	FILE *f;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & 022)) {
		log_debug(
			"%s: not a regular file owned by root and writable only by it, ignoring",
			path);
		errno = EPERM;
		return NULL;
	}
	f = fdopen(fd, "r");
	if (f)
		TAKE_FD(fd);
	return f;
}

int repo_add_cached_to_pool(const char *root, Pool *pool, RepoConfig *configs, size_t n,
			    char ***ret_missing)
{
	_cleanup_strv_free_ char **missing = NULL;
	int added = 0;

	for (size_t i = 0; i < n; i++) {
		RepoConfig *c = &configs[i];
		_cleanup_free_ char *path = NULL;
		_cleanup_fclose_ FILE *f = NULL;
		RepoState st;
		Repo *repo;
		int r;

		if (!c->enabled)
			continue;
		r = repo_state_read(root, c->id, &st);
		if (r < 0) {
			log_debug("repository '%s': no accepted metadata (%s)", c->id,
				  ERRNO_NAME(r));
			goto missing;
		}
		path = repo_solv_path(root, c->id, st.primary);
		if (!path)
			return -ENOMEM;
		f = open_trusted(path);
		if (!f) {
			log_debug("repository '%s': cannot open %s: %m", c->id, path);
			goto missing;
		}
		repo = repo_create(pool, c->id);
		if (repo_add_solv(repo, f, 0) != 0) {
			(void)solv_error(pool, path, NULL);
			repo_free(repo, 1);
			goto missing;
		}
		repo->appdata = c;
		/* libsolv prefers higher numbers; .repo files lower ones */
		repo->priority = 99 - c->priority;
		log_debug("repository '%s': %d packages from %s", c->id, repo->nsolvables,
			  path);
		added++;
		continue;
missing:
		if (ret_missing && strv_extend(&missing, c->id) < 0)
			return -ENOMEM;
	}
	if (ret_missing)
		*ret_missing = TAKE_PTR(missing);
	return added;
}

char *repo_solvable_url(Pool *pool, Id p)
{
	Solvable *s;
	const RepoConfig *c;
	const char *loc;
	char *url;

	if (p <= 0 || p >= pool->nsolvables)
		return NULL;
	s = pool_id2solvable(pool, p);
	if (!s->repo || !s->repo->appdata)
		return NULL;
	c = s->repo->appdata;
	loc = solvable_lookup_location(s, NULL);
	/* a location outside the repository (xml:base, "..", another scheme) is refused */
	if (!repo_location_safe(loc) || solvable_lookup_str(s, SOLVABLE_MEDIABASE)) {
		log_debug("repository '%s': unsafe package location '%s'", c->id,
			  strna(loc));
		return NULL;
	}
	if (asprintf(&url, "%s/%s", c->baseurl, loc) < 0)
		return NULL;
	return url;
}

void repo_refresh_result_done(RepoRefreshResult *r)
{
	free(r->error);
	*r = (RepoRefreshResult){};
}

/* Runs argv with stdin from /dev/null and stdout/stderr into log; returns the exit status
 * or -errno (-ENOENT when the program is missing). */
static int run_program(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r, status;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return -ENOMEM;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return -r;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return negative_errno();
	if (!WIFEXITED(status))
		return -EIO;
	return WEXITSTATUS(status);
}

static int write_in(const char *dir, const char *name, const void *data, size_t size)
{
	_cleanup_free_ char *p = path_join(dir, name);

	if (!p)
		return -ENOMEM;
	return write_file_atomic(p, data, size, 0600);
}

static void debug_log_file(const char *dir, const char *name)
{
	_cleanup_free_ char *p = path_join(dir, name), *text = NULL;

	if (p && read_full_file(p, 64 * 1024, &text, NULL) >= 0 && !isempty(text))
		log_debug("%s", text);
}

/* Checks a detached signature of data with gpgv against the keys in keydata (armored or
 * binary). */
static int verify_signature(const char *keydata, size_t keysize, const char *data,
			    size_t size, const char *sig, size_t sigsize, char **ret_msg)
{
	static const char *const files[] = { "key.asc", "keyring.gpg", "data", "data.asc",
					     "log" };
	_cleanup_free_ char *tmpl = NULL, *keyring = NULL, *keyasc = NULL, *datap = NULL,
			    *sigp = NULL, *logp = NULL;
	char *dir;
	int r;

	if (asprintf(&tmpl, "%s/kmodd-gpg.XXXXXX", getenv("TMPDIR") ?: "/tmp") < 0)
		return -ENOMEM;
	dir = mkdtemp(tmpl);
	if (!dir)
		return negative_errno();
	keyring = path_join(dir, "keyring.gpg");
	keyasc = path_join(dir, "key.asc");
	datap = path_join(dir, "data");
	sigp = path_join(dir, "data.asc");
	logp = path_join(dir, "log");
	if (!keyring || !keyasc || !datap || !sigp || !logp) {
		r = -ENOMEM;
		goto finish;
	}

	if (keysize > 0 && ((unsigned char)keydata[0] & 0x80)) {
		r = write_in(dir, "keyring.gpg", keydata, keysize);
		if (r < 0)
			goto finish;
	} else {
		char *const argv[] = { (char *)"gpg",
				       (char *)"--homedir",
				       dir,
				       (char *)"--batch",
				       (char *)"--quiet",
				       (char *)"--no-tty",
				       (char *)"--yes",
				       (char *)"--output",
				       keyring,
				       (char *)"--dearmor",
				       keyasc,
				       NULL };

		r = write_in(dir, "key.asc", keydata, keysize);
		if (r < 0)
			goto finish;
		r = run_program(argv, logp);
		if (r == -ENOENT) {
			*ret_msg = strdup(
				"gpg is not installed (needed to read an armored key); "
				"install gnupg");
			goto finish;
		}
		if (r != 0) {
			debug_log_file(dir, "log");
			*ret_msg =
				strdup("the repository key is not an OpenPGP public key");
			r = -EKEYREJECTED;
			goto finish;
		}
	}
	r = write_in(dir, "data", data, size);
	if (r >= 0)
		r = write_in(dir, "data.asc", sig, sigsize);
	if (r < 0)
		goto finish;

	{
		char *const argv[] = { (char *)"gpgv",
				       (char *)"--homedir",
				       dir,
				       (char *)"--keyring",
				       keyring,
				       sigp,
				       datap,
				       NULL };

		r = run_program(argv, logp);
		debug_log_file(dir, "log");
		if (r == -ENOENT) {
			*ret_msg = strdup("gpgv is not installed; install gpgv");
			goto finish;
		}
		if (r < 0)
			goto finish;
		if (r != 0) {
			*ret_msg =
				strdup("bad signature (gpgv does not accept it with the "
				       "repository's key)");
			r = -EKEYREJECTED;
			goto finish;
		}
	}
	r = 0;
finish:
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *p = path_join(dir, files[i]);
		if (p)
			(void)unlink(p);
	}
	/* gpg may leave its own files in the home directory */
	cache_dir_clean(dir, keep_nothing, NULL);
	(void)rmdir(dir);
	return r;
}

static int fail(RepoRefreshResult *ret, int r, const char *where, const char *fmt, ...)
	_printf_(4, 5);
static int fail(RepoRefreshResult *ret, int r, const char *where, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	free(ret->error);
	if (asprintf(&ret->error, "%s: %s", where, msg ?: strerror(-r)) < 0)
		ret->error = NULL;
	return r;
}

static int load_gpgkey(const RepoConfig *c, const FetchOptions *base, char **ret,
		       size_t *ret_size, RepoRefreshResult *res)
{
	_cleanup_free_ char *msg = NULL;
	FetchOptions o = *base;
	int r;

	if (c->gpgkey[0] == '/') {
		r = read_full_file(c->gpgkey, GPGKEY_MAX_SIZE, ret, ret_size);
		if (r < 0)
			return fail(res, r, c->gpgkey,
				    "cannot read the repository key: %s", strerror(-r));
		return 0;
	}
	o.max_size = GPGKEY_MAX_SIZE;
	o.sha256 = NULL;
	o.ca_file = c->sslcacert;
	o.progress = NULL;
	r = fetch_to_memory(c->gpgkey, &o, ret, ret_size, &msg);
	if (r < 0)
		return fail(res, r, c->gpgkey, "cannot fetch the repository key: %s",
			    msg ?: strerror(-r));
	return 0;
}

static const char *compression_suffix(const char *location)
{
	static const char *const s[] = { ".gz", ".zst", ".xz", ".bz2" };

	for (size_t i = 0; i < ELEMENTSOF(s); i++)
		if (endswith(location, s[i]))
			return s[i];
	return "";
}

/* The XML parser is the code that reads the most untrusted input: it runs in a child
 * process without privileges (uid/gid nobody when started as root, no supplementary groups,
 * no_new_privs, a 1 GiB output limit), holding only the downloaded file and the new .solv
 * open. The child answers "OK <packages>" or "ERR <message>" on a pipe. */
#define PARSER_UID 65534
#define PARSER_MAX_OUTPUT (1024ull * 1024 * 1024)

static _Noreturn void parse_child(const char *id, const char *name, int in_fd, int out_fd,
				  int msg_fd)
{
	struct rlimit fsize = { PARSER_MAX_OUTPUT, PARSER_MAX_OUTPUT };
	_cleanup_free_ char *msg = NULL;
	Pool *pool;
	Repo *repo;
	FILE *in, *out;
	char buf[1024];
	int n;

	(void)setrlimit(RLIMIT_FSIZE, &fsize);
	if (geteuid() == 0 && (setgroups(0, NULL) < 0 ||
			       setresgid(PARSER_UID, PARSER_UID, PARSER_UID) < 0 ||
			       setresuid(PARSER_UID, PARSER_UID, PARSER_UID) < 0)) {
		n = snprintf(buf, sizeof(buf), "ERR cannot drop privileges: %m");
		(void)!write(msg_fd, buf, (size_t)n);
		_exit(1);
	}
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	log_debug("parsing %s as uid %u", name, (unsigned)getuid());

	pool = pool_create();
	repo = repo_create(pool, id);
	in = solv_xfopen_fd(name, in_fd, "r");
	if (!in) {
		n = snprintf(buf, sizeof(buf), "ERR cannot open: %m");
		(void)!write(msg_fd, buf, (size_t)n);
		_exit(1);
	}
	if (repo_add_rpmmd(repo, in, NULL, 0) != 0) {
		(void)solv_error(pool, name, &msg);
		n = snprintf(buf, sizeof(buf), "ERR %s", strna(msg));
		(void)!write(msg_fd, buf, (size_t)n);
		_exit(1);
	}
	repo_internalize(repo);
	out = fdopen(out_fd, "w");
	if (!out || repo_write(repo, out) != 0 || fflush(out) != 0) {
		n = snprintf(buf, sizeof(buf), "ERR cannot write the cache: %m");
		(void)!write(msg_fd, buf, (size_t)n);
		_exit(1);
	}
	n = snprintf(buf, sizeof(buf), "OK %d", repo->nsolvables);
	(void)!write(msg_fd, buf, (size_t)n);
	_exit(0);
}

/* Parses primary metadata and writes the .solv; returns the number of packages. */
static int build_solv(const char *id, const char *primary, const char *solv,
		      char **ret_msg)
{
	_cleanup_free_ char *tmp = NULL, *dir = NULL;
	_cleanup_close_ int in = -EBADF, out = -EBADF, msg_r = -EBADF, msg_w = -EBADF;
	const char *base = strrchr(solv, '/');
	char buf[1024];
	size_t got = 0;
	int pipefd[2], status, r, n = -1;
	pid_t pid;

	dir = strndup(solv, (size_t)(base - solv));
	/* ".#name.solv.XXXXXX" beside the target: cleaned up by the next refresh */
	if (!dir || asprintf(&tmp, "%s/.#%s.XXXXXX", dir, base + 1) < 0)
		return -ENOMEM;
	in = open(primary, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0) {
		r = negative_errno();
		if (asprintf(ret_msg, "cannot open: %s", strerror(-r)) < 0)
			*ret_msg = NULL;
		return r;
	}
	out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0)
		return negative_errno();
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = negative_errno();
		goto fail;
	}
	msg_r = pipefd[0];
	msg_w = pipefd[1];

	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		goto fail;
	}
	if (pid == 0) {
		msg_r = safe_close(msg_r);
		parse_child(id, primary, in, out, msg_w);
	}
	msg_w = safe_close(msg_w);
	for (;;) {
		ssize_t k = read(msg_r, buf + got, sizeof(buf) - 1 - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || (got += (size_t)k) >= sizeof(buf) - 1)
			break;
	}
	buf[got] = 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			r = negative_errno();
			goto fail;
		}

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && startswith(buf, "OK ") &&
	    sscanf(buf + 3, "%d", &n) == 1 && n >= 0) {
		if (fchmod(out, 0644) < 0 || fsync(out) < 0 || rename(tmp, solv) < 0) {
			r = negative_errno();
			goto fail;
		}
		(void)fsync_directory_of(solv);
		return n;
	}
	r = -EBADMSG;
	if (startswith(buf, "ERR ")) {
		if (startswith(buf, "ERR cannot write") ||
		    startswith(buf, "ERR cannot drop"))
			r = -EIO;
		*ret_msg = strdup(buf + 4);
	} else if (WIFSIGNALED(status)) {
		if (asprintf(ret_msg, "the metadata parser was killed by signal %d (%s)",
			     WTERMSIG(status), strsignal(WTERMSIG(status))) < 0)
			*ret_msg = NULL;
	} else
		*ret_msg = strdup("the metadata parser failed");
	(void)unlink(tmp);
	return r;
fail:
	if (!*ret_msg && asprintf(ret_msg, "cannot write %s: %s", solv, strerror(-r)) < 0)
		*ret_msg = NULL;
	(void)unlink(tmp);
	return r;
}

int repo_refresh(const char *root, const RepoConfig *c, RepoRefreshFlags flags,
		 const FetchOptions *fetch, RepoRefreshResult *ret)
{
	static const FetchOptions default_fetch = { .retries = 2 };
	_cleanup_free_ char *repomd_url = NULL, *sig_url = NULL, *repomd = NULL,
			    *sig = NULL, *key = NULL, *msg = NULL, *primary_url = NULL,
			    *dir = NULL, *primary_path = NULL, *solv = NULL, *sdir = NULL;
	_cleanup_(repomd_freep) Repomd *m = NULL;
	_cleanup_close_ int lock_fd = -EBADF;
	const RepomdData *d;
	RepoState old = {}, st = {};
	size_t repomd_size = 0, sig_size = 0, key_size = 0;
	bool have_old;
	FetchOptions o;
	struct stat sst;
	int r, n;

	*ret = (RepoRefreshResult){};
	fetch = fetch ?: &default_fetch;

	if (asprintf(&repomd_url, "%s/repodata/repomd.xml", c->baseurl) < 0 ||
	    asprintf(&sig_url, "%s.asc", repomd_url) < 0)
		return -ENOMEM;

	/* 1. repomd.xml, and its signature checked before anything reads it */
	o = *fetch;
	o.max_size = REPOMD_MAX_SIZE;
	o.sha256 = NULL;
	o.ca_file = c->sslcacert;
	r = fetch_to_memory(repomd_url, &o, &repomd, &repomd_size, &msg);
	if (r < 0)
		return fail(ret, r, repomd_url, "%s", msg ?: strerror(-r));

	if (c->gpgcheck) {
		if (!c->gpgkey)
			return fail(
				ret, -ENOKEY, c->file ?: c->id,
				"repository '%s' has gpgcheck=1 but no gpgkey=; add the key "
				"or set gpgcheck=0",
				c->id);
		o.max_size = SIGNATURE_MAX_SIZE;
		r = fetch_to_memory(sig_url, &o, &sig, &sig_size, &msg);
		if (r < 0)
			return fail(ret, r, sig_url, "%s%s", msg ?: strerror(-r),
				    r == -ENOENT ?
					    "; the repository is not signed (gpgcheck=1)" :
					    "");
		r = load_gpgkey(c, fetch, &key, &key_size, ret);
		if (r < 0)
			return r;
		r = verify_signature(key, key_size, repomd, repomd_size, sig, sig_size,
				     &msg);
		if (r < 0)
			return fail(ret, r, repomd_url, "%s", msg ?: strerror(-r));
		log_debug("%s: good signature", repomd_url);
	}

	/* 2. parse it; refuse older metadata than the last accepted */
	r = repomd_parse(repomd, repomd_size, &m);
	if (r < 0)
		return fail(ret, r, repomd_url, "not a valid repomd.xml");

	/* one refresh of a repository at a time, from reading the state to writing it */
	sdir = state_dir(root);
	if (!sdir)
		return -ENOMEM;
	r = mkdir_p(sdir, 0755);
	if (r < 0)
		return fail(ret, r, sdir, "cannot create the state directory: %s",
			    strerror(-r));
	lock_fd = open(sdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
		r = negative_errno();
		return fail(ret, r, sdir, "cannot lock: %s", strerror(-r));
	}

	cache_dir_clean(sdir, keep_all_but_state_temporaries, c->id);

	r = repo_state_read(root, c->id, &old);
	if (r < 0 && r != -ENOENT) {
		_cleanup_free_ char *sp = state_path(root, c->id);
		return fail(
			ret, r, strna(sp),
			"unreadable repository state (%s); remove the file to accept any "
			"metadata again",
			strerror(-r));
	}
	have_old = r >= 0;
	if (have_old && m->timestamp < old.timestamp) {
		_cleanup_free_ char *sp = state_path(root, c->id);

		return fail(ret, -ESTALE, repomd_url,
			    "metadata timestamp %" PRIu64
			    " is older than the last accepted %" PRIu64
			    " (a replayed or rolled-back repository); refusing it (if the "
			    "repository was rebuilt on purpose, remove %s)",
			    m->timestamp, old.timestamp, strna(sp));
	}

	d = repomd_find(m, "primary");
	if (!d || !d->location)
		return fail(ret, -ENODATA, repomd_url, "no primary metadata listed");
	if (!streq_ptr(d->checksum_type, "sha256") || !sha256_hex_valid(d->checksum))
		return fail(ret, -EBADMSG, repomd_url,
			    "primary metadata has no sha256 checksum (type '%s')",
			    strna(d->checksum_type));
	if (!repo_location_safe(d->location))
		return fail(ret, -EBADMSG, repomd_url, "unsafe primary location '%s'",
			    d->location);

	st = (RepoState){ .timestamp = m->timestamp, .refreshed = (uint64_t)time(NULL) };
	sha256_buffer_hex(repomd, repomd_size, st.repomd);
	memcpy(st.primary, d->checksum, 65);
	ret->timestamp = m->timestamp;

	dir = cache_dir(root, c->id);
	solv = repo_solv_path(root, c->id, d->checksum);
	if (!dir || !solv)
		return -ENOMEM;

	/* 3. unchanged primary and its .solv in place: nothing to parse */
	if (!(flags & REPO_REFRESH_FORCE) && have_old && streq(old.primary, st.primary) &&
	    lstat(solv, &sst) >= 0 && S_ISREG(sst.st_mode)) {
		ret->n_solvables = old.n_solvables;
		if (streq(old.repomd, st.repomd))
			return 0;
		st.n_solvables = old.n_solvables;
		r = repo_state_write(root, c->id, &st, c->baseurl);
		if (r < 0)
			return fail(ret, r, root, "cannot write the repository state: %s",
				    strerror(-r));
		return 0;
	}

	/* 4. primary metadata: size and checksum from repomd.xml checked before parsing */
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return fail(ret, r, dir, "cannot create the cache directory: %s",
			    strerror(-r));
	cache_dir_clean(dir, keep_all_but_temporaries, NULL);
	if (asprintf(&primary_url, "%s/%s", c->baseurl, d->location) < 0 ||
	    asprintf(&primary_path, "%s/primary.xml%s", dir,
		     compression_suffix(d->location)) < 0)
		return -ENOMEM;
	o = *fetch;
	o.sha256 = NULL;
	o.ca_file = c->sslcacert;
	o.max_size = d->size > 0 ? d->size : FETCH_DEFAULT_MAX_SIZE;
	free(msg);
	msg = NULL;
	r = fetch_to_file(primary_url, primary_path, &o, &msg);
	if (r == -EFBIG && d->size > 0)
		return fail(ret, r, primary_url,
			    "larger than the %" PRIu64 " bytes listed in repomd.xml",
			    d->size);
	if (r < 0)
		return fail(ret, r, primary_url, "%s", msg ?: strerror(-r));
	if (stat(primary_path, &sst) < 0) {
		r = negative_errno();
		(void)unlink(primary_path);
		return fail(ret, r, primary_path, "%s", strerror(-r));
	}
	if (d->size > 0 && (uint64_t)sst.st_size != d->size) {
		(void)unlink(primary_path);
		return fail(ret, -EPIPE, primary_url,
			    "truncated: %" PRIu64 " of %" PRIu64
			    " bytes listed in repomd.xml",
			    (uint64_t)sst.st_size, d->size);
	}
	{
		char got[SHA256_HEX_SIZE];

		r = sha256_file(primary_path, got);
		if (r < 0) {
			(void)unlink(primary_path);
			return fail(ret, r, primary_path, "%s", strerror(-r));
		}
		if (!streq(got, d->checksum)) {
			(void)unlink(primary_path);
			return fail(ret, -EBADMSG, primary_url,
				    "checksum mismatch (sha256 %s, repomd.xml says %s)",
				    got, d->checksum);
		}
	}

	/* 5. parse once into the .solv, then publish the state */
	free(msg);
	msg = NULL;
	n = build_solv(c->id, primary_path, solv, &msg);
	(void)unlink(primary_path);
	if (n < 0)
		return fail(ret, n, n == -EBADMSG ? primary_url : solv, "%s%s",
			    n == -EBADMSG ? "cannot parse primary metadata: " : "",
			    msg ?: strerror(-n));
	st.n_solvables = (unsigned)n;
	r = repo_state_write(root, c->id, &st, c->baseurl);
	if (r < 0) {
		if (!have_old || !streq(old.primary, st.primary))
			(void)unlink(solv);
		return fail(ret, r, root, "cannot write the repository state: %s",
			    strerror(-r));
	}
	cache_dir_clean(dir, keep_solv, st.primary);
	ret->changed = true;
	ret->n_solvables = st.n_solvables;
	return 0;
}
