/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "hashmap.h"

/* A kernel's Module.symvers: "0xCRC\tSYMBOL\tMODULE\tEXPORT_TYPE[\tNAMESPACE]" per line. */
typedef struct SymversEntry {
	const char *symbol;
	const char *module; /* "vmlinux" for the kernel image */
	const char *export_type;
	const char *ns; /* "" when none */
	uint32_t crc;
} SymversEntry;

typedef struct Symvers {
	char *path;
	char *data; /* the file, tokenised in place */
	SymversEntry *entries;
	size_t n_entries;
	Hashmap *by_symbol; /* symbol -> SymversEntry* */
} Symvers;

Symvers *symvers_free(Symvers *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Symvers *, symvers_free);
#define _cleanup_symvers_free_ _cleanup_(symvers_freep)

/* Reads a Module.symvers (plain or .gz). On a malformed line returns -EBADMSG and, when
 * ret_bad_line is given, the 1-based line number. */
int symvers_load(const char *path, Symvers **ret, unsigned *ret_bad_line);

/* The same from memory (name is used in messages); for tests and fuzzing. */
int symvers_parse(const char *name, const char *data, size_t size, Symvers **ret,
		  unsigned *ret_bad_line);

/* Finds the Module.symvers of a kernel under root (may be "/"): <moddir>/build/Module.symvers,
 * /usr/src/linux-headers-KVER/Module.symvers, /boot/symvers-KVER.gz. -ENOENT when none. */
int symvers_find(const char *root, const char *kver, char **ret_path);

const SymversEntry *symvers_get(const Symvers *s, const char *symbol);
