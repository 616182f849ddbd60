/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writing rpm-md repository metadata: repodata/repomd.xml and the primary, filelists and other
 * documents (gzip-compressed, file names prefixed with their sha256 like createrepo_c's
 * unique-md-filenames). Packages are formatted one at a time, possibly in parallel, into
 * RpmmdEntry fragments; rpmmd_write() puts them together in the order given. */

#include <stdint.h>

#include "kmp.h"

typedef struct RpmmdEntry {
	char *primary;
	size_t primary_size;
	char *filelists;
	size_t filelists_size;
	char *other;
	size_t other_size;
} RpmmdEntry;

void rpmmd_entry_done(RpmmdEntry *e);

/* location: the package's path relative to the repository root. mtime: the file time
 * recorded as <time file=>; createrepo_c --update compares it with the file's mtime. */
int rpmmd_format_package(const KmpPackage *p, const KmpWritten *w, const char *location,
			 uint64_t mtime, RpmmdEntry *ret);

/* Writes repodata/ under repo_dir (created when missing; stale metadata files removed).
 * timestamp: the revision and every <timestamp>. n_threads > 1 compresses the documents
 * in parallel. */
int rpmmd_write(const char *repo_dir, const RpmmdEntry *entries, size_t n, uint64_t timestamp,
		int compress_level, unsigned n_threads);

/* Writes s to f with the five XML entities escaped; bytes that are not valid UTF-8 and
 * control characters XML 1.0 forbids are replaced with '?'. */
void xml_escape_fputs(const char *s, FILE *f);
