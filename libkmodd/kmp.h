/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writing and reading rpm v4 packages without rpmbuild.
 *
 * A package file is: the 96-byte lead, the signature header (header SHA-1/SHA-256, MD5 over
 * header and payload, sizes; padded to 8 bytes), the main header (an immutable region) and
 * the payload: a "newc" cpio archive with "./"-prefixed names, compressed with zstd.
 * librpm builds and serialises the headers; everything else is written here. The output is
 * a function of the package description alone: no clock, host or user leaks into it. */

#include <stdint.h>
#include <sys/types.h>

#include "macros.h"

typedef enum KmpDepKind {
	KMP_DEP_PROVIDES,
	KMP_DEP_REQUIRES,
	KMP_DEP_RECOMMENDS,
	KMP_DEP_SUPPLEMENTS,
	_KMP_DEP_KIND_MAX,
	_KMP_DEP_KIND_INVALID = -EINVAL,
} KmpDepKind;

/* Comparison flags, the values of rpm's RPMSENSE_LESS/GREATER/EQUAL. */
enum {
	KMP_DEP_LESS = 1 << 1,
	KMP_DEP_GREATER = 1 << 2,
	KMP_DEP_EQUAL = 1 << 3,
	KMP_DEP_RPMLIB = 1 << 24,
};

typedef struct KmpDep {
	char *name;
	char *evr; /* NULL for an unversioned dependency */
	uint32_t flags;
} KmpDep;

typedef struct KmpFile {
	char *path; /* where it is installed, absolute */
	char *data;
	size_t size;
	uint32_t mode; /* including S_IFREG */
	uint32_t mtime;
	char digest[65]; /* sha256, hex */
} KmpFile;

typedef struct KmpPackage {
	char *name;
	char *version;
	char *release;
	char *arch;
	char *summary;
	char *description;
	char *license;
	char *group;
	char *url;
	char *vendor;
	char *buildhost;
	char *sourcerpm;
	uint32_t buildtime;
	int compress_level; /* zstd level */

	KmpDep *deps[_KMP_DEP_KIND_MAX];
	size_t n_deps[_KMP_DEP_KIND_MAX];
	size_t allocated_deps[_KMP_DEP_KIND_MAX];

	KmpFile *files; /* sorted by path when written */
	size_t n_files;
	size_t allocated_files;
} KmpPackage;

/* What a written package file looks like, as repository metadata needs it. */
typedef struct KmpWritten {
	uint64_t file_size;
	char sha256[65]; /* of the whole file */
	uint64_t header_start; /* the main header's byte range in the file */
	uint64_t header_end;
	uint64_t installed_size;
	uint64_t archive_size; /* uncompressed payload */
} KmpWritten;

/* Call once per process before writing or reading packages (not thread-safe itself). */
int kmp_init(void);

KmpPackage *kmp_package_new(const char *name, const char *version, const char *release,
			    const char *arch);
KmpPackage *kmp_package_free(KmpPackage *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(KmpPackage *, kmp_package_free);
#define _cleanup_kmp_package_free_ _cleanup_(kmp_package_freep)

/* Sets one of the descriptive strings (summary, description, ...) by pointer to the field. */
int kmp_package_set(char **field, const char *value);

/* evr NULL: unversioned. Duplicates (same name, flags and evr) are dropped when writing. */
int kmp_package_add_dep(KmpPackage *p, KmpDepKind kind, const char *name, uint32_t flags,
			const char *evr);
/* Adds a file whose content is read from source_path now; mtime clamped to max_mtime
 * (SOURCE_DATE_EPOCH semantics) when max_mtime is not 0. */
int kmp_package_add_file(KmpPackage *p, const char *path, const char *source_path,
			 uint32_t max_mtime);

/* "name-version-release.arch.rpm" */
char *kmp_package_filename(const KmpPackage *p);
/* "version-release" */
char *kmp_package_evr(const KmpPackage *p);

/* Writes the package to dirfd/filename (through a temporary file renamed into place). */
int kmp_package_write(KmpPackage *p, int dirfd, const char *filename, KmpWritten *ret);

/* Reads a package file, verifying its digests (and signatures when present) the way
 * `rpm -K` does. -EBADMSG on a digest mismatch, -ENOEXEC when it is not an rpm package. */
int kmp_verify_file(const char *path);

/* Lists the names in a package's payload (as cpio stores them, "./lib/...") in order.
 * NULL-terminated, caller frees with strv_free(). */
int kmp_payload_list(const char *path, char ***ret);

/* Naming (kmpbuild/README.md): "e1000" of "kernel/.../e1000.ko[.xz]" (the file name, '-'
 * kept); the KABI of a release ("6.1.0-54-amd64", flavour "amd64" -> "6.1.0_54"); a KMP's
 * name "<stem>-kmp-<flavour>[-<kabi>]". NULL on OOM. */
char *kmp_module_stem(const char *path);
char *kmp_kabi_from_release(const char *kver, const char *flavour);
char *kmp_package_name(const char *stem, const char *flavour, const char *kabi);

/* "%x" of a modversions CRC, the canonical form of ksym() versions. */
int kmp_format_crc(uint64_t crc, char buf[static 17]);
