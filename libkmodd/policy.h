/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Sets: named groups of modules for `kmodctl ensure SET`, as systemd-style INI data files
 * <name>.set in <root>/usr/lib/kmodd/policies/sets/ (shipped) and
 * <root>/etc/kmodd/policies/sets/ (local; a file of the same name overrides the shipped one):
 *
 *   [Set]
 *   Name=netfilter                  (default: the file name without .set)
 *   Description=Packet filtering: nf_tables, iptables, conntrack
 *   Modules=nf_tables nft_* xt_*    (module names or fnmatch globs; '-' and '_' alike;
 *                                    repeatable; an empty value clears the list)
 *   Paths=kernel/net/netfilter/     (module paths in the kernel tree: a directory with '/'
 *                                    matches everything below it, else the exact file)
 *
 * Malformed lines become "file:line: what is wrong" warnings and are skipped; the rest still
 * applies. */

#include "macros.h"

#define POLICY_MAX_FILE_SIZE (1024u * 1024u)
#define POLICY_MAX_ENTRIES 4096u

typedef struct PolicySet {
	char *name;
	char *description;
	char **modules; /* globs, '-' turned into '_' */
	char **paths;
	char *file;
} PolicySet;

PolicySet *policy_set_free(PolicySet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolicySet *, policy_set_free);
#define _cleanup_policy_set_free_ _cleanup_(policy_set_freep)
void policy_sets_free(PolicySet **l, size_t n);

/* Parses one .set file's text (the fuzz target's entry point). -EINVAL when the text is not
 * a set at all (no [Set] section, or neither Modules= nor Paths=), with warnings saying why. */
int policy_set_parse(const char *file, const char *text, size_t size, PolicySet **ret,
		     char ***ret_warnings);

/* The set of that name under root (/etc first); -ENOENT when there is none. */
int policy_set_load(const char *root, const char *name, PolicySet **ret,
		    char ***ret_warnings);

/* Every set under root, sorted by name; /etc overrides /usr/lib by file name. */
int policy_sets_load(const char *root, PolicySet ***ret, size_t *ret_n,
		     char ***ret_warnings);

/* Whether a module (name as the kernel spells it, or with '-'; path relative to
 * /lib/modules/KVER, e.g. "kernel/net/netfilter/nft_ct.ko", may be NULL) belongs to the set.
 * A path below updates/ or extra/ counts as the in-tree path below kernel/. */
bool policy_set_matches(const PolicySet *s, const char *module, const char *path);
