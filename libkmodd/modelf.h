/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A reader of uncompressed kernel module ELF files (ELF32/ELF64, either byte order) that
 * lists what libkmod lists for them, in libkmod's order, with libc alone: the .modinfo
 * strings (kmod_module_get_info without the signature entries), the exported symbols
 * (kmod_module_get_symbols) and the needed symbols (kmod_module_get_dependency_symbols).
 * Every offset and size read from the file is checked against the mapping. */

#include <stddef.h>
#include <stdint.h>

typedef struct ModElf ModElf;

/* Opens and maps path (relative to dirfd, or AT_FDCWD) read-only. -EMEDIUMTYPE: the file
 * is xz, zstd or gzip compressed; -ENOEXEC: not an ELF file with a section table and a
 * .modinfo section that fit in it; -EISDIR; other -errno from open, fstat or mmap. */
int modelf_open(int dirfd, const char *path, ModElf **ret);
void modelf_close(ModElf *e);

/* Each calls fn for every item in libkmod's order and returns the number of items; a
 * negative return of fn stops the walk and is returned. Strings passed to fn are
 * NUL-terminated and valid only during the call. */

/* The .modinfo strings split at the first '=': key (key_len bytes, not NUL-terminated
 * there) and value ("" when there is no '='). */
int modelf_modinfo(const ModElf *e,
		   int (*fn)(const char *key, size_t key_len, const char *value, void *u),
		   void *u);

/* The exported symbols: the .symtab names starting "__crc_", without the prefix; when
 * there are none (or .symtab/.strtab are missing or malformed), the strings of
 * __ksymtab_strings. -ENOENT when that section is needed and missing, as libkmod;
 * -ENOEXEC when a .symtab name runs off the end of .strtab. */
int modelf_exports(const ModElf *e, int (*fn)(const char *name, void *u), void *u);

/* The undefined .symtab symbols with their __versions CRC (0 when not listed) and bind
 * ('W' weak, else 'U'), then the __versions entries no symbol matched ('U'). -EINVAL when
 * .symtab or .strtab is missing or malformed, as libkmod; -ENOEXEC when a name runs off
 * the end of its string table. */
int modelf_needs(const ModElf *e,
		 int (*fn)(const char *name, uint64_t crc, char bind, void *u),
		 void *u);

static inline void modelf_closep(ModElf **e)
{
	if (*e)
		modelf_close(*e);
}
#define _cleanup_modelf_close_ __attribute__((cleanup(modelf_closep)))
