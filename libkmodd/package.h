/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A package as it travels from resolution to the transaction and into the installed
 * database: everything needed to fetch, verify, install and later describe it again to
 * libsolv, without the libsolv pool it came from. */

#include <stdint.h>

#include "macros.h"

typedef enum InstallReason {
	INSTALL_REASON_USER,       /* asked for by name, module or modalias on the command line */
	INSTALL_REASON_HOTPLUG,    /* a device appeared (kmodd) or `kmodctl scan` */
	INSTALL_REASON_SET,        /* part of a set (`kmodctl ensure SET`) */
	INSTALL_REASON_DEPENDENCY, /* pulled in by another package */
	_INSTALL_REASON_MAX,
	_INSTALL_REASON_INVALID = -EINVAL,
} InstallReason;

const char *install_reason_to_string(InstallReason r);
InstallReason install_reason_from_string(const char *s);

typedef struct PackageRef {
	char *name;
	char *evr;  /* "version-release" (epoch "E:" prefix when not 0) */
	char *arch;
	char *repo_id;     /* NULL for the system repository */
	char *url;         /* where to download it: baseurl + location (http, https, file) */
	char *checksum;    /* sha256 hex of the package file, from verified repo metadata */
	uint64_t download_size;
	/* dependencies in rpm's textual form, "kmod(e1000.ko)", "ksym(amd64:foo) = 1a2b",
	 * "modalias(kernel-amd64:pci:v00008086d*)": enough to rebuild a libsolv solvable */
	char **provides;
	char **requires;
	char **supplements;
	char **recommends;
	InstallReason reason;
	char *device;       /* modalias (and devpath) that made it needed, or NULL */
	char *requested_by; /* what the user or daemon asked for: "e1000", "set:netfilter" */
} PackageRef;

void package_ref_done(PackageRef *p);
PackageRef *package_ref_free(PackageRef *p);
int package_ref_copy(const PackageRef *from, PackageRef *to);
/* "name-evr.arch" */
char *package_ref_nevra(const PackageRef *p);

/* Paths of kmodd's own state under a root ("/" or an image). Caller frees. */
char *kmodd_path_repos_d(const char *root);   /* <root>/etc/kmodd/repos.d */
char *kmodd_path_policies(const char *root, bool etc); /* <root>/{etc,usr/lib}/kmodd/policies */
char *kmodd_path_state(const char *root);     /* <root>/var/lib/kmodd */
char *kmodd_path_cache(const char *root);     /* <root>/var/cache/kmodd */
char *kmodd_path_run(const char *root);       /* <root>/run/kmodd */
