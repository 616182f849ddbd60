/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* kmod's binary index format (modules.dep.bin, modules.alias.bin, ...), as libkmod reads it:
 *
 *   header   u32 magic 0xB007F457, u32 version 0x00020001, u32 offset of the root node
 *   node     [prefix NUL]                       when the offset has INDEX_NODE_PREFIX
 *            [u8 first, u8 last, u32 child[last - first + 1]]   with INDEX_NODE_CHILDS
 *            [u32 count, count x (u32 priority, value NUL)]      with INDEX_NODE_VALUES
 *
 * All integers big-endian. A node offset carries the node's flags in its high nibble. The trie
 * is a radix tree: the root has an empty prefix, every other node begins one character after
 * its parent's branch character and extends as far as all keys below it agree and none ends.
 * Nodes are written children first (post-order), so every child lies before its parent.
 * Values of one key are ordered by priority, ties with the later insertion first. */

#include <stdint.h>

#include "macros.h"

#define KMOD_INDEX_MAGIC 0xB007F457u
#define KMOD_INDEX_VERSION 0x00020001u

/* A growing byte buffer. */
typedef struct KBuf {
	char *data;
	size_t size;
	size_t allocated;
	bool mapped; /* data is an mmap'd region (a big buffer), not malloc's */
	bool borrowed; /* data is a slice of a region someone else owns (kbuf_region) */
} KBuf;

void kbuf_done(KBuf *b);
/* A region of size bytes (rounded up) for big buffers, in transparent huge pages where the
 * kernel has them; buffers that borrow slices of it (KBuf.borrowed) move out when they
 * outgrow them. Freed with munmap(*ret, *ret_size). */
int kbuf_region(size_t size, void **ret, size_t *ret_size);
int kbuf_reserve(KBuf *b, size_t more);
int kbuf_put(KBuf *b, const void *p, size_t n);
int kbuf_puts(KBuf *b, const char *s);
int kbuf_putc(KBuf *b, char c);
int kbuf_put_be32(KBuf *b, uint32_t v);
int kbuf_printf(KBuf *b, const char *fmt, ...) _printf_(2, 3);

typedef struct KmodIndex KmodIndex;

KmodIndex *kmod_index_new(void);
KmodIndex *kmod_index_free(KmodIndex *idx);
DEFINE_TRIVIAL_CLEANUP_FUNC(KmodIndex *, kmod_index_free);
#define _cleanup_kmod_index_free_ _cleanup_(kmod_index_freep)

/* Adds key -> value with priority; both are copied. Keys and values must be 7-bit ASCII
 * (-EINVAL otherwise, as depmod refuses them). */
int kmod_index_add(KmodIndex *idx, const char *key, const char *value, uint32_t priority);
size_t kmod_index_size(const KmodIndex *idx);

/* Serialises the index exactly as kmod's depmod does, appending to out. */
int kmod_index_write(KmodIndex *idx, KBuf *out);

/* Rewrites a serialised index (what kmod_index_write() produced) into out, which must be
 * empty: every value's priority p becomes remap[p] (KMOD_INDEX_DROP drops the value; a
 * p >= n_remap is -EBADMSG), keys left without values disappear, and the entries of add
 * (may be NULL) are inserted. The result is byte-identical to kmod_index_write() over the
 * resulting entries, the old ones counted as inserted first, in their file order. Subtrees
 * whose shape stays are copied node by node; where the shape changes, that subtree is
 * rebuilt. -EBADMSG for a corrupt old index.
 * remap NULL: every priority stays as it is. A subtree below which nothing is added is then
 * copied as it is, its bytes whole, without checking its values: for an old index the caller
 * knows to be one it wrote. */
#define KMOD_INDEX_DROP UINT32_MAX
int kmod_index_patch(const void *old, size_t old_size, const uint32_t *remap, size_t n_remap,
		     KmodIndex *add, KBuf *out);

/* Checks the structure of a serialised index: header, every node within the file, children
 * before parents, strings terminated. -EBADMSG with a short reason in *ret_why. */
int kmod_index_check(const void *data, size_t size, const char **ret_why);

/* Looks key up exactly; calls cb for each value in file order. Returns the number of values
 * or -EBADMSG. */
int kmod_index_lookup(const void *data, size_t size, const char *key,
		      void (*cb)(const char *value, uint32_t priority, void *userdata),
		      void *userdata);

/* kmod's alias normalisation: '-' becomes '_' outside [...] ranges; -EINVAL for an
 * unmatched bracket. buf must hold strlen(alias) + 1 bytes. */
int kmod_alias_normalize(const char *alias, char *buf);
