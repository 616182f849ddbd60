/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* repodata/repomd.xml: the index of an rpm-md repository. A small parser for the part we
 * use (revision, and per <data>: type, checksum, location, timestamp, sizes); anything else
 * is skipped. The input is untrusted: bounded depth, counts and lengths. */

#include <stdint.h>

#include "macros.h"

typedef struct RepomdData {
	char *type;          /* "primary", "filelists", ... */
	char *checksum_type; /* "sha256" */
	char *checksum;      /* hex, lower case */
	char *location;      /* href, relative to the repository's base URL */
	uint64_t timestamp;
	uint64_t size;      /* 0 when not given */
	uint64_t open_size; /* 0 when not given */
} RepomdData;

typedef struct Repomd {
	char *revision;
	uint64_t timestamp; /* the newest <data> timestamp, else a numeric revision, else 0 */
	RepomdData *data;
	size_t n_data;
} Repomd;

#define REPOMD_MAX_DATA 64

Repomd *repomd_free(Repomd *m);
static inline void repomd_freep(Repomd **m)
{
	repomd_free(*m);
}

/* -EBADMSG when text is not a repomd.xml we can use. */
int repomd_parse(const char *text, size_t size, Repomd **ret);
const RepomdData *repomd_find(const Repomd *m, const char *type);

/* true for a location that stays below the base URL: relative, no "..", no scheme, no
 * backslash, no query or fragment, printable ASCII. */
bool repo_location_safe(const char *location);
