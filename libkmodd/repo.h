/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* KMP repositories: .repo files (zypper/dnf INI: [id], name=, baseurl= http/https/file,
 * enabled=, gpgcheck=, gpgkey=, priority=) in <root>/etc/kmodd/repos.d/, their metadata
 * fetched and verified (repomd.xml.asc before repomd.xml when gpgcheck, each file's checksum
 * before it is parsed, the newest accepted repomd timestamp kept so that older metadata is
 * refused) and cached as root-owned .solv files keyed by the verified checksum under
 * <root>/var/cache/kmodd/repos/<id>/, so that loading a repository parses no XML. */

#include <stdint.h>

#include <solv/pool.h>
#include <solv/repo.h>

#include "fetch.h"
#include "macros.h"

typedef struct RepoConfig {
	char *id;
	char *name;
	char *baseurl; /* without trailing '/' */
	char *gpgkey;  /* URL or path of the armored public key(s); NULL when none */
	char *file;    /* the .repo file it came from */
	bool enabled;
	bool gpgcheck;
	int priority; /* lower wins, like zypper and dnf; default 99 */
	char *sslcacert; /* CA certificates for https (dnf's sslcacert=); NULL: the system's */
} RepoConfig;

void repo_config_done(RepoConfig *c);
void repo_configs_free(RepoConfig *c, size_t n);

/* Parses one .repo file's text. Malformed lines become "file:line: what is wrong" warnings
 * and are skipped; the rest still applies. A section without baseurl is dropped with a
 * warning. (This is the fuzz target's entry point.) */
int repo_config_parse(const char *file, const char *text, size_t size, RepoConfig **ret,
		      size_t *ret_n, char ***ret_warnings);

/* Every *.repo of <root>/etc/kmodd/repos.d, sorted by file name; ids unique (a later
 * duplicate is dropped with a warning). */
int repo_configs_load(const char *root, RepoConfig **ret, size_t *ret_n, char ***ret_warnings);

/* Adds each enabled repository that has verified cached metadata to pool, from its .solv
 * (never XML); repo->appdata points at its RepoConfig, which must outlive the pool; the
 * priority is applied. Repositories never refreshed are listed in *ret_missing. */
int repo_add_cached_to_pool(const char *root, Pool *pool, RepoConfig *configs, size_t n,
			    char ***ret_missing);

/* The URL of a solvable of a repository added by repo_add_cached_to_pool(). */
char *repo_solvable_url(Pool *pool, Id p);

bool repo_id_valid(const char *id);
/* http://, https:// or file:// and something after it, no whitespace or control characters */
bool repo_url_valid(const char *url);
const RepoConfig *repo_configs_find(const RepoConfig *c, size_t n, const char *id);

/* Writes <root>/etc/kmodd/repos.d/<id>.repo. -EEXIST when the id is already configured,
 * -EINVAL for an invalid id, URL, gpgkey or priority. */
int repo_config_add(const char *root, const RepoConfig *c, char **ret_path);
/* Removes section [id] from its .repo file (the file when nothing else is left in it), and
 * the repository's cached metadata and state. -ENOENT when not configured. */
int repo_config_remove(const char *root, const char *id, char **ret_path);

/* What the last accepted refresh of a repository left: <root>/var/lib/kmodd/repos/<id>.state */
typedef struct RepoState {
	uint64_t timestamp;   /* newest accepted repomd timestamp: older metadata is refused */
	char repomd[65];      /* sha256 of that repomd.xml */
	char primary[65];     /* sha256 of its primary metadata: the .solv's name */
	uint64_t refreshed;   /* when, seconds since the epoch */
	unsigned n_solvables; /* packages in the .solv */
} RepoState;

/* -ENOENT when the repository was never refreshed. */
int repo_state_read(const char *root, const char *id, RepoState *ret);
/* <root>/var/cache/kmodd/repos/<id>/<primary sha256>.solv */
char *repo_solv_path(const char *root, const char *id, const char *checksum);
/* Removes the repository's cache directory and state file. */
int repo_cache_remove(const char *root, const char *id);

typedef enum RepoRefreshFlags {
	REPO_REFRESH_FORCE = 1 << 0, /* download and parse again even when unchanged */
} RepoRefreshFlags;

typedef struct RepoRefreshResult {
	bool changed;         /* new metadata was accepted and cached */
	uint64_t timestamp;   /* of the accepted metadata */
	unsigned n_solvables; /* packages in the cache */
	char *error;          /* on failure: one line, "URL-or-file: what is wrong" */
} RepoRefreshResult;

void repo_refresh_result_done(RepoRefreshResult *r);

/* Fetches repodata/repomd.xml (and, with gpgcheck, repomd.xml.asc, checked with gpgv
 * against the repository's gpgkey before repomd.xml is parsed), refuses metadata older than
 * the last accepted, fetches primary metadata when it changed, checks its size and sha256
 * against repomd.xml before parsing it, and publishes <primary sha256>.solv (0644, atomic)
 * and then the state. On any failure the cache and the state are left as they were.
 * fetch (may be NULL) supplies timeouts, retries and a progress callback.
 * Errors: those of fetch_to_file(), -ENOKEY (gpgcheck without gpgkey), -EKEYREJECTED (bad
 * signature), -EBADMSG (malformed metadata), -ESTALE (older than accepted), -ENODATA (no
 * primary metadata), -EPIPE (shorter than repomd.xml says). */
int repo_refresh(const char *root, const RepoConfig *c, RepoRefreshFlags flags,
		 const FetchOptions *fetch, RepoRefreshResult *ret);
