/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A serialised kmod index as it may be found on disk (an incremental update patches the
 * previous one): check, look up, and patch it with entries added and priorities remapped;
 * errors are fine, crashes and reads outside the input are not. Corpus: modules.builtin.alias.bin
 * of the 6.1.0-54 fixture kernel and damaged copies of it (truncated, bad magic, root offset
 * past the end or with unknown flags, a root that is its own child). */
#include <stdint.h>

#include "kmodindex.h"
#include "macros.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_value(const char *value, uint32_t priority, void *userdata)
{
	size_t *n = userdata;

	*n += strlen(value) + (priority & 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "", "a", "e1000", "pci:v00008086d0000100Esv*", "z" };
	_cleanup_kmod_index_free_ KmodIndex *add = kmod_index_new();
	uint32_t remap[64];
	const char *why;
	KBuf out = {};
	size_t n = 0;

	if (!add)
		return 0;
	(void)kmod_index_check(data, size, &why);
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		(void)kmod_index_lookup(data, size, keys[i], on_value, &n);
	/* every other priority dropped, the rest moved up by one */
	for (uint32_t i = 0; i < ELEMENTSOF(remap); i++)
		remap[i] = i % 2 ? KMOD_INDEX_DROP : i + 1;
	(void)kmod_index_add(add, "e1000", "new", 7);
	(void)kmod_index_add(add, "pci:v00008086*", "new", 0);
	(void)kmod_index_patch(data, size, remap, ELEMENTSOF(remap), add, &out);
	kbuf_done(&out);
	/* the same without adds: the copy of unchanged subtrees */
	(void)kmod_index_patch(data, size, remap, ELEMENTSOF(remap), NULL, &out);
	kbuf_done(&out);
	/* no remap: subtrees copied as bytes, their child offsets moved */
	(void)kmod_index_patch(data, size, NULL, 0, add, &out);
	kbuf_done(&out);
	return n == SIZE_MAX;
}
