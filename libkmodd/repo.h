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
} RepoConfig;

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
